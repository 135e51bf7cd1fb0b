//! Conformance with the official Python SDKs: starts the real server with an access key
//! and a bucket, creates a virtualenv with the SDK versions pinned in
//! `tests/sdk/requirements.txt` (cached between runs), and runs `tests/sdk/conformance.py`,
//! which drives every operation through the unmodified SDKs (V3 and V1 signing, and the
//! ROA paths through the core SDK) and checks reply shapes and a catalogue of bad inputs.
//!
//! Skipped, with a message, only where `python3` (with `venv`) is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Server;

const ACCESS_KEY_ID: &str = "conformance-key";
const ACCESS_KEY_SECRET: &str = "conformance-secret";

/// A virtualenv with the pinned SDKs, reused while requirements.txt is unchanged.
fn sdk_python() -> Option<PathBuf> {
    let python = which("python3")?;
    let requirements = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/requirements.txt");
    let pins = std::fs::read_to_string(&requirements).expect("tests/sdk/requirements.txt");
    let key = format!("{:08x}", crc(&pins));
    let cache = std::env::var_os("IMGSEARCH_SDK_VENV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("imgsearch-sdk-venv"));
    let venv = cache.join(&key);
    let venv_python = venv.join("bin/python");
    if venv.join(".ready").exists() {
        return Some(venv_python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let made = Command::new(&python)
        .args(["-m", "venv"])
        .arg(&venv)
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: python3 has no working venv module (install python3-venv)");
        return None;
    }
    let pip = Command::new(&venv_python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements)
        .status()
        .expect("run pip");
    assert!(
        pip.success(),
        "pip could not install the official SDKs from PyPI ({requirements:?})"
    );
    std::fs::write(venv.join(".ready"), &pins).expect("mark venv ready");
    Some(venv_python)
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A small stable hash of the pins (names the cached virtualenv).
fn crc(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

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
