//! HTTPS of `serve --tls-cert/--tls-key`, end to end on the real binary. A test CA and a
//! server certificate for 127.0.0.1 and localhost are made at test time (rcgen); a Rust
//! client trusting that CA, the CLI's online mode (`--tls-ca`) and the official Python
//! SDK (`protocol='https'`) reach it; plain HTTP, a stalled client and a broken handshake
//! leave the server serving everyone else; a key that does not match its certificate
//! stops the start.

mod common;
#[path = "common/sdk.rs"]
mod sdk;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{auctions, b64, output_text, picture, run_cli, Server};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use serde_json::Value;

/// A test CA (`ca`, PEM and `ca_der`), the server's chain it issued (`cert`: the server's
/// certificate, then the CA's) and PKCS#8 key (`key`), and a key of no certificate here.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    other_key: PathBuf,
    ca_der: Vec<u8>,
}

fn make_pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "imgsearch test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();

    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", ca.pem()),
        cert: write("cert.pem", cert.pem() + &ca.pem()),
        key: write("key.pem", key.serialize_pem()),
        other_key: write(
            "other-key.pem",
            KeyPair::generate().unwrap().serialize_pem(),
        ),
        ca_der: ca.der().to_vec(),
    }
}

/// An HTTP client that trusts only the test CA.
fn https_agent(ca_der: &[u8]) -> ureq::Agent {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der.to_vec().into()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    ureq::AgentBuilder::new()
        .tls_config(Arc::new(config))
        .timeout(Duration::from_secs(60))
        .build()
}

/// POSTs an Action to `base` (`https://host:port`); the HTTP status and JSON body.
fn post(
    agent: &ureq::Agent,
    base: &str,
    action: &str,
    params: &[(&str, &str)],
) -> Result<(u16, Value), String> {
    let url = format!("{base}/?Action={action}");
    let response = match agent.post(&url).send_form(params) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = response.status();
    let text = response.into_string().map_err(|e| e.to_string())?;
    let json = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
    Ok((status, json))
}

fn tls_args(pki: &Pki) -> [&str; 4] {
    [
        "--tls-cert",
        pki.cert.to_str().unwrap(),
        "--tls-key",
        pki.key.to_str().unwrap(),
    ]
}

#[test]
fn rust_client_adds_and_searches_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let mut args = tls_args(&pki).to_vec();
    args.extend(["--write-qps", "0"]);
    let mut server = Server::start_with(&dir.path().join("data"), &args);
    assert!(
        server
            .log()
            .contains(&format!("url=https://{}", server.addr)),
        "the start line gives the https URL:\n{}",
        server.log()
    );
    let agent = https_agent(&pki.ca_der);
    let base = format!("https://{}", server.addr);
    for seed in 1..=3u64 {
        let content = b64(&picture(seed));
        let (product, pic) = (format!("p{seed}"), format!("{seed}.png"));
        let params = [
            ("InstanceName", "demoinstance"),
            ("ProductId", product.as_str()),
            ("PicName", pic.as_str()),
            ("CategoryId", "0"),
            ("PicContent", content.as_str()),
        ];
        let (status, reply) = post(&agent, &base, "AddImage", &params).unwrap();
        assert_eq!(status, 200, "{reply}");
    }
    let content = b64(&picture(2));
    let search = [
        ("InstanceName", "demoinstance"),
        ("CategoryId", "0"),
        ("PicContent", content.as_str()),
    ];
    // The certificate names localhost too.
    let port = server.addr.rsplit(':').next().unwrap();
    let by_name = format!("https://localhost:{port}");
    let (status, reply) = post(&agent, &by_name, "SearchImageByPic", &search).unwrap();
    assert_eq!(status, 200, "{reply}");
    let found = auctions(&reply);
    assert_eq!(found.first().map(|a| a.0.as_str()), Some("p2"), "{found:?}");
    assert_eq!(found.len(), 3, "{found:?}");

    // Loopback-only routes still see the peer's address behind TLS.
    let reload = agent.post(&format!("{base}/admin/reload")).call().unwrap();
    let reply: Value = serde_json::from_str(&reload.into_string().unwrap()).unwrap();
    assert_eq!(reply["Message"], "reloaded 1 instances", "{reply}");

    // A client that does not trust the test CA is refused by its own verification.
    let err = post(&ureq::agent(), &base, "SearchImageByPic", &search).unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    server.stop();
}

#[test]
fn the_cli_finds_the_https_server_and_verifies_it_with_tls_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let data = dir.path().join("data");
    let mut server = Server::start_with(&data, &tls_args(&pki));
    let addr = std::fs::read_to_string(data.join(imgsearch::config::ADDR_FILE)).unwrap();
    assert_eq!(addr.trim(), format!("https://{}", server.addr));
    let out = run_cli(
        &data,
        &["instance", "list", "--tls-ca", pki.ca.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("demoinstance"));
    // Without the CA: the public roots refuse the certificate, and the error says why.
    let out = run_cli(&data, &["instance", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--tls-ca FILE"),
        "{}",
        output_text(&out)
    );
    server.stop();
}

#[test]
fn official_python_sdk_over_https() {
    let Some(python) = sdk::sdk_python() else {
        eprintln!("SKIPPED: python3 not found; the SDK test over TLS needs it");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    // The certificate and key come from the configuration file here.
    let config = dir.path().join("imgsearch.toml");
    let toml = format!(
        "write_qps = 0\ntls_cert = {:?}\ntls_key = {:?}\n[[access_keys]]\nid = \"tls-key\"\nsecret = \"tls-secret\"\n",
        pki.cert.to_str().unwrap(),
        pki.key.to_str().unwrap()
    );
    std::fs::write(&config, toml).unwrap();
    let mut server = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/tls_sdk.py");
    let mut command = Command::new(python);
    command
        .arg(&script)
        .args(["--endpoint", &server.addr])
        .args([
            "--access-key-id",
            "tls-key",
            "--access-key-secret",
            "tls-secret",
        ])
        .arg("--ca")
        .arg(&pki.ca);
    // Only the SDK's own `ca` option may make the test CA trusted.
    for var in [
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        command.env_remove(var);
    }
    let output = command.output().expect("run tls_sdk.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.contains("5 passed, 0 failed"),
        "the SDK over TLS failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
    server.stop();
}

/// Sends `bytes` on a new connection and reads until the server closes it (or 15 s).
fn exchange(addr: &str, bytes: &[u8]) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    (reply, started.elapsed())
}

#[test]
fn plain_http_and_broken_handshakes_leave_the_server_serving() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    // The certificate and key come from the environment here.
    let mut server = Server::start_with_env(
        &dir.path().join("data"),
        &[],
        &[
            ("IMGSEARCH_TLS_CERT", pki.cert.to_str().unwrap()),
            ("IMGSEARCH_TLS_KEY", pki.key.to_str().unwrap()),
        ],
    );
    let base = format!("https://{}", server.addr);
    let healthy = |agent: &ureq::Agent| {
        let started = Instant::now();
        let status = agent
            .get(&format!("{base}/healthz"))
            .call()
            .map(|r| r.status());
        assert_eq!(status.ok(), Some(200));
        started.elapsed()
    };
    let kept_alive = https_agent(&pki.ca_der);
    healthy(&kept_alive);

    // A client that connects and never speaks holds only its own handshake task.
    let _stalled = TcpStream::connect(&server.addr).unwrap();
    let _half_hello = {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
        s
    };

    // Plain HTTP through an HTTP client: the vendor error, naming https.
    let (status, reply) = post(
        &ureq::agent(),
        &format!("http://{}", server.addr),
        "SearchImageByPic",
        &[("InstanceName", "demoinstance")],
    )
    .unwrap();
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["Code"], "BadRequest", "{reply}");
    assert!(
        reply["Message"].as_str().unwrap().contains("https://"),
        "{reply}"
    );
    // ... and on the wire: a complete reply, then the server closes.
    let (bytes, took) = exchange(&server.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");

    // A ClientHello that is garbage: at most a TLS alert record, then the connection ends.
    let garbage = [0x16, 0x03, 0x01, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8];
    let (bytes, took) = exchange(&server.addr, &garbage);
    assert!(bytes.first().is_none_or(|&b| b == 0x15), "{bytes:?}");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");

    // Meanwhile the stalled clients are still connected (their deadline is 10 s), and
    // both a kept-alive connection and a new one are served at once.
    assert!(healthy(&kept_alive) < Duration::from_secs(5));
    assert!(healthy(&https_agent(&pki.ca_der)) < Duration::from_secs(5));
    assert!(server.log().contains("imgsearch serving"));
    server.stop();
}

/// Runs `serve` expecting it to refuse to start; its stderr.
fn refused_start(data: &Path, args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgsearch"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start imgsearch");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve {args:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{stderr}");
    stderr
}

#[test]
fn a_certificate_or_key_that_cannot_serve_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let data = dir.path().join("data");
    let (cert, other_key) = (pki.cert.to_str().unwrap(), pki.other_key.to_str().unwrap());

    let stderr = refused_start(&data, &["--tls-cert", cert, "--tls-key", other_key]);
    assert!(
        stderr.contains("does not match the certificate") && stderr.contains("other-key.pem"),
        "{stderr}"
    );
    let stderr = refused_start(
        &data,
        &["--tls-cert", cert, "--tls-key", "/nonexistent/key.pem"],
    );
    assert!(
        stderr.contains("cannot read the TLS private key /nonexistent/key.pem"),
        "{stderr}"
    );
    let stderr = refused_start(
        &data,
        &[
            "--tls-cert",
            pki.key.to_str().unwrap(),
            "--tls-key",
            other_key,
        ],
    );
    assert!(
        stderr.contains("holds no usable PEM certificate"),
        "{stderr}"
    );
    let stderr = refused_start(&data, &["--tls-cert", cert]);
    assert!(stderr.contains("--tls-cert needs --tls-key"), "{stderr}");
    // Nothing was opened or created before the refusal.
    assert!(!data.exists(), "the data directory was created");
}
