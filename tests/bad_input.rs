//! The bad-input catalogue: every malformed picture, parameter and request shape the
//! service must refuse, each with the vendor's exact code and HTTP status, against one
//! real server; after every case a known picture must still be found at rank 1 and
//! `/healthz` must answer, so no bad input takes the server (or its state) down.

mod common;
#[path = "bad_input/parameter_cases.rs"]
mod parameter_cases;
#[path = "bad_input/picture_cases.rs"]
mod picture_cases;

use std::time::Duration;

use common::{b64, call, picture, Server};
use serde_json::Value;

const INSTANCE: &str = "demoinstance";
const GOOD_PRODUCT: &str = "good";
const GOOD_PIC: &str = "good.png";

/// One case: a name, the Action, its parameters, and the expected (status, code).
struct Case {
    name: String,
    action: &'static str,
    params: Vec<(&'static str, String)>,
    status: u16,
    code: &'static str,
}

fn case(
    name: impl Into<String>,
    action: &'static str,
    params: &[(&'static str, &str)],
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name: name.into(),
        action,
        params: params.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        status,
        code,
    }
}

/// A SearchImageByPic with a picture (base64) and extra parameters.
fn search_with(
    name: impl Into<String>,
    content: &str,
    extra: &[(&'static str, &str)],
    code: &'static str,
) -> Case {
    let mut params = vec![("InstanceName", INSTANCE), ("PicContent", content)];
    params.extend_from_slice(extra);
    case(name, "SearchImageByPic", &params, 400, code)
}

/// An AddImage of a fresh product with the given overrides (`None` drops the parameter).
fn add_with(
    name: impl Into<String>,
    overrides: &[(&'static str, Option<&str>)],
    code: &'static str,
) -> Case {
    let content = b64(&picture(7));
    let mut params: Vec<(&'static str, String)> = vec![
        ("InstanceName", INSTANCE.into()),
        ("ProductId", "bad-product".into()),
        ("PicName", "bad.png".into()),
        ("PicContent", content),
    ];
    for (k, v) in overrides {
        params.retain(|(n, _)| n != k);
        if let Some(v) = v {
            params.push((k, v.to_string()));
        }
    }
    Case {
        name: name.into(),
        action: "AddImage",
        params,
        status: 400,
        code,
    }
}

/// The whole catalogue: bad pictures, then bad requests.
fn catalogue() -> Vec<Case> {
    let mut cases = picture_cases::cases();
    cases.extend(parameter_cases::cases());
    cases
}

/// The server answers and the known picture is still found first by its own name.
fn assert_healthy(server: &Server, after: &str) {
    let (status, reply) = call(
        &server.addr,
        "SearchImageByName",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", GOOD_PRODUCT),
            ("PicName", GOOD_PIC),
            ("Num", "1"),
        ],
    );
    assert_eq!(status, 200, "after {after}: {reply}");
    assert_eq!(
        reply["Auctions"][0]["PicName"], GOOD_PIC,
        "after {after}: {reply}"
    );
    let health = ureq::get(&format!("http://{}/healthz", server.addr))
        .timeout(Duration::from_secs(10))
        .call()
        .map(|r| r.status())
        .unwrap_or(0);
    assert_eq!(health, 200, "healthz after {after}");
}

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--write-qps", "0"]);
    let (status, reply) = server.call(
        "AddImage",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", GOOD_PRODUCT),
            ("PicName", GOOD_PIC),
            ("PicContent", &b64(&picture(1))),
        ],
    );
    assert_eq!(status, 200, "{reply}");
    (dir, server)
}

#[test]
fn every_bad_input_gets_its_vendor_code_and_leaves_the_server_healthy() {
    let (_dir, server) = start();
    let mut failures = Vec::new();
    let cases = catalogue();
    assert!(cases.len() > 100, "{} cases", cases.len());
    for c in &cases {
        let params: Vec<(&str, &str)> = c.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, reply) = call(&server.addr, c.action, &params);
        let got = if status == 200 {
            Some("")
        } else {
            reply["Code"].as_str()
        };
        if (status, got) != (c.status, Some(c.code)) {
            failures.push(format!(
                "{}: expected {} {}, got {status} {}",
                c.name,
                c.status,
                c.code,
                short(&reply)
            ));
        }
        if c.action == "AddImage" {
            // A refused add must not have stored anything.
            let (_, exists) = server.call(
                "CheckImageExists",
                &[
                    ("InstanceName", INSTANCE),
                    ("ProductId", "bad-product"),
                    ("PicName", "bad.png"),
                ],
            );
            if exists["Exists"] != false {
                failures.push(format!("{}: the refused picture was stored", c.name));
            }
        }
        assert_healthy(&server, &c.name);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn short(reply: &Value) -> String {
    let text = reply.to_string();
    text.chars().take(300).collect()
}

/// Raw HTTP: bodies and duplicated parameters the form helper cannot express.
fn raw_post(addr: &str, query: &str, body: &[u8]) -> (u16, Value) {
    let url = format!("http://{addr}/{query}");
    let result = ureq::post(&url)
        .timeout(Duration::from_secs(60))
        .set("content-type", "application/x-www-form-urlencoded")
        .send_bytes(body);
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {query}: {e}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn request_shapes_get_their_vendor_codes() {
    let (_dir, server) = start();
    let addr = server.addr.as_str();

    // An empty body without an Action.
    let (status, reply) = raw_post(addr, "", b"");
    assert_eq!(
        (status, reply["Code"].as_str()),
        (400, Some("MissingParameter")),
        "{reply}"
    );
    assert_healthy(&server, "empty body");

    // An empty body with an Action: its required parameters are missing.
    let (status, reply) = raw_post(addr, "?Action=AddImage", b"");
    assert_eq!(
        (status, reply["Code"].as_str()),
        (400, Some("MissingParameter")),
        "{reply}"
    );
    assert_healthy(&server, "empty AddImage body");

    // A PicContent of 9 MB of base64: over 4 MB once decoded.
    let big = format!(
        "InstanceName={INSTANCE}&PicContent={}",
        "A".repeat(9 * 1024 * 1024)
    );
    let (status, reply) = raw_post(addr, "?Action=SearchImageByPic", big.as_bytes());
    assert_eq!(
        (status, reply["Code"].as_str()),
        (400, Some("InvalidPicContent")),
        "{reply}"
    );
    assert_healthy(&server, "oversize body");

    // The same parameter twice with different values, in the query and in the body.
    let (status, reply) = raw_post(
        addr,
        "?Action=Detail&InstanceName=demoinstance",
        b"InstanceName=other",
    );
    assert_eq!(
        (status, reply["Code"].as_str()),
        (400, Some("BadRequest")),
        "{reply}"
    );
    let (status, reply) = raw_post(
        addr,
        "?Action=Detail",
        b"InstanceName=demoinstance&InstanceName=other",
    );
    assert_eq!(
        (status, reply["Code"].as_str()),
        (400, Some("BadRequest")),
        "{reply}"
    );
    // ... and twice with the same value, which is harmless.
    let (status, reply) = raw_post(
        addr,
        "?Action=Detail&InstanceName=demoinstance",
        b"InstanceName=demoinstance",
    );
    assert_eq!(status, 200, "{reply}");
    assert_healthy(&server, "duplicated parameters");

    // A body that is not form-encoded at all (binary noise).
    let noise: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let (status, reply) = raw_post(addr, "?Action=SearchImageByPic", &noise);
    assert_eq!(status, 400, "{reply}");
    assert!(reply["Code"].is_string(), "{reply}");
    assert_healthy(&server, "binary body");

    // Invalid percent-encoding and invalid UTF-8 in parameters.
    let (status, reply) = raw_post(
        addr,
        "?Action=SearchImageByName",
        b"InstanceName=demoinstance&ProductId=%FF%FE&PicName=%zz",
    );
    assert_eq!(
        (status, reply["Code"].as_str()),
        (400, Some("PicNotExist")),
        "{reply}"
    );
    assert_healthy(&server, "bad percent-encoding");

    // An unknown path.
    let (status, reply) = raw_post(addr, "nosuchpath", b"");
    assert_eq!(
        (status, reply["Code"].as_str()),
        (404, Some("InvalidApi.NotFound")),
        "{reply}"
    );
}

#[test]
fn unicode_names_round_trip() {
    let (_dir, server) = start();
    let product = "商品-ü-😀";
    let pic = "图片 ünïcödé.png";
    let (status, reply) = server.call(
        "AddImage",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", product),
            ("PicName", pic),
            ("PicContent", &b64(&picture(42))),
            ("StrAttr", "红色"),
            ("CustomContent", "内容 ✓"),
        ],
    );
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = server.call(
        "SearchImageByName",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", product),
            ("PicName", pic),
            ("Num", "1"),
        ],
    );
    assert_eq!(status, 200, "{reply}");
    let top = &reply["Auctions"][0];
    assert_eq!(
        (
            &top["ProductId"],
            &top["PicName"],
            &top["StrAttr"],
            &top["CustomContent"]
        ),
        (
            &Value::from(product),
            &Value::from(pic),
            &Value::from("红色"),
            &Value::from("内容 ✓")
        ),
        "{reply}"
    );
    let (status, reply) = server.call(
        "SearchImageByFilter",
        &[("InstanceName", INSTANCE), ("Filter", "str_attr=\"红色\"")],
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["Auctions"][0]["PicName"], pic, "{reply}");
    let (status, reply) = server.call(
        "DeleteImage",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", product),
            ("PicName", pic),
        ],
    );
    assert_eq!(status, 200, "{reply}");
    let (_, reply) = server.call(
        "CheckImageExists",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", product),
            ("PicName", pic),
        ],
    );
    assert_eq!(reply["Exists"], false, "{reply}");
    assert_healthy(&server, "unicode names");
}
