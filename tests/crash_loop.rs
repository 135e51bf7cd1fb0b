//! The short crash loop of CI: `imgsearch-crashloop` for a few cycles (SIGKILL under
//! mixed load, in rebuilds and reloads; every acknowledged write checked after each
//! restart). The 50-cycle run is the same tool with its default `--cycles`.

use std::process::Command;

#[test]
fn four_kill_cycles_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_imgsearch-crashloop"))
        .args([
            "--cycles",
            "4",
            "--max-load-ms",
            "1500",
            "--seed",
            "7",
            "--bin",
        ])
        .arg(env!("CARGO_BIN_EXE_imgsearch"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("run imgsearch-crashloop");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("crashloop OK: 4 cycles"))
        .unwrap_or_else(|| panic!("no summary:\n{stdout}"));
    // Something was actually written and checked.
    let acked: u64 = summary
        .split(", ")
        .find_map(|p| p.strip_suffix(" acknowledged writes"))
        .and_then(|n| n.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0);
    assert!(acked > 50, "{summary}");
    assert!(summary.contains("0 lost, 0 phantom"), "{summary}");
}
