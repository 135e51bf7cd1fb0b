//! Reply shapes: the success envelope, the error body, RequestIds.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::error::ApiError;
use crate::engine::{Found, ServiceType, Subject};
use crate::store::Record;

/// Host id reported in error bodies.
const HOST_ID: &str = "imgsearch";

/// A fresh RequestId in the vendor's form (upper-case UUID).
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// 200 with the Action's fields followed by RequestId, Success and Code (the vendor's order).
pub fn success(fields: Map<String, Value>, request_id: &str) -> Response {
    let mut body = fields;
    // Msg/Message sit with the action's fields; the envelope closes the object.
    let msg = body.shift_remove("Msg");
    body.insert("RequestId".into(), json!(request_id));
    if let Some(msg) = msg {
        body.insert("Msg".into(), msg);
    }
    body.insert("Success".into(), json!(true));
    body.insert("Code".into(), json!(0));
    json_response(StatusCode::OK, &Value::Object(body), request_id)
}

/// The vendor's error body with its HTTP status.
pub fn failure(e: &ApiError, request_id: &str) -> Response {
    let body = json!({
        "RequestId": request_id,
        "HostId": HOST_ID,
        "Code": e.code,
        "Message": e.message,
        "Recommend": format!("https://help.aliyun.com/document_detail/179184.html?code={}", e.code),
    });
    let mut response = json_response(e.status, &body, request_id);
    if let Some(wait) = e.retry_after {
        // Whole milliseconds, at least 1, so a client never retries at once.
        let ms = wait.as_millis().max(1).to_string();
        if let Ok(v) = HeaderValue::from_str(&ms) {
            response.headers_mut().insert("x-acs-retry-after", v);
        }
    }
    response
}

/// PicInfo: category, region, the service type's categories, the subject regions.
pub fn pic_info(subject: &Subject, service: ServiceType) -> Value {
    let all: Vec<Value> = service
        .categories()
        .iter()
        .map(|(id, name)| json!({"Name": name, "Id": id}))
        .collect();
    let multi: Vec<Value> = subject
        .multi_region
        .iter()
        .map(|r| json!({"Region": r.to_string()}))
        .collect();
    json!({
        "CategoryId": subject.category_id,
        "Region": subject.region.to_string(),
        "AllCategories": all,
        "MultiRegion": multi,
    })
}

/// A stored picture as an Auction (without Score).
pub fn auction(record: &Record) -> Map<String, Value> {
    let mut a = Map::new();
    a.insert("CategoryId".into(), json!(record.category_id));
    a.insert("PicName".into(), json!(record.pic_name));
    a.insert("ProductId".into(), json!(record.product_id));
    if let Some(c) = &record.custom_content {
        a.insert("CustomContent".into(), json!(c));
    }
    for (i, name) in ["IntAttr", "IntAttr2", "IntAttr3", "IntAttr4"]
        .iter()
        .enumerate()
    {
        if let Some(v) = record.int_attrs[i] {
            a.insert((*name).into(), json!(v));
        }
    }
    for (i, name) in ["StrAttr", "StrAttr2", "StrAttr3", "StrAttr4"]
        .iter()
        .enumerate()
    {
        if let Some(v) = &record.str_attrs[i] {
            a.insert((*name).into(), json!(v));
        }
    }
    a
}

/// A search result as an Auction, in the vendor's field order.
pub fn scored_auction(found: &Found) -> Value {
    let mut a = Map::new();
    let rest = auction(&found.record);
    a.insert("CategoryId".into(), json!(found.record.category_id));
    a.insert("PicName".into(), json!(found.record.pic_name));
    a.insert("SortExprValues".into(), json!(format!("{};0", found.score)));
    a.insert("Score".into(), json!(found.score));
    for (k, v) in rest {
        a.entry(k).or_insert(v);
    }
    Value::Object(a)
}

fn json_response(status: StatusCode, body: &Value, request_id: &str) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-acs-request-id", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(r: Response) -> Value {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn envelope_order_and_error_body() {
        let mut fields = Map::new();
        fields.insert("Auctions".into(), json!([]));
        fields.insert("Msg".into(), json!("success"));
        let v = body_of(success(fields, "ID")).await;
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["Auctions", "RequestId", "Msg", "Success", "Code"]);
        assert_eq!(v["Code"], json!(0));

        let r = failure(&ApiError::missing("InstanceName"), "ID2");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let v = body_of(r).await;
        assert_eq!(v["Code"], json!("MissingParameter"));
        assert_eq!(v["RequestId"], json!("ID2"));
        assert!(v["Message"].as_str().unwrap().contains("InstanceName"));
    }

    #[test]
    fn request_ids_are_fresh_uuids() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a, a.to_uppercase());
    }
}
