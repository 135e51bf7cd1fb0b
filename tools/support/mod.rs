//! What the reliability tools (`imgsearch-crashloop`, `imgsearch-soak`) share: a minimal
//! HTTP/1.1 client over `std::net` (the tools drive a real server and must not depend on
//! the server's own code paths), a child `imgsearch serve` process, and generated
//! pictures.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use image::{ImageFormat, Rgb, RgbImage};
use serde_json::Value;

/// Percent-encodes a form value (everything but unreserved characters).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A form body of pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// POSTs a form body; `Err` when the server cannot be reached or the reply is cut.
pub fn post(
    addr: &str,
    target: &str,
    body: &str,
    timeout: Duration,
) -> Result<(u16, Value), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    stream.set_nodelay(true).ok();
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body.as_bytes()))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader
        .read_line(&mut status_line)
        .map_err(|e| e.to_string())?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("reply cut inside the headers".into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body).map_err(|e| e.to_string())?;
        }
        None => {
            reader.read_to_end(&mut body).map_err(|e| e.to_string())?;
        }
    }
    let json = serde_json::from_slice(&body)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&body)))?;
    Ok((status, json))
}

/// POSTs an Action with form parameters.
pub fn call(addr: &str, action: &str, params: &[(&str, &str)]) -> Result<(u16, Value), String> {
    post(
        addr,
        &format!("/?Action={action}"),
        &form(params),
        Duration::from_secs(60),
    )
}

/// A running `imgsearch serve`.
pub struct ServerProcess {
    /// The child.
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its log file.
    pub log: PathBuf,
}

impl ServerProcess {
    /// Starts `bin serve` on a free loopback port and waits until it serves.
    pub fn start(bin: &Path, data: &Path, log: &Path, extra: &[&str]) -> Result<Self, String> {
        let file = std::fs::File::create(log).map_err(|e| e.to_string())?;
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|e| format!("start {}: {e}", bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .find(|l| l.contains("imgsearch serving"))
                .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("addr=")))
            {
                return Ok(ServerProcess {
                    child,
                    addr: addr.to_string(),
                    log: log.to_path_buf(),
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("server exited with {status}:\n{text}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("server did not start:\n{text}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and wait.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) has no memory effects.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Resident set size in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The `imgsearch` binary beside the running tool (both are built by the same cargo).
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().expect("exe folder").join(name)
}

/// A small xorshift generator (tools need no cryptographic randomness).
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next value below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A 200x160 PNG made from `seed` (background, rectangles and discs), base64.
pub fn picture_b64(seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut next = |n: u32| rng.below(n as u64) as u32;
    let (w, h) = (200u32, 160u32);
    let bg = Rgb([next(256) as u8, next(256) as u8, next(256) as u8]);
    let mut img = RgbImage::from_pixel(w, h, bg);
    for _ in 0..(3 + next(4)) {
        let colour = Rgb([next(256) as u8, next(256) as u8, next(256) as u8]);
        let (cx, cy, rx, ry) = (next(w), next(h), 10 + next(60), 10 + next(50));
        let disc = next(2) == 0;
        for y in cy.saturating_sub(ry)..(cy + ry).min(h) {
            for x in cx.saturating_sub(rx)..(cx + rx).min(w) {
                let (dx, dy) = (x as f32 - cx as f32, y as f32 - cy as f32);
                if !disc || (dx * dx) / (rx * rx) as f32 + (dy * dy) / (ry * ry) as f32 <= 1.0 {
                    img.put_pixel(x, y, colour);
                }
            }
        }
    }
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).expect("encode");
    base64::engine::general_purpose::STANDARD.encode(out.into_inner())
}

/// Whether `GET path` answers 2xx.
pub fn get_ok(addr: &str, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return false;
    }
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).is_ok()
        && status_line
            .split_whitespace()
            .nth(1)
            .is_some_and(|s| s.starts_with('2'))
}

/// The `/metrics` text of a server.
fn metrics_text(addr: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let head = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

/// The value of `NAME{instance="INSTANCE"} VALUE` in a server's `/metrics`.
pub fn metric(addr: &str, name: &str, instance: &str) -> Option<f64> {
    let prefix = format!("{name}{{instance=\"{instance}\"}} ");
    metrics_text(addr)?
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// A quantile of a summary metric: `NAME{instance="INSTANCE",quantile="Q"} VALUE`.
pub fn metric_quantile(addr: &str, name: &str, instance: &str, quantile: &str) -> Option<f64> {
    let prefix = format!("{name}{{instance=\"{instance}\",quantile=\"{quantile}\"}} ");
    metrics_text(addr)?
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}
