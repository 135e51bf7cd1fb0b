//! The console end to end: a real server with generated pictures, its console routes
//! over HTTP, then the page itself in headless Chromium (`--dump-dom` for assertions on
//! the DOM after the page's scripts ran, `--screenshot` for a picture saved beside the
//! build, `<target>/console-screenshot.png`). The browser part is skipped, with a
//! message, only when no Chromium binary exists (`IMGSEARCH_CHROMIUM` names one).

#[path = "common/chromium.rs"]
mod chromium;
mod common;

use std::path::{Path, PathBuf};

use chromium::Browser;
use common::{b64, picture, Server};
use serde_json::Value;

/// Pictures added: ProductId `prod-i`, PicName `pic-i.png`, IntAttr i, StrAttr a colour.
const PICTURES: u64 = 12;
const COLOURS: [&str; 3] = ["red", "green", "blue"];

/// A GET: status, headers of interest and body bytes.
struct Got {
    status: u16,
    content_type: String,
    source_size: Option<String>,
    body: Vec<u8>,
}

fn get(server: &Server, path: &str) -> Got {
    let url = format!("http://{}{path}", server.addr);
    let response = match ureq::get(&url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    let status = response.status();
    let content_type = response.content_type().to_string();
    let source_size = response
        .header("x-imgsearch-source-size")
        .map(str::to_string);
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut body).unwrap();
    Got {
        status,
        content_type,
        source_size,
        body,
    }
}

fn json(got: &Got) -> Value {
    serde_json::from_slice(&got.body).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&got.body));
    })
}

fn thumbnail_path(product: &str, pic: &str) -> String {
    format!("/console/thumbnail?instance=demoinstance&product={product}&pic={pic}")
}

fn add(server: &Server, i: u64, seed: u64) {
    let content = b64(&picture(seed));
    let (product, pic, int) = (format!("prod-{i}"), format!("pic-{i}.png"), i.to_string());
    let (status, reply) = server.call(
        "AddImage",
        &[
            ("InstanceName", "demoinstance"),
            ("ProductId", &product),
            ("PicName", &pic),
            ("PicContent", &content),
            ("IntAttr", &int),
            ("StrAttr", COLOURS[i as usize % COLOURS.len()]),
            ("CustomContent", &format!("item {i}")),
        ],
    );
    assert_eq!(status, 200, "{reply}");
}

#[test]
fn console_shows_searches_with_thumbnails_and_regions() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    for i in 0..PICTURES {
        add(&server, i, i + 1);
    }

    // The JSON route: instances with counts and settings.
    let listed = json(&get(&server, "/console/api/instances"));
    assert_eq!(listed["SignedRequests"], false);
    assert_eq!(listed["ThumbnailSize"], 160);
    let demo = &listed["Instances"][0];
    assert_eq!(demo["Name"], "demoinstance");
    assert_eq!(demo["ServiceTypeName"], "product");
    assert_eq!(demo["TotalCount"], PICTURES);

    // Thumbnails: stored at add time, longest side 160, with the source size.
    let thumb = get(&server, &thumbnail_path("prod-3", "pic-3.png"));
    assert_eq!(thumb.status, 200);
    assert_eq!(thumb.content_type, "image/jpeg");
    assert_eq!(thumb.source_size.as_deref(), Some("200x160"));
    let decoded = image::load_from_memory(&thumb.body).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (160, 128));
    assert_eq!(
        get(&server, &thumbnail_path("prod-3", "nosuch.png")).status,
        404
    );
    let unknown = get(
        &server,
        "/console/thumbnail?instance=nosuch&product=a&pic=b",
    );
    assert_eq!(json(&unknown)["Code"], "InvalidInstance");
    assert_eq!(
        get(&server, "/console/thumbnail?instance=demoinstance").status,
        400
    );

    // A replaced picture gets a new thumbnail; a deleted one loses it.
    add(&server, 4, 99);
    let replaced = get(&server, &thumbnail_path("prod-4", "pic-4.png"));
    assert_eq!(replaced.status, 200);
    add(&server, 4, 5);
    assert_ne!(
        get(&server, &thumbnail_path("prod-4", "pic-4.png")).body,
        replaced.body
    );
    let (status, _) = server.call(
        "DeleteImage",
        &[("InstanceName", "demoinstance"), ("ProductId", "prod-11")],
    );
    assert_eq!(status, 200);
    assert_eq!(
        get(&server, &thumbnail_path("prod-11", "pic-11.png")).status,
        404
    );
    add(&server, 11, 12);

    // The page and its assets, with a policy that allows nothing from elsewhere.
    let page = get(&server, "/console");
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    assert_eq!(get(&server, "/console/console.js").status, 200);
    assert_eq!(get(&server, "/console/console.css").status, 200);

    let Some(browser) = Browser::find() else {
        eprintln!(
            "SKIPPED the browser part of the console test: no Chromium found \
             (install Debian's `chromium`, or set IMGSEARCH_CHROMIUM to a Chrome/Chromium binary)"
        );
        return;
    };

    // A shareable link runs SearchImageByName on load.
    let link = "/console?instance=demoinstance&product=prod-3&pic=pic-3.png&num=10";
    let dom = browser.dump_dom(&server, link);
    assert!(
        dom.contains(r#"data-state="done""#),
        "page did not finish:\n{dom}"
    );
    let cards = values(&dom, "class");
    let cards = cards
        .iter()
        .filter(|c| *c == "result" || c.starts_with("result "));
    assert_eq!(cards.count(), 10, "{dom}");
    assert!(dom.contains(r#"data-count="10""#));
    assert_eq!(
        values(&dom, "data-pic").first().map(String::as_str),
        Some("pic-3.png")
    );
    assert_eq!(
        values(&dom, "data-product").first().map(String::as_str),
        Some("prod-3")
    );
    let first_score: f64 = values(&dom, "data-score")[0].parse().unwrap();
    assert!(
        (first_score - 1.0).abs() < 1e-4,
        "first score {first_score}"
    );
    assert!(
        dom.contains(r#"class="region main""#),
        "no region box:\n{dom}"
    );
    // Ten result thumbnails and the query picture decoded in the browser.
    assert_eq!(values(&dom, "data-loaded"), vec!["1"; 11], "{dom}");
    assert!(dom.contains(r#"data-attr="StrAttr">green<"#));
    assert!(dom.contains("SearchImageByName"));

    // The Filter box's language, through the link.
    let dom = browser.dump_dom(
        &server,
        "/console?instance=demoinstance&product=prod-3&pic=pic-3.png&filter=int_attr%3E%3D6%20AND%20str_attr%3D%22red%22",
    );
    assert!(dom.contains(r#"data-state="done""#), "{dom}");
    let products = values(&dom, "data-product");
    assert_eq!(
        products.len(),
        2,
        "int_attr>=6 AND red is prod-6 and prod-9: {products:?}"
    );
    assert!(products.iter().all(|p| p == "prod-6" || p == "prod-9"));

    // Vendor errors are shown with their code and message.
    let dom = browser.dump_dom(
        &server,
        "/console?instance=demoinstance&product=prod-3&pic=pic-3.png&filter=int_attr%3E%3E",
    );
    assert!(dom.contains(r#"data-state="error""#), "{dom}");
    assert!(dom.contains(r#"data-code="InvalidFilterClause""#), "{dom}");
    let dom = browser.dump_dom(
        &server,
        "/console?instance=demoinstance&product=prod-3&pic=nosuch.png",
    );
    assert!(dom.contains(r#"data-code="PicNotExist""#), "{dom}");

    let shot = screenshot_path();
    browser.screenshot(&server, link, &shot);
    let png = image::open(&shot).expect("a PNG screenshot");
    assert!(png.width() >= 1000, "{}x{}", png.width(), png.height());
    println!("console screenshot: {}", shot.display());
}

#[test]
fn console_settings_thumbnails_off_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    // --thumbnail-size 0: pictures are stored without a preview.
    let server = Server::start_with(&dir.path().join("off"), &["--thumbnail-size", "0"]);
    add(&server, 0, 1);
    assert_eq!(
        get(&server, &thumbnail_path("prod-0", "pic-0.png")).status,
        404
    );
    assert_eq!(
        json(&get(&server, "/console/api/instances"))["ThumbnailSize"],
        0
    );
    drop(server);

    // With access keys the page is served, but its data must be signed like the API:
    // pictures are added while the server is open, then it restarts with two keys, one
    // limited to another instance.
    let data = dir.path().join("keys");
    let mut open = Server::start(&data);
    for i in 0..4 {
        add(&open, i, i + 1);
    }
    open.stop();
    let config = dir.path().join("keys.toml");
    std::fs::write(
        &config,
        r#"
[[access_keys]]
id = "console-test"
secret = "secret"

[[access_keys]]
id = "elsewhere"
secret = "other-secret"
instances = ["someotherinstance"]
"#,
    )
    .unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    assert_eq!(get(&server, "/console").status, 200);
    assert_eq!(
        json(&get(&server, "/console/api/settings"))["SignedRequests"],
        true
    );
    // Unsigned data routes and Actions are refused.
    let unsigned = get(&server, "/console/api/instances");
    assert_eq!(unsigned.status, 400);
    assert_eq!(json(&unsigned)["Code"], "MissingParameter");
    assert_eq!(
        get(&server, &thumbnail_path("prod-0", "pic-0.png")).status,
        400
    );
    let (status, _) = server.call("Detail", &[("InstanceName", "demoinstance")]);
    assert!(status >= 400);

    let Some(browser) = Browser::find() else {
        eprintln!("SKIPPED the browser part of the signed console test: no Chromium found");
        return;
    };
    // No key yet: the page asks for one.
    let dom = browser.dump_dom(&server, "/console");
    assert!(dom.contains(r#"data-state="signin""#), "{dom}");
    // A key in the fragment (scripted use): the page signs its Actions, the instance
    // list and every thumbnail, which the server verifies.
    let search = "/console?instance=demoinstance&product=prod-2&pic=pic-2.png";
    let dom = browser.dump_dom(
        &server,
        &format!("{search}#access-key-id=console-test&access-key-secret=secret"),
    );
    assert!(dom.contains(r#"data-state="done""#), "{dom}");
    assert_eq!(
        values(&dom, "data-product").first().map(String::as_str),
        Some("prod-2")
    );
    assert_eq!(values(&dom, "data-loaded"), vec!["1"; 5], "{dom}");
    // A wrong secret is refused by the server and the page asks again.
    let dom = browser.dump_dom(
        &server,
        &format!("{search}#access-key-id=console-test&access-key-secret=wrong"),
    );
    assert!(dom.contains(r#"data-state="signin""#), "{dom}");
    assert!(
        dom.contains(r#"data-code="SignatureDoesNotMatch""#),
        "{dom}"
    );
    // A key limited to another instance does not see this one.
    let dom = browser.dump_dom(
        &server,
        &format!("{search}#access-key-id=elsewhere&access-key-secret=other-secret"),
    );
    assert!(dom.contains(r#"data-state="error""#), "{dom}");
    assert!(dom.contains(r#"data-code="InvalidInstance""#), "{dom}");
    assert!(values(&dom, "data-product").is_empty(), "{dom}");
}

/// Every value of `attr="..."` in document order.
fn values(dom: &str, attr: &str) -> Vec<String> {
    let needle = format!(" {attr}=\"");
    dom.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &dom[at + needle.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .collect()
}

/// Where the screenshot goes: the cargo target directory (beside `release/`).
fn screenshot_path() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_imgsearch"));
    let target = bin
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| Path::new("."));
    target.join("console-screenshot.png")
}
