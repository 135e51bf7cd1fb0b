//! The bad-input catalogue: every malformed picture, parameter and request shape the
//! service must refuse, each with the vendor's exact code and HTTP status, against one
//! real server; after every case a known picture must still be found at rank 1 and
//! `/healthz` must answer, so no bad input takes the server (or its state) down.

mod common;

use std::io::Cursor;
use std::time::Duration;

use common::{b64, call, encode, picture, picture_rgb, Server};
use image::ImageFormat;
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

// ---- crafted pictures ------------------------------------------------------------------

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    out.extend_from_slice(&h.finalize().to_be_bytes());
    out
}

/// A PNG whose header declares `w`×`h` RGB pixels, with a tiny (far too short) IDAT:
/// what a decompression bomb or a lying header looks like.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    // zlib stream of a few zero bytes (a valid start, far short of w*h pixels).
    out.extend(png_chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    ));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

/// A JPEG SOI + SOF0 header declaring `w`×`h` and nothing else.
fn jpeg_header_only(w: u16, h: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08];
    out.extend_from_slice(&h.to_be_bytes());
    out.extend_from_slice(&w.to_be_bytes());
    out.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A BMP header declaring `w`×`h` 24-bit pixels with no pixel data.
fn bmp_header_only(w: i32, h: i32) -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend_from_slice(&(54u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(54u32).to_le_bytes());
    out.extend_from_slice(&(40u32).to_le_bytes());
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&24u16.to_le_bytes());
    out.extend_from_slice(&[0; 24]);
    out
}

/// A GIF header declaring `w`×`h` with no frames.
fn gif_header_only(w: u16, h: u16) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0x3B]);
    out
}

/// The TIFF bytes of an EXIF block holding only an Orientation tag.
fn exif_orientation(orientation: u16) -> Vec<u8> {
    let mut t = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&0x0112u16.to_be_bytes());
    t.extend_from_slice(&3u16.to_be_bytes());
    t.extend_from_slice(&1u32.to_be_bytes());
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_be_bytes());
    t
}

/// A PNG picture with an `eXIf` chunk rotating it.
fn png_rotated(orientation: u16) -> Vec<u8> {
    let png = picture(3);
    // IHDR ends at 8 + 25 bytes; insert the chunk after it.
    let mut out = png[..33].to_vec();
    out.extend(png_chunk(b"eXIf", &exif_orientation(orientation)));
    out.extend_from_slice(&png[33..]);
    out
}

/// A JPEG picture with an APP1 EXIF segment rotating it.
fn jpeg_rotated(orientation: u16) -> Vec<u8> {
    let jpeg = encode(&picture_rgb(4), ImageFormat::Jpeg);
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend(exif_orientation(orientation));
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Every supported format of one picture.
fn formats() -> Vec<(&'static str, Vec<u8>)> {
    let rgb = picture_rgb(11);
    let mut out = Vec::new();
    for (name, format) in [
        ("png", ImageFormat::Png),
        ("jpeg", ImageFormat::Jpeg),
        ("bmp", ImageFormat::Bmp),
        ("gif", ImageFormat::Gif),
        ("webp", ImageFormat::WebP),
        ("tiff", ImageFormat::Tiff),
        ("pnm", ImageFormat::Pnm),
    ] {
        let mut bytes = Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(rgb.clone())
            .write_to(&mut bytes, format)
            .expect("encode");
        out.push((name, bytes.into_inner()));
    }
    out
}

/// Overwrites the second half of a file with a byte pattern: the header survives, the
/// pixel data does not.
fn corrupt(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let half = out.len() / 2;
    for (i, b) in out[half..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(151) ^ 0x5A;
    }
    out
}

fn catalogue() -> Vec<Case> {
    let good = b64(&picture(1));
    let mut cases = Vec::new();

    // Pictures: truncated and corrupt, in every format.
    for (format, bytes) in formats() {
        let quarter = b64(&bytes[..bytes.len() / 4]);
        cases.push(search_with(
            format!("{format} truncated to a quarter"),
            &quarter,
            &[],
            "InvalidPicContent",
        ));
        let header = b64(&bytes[..bytes.len().min(24)]);
        // 24 bytes are too short even to hold the header of most formats.
        cases.push(search_with(
            format!("{format} cut inside its header"),
            &header,
            &[],
            "InvalidPicContent",
        ));
        let mut corrupted = search_with(
            format!("{format} with corrupt pixel data"),
            &b64(&corrupt(&bytes)),
            &[],
            "InvalidPicContent",
        );
        if format == "bmp" || format == "pnm" {
            // Raw pixel formats have no checksum: any bytes are valid pixels, so the
            // picture is searchable (and must not crash anything).
            corrupted.status = 200;
            corrupted.code = "";
        }
        cases.push(corrupted);
    }
    // Header dimensions.
    let tiny = encode(
        &image::RgbImage::from_pixel(1, 1, image::Rgb([9, 9, 9])),
        ImageFormat::Png,
    );
    cases.push(search_with(
        "png 1x1",
        &b64(&tiny),
        &[],
        "UnsupportedPicPixels",
    ));
    for (w, h) in [
        (5000, 5000),
        (100_000, 100_000),
        (100_000, 200),
        (200, 100_000),
    ] {
        cases.push(search_with(
            format!("png header {w}x{h}"),
            &b64(&png_header_only(w, h)),
            &[],
            "UnsupportedPicPixels",
        ));
    }
    cases.push(search_with(
        "jpeg header 5000x5000",
        &b64(&jpeg_header_only(5000, 5000)),
        &[],
        "UnsupportedPicPixels",
    ));
    cases.push(search_with(
        "jpeg header 65535x65535",
        &b64(&jpeg_header_only(65535, 65535)),
        &[],
        "UnsupportedPicPixels",
    ));
    cases.push(search_with(
        "bmp header 100000x100000",
        &b64(&bmp_header_only(100_000, 100_000)),
        &[],
        "UnsupportedPicPixels",
    ));
    cases.push(search_with(
        "bmp header 5000x5000",
        &b64(&bmp_header_only(5000, 5000)),
        &[],
        "UnsupportedPicPixels",
    ));
    cases.push(search_with(
        "gif header 65535x65535",
        &b64(&gif_header_only(65535, 65535)),
        &[],
        "UnsupportedPicPixels",
    ));
    cases.push(search_with(
        "png rotated by EXIF",
        &b64(&png_rotated(6)),
        &[],
        "IncorrectOrientation",
    ));
    cases.push(search_with(
        "jpeg rotated by EXIF",
        &b64(&jpeg_rotated(8)),
        &[],
        "IncorrectOrientation",
    ));
    cases.push(add_with(
        "AddImage of a picture rotated by EXIF",
        &[("PicContent", Some(&b64(&jpeg_rotated(6))))],
        "IncorrectOrientation",
    ));
    cases.push(search_with(
        "not a picture",
        &b64(&b"plain text, no picture here. ".repeat(20)),
        &[],
        "UnsupportedPicFormat",
    ));
    cases.push(search_with(
        "svg",
        &b64(br#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"/>"#),
        &[],
        "UnsupportedPicFormat",
    ));
    cases.push(search_with(
        "picture over 4 MB",
        &b64(&vec![0x89; 4 * 1024 * 1024 + 1]),
        &[],
        "InvalidPicContent",
    ));

    // Base64.
    for (name, bad) in [
        ("base64 with forbidden characters", "!!not*base64!!"),
        ("base64 with a bad length", "iVBORw0KGgoAAAANSUhEUgAAA"),
        ("base64 with a space inside", "iVBORw0K GgoAAAA"),
        ("base64 padding in the middle", "iVBO=Rw0KGgo="),
    ] {
        cases.push(search_with(name, bad, &[], "InvalidPicContent"));
    }

    // Actions and parameters.
    cases.push(case(
        "unknown Action",
        "NoSuchAction",
        &[("InstanceName", INSTANCE)],
        404,
        "InvalidApi.NotFound",
    ));
    cases.push(case(
        "missing InstanceName",
        "SearchImageByPic",
        &[("PicContent", &good)],
        400,
        "MissingParameter",
    ));
    cases.push(case(
        "missing PicContent",
        "SearchImageByPic",
        &[("InstanceName", INSTANCE)],
        400,
        "MissingParameter",
    ));
    cases.push(search_with("empty PicContent", "", &[], "MissingParameter"));
    for p in ["ProductId", "PicName", "PicContent"] {
        cases.push(add_with(
            format!("AddImage without {p}"),
            &[(p, None)],
            "MissingParameter",
        ));
    }
    cases.push(case(
        "SearchImageByName without PicName",
        "SearchImageByName",
        &[("InstanceName", INSTANCE), ("ProductId", GOOD_PRODUCT)],
        400,
        "MissingParameter",
    ));
    cases.push(case(
        "DeleteImage without ProductId",
        "DeleteImage",
        &[("InstanceName", INSTANCE), ("PicName", "x.png")],
        400,
        "MissingParameter",
    ));
    cases.push(case(
        "UpdateImage without PicName",
        "UpdateImage",
        &[("InstanceName", INSTANCE), ("ProductId", GOOD_PRODUCT)],
        400,
        "MissingParameter",
    ));
    for (name, num, start, code) in [
        ("Num 0", "0", "0", "InvalidNumParameter"),
        ("Num -1", "-1", "0", "InvalidNumParameter"),
        ("Num not an integer", "ten", "0", "InvalidNumParameter"),
        ("Num 101", "101", "0", "OverflowMaxReturnNum"),
        (
            "Num huge",
            "99999999999999999999999",
            "0",
            "InvalidNumParameter",
        ),
        ("Start -1", "10", "-1", "InvalidStartParameter"),
        ("Start 500", "1", "500", "InvalidStartParameter"),
        ("Start not an integer", "10", "x", "InvalidStartParameter"),
        ("Start+Num over 500", "10", "495", "OverflowMaxResultNum"),
    ] {
        cases.push(search_with(
            name,
            &good,
            &[("Num", num), ("Start", start)],
            code,
        ));
    }
    let long = |n: usize| "x".repeat(n);
    cases.push(add_with(
        "ProductId of 513 characters",
        &[("ProductId", Some(&long(513)))],
        "InvalidProductId",
    ));
    cases.push(add_with(
        "PicName of 513 characters",
        &[("PicName", Some(&long(513)))],
        "InvalidPicName",
    ));
    cases.push(add_with(
        "CustomContent of 4097 characters",
        &[("CustomContent", Some(&long(4097)))],
        "InvalidCustomContent",
    ));
    cases.push(add_with(
        "StrAttr of 129 characters",
        &[("StrAttr", Some(&long(129)))],
        "InvalidStrAttr",
    ));
    cases.push(add_with(
        "IntAttr not an integer",
        &[("IntAttr", Some("one"))],
        "InvalidIntAttr",
    ));
    for bad in ["a$b", "a&b", "a%b", "a\\b", "a¥b", "a\u{7}b"] {
        cases.push(add_with(
            format!("StrAttr with forbidden character {bad:?}"),
            &[("StrAttr", Some(bad))],
            "InvalidStrAttr",
        ));
    }
    cases.push(add_with(
        "ProductId with a control character",
        &[("ProductId", Some("p\u{0}1"))],
        "InvalidProductId",
    ));
    cases.push(add_with(
        "PicName with a newline",
        &[("PicName", Some("a\nb.png"))],
        "InvalidPicName",
    ));
    cases.push(add_with(
        "CategoryId unknown",
        &[("CategoryId", Some("12345"))],
        "InvalidCategory",
    ));

    // Region.
    for region in [
        "a,b,c,d",
        "1,2,3",
        "1,2,3,4,5",
        "150,10,10,120",
        "0,5000,0,5000",
        "-1,100,0,100",
        ",,,",
        "1.5,100,0,100",
        "99999999999999999999,1,1,1",
    ] {
        cases.push(search_with(
            format!("Region {region:?}"),
            &good,
            &[("Region", region)],
            "InvalidRegion",
        ));
    }

    // Filter.
    let overlong = format!("int_attr=1{}", " OR int_attr=1".repeat(24));
    let deep = format!("{}int_attr=1{}", "(".repeat(200), ")".repeat(200));
    for filter in [
        "int_attr>>1",
        "price=1",
        "str_attr>\"a\"",
        "str_attr=\"abc",
        "int_attr=1 AND",
        "(int_attr=1",
        "int_attr=1)",
        "int_attr=99999999999999999999",
        "int_attr=\"1\"",
        "\u{0}",
        overlong.as_str(),
        &deep[..250],
    ] {
        cases.push(search_with(
            format!("Filter {:?}", &filter[..filter.len().min(40)]),
            &good,
            &[("Filter", filter)],
            "InvalidFilterClause",
        ));
    }
    cases.push(case(
        "SearchImageByFilter with an overlong Filter",
        "SearchImageByFilter",
        &[("InstanceName", INSTANCE), ("Filter", &overlong)],
        400,
        "InvalidFilterClause",
    ));
    let nested = format!("{}int_attr=1{}", "(".repeat(2000), ")".repeat(2000));
    cases.push(case(
        "DeleteImage by a Filter nested 2000 deep",
        "DeleteImage",
        &[
            ("InstanceName", INSTANCE),
            ("IsDeleteByFilter", "true"),
            ("Filter", &nested),
        ],
        400,
        "InvalidFilterClause",
    ));
    cases.push(case(
        "DeleteImage by a malformed Filter",
        "DeleteImage",
        &[
            ("InstanceName", INSTANCE),
            ("IsDeleteByFilter", "true"),
            ("Filter", "int_attr=="),
        ],
        400,
        "InvalidFilterClause",
    ));

    // Instances and pictures.
    cases.push(search_with(
        "unknown instance",
        &good,
        &[("InstanceName", "nosuchinstance")],
        "InvalidInstance",
    ));
    // search_with puts InstanceName first; the override above duplicates it, so build
    // these by hand.
    cases.pop();
    cases.push(case(
        "unknown instance",
        "SearchImageByPic",
        &[("InstanceName", "nosuchinstance"), ("PicContent", &good)],
        400,
        "InvalidInstance",
    ));
    cases.push(case(
        "instance name of 21 characters",
        "SearchImageByPic",
        &[("InstanceName", &"i".repeat(21)), ("PicContent", &good)],
        400,
        "InvalidInstance",
    ));
    cases.push(case(
        "instance name with a path",
        "Detail",
        &[("InstanceName", "../../etc")],
        400,
        "InvalidInstance",
    ));
    cases.push(case(
        "SearchImageByName of a non-existent picture",
        "SearchImageByName",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", "nope"),
            ("PicName", "nope.png"),
        ],
        400,
        "PicNotExist",
    ));
    cases.push(case(
        "UpdateImage of a non-existent picture",
        "UpdateImage",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", "nope"),
            ("PicName", "nope.png"),
            ("IntAttr", "3"),
        ],
        400,
        "PicNotExist",
    ));
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
