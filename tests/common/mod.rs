//! Shared helpers of the end-to-end tests: a real `imgsearch` server process on
//! 127.0.0.1, a small HTTP client, and generated pictures.
#![allow(dead_code)]

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use image::{ImageFormat, Rgb, RgbImage};
use serde_json::Value;

/// A running server process and its address.
pub struct Server {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    log: PathBuf,
}

impl Server {
    /// Starts `imgsearch serve` on a free loopback port and waits until it answers.
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[])
    }

    /// Like [`Server::start`], with extra `serve` arguments.
    pub fn start_with(data_dir: &Path, extra_args: &[&str]) -> Server {
        Self::start_with_env(data_dir, extra_args, &[])
    }

    /// Like [`Server::start_with`], with extra environment variables.
    pub fn start_with_env(data_dir: &Path, extra_args: &[&str], envs: &[(&str, &str)]) -> Server {
        let log = data_dir.with_extension(format!("log.{}", unique()));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra_args)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start imgsearch");
        let mut server = Server {
            child: Some(child),
            addr: String::new(),
            data_dir: data_dir.to_path_buf(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&server.log).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .find(|l| l.contains("imgsearch serving"))
                .and_then(|l| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix("addr="))
                        .map(str::to_string)
                })
            {
                server.addr = addr;
                return server;
            }
            if let Some(status) = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("server exited with {status}:\n{text}");
            }
            assert!(Instant::now() < deadline, "server did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// POSTs an Action with form parameters; returns the HTTP status and JSON body.
    pub fn call(&self, action: &str, params: &[(&str, &str)]) -> (u16, Value) {
        call(&self.addr, action, params)
    }

    /// AddImage of `bytes` as `pic` of `product` in `instance`, with `extra` parameters
    /// (attributes, category, ...); asserts it succeeded and returns the reply.
    pub fn add_image(
        &self,
        instance: &str,
        product: &str,
        pic: &str,
        bytes: &[u8],
        extra: &[(&str, &str)],
    ) -> Value {
        let content = b64(bytes);
        let mut params = vec![
            ("InstanceName", instance),
            ("ProductId", product),
            ("PicName", pic),
            ("PicContent", content.as_str()),
        ];
        params.extend_from_slice(extra);
        let (status, reply) = self.call("AddImage", &params);
        assert_eq!(status, 200, "{reply}");
        reply
    }

    /// Waits up to `timeout` for the process to exit on its own; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut()?.try_wait().ok().flatten() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Kills the process with SIGKILL (no chance to clean up) and waits for it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process with SIGTERM and waits for its graceful exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) has no memory effects.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let status = child.wait().expect("wait");
            assert!(
                status.success(),
                "server exited with {status}:\n{}",
                self.log()
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The `imgsearch` binary under test: `IMGSEARCH_TEST_BIN` when set, else cargo's. A target
/// directory shared by several checkouts holds one `release/imgsearch`, the last one built
/// by any of them; a copy named here keeps a test run on this checkout's.
pub fn binary() -> PathBuf {
    std::env::var_os("IMGSEARCH_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_imgsearch")))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// POSTs an Action to `addr`; transport failures panic (use [`try_call`] to see them).
pub fn call(addr: &str, action: &str, params: &[(&str, &str)]) -> (u16, Value) {
    try_call(addr, action, params)
        .unwrap_or_else(|e| panic!("{action} failed to reach the server: {e}"))
}

/// POSTs an Action; `Err` when the server could not be reached or the reply was cut.
/// Throttled requests (403 DeniedRequest) are retried after the `x-acs-retry-after`
/// wait, as the vendor's SDKs do.
pub fn try_call(addr: &str, action: &str, params: &[(&str, &str)]) -> Result<(u16, Value), String> {
    let url = format!("http://{addr}/?Action={action}");
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    for _ in 0..200 {
        let (status, response) = match agent.post(&url).send_form(params) {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(code, r)) => (code, r),
            Err(e) => return Err(e.to_string()),
        };
        let retry_after = response
            .header("x-acs-retry-after")
            .and_then(|v| v.parse::<u64>().ok());
        let text = response.into_string().map_err(|e| e.to_string())?;
        let json: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        match retry_after {
            Some(ms) if status == 403 && json["Code"] == "DeniedRequest" => {
                std::thread::sleep(Duration::from_millis(ms));
            }
            _ => return Ok((status, json)),
        }
    }
    Err(format!("{action} stayed throttled"))
}

/// A picture made from `seed`: a coloured background with rectangles and discs of
/// seed-chosen colours, sizes and places, PNG-encoded, 200x160 pixels.
pub fn picture(seed: u64) -> Vec<u8> {
    encode(&picture_rgb(seed), ImageFormat::Png)
}

/// The pixels of [`picture`].
pub fn picture_rgb(seed: u64) -> RgbImage {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: u32| -> u32 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as u32
    };
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
    img
}

/// Encodes pixels in a format.
pub fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

/// Base64 of bytes, as PicContent carries them.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The (ProductId, PicName, Score) of a search reply's Auctions.
pub fn auctions(reply: &Value) -> Vec<(String, String, f64)> {
    reply["Auctions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["ProductId"].as_str().unwrap_or_default().to_string(),
                        x["PicName"].as_str().unwrap_or_default().to_string(),
                        x["Score"].as_f64().unwrap_or(-1.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `imgsearch ARGS --data-dir DATA` (a CLI command, not the server) to completion.
pub fn run_cli(data: &Path, args: &[&str]) -> Output {
    run_cli_faulty(data, args, None)
}

/// [`run_cli`] with `IMGSEARCH_FAULT` set to `fault` (the command aborts at that point).
pub fn run_cli_faulty(data: &Path, args: &[&str], fault: Option<&str>) -> Output {
    let mut command = Command::new(binary());
    command
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn");
    if let Some(point) = fault {
        command.env("IMGSEARCH_FAULT", point);
    }
    command.output().expect("run imgsearch")
}

/// A finished command's status and output, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Creates the generic instance `name` (built-in extractor) in `data` and writes its
/// `instance spec` to `spec_path`; the spec's text.
pub fn generic_instance_spec(data: &Path, name: &str, spec_path: &Path) -> String {
    let out = run_cli(
        data,
        &["instance", "create", name, "--service-type", "generic"],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let out = run_cli(data, &["instance", "spec", name]);
    assert!(out.status.success(), "{}", output_text(&out));
    std::fs::write(spec_path, &out.stdout).expect("write the spec");
    String::from_utf8(out.stdout).expect("a UTF-8 spec")
}

/// Extracts `pictures` into one part of `out` and writes its manifest.
pub fn extract_manifest(data: &Path, spec_path: &Path, pictures: &Path, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    let extracted = std::process::Command::new(binary())
        .arg("extract")
        .arg("--spec")
        .arg(spec_path)
        .arg("--input")
        .arg(pictures)
        .arg("--output")
        .arg(out.join("part-00000.parquet"))
        .current_dir(data)
        .output()
        .expect("run imgsearch extract");
    assert!(extracted.status.success(), "{}", output_text(&extracted));
    let part: imgsearch::manifest::PartEntry = serde_json::from_slice(&extracted.stdout).unwrap();
    let spec_text = std::fs::read_to_string(spec_path).unwrap();
    let spec = imgsearch::engine::ExtractionSpec::from_json(&spec_text).unwrap();
    let value: Value = serde_json::from_str(&spec_text).unwrap();
    let dimension = spec.extractor.dimension as usize;
    imgsearch::manifest::Manifest::new(value, &spec.spec_id, dimension, vec![part])
        .write(out)
        .unwrap();
}
