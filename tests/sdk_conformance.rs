//! Conformance with the official Python SDKs: starts the real server with an access key
//! and a bucket, creates a virtualenv with the SDK versions pinned in
//! `tests/sdk/requirements.txt` (cached between runs), and runs `tests/sdk/conformance.py`,
//! which drives every operation through the unmodified SDKs (V3 and V1 signing, and the
//! ROA paths through the core SDK) and checks reply shapes and a catalogue of bad inputs.
//!
//! Skipped, with a message, only where `python3` (with `venv`) is missing.

mod common;
#[path = "common/sdk.rs"]
mod sdk;

use std::path::Path;
use std::process::Command;

use common::Server;
use sdk::sdk_python;

const ACCESS_KEY_ID: &str = "conformance-key";
const ACCESS_KEY_SECRET: &str = "conformance-secret";

#[test]
fn official_sdks_drive_every_operation() {
    let Some(python) = sdk_python() else {
        eprintln!("SKIPPED: python3 not found; the SDK conformance tests need it");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let bucket_arg = format!("conformance={}", bucket.display());
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--access-key-id",
            ACCESS_KEY_ID,
            "--access-key-secret",
            ACCESS_KEY_SECRET,
            "--write-qps",
            "0",
            "--bucket",
            &bucket_arg,
        ],
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/conformance.py");
    let output = Command::new(python)
        .arg(&script)
        .args([
            "--endpoint",
            &server.addr,
            "--access-key-id",
            ACCESS_KEY_ID,
            "--access-key-secret",
            ACCESS_KEY_SECRET,
        ])
        .args(["--bucket", "conformance", "--bucket-dir"])
        .arg(&bucket)
        .output()
        .expect("run conformance.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        output.status.success() && failed.is_empty(),
        "SDK conformance failed:\n{}\n{stderr}\nserver log:\n{}",
        failed.join("\n"),
        server.log()
    );
}
