//! The official Python SDKs in a virtualenv, for the tests that drive the server through
//! them (`sdk_conformance`, `tls`): the versions pinned in `tests/sdk/requirements.txt`,
//! installed from PyPI once and cached between runs (`IMGSEARCH_SDK_VENV_DIR`, default
//! the temporary directory).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A virtualenv with the pinned SDKs, reused while requirements.txt is unchanged.
pub fn sdk_python() -> Option<PathBuf> {
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
