//! The console's administration end to end, in headless Chromium driven over the DevTools
//! protocol (`common/chromium.rs`): creating an instance from the page, adding pictures
//! from a folder input, a file input and a dropped folder, searching, deleting a picture,
//! a product and the instance, on an open server and on one with access keys. Every step
//! is checked against the server's API, not only the page. Skipped, with a message, when
//! no Chromium binary exists (`IMGSEARCH_CHROMIUM` names one).

#[path = "common/chromium.rs"]
mod chromium;
mod common;

use std::path::Path;
use std::time::SystemTime;

use chromium::{Browser, Tab};
use common::{b64, picture, Server};
use imgsearch::auth::{form_body, sign_rpc_v1, SigningKey};
use serde_json::{json, Value};

/// The console administers: an instance is created from the page, filled from a folder
/// input, a file input and a dropped folder (ProductId from the folder or the file stem),
/// searched, a picture and a product are deleted from the results, and the instance is
/// deleted; each step is checked against the server's API, not only the page.
#[test]
fn console_creates_fills_searches_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let Some(browser) = Browser::find() else {
        eprintln!("SKIPPED the console administration test: no Chromium found");
        return;
    };
    // Pictures on disk, laid out as a person would pick them.
    let files = dir.path().join("files");
    let write = |path: &str, bytes: &[u8]| {
        let path = files.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let shoe_a = write("folder/shoe-1/a.png", &picture(101));
    write("folder/shoe-1/b.png", &picture(102));
    write("folder/bag-2/c.png", &picture(103));
    let broken = b"\x89PNG\r\n\x1a\nnot really a picture";
    write("folder/bag-2/broken.png", broken);
    write("folder/notes.txt", b"not a picture");
    let hat = write("loose/hat-3.png", &picture(104));
    write("dropped/scarf-4/d.png", &picture(105));

    let mut tab = browser.open(&server, "/console");
    tab.wait_for("document.getElementById('app').dataset.state === 'ready'");

    // The form offers what `instance create` gives: local features on.
    assert_eq!(
        tab.eval("document.getElementById('new-local').checked"),
        Value::Bool(true)
    );
    // Create: generic, QPS 0 (unlimited), capacity 500, local features on.
    let created = create(
        &mut tab,
        "shop",
        &[("#new-type", "generic"), ("#new-capacity", "500")],
        true,
    );
    assert_eq!(created[0], "ok", "{created:?}");
    let shop = show(&server, None, "shop").expect("the server has shop");
    assert_eq!(shop["ServiceType"], "generic");
    assert_eq!(shop["Qps"], 0);
    assert_eq!(shop["Capacity"], 500);
    assert_eq!(shop["LocalFeatures"], true);
    // The page selected it and shows its settings.
    tab.wait_for("document.getElementById('instance-details').dataset.name === 'shop'");
    assert_eq!(field(&mut tab, "LocalFeatures"), "on");
    assert_eq!(field(&mut tab, "Qps"), "unlimited");
    assert_eq!(field(&mut tab, "Pictures"), "0");

    // A folder: three pictures added, the broken one listed with the server's own code,
    // the text file skipped.
    let folder = files.join("folder");
    let counts = upload(&mut tab, |tab| tab.set_files("#add-folder", &[&folder]));
    assert_eq!(counts, [4, 3, 1, 1], "total, added, failed, skipped");
    let (_, refused) = server.call(
        "AddImage",
        &[
            ("InstanceName", "shop"),
            ("ProductId", "bag-2"),
            ("PicName", "broken.png"),
            ("PicContent", &b64(broken)),
        ],
    );
    let listed = tab.eval(
        "[...document.querySelectorAll('#add-failures li')].map(li => [li.dataset.code, li.dataset.product, li.dataset.pic])",
    );
    assert_eq!(listed, json!([[refused["Code"], "bag-2", "broken.png"]]));
    // Loose files are named by their stem; a dropped folder by the folder holding each.
    let counts = upload(&mut tab, |tab| tab.set_files("#add-files", &[&hat]));
    assert_eq!(counts, [1, 1, 0, 0]);
    let dropped = files.join("dropped");
    let counts = upload(&mut tab, |tab| tab.drop_files("#add-drop", &[&dropped]));
    assert_eq!(counts, [1, 1, 0, 0]);
    for (product, pic) in [
        ("shoe-1", "a.png"),
        ("shoe-1", "b.png"),
        ("bag-2", "c.png"),
        ("hat-3", "hat-3.png"),
        ("scarf-4", "d.png"),
    ] {
        assert!(stored(&server, product, pic), "{product}/{pic} not stored");
    }
    assert_eq!(show(&server, None, "shop").unwrap()["Pictures"], 5);
    tab.wait_for("document.querySelector('#details [data-field=Pictures]').textContent === '5'");

    // Search with a picture through the search input: the same picture comes first.
    tab.set_files("#file", &[&shoe_a]);
    tab.wait_for("document.getElementById('app').dataset.state === 'done'");
    let first = tab.eval("(() => { const c = document.querySelector('article.result'); return [c.dataset.product, c.dataset.pic]; })()");
    assert_eq!(first, json!(["shoe-1", "a.png"]));
    assert_eq!(
        tab.eval("document.getElementById('results').dataset.count"),
        "5"
    );

    let shot = target_dir().join("console-admin-screenshot.png");
    tab.screenshot(&shot);
    assert!(image::open(&shot).expect("a PNG screenshot").width() >= 1000);
    println!("console administration screenshot: {}", shot.display());

    // Deleting asks first: cancelled, nothing goes.
    let card = |product: &str, pic: &str| {
        format!("article.result[data-product=\"{product}\"][data-pic=\"{pic}\"]")
    };
    tab.click(&format!("{} .delete-pic", card("shoe-1", "b.png")));
    tab.wait_for("document.getElementById('confirm').open");
    tab.click("#confirm-cancel");
    tab.wait_for("!document.getElementById('confirm').open");
    assert!(stored(&server, "shoe-1", "b.png"));
    // Confirmed: the picture goes, the results refresh without it.
    tab.click(&format!("{} .delete-pic", card("shoe-1", "b.png")));
    tab.click("#confirm-ok");
    tab.wait_for(&format!(
        "!document.querySelector('{}') && document.getElementById('app').dataset.state === 'done'",
        card("shoe-1", "b.png").replace('"', "\\\"")
    ));
    assert!(!stored(&server, "shoe-1", "b.png"));
    assert!(stored(&server, "shoe-1", "a.png"));
    // A whole product.
    tab.click(&format!("{} .delete-product", card("bag-2", "c.png")));
    tab.click("#confirm-ok");
    tab.wait_for("!document.querySelector('article.result[data-product=\"bag-2\"]') && document.getElementById('app').dataset.state === 'done'");
    assert!(!stored(&server, "bag-2", "c.png"));
    assert_eq!(show(&server, None, "shop").unwrap()["Pictures"], 3);
    assert_eq!(
        tab.eval("document.getElementById('results').dataset.count"),
        "3"
    );
    tab.wait_for("document.querySelector('#details [data-field=Pictures]').textContent === '3'");
    // Deleting the picture a search by name was made with: that search cannot run again
    // (PicNotExist), so the page takes the card out instead of showing an error.
    tab.click(&card("hat-3", "hat-3.png"));
    tab.wait_for("document.querySelector('article.result.is-query[data-product=\"hat-3\"]')");
    tab.click(&format!("{} .delete-pic", card("hat-3", "hat-3.png")));
    tab.click("#confirm-ok");
    tab.wait_for("!document.querySelector('article.result[data-product=\"hat-3\"]')");
    assert!(!stored(&server, "hat-3", "hat-3.png"));
    assert_eq!(tab.eval("document.getElementById('error').hidden"), true);
    let left = tab.eval(
        "[...document.querySelectorAll('article.result')].map(c => c.dataset.product).sort()",
    );
    assert_eq!(left, json!(["scarf-4", "shoe-1"]));

    // Delete the instance, after a confirmation.
    tab.click("#delete-instance");
    tab.click("#confirm-ok");
    tab.wait_for("!document.querySelector('#instances tr[data-name=\"shop\"]')");
    assert!(show(&server, None, "shop").is_none());
    let (status, reply) = server.call("Detail", &[("InstanceName", "shop")]);
    assert_eq!(reply["Code"], "InvalidInstance", "{status} {reply}");
}

/// With access keys the page signs its admin calls and its Actions as it signs the rest:
/// a key not limited to instances creates, fills and deletes an instance; the admin
/// route refuses a key limited to instances, and the page shows the refusal's code.
#[test]
fn console_administers_a_server_with_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keys.toml");
    std::fs::write(
        &config,
        r#"
[[access_keys]]
id = "admin-key"
secret = "admin-secret"

[[access_keys]]
id = "limited"
secret = "limited-secret"
instances = ["signedshop"]
"#,
    )
    .unwrap();
    // Two writes a second: the page's AddImage requests are throttled and must wait and
    // retry as the server asks (x-acs-retry-after), not count as failures.
    let data = dir.path().join("data");
    let config = config.to_str().unwrap();
    let server = Server::start_with(&data, &["--config", config, "--write-qps", "2"]);
    let Some(browser) = Browser::find() else {
        eprintln!("SKIPPED the signed console administration test: no Chromium found");
        return;
    };
    let key = SigningKey {
        id: "admin-key".to_string(),
        secret: "admin-secret".to_string(),
    };
    let socks: Vec<_> = (0..6)
        .map(|i| {
            let path = dir.path().join(format!("sock-{i}.png"));
            std::fs::write(&path, picture(7 + i)).unwrap();
            path
        })
        .collect();
    let socks: Vec<&Path> = socks.iter().map(|p| p.as_path()).collect();

    let ready = "document.getElementById('app').dataset.state === 'ready'";
    let mut tab = browser.open(
        &server,
        "/console#access-key-id=admin-key&access-key-secret=admin-secret",
    );
    tab.wait_for(ready);
    let created = create(&mut tab, "signedshop", &[], false);
    assert_eq!(created[0], "ok", "{created:?}");
    assert_eq!(
        tab.eval("document.getElementById('instance-details').dataset.name"),
        "signedshop",
        "the page says created before it selected the new instance"
    );
    let made = show(&server, Some(&key), "signedshop").expect("created");
    assert_eq!(
        (&made["ServiceType"], &made["Qps"], &made["LocalFeatures"]),
        (&json!("product"), &json!(0), &json!(false))
    );
    let started = std::time::Instant::now();
    assert_eq!(
        upload(&mut tab, |tab| tab.set_files("#add-files", &socks)),
        [6, 6, 0, 0]
    );
    // Six writes at two a second cannot all have gone through at once: some were refused
    // and sent again.
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    let metrics = ureq::get(&format!("http://{}/metrics", server.addr))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("imgsearch_requests_total")
                && l.contains("code=\"DeniedRequest\"")),
        "no request was throttled:\n{metrics}"
    );
    assert_eq!(
        show(&server, Some(&key), "signedshop").unwrap()["Pictures"],
        6
    );
    tab.click("#delete-instance");
    tab.click("#confirm-ok");
    tab.wait_for("!document.querySelector('#instances tr[data-name=\"signedshop\"]')");
    assert!(show(&server, Some(&key), "signedshop").is_none());
    drop(tab);

    let mut tab = browser.open(
        &server,
        "/console#access-key-id=limited&access-key-secret=limited-secret",
    );
    tab.wait_for(ready);
    let refused = create(&mut tab, "signedshop", &[], false);
    assert_eq!(refused[..2], ["error", "NoPermission"], "{refused:?}");
    assert!(show(&server, Some(&key), "signedshop").is_none());
}

/// The cargo target directory (beside `release/`), where screenshots go.
fn target_dir() -> std::path::PathBuf {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_imgsearch"));
    bin.ancestors()
        .nth(2)
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf()
}

/// Fills the create form (`fields`: selector and value) and submits it; the status line's
/// state (`ok` or `error`), code and text.
fn create(tab: &mut Tab, name: &str, fields: &[(&str, &str)], local_features: bool) -> [String; 3] {
    tab.eval("document.getElementById('create-panel').open = true");
    tab.eval("delete document.getElementById('create-status').dataset.state");
    tab.fill("#new-name", name);
    for (selector, value) in fields {
        tab.fill(selector, value);
    }
    // The box starts ticked, as `instance create` defaults local features on.
    let ticked = tab.eval("document.getElementById('new-local').checked");
    if ticked.as_bool() != Some(local_features) {
        tab.click("#new-local");
    }
    tab.click("#create-button");
    tab.wait_for("document.getElementById('create-status').dataset.state");
    let status = tab.eval(
        "(() => { const s = document.getElementById('create-status'); \
         return [s.dataset.state, s.dataset.code || '', s.textContent]; })()",
    );
    std::array::from_fn(|i| status[i].as_str().unwrap_or_default().to_string())
}

/// The instance as `POST /admin/instance/show` reports it (signed with `key` when
/// given); `None` when the server has no such instance.
fn show(server: &Server, key: Option<&SigningKey>, name: &str) -> Option<Value> {
    let path = "/admin/instance/show";
    let params = [("InstanceName", name)];
    let pairs: Vec<(String, String)> = match key {
        Some(key) => sign_rpc_v1(key, path, &params, SystemTime::now(), &nonce()),
        None => vec![("InstanceName".to_string(), name.to_string())],
    };
    let url = format!("http://{}{path}", server.addr);
    let response = match ureq::post(&url)
        .set("content-type", "application/x-www-form-urlencoded")
        .send_string(&form_body(&pairs))
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{path}: {e}"),
    };
    let reply: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    match reply["Code"].as_str() {
        Some("InvalidInstance") => None,
        _ => {
            assert!(reply["Instance"].is_object(), "{reply}");
            Some(reply["Instance"].clone())
        }
    }
}

/// A fresh signature nonce.
fn nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "console-admin-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether the server finds `product`/`pic` in `shop` (SearchImageByName).
fn stored(server: &Server, product: &str, pic: &str) -> bool {
    let params = [
        ("InstanceName", "shop"),
        ("ProductId", product),
        ("PicName", pic),
    ];
    let (status, reply) = server.call("SearchImageByName", &params);
    match reply["Code"].as_str() {
        Some("PicNotExist") => false,
        _ => {
            assert_eq!(status, 200, "{reply}");
            true
        }
    }
}

/// A settings value the page shows for the selected instance.
fn field(tab: &mut Tab, name: &str) -> Value {
    tab.eval(&format!(
        "document.querySelector('#details [data-field={name}]').textContent"
    ))
}

/// Starts an upload with `start` and waits for it; (total, added, failed, skipped).
fn upload(tab: &mut Tab, start: impl FnOnce(&mut Tab)) -> [u64; 4] {
    // The previous upload's "done" must not count: the page sets "running", then "done".
    tab.eval("delete document.getElementById('add-status').dataset.state");
    start(tab);
    tab.wait_for("document.getElementById('add-status').dataset.state === 'done'");
    let counts = tab.eval(
        "(() => { const d = document.getElementById('add-status').dataset; \
         return [d.total, d.added, d.failed, d.skipped].map(Number); })()",
    );
    std::array::from_fn(|i| counts[i].as_u64().unwrap())
}
