//! Request bodies at the vendor's picture limit, in every encoding the server reads: a
//! legal 4 MB picture is accepted however it is sent (form-encoded, where a product on
//! white nearly triples, JSON, multipart), a larger one gets the vendor's error, and a
//! body past the cap is refused without taking the server down.

mod common;

use std::time::Duration;

use common::{auctions, b64, call, encode, Server};
use image::{ImageFormat, Rgb, RgbImage};
use serde_json::Value;

const INSTANCE: &str = "demoinstance";
const FOUR_MB: usize = 4 * 1024 * 1024;

/// A product shot on white as an uncompressed BMP of `side`×`side` pixels (3 bytes each):
/// its base64 is mostly `/`, which form encoding sends as `%2F`.
fn white_bmp(side: u32) -> Vec<u8> {
    let mut img = RgbImage::from_pixel(side, side, Rgb([255, 255, 255]));
    for y in side / 4..side * 3 / 4 {
        for x in side / 3..side * 2 / 3 {
            let shade = ((x * 7 + y * 3) % 200) as u8;
            img.put_pixel(x, y, Rgb([200, shade, 40]));
        }
    }
    encode(&img, ImageFormat::Bmp)
}

/// POSTs `body` with `content_type`; returns (status, JSON reply).
fn post(addr: &str, action: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let url = format!("http://{addr}/?Action={action}");
    let response = match ureq::post(&url)
        .timeout(Duration::from_secs(120))
        .set("content-type", content_type)
        .send_bytes(body)
    {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {action}: {e}"),
    };
    let status = response.status();
    (
        status,
        serde_json::from_str(&response.into_string().unwrap()).unwrap_or(Value::Null),
    )
}

/// A form body as the SDKs encode it (`/` as `%2F`, `+` as `%2B`).
fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

#[test]
fn a_legal_picture_is_accepted_in_every_encoding_and_a_larger_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let addr = server.addr.as_str();

    // The reported case: a ~4 MB BMP on white, form-encoded, is a body of ~15 MB.
    let bmp = white_bmp(1180);
    assert!(
        bmp.len() > 3_900_000 && bmp.len() <= FOUR_MB,
        "{}",
        bmp.len()
    );
    let content = b64(&bmp);
    let body = form(&[
        ("InstanceName", INSTANCE),
        ("ProductId", "white"),
        ("PicName", "white.bmp"),
        ("PicContent", &content),
    ]);
    assert!(
        body.len() > 12 * 1024 * 1024,
        "worst case body: {}",
        body.len()
    );
    let (status, reply) = post(addr, "AddImage", "application/x-www-form-urlencoded", &body);
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = post(
        addr,
        "SearchImageByPic",
        "application/x-www-form-urlencoded",
        &form(&[("InstanceName", INSTANCE), ("PicContent", &content)]),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(auctions(&reply)[0].0, "white", "{reply}");

    // JSON: the same parameters as one object.
    let small = common::picture(21);
    let json = serde_json::json!({
        "InstanceName": INSTANCE, "ProductId": "json", "PicName": "j.png",
        "PicContent": b64(&small), "IntAttr": 7,
    });
    let (status, reply) = post(
        addr,
        "AddImage",
        "application/json",
        json.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{reply}");

    // Multipart: text fields and the picture as a file part (raw bytes).
    let boundary = "imgsearch-test-boundary";
    let mut multipart = Vec::new();
    for (name, value) in [
        ("InstanceName", INSTANCE),
        ("ProductId", "multi"),
        ("PicName", "m.png"),
    ] {
        multipart.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    let other = common::picture(22);
    multipart.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"PicContent\"; filename=\"m.png\"\r\nContent-Type: image/png\r\n\r\n").as_bytes(),
    );
    multipart.extend_from_slice(&other);
    multipart.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (status, reply) = post(
        addr,
        "AddImage",
        &format!("multipart/form-data; boundary={boundary}"),
        &multipart,
    );
    assert_eq!(status, 200, "{reply}");
    for (product, picture) in [("json", &small), ("multi", &other)] {
        let (status, reply) = call(
            addr,
            "SearchImageByPic",
            &[("InstanceName", INSTANCE), ("PicContent", &b64(picture))],
        );
        assert_eq!(status, 200, "{reply}");
        assert_eq!(auctions(&reply)[0].0, product, "{reply}");
    }

    // Just over 4 MB decoded: the vendor's error, whatever the encoding.
    let too_big = white_bmp(1184);
    assert!(too_big.len() > FOUR_MB);
    let body = form(&[("InstanceName", INSTANCE), ("PicContent", &b64(&too_big))]);
    let (status, reply) = post(
        addr,
        "SearchImageByPic",
        "application/x-www-form-urlencoded",
        &body,
    );
    assert_eq!(
        (status, reply["Code"].as_str()),
        (400, Some("InvalidPicContent")),
        "{reply}"
    );

    // A body past the cap is refused before it is buffered, and the server goes on.
    let huge = format!(
        "InstanceName={INSTANCE}&PicContent={}",
        "%2F".repeat(7 * 1024 * 1024)
    );
    assert!(huge.len() > imgsearch::api::MAX_BODY_BYTES);
    let (status, reply) = post(
        addr,
        "SearchImageByPic",
        "application/x-www-form-urlencoded",
        huge.as_bytes(),
    );
    assert_eq!(
        (status, reply["Code"].as_str()),
        (400, Some("InvalidPicContent")),
        "{reply}"
    );
    let (status, _) = call(addr, "Detail", &[("InstanceName", INSTANCE)]);
    assert_eq!(status, 200);
}
