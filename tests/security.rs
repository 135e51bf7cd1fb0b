//! Security against a real server with access keys: forged, replayed, stale and
//! re-targeted signatures are refused with the vendor's codes (V3 and RPC V1), keys
//! limited to instances stay inside them, the admin routes need an unrestricted key, and
//! no request names a file outside the configured directories.

mod common;
#[path = "common/sign.rs"]
mod sign;

use std::path::Path;
use std::time::Duration;

use common::{b64, picture, Server};
use serde_json::Value;
use sign::{nonce, now_plus, v1_body, Signed, V3};

const INSTANCE: &str = "demoinstance";
const ADMIN_ID: &str = "admin-key";
const ADMIN_SECRET: &str = "admin-secret-0123456789";
const LIMITED_ID: &str = "limited-key";
const LIMITED_SECRET: &str = "limited-secret-0123456789";

fn start(dir: &Path) -> Server {
    let config = dir.join("keys.toml");
    std::fs::write(
        &config,
        format!(
            "[[access_keys]]\nid = \"{ADMIN_ID}\"\nsecret = \"{ADMIN_SECRET}\"\n\
             [[access_keys]]\nid = \"{LIMITED_ID}\"\nsecret = \"{LIMITED_SECRET}\"\n\
             instances = [\"otherinstance\"]\n"
        ),
    )
    .unwrap();
    let bucket = dir.join("bucket");
    std::fs::create_dir_all(bucket.join("batch")).unwrap();
    std::fs::write(dir.join("secret.txt"), "outside every bucket").unwrap();
    Server::start_with(
        &dir.join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--write-qps",
            "0",
            "--bucket",
            &format!("b1={}", bucket.display()),
        ],
    )
}

/// Sends a signed request; returns (status, JSON).
fn send(addr: &str, request: &Signed) -> (u16, Value) {
    let mut r =
        ureq::post(&format!("http://{addr}{}", request.target)).timeout(Duration::from_secs(30));
    for (k, v) in &request.headers {
        r = r.set(k, v);
    }
    let response = match r.send_bytes(&request.body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text)),
    )
}

/// Sends a form body with the given query (V1 requests, unsigned requests).
fn send_form(addr: &str, target: &str, body: &str) -> (u16, Value) {
    send(
        addr,
        &Signed {
            target: target.to_string(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: body.as_bytes().to_vec(),
        },
    )
}

fn v3<'a>(action: &'a str, body: &'a [(&'a str, &'a str)]) -> V3<'a> {
    V3 {
        id: ADMIN_ID,
        secret: ADMIN_SECRET,
        action,
        path: "/",
        query: &[],
        body,
        at: now_plus(0),
        nonce: nonce(),
    }
}

#[track_caller]
fn assert_code(reply: (u16, Value), status: u16, code: &str) {
    assert_eq!(
        (reply.0, reply.1["Code"].as_str()),
        (status, Some(code)),
        "{}",
        reply.1
    );
}

#[test]
fn forged_replayed_and_stale_signatures_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let addr = server.addr.as_str();
    let detail = [("InstanceName", INSTANCE)];

    // The honest request works, with both styles.
    let (status, reply) = send(addr, &v3("Detail", &detail).sign());
    assert_eq!(status, 200, "{reply}");
    let body = v1_body(
        ADMIN_ID,
        ADMIN_SECRET,
        &[("Action", "Detail"), ("InstanceName", INSTANCE)],
        None,
        now_plus(0),
        &nonce(),
    );
    assert_eq!(send_form(addr, "/", &body).0, 200);

    // Unsigned.
    assert_code(
        send_form(addr, "/?Action=Detail", "InstanceName=demoinstance"),
        400,
        "MissingParameter",
    );

    // Wrong secret.
    let mut wrong = v3("Detail", &detail);
    wrong.secret = "not-the-secret";
    assert_code(send(addr, &wrong.sign()), 400, "SignatureDoesNotMatch");
    let body = v1_body(
        ADMIN_ID,
        "not-the-secret",
        &[("Action", "Detail"), ("InstanceName", INSTANCE)],
        None,
        now_plus(0),
        &nonce(),
    );
    assert_code(send_form(addr, "/", &body), 400, "SignatureDoesNotMatch");

    // Unknown AccessKeyId.
    let mut unknown = v3("Detail", &detail);
    unknown.id = "NoSuchKey";
    assert_code(
        send(addr, &unknown.sign()),
        404,
        "InvalidAccessKeyId.NotFound",
    );
    let body = v1_body(
        "NoSuchKey",
        ADMIN_SECRET,
        &[("Action", "Detail"), ("InstanceName", INSTANCE)],
        None,
        now_plus(0),
        &nonce(),
    );
    assert_code(
        send_form(addr, "/", &body),
        404,
        "InvalidAccessKeyId.NotFound",
    );

    // Replayed nonce: the same signed request twice.
    let once = v3("Detail", &detail).sign();
    assert_eq!(send(addr, &once).0, 200);
    assert_code(send(addr, &once), 400, "SignatureNonceUsed");
    let n = nonce();
    let body = v1_body(
        ADMIN_ID,
        ADMIN_SECRET,
        &[("Action", "Detail"), ("InstanceName", INSTANCE)],
        None,
        now_plus(0),
        &n,
    );
    assert_eq!(send_form(addr, "/", &body).0, 200);
    assert_code(send_form(addr, "/", &body), 400, "SignatureNonceUsed");
    // A fresh nonce on an otherwise identical request is fine.
    assert_eq!(send(addr, &v3("Detail", &detail).sign()).0, 200);

    // Timestamps 16 minutes off, both ways; 14 minutes is inside the window.
    for offset in [-16 * 60, 16 * 60] {
        let mut stale = v3("Detail", &detail);
        stale.at = now_plus(offset);
        assert_code(send(addr, &stale.sign()), 400, "InvalidTimeStamp.Expired");
        let body = v1_body(
            ADMIN_ID,
            ADMIN_SECRET,
            &[("Action", "Detail"), ("InstanceName", INSTANCE)],
            None,
            now_plus(offset),
            &nonce(),
        );
        assert_code(send_form(addr, "/", &body), 400, "InvalidTimeStamp.Expired");
    }
    let mut close = v3("Detail", &detail);
    close.at = now_plus(-14 * 60);
    assert_eq!(send(addr, &close.sign()).0, 200);

    // A tampered body under V3: same headers, other body.
    let product = [
        ("InstanceName", INSTANCE),
        ("ProductId", "p1"),
        ("PicName", "p1.png"),
    ];
    let mut tampered = v3("DeleteImage", &product).sign();
    tampered.body = sign::form(&[
        ("InstanceName", INSTANCE),
        ("ProductId", "p2"),
        ("PicName", "p2.png"),
    ])
    .into_bytes();
    assert_code(send(addr, &tampered), 400, "SignatureDoesNotMatch");
    // ... and with the body hash header fixed up to match the new body.
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&tampered.body))
    };
    for (k, v) in tampered.headers.iter_mut() {
        if k == "x-acs-content-sha256" {
            *v = hash.clone();
        }
        if k == "x-acs-signature-nonce" {
            *v = nonce();
        }
    }
    assert_code(send(addr, &tampered), 400, "SignatureDoesNotMatch");

    // A signature made over other parameters: V3 query, V3 action, V1 parameters.
    let signed = V3 {
        query: &[("InstanceName", INSTANCE)],
        body: &[],
        ..v3("Detail", &[])
    }
    .sign();
    let moved = Signed {
        target: "/?InstanceName=otherinstance".into(),
        ..signed
    };
    assert_code(send(addr, &moved), 400, "SignatureDoesNotMatch");
    let mut swapped = v3("Detail", &detail).sign();
    for (k, v) in swapped.headers.iter_mut() {
        if k == "x-acs-action" {
            *v = "DeleteImage".into();
        }
    }
    assert_code(send(addr, &swapped), 400, "SignatureDoesNotMatch");
    let body = v1_body(
        ADMIN_ID,
        ADMIN_SECRET,
        &[
            ("Action", "DeleteImage"),
            ("InstanceName", INSTANCE),
            ("ProductId", "victim"),
        ],
        Some(&[("Action", "Detail"), ("InstanceName", INSTANCE)]),
        now_plus(0),
        &nonce(),
    );
    assert_code(send_form(addr, "/", &body), 400, "SignatureDoesNotMatch");
    // A valid V1 signature with an extra, unsigned parameter in the query.
    let body = v1_body(
        ADMIN_ID,
        ADMIN_SECRET,
        &[("Action", "Detail"), ("InstanceName", INSTANCE)],
        None,
        now_plus(0),
        &nonce(),
    );
    assert_code(
        send_form(addr, "/?PicName=x", &body),
        400,
        "SignatureDoesNotMatch",
    );

    // None of the refused requests changed anything: the server still answers.
    assert_eq!(send(addr, &v3("Detail", &detail).sign()).0, 200);
}

#[test]
fn limited_keys_and_admin_routes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let addr = server.addr.as_str();

    // A key limited to otherinstance may not touch demoinstance, by any Action or style.
    let limited = |action: &'static str, body: &'static [(&'static str, &'static str)]| V3 {
        id: LIMITED_ID,
        secret: LIMITED_SECRET,
        ..v3(action, body)
    };
    assert_code(
        send(
            addr,
            &limited("Detail", &[("InstanceName", INSTANCE)]).sign(),
        ),
        403,
        "NoPermission",
    );
    assert_code(
        send(
            addr,
            &limited(
                "DeleteImage",
                &[("InstanceName", INSTANCE), ("ProductId", "p")],
            )
            .sign(),
        ),
        403,
        "NoPermission",
    );
    let body = v1_body(
        LIMITED_ID,
        LIMITED_SECRET,
        &[("Action", "Detail"), ("InstanceName", INSTANCE)],
        None,
        now_plus(0),
        &nonce(),
    );
    assert_code(send_form(addr, "/", &body), 403, "NoPermission");
    // Inside its own instance the key is accepted (the instance does not exist here).
    assert_code(
        send(
            addr,
            &limited("Detail", &[("InstanceName", "otherinstance")]).sign(),
        ),
        400,
        "InvalidInstance",
    );

    // Admin routes: unsigned, badly signed and limited keys are refused; the admin key works.
    assert_code(
        send_form(addr, "/admin/reload", ""),
        400,
        "MissingParameter",
    );
    assert_code(
        send_form(addr, "/admin/rebuild?InstanceName=demoinstance", ""),
        400,
        "MissingParameter",
    );
    let admin = |path: &'static str, query: &'static [(&'static str, &'static str)]| V3 {
        path,
        query,
        ..v3("Admin", &[])
    };
    let mut bad = admin("/admin/reload", &[]);
    bad.secret = "wrong";
    assert_code(send(addr, &bad.sign()), 400, "SignatureDoesNotMatch");
    let lim = V3 {
        id: LIMITED_ID,
        secret: LIMITED_SECRET,
        ..admin("/admin/reload", &[])
    };
    assert_code(send(addr, &lim.sign()), 403, "NoPermission");
    // A signature for /admin/reload does not open /admin/rebuild.
    let moved = Signed {
        target: "/admin/rebuild?InstanceName=demoinstance".into(),
        ..admin("/admin/reload", &[("InstanceName", INSTANCE)]).sign()
    };
    assert_code(send(addr, &moved), 400, "SignatureDoesNotMatch");
    let (status, reply) = send(addr, &admin("/admin/reload", &[]).sign());
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = send(
        addr,
        &admin("/admin/rebuild", &[("InstanceName", INSTANCE)]).sign(),
    );
    assert_eq!(status, 200, "{reply}");
    assert!(reply["Generation"].as_u64().is_some(), "{reply}");
}

#[test]
fn no_request_names_a_file_outside_the_configured_directories() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let addr = server.addr.as_str();
    // (tests/tasks.rs covers `..`, absolute paths, symlinks out of the bucket and
    // download names; these are the encodings around them.)
    for path in [
        "../secret.txt",
        "..%2Fsecret.txt",
        "batch/../../secret.txt",
        "batch\\..\\..\\secret.txt",
        "batch/\u{0}/../../secret.txt",
        "/../secret.txt",
        "./../secret.txt",
        "~/secret.txt",
        "%2e%2e/secret.txt",
    ] {
        let body = [
            ("InstanceName", INSTANCE),
            ("BucketName", "b1"),
            ("Path", path),
        ];
        let (status, reply) = send(addr, &v3("IncreaseInstance", &body).sign());
        assert_eq!(
            (status, reply["Code"].as_str()),
            (400, Some("BadRequest")),
            "{path}: {reply}"
        );
    }
    // DumpMeta download names are the server's own; nothing else is served.
    for target in [
        "/downloads/..%2F..%2Fkeys.toml",
        "/downloads/%2e%2e%2fkeys.toml",
        "/downloads/..%5Ckeys.toml",
        "/downloads/keys.toml",
        "/downloads/%2F",
        "/downloads/demoinstance-1.meta%00.txt",
    ] {
        let status = match ureq::get(&format!("http://{addr}{target}")).call() {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{target}: {e}"),
        };
        assert_eq!(status, 404, "{target}");
    }
    // Writing a picture whose names look like paths stores names, not files.
    let add = [
        ("InstanceName", INSTANCE),
        ("ProductId", "../../etc"),
        ("PicName", "../../../passwd"),
        ("PicContent", &b64(&picture(5))),
    ];
    let (status, reply) = send(addr, &v3("AddImage", &add).sign());
    assert_eq!(status, 200, "{reply}");
    assert!(!dir.path().join("passwd").exists());
    assert!(!dir.path().join("etc").exists());
    let (_, exists) = send(
        addr,
        &v3(
            "CheckImageExists",
            &[
                ("InstanceName", INSTANCE),
                ("ProductId", "../../etc"),
                ("PicName", "../../../passwd"),
            ],
        )
        .sign(),
    );
    assert_eq!(exists["Exists"], true, "{exists}");
}
