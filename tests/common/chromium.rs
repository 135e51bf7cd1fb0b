//! Headless Chromium for the console's end-to-end tests: one-shot runs (`--dump-dom`,
//! `--screenshot`) and a live page driven through the DevTools protocol over
//! `--remote-debugging-pipe` (JSON messages ending in a NUL byte on fds 3 and 4), so a
//! test can click, fill forms, set a file input's files and drop a folder the way a
//! person would, without a WebSocket client.
// Shared by two test binaries, each using part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::Server;

/// Flags of every run: headless, no sandbox (tests may run as root), nothing fetched
/// from the network behind the test's back.
const FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// A headless Chromium.
pub struct Browser {
    bin: PathBuf,
}

impl Browser {
    /// `IMGSEARCH_CHROMIUM`, else the usual Chromium and Chrome binaries; `None` when absent.
    pub fn find() -> Option<Browser> {
        let named = std::env::var_os("IMGSEARCH_CHROMIUM").map(PathBuf::from);
        named
            .into_iter()
            .chain(
                [
                    "/usr/bin/chromium",
                    "/usr/bin/chromium-browser",
                    "/usr/bin/google-chrome",
                    "/usr/bin/google-chrome-stable",
                ]
                .map(PathBuf::from),
            )
            .find(|p| p.is_file())
            .map(|bin| Browser { bin })
    }

    /// The DOM after the page's scripts ran (5 s of virtual time, which waits for fetches).
    pub fn dump_dom(&self, server: &Server, path: &str) -> String {
        let out = tempfile::NamedTempFile::new().unwrap();
        self.run(
            &["--dump-dom".to_string()],
            server,
            path,
            Stdio::from(out.reopen().unwrap()),
        );
        std::fs::read_to_string(out.path()).unwrap()
    }

    /// Saves a screenshot of `path` to `to` (a PNG).
    pub fn screenshot(&self, server: &Server, path: &str, to: &Path) {
        let _ = std::fs::remove_file(to);
        self.run(
            &[
                format!("--screenshot={}", to.display()),
                "--window-size=1280,1000".to_string(),
                "--hide-scrollbars".to_string(),
            ],
            server,
            path,
            Stdio::null(),
        );
        assert!(to.is_file(), "no screenshot written to {}", to.display());
    }

    /// Runs the browser on `path` until it exits on its own.
    fn run(&self, extra: &[String], server: &Server, path: &str, stdout: Stdio) {
        let profile = tempfile::tempdir().unwrap();
        let log = tempfile::NamedTempFile::new().unwrap();
        let url = format!("http://{}{path}", server.addr);
        let mut child = Command::new(&self.bin)
            .args(FLAGS)
            .arg("--virtual-time-budget=5000")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::from(log.reopen().unwrap()))
            .spawn()
            .expect("start chromium");
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromium did not finish on {url}:\n{}",
                    std::fs::read_to_string(log.path()).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            status.success(),
            "chromium failed ({status}) on {url}:\n{}",
            std::fs::read_to_string(log.path()).unwrap_or_default()
        );
    }

    /// Opens `path` of `server` in a browser driven over the DevTools protocol.
    pub fn open(&self, server: &Server, path: &str) -> Tab {
        let profile = tempfile::tempdir().unwrap();
        let log = tempfile::NamedTempFile::new().unwrap();
        // Commands go to the browser on its fd 3, replies and events come from its fd 4.
        let (commands_in, commands) = std::io::pipe().unwrap();
        let (replies, replies_out) = std::io::pipe().unwrap();
        let (child_in, child_out) = (commands_in.as_raw_fd(), replies_out.as_raw_fd());
        let mut command = Command::new(&self.bin);
        command
            .args(FLAGS)
            .args(["--remote-debugging-pipe", "--window-size=1280,1000"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log.reopen().unwrap()));
        // SAFETY: only async-signal-safe calls between fork and exec. The pipe ends are
        // first moved above any fd they could collide with, then put on 3 and 4 (dup2
        // leaves the copies open across exec).
        unsafe {
            command.pre_exec(move || {
                let high_in = libc::fcntl(child_in, libc::F_DUPFD, 10);
                let high_out = libc::fcntl(child_out, libc::F_DUPFD, 10);
                if high_in < 0
                    || high_out < 0
                    || libc::dup2(high_in, 3) < 0
                    || libc::dup2(high_out, 4) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start chromium");
        drop((commands_in, replies_out));
        let (sender, inbox) = mpsc::channel();
        std::thread::spawn(move || read_messages(replies, sender));
        let mut tab = Tab {
            child,
            commands,
            inbox,
            next_id: 0,
            session: None,
            log,
            _profile: profile,
        };
        let targets = tab.send("Target.getTargets", json!({}));
        let page = targets["targetInfos"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .map(|t| t["targetId"].clone());
        let target = match page {
            Some(id) => id,
            None => {
                tab.send("Target.createTarget", json!({"url": "about:blank"}))["targetId"].clone()
            }
        };
        let attached = tab.send(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        tab.session = attached["sessionId"].as_str().map(str::to_string);
        tab.goto(server, path);
        tab
    }
}

/// Splits the browser's output into messages (each ends with a NUL byte).
fn read_messages(mut from: std::io::PipeReader, to: mpsc::Sender<Value>) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == 0) {
            let message: Vec<u8> = pending.drain(..=end).collect();
            if let Ok(value) = serde_json::from_slice(&message[..end]) {
                if to.send(value).is_err() {
                    return;
                }
            }
        }
    }
}

/// A page in a running browser, driven over the DevTools protocol.
pub struct Tab {
    child: Child,
    commands: std::io::PipeWriter,
    inbox: Receiver<Value>,
    next_id: u64,
    session: Option<String>,
    log: tempfile::NamedTempFile,
    _profile: tempfile::TempDir,
}

impl Tab {
    /// Sends a command (to the attached page once there is one) and waits for its result.
    pub fn send(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.commands.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = match self.inbox.recv_timeout(left) {
                Ok(reply) => reply,
                Err(e) => panic!("{method}: no reply from chromium ({e}):\n{}", self.log()),
            };
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// The browser's stderr so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Loads `path` of `server`.
    pub fn goto(&mut self, server: &Server, path: &str) {
        let url = format!("http://{}{path}", server.addr);
        self.send("Page.navigate", json!({"url": url}));
        // The old document answers until the new one commits: wait for the new one.
        let path = path.split('#').next().unwrap_or(path);
        self.wait_for(&format!(
            "location.pathname + location.search === {} && document.readyState === 'complete'",
            json!(path)
        ));
    }

    /// Evaluates a JavaScript expression in the page (promises awaited); its JSON value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let reply = self.send(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(exception) = reply.get("exceptionDetails") {
            panic!("{expression}: {exception}");
        }
        reply["result"]["value"].clone()
    }

    /// Waits until `condition` (a JavaScript expression) is true, for up to 60 s; one that
    /// throws (an element not there yet) counts as false.
    pub fn wait_for(&mut self, condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let check = format!(
            "(() => {{ try {{ return !!({condition}); }} catch (_) {{ return false; }} }})()"
        );
        while self.eval(&check) != json!(true) {
            if Instant::now() > deadline {
                let body = self.eval("document.body ? document.body.outerHTML : ''");
                panic!(
                    "timed out waiting for {condition}:\n{}",
                    body.as_str().unwrap_or("")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clicks the element `selector` names (its click handlers run as for a mouse click).
    pub fn click(&mut self, selector: &str) {
        let found = self.eval(&format!(
            "(() => {{ const e = document.querySelector({s}); if (e) e.click(); return !!e; }})()",
            s = json!(selector)
        ));
        assert_eq!(found, json!(true), "no element {selector}");
    }

    /// Sets an input's value as typing would (an `input` event follows).
    pub fn fill(&mut self, selector: &str, value: &str) {
        let found = self.eval(&format!(
            "(() => {{ const e = document.querySelector({s}); if (!e) return false; e.value = {v}; \
             e.dispatchEvent(new Event('input', {{ bubbles: true }})); return true; }})()",
            s = json!(selector),
            v = json!(value)
        ));
        assert_eq!(found, json!(true), "no element {selector}");
    }

    /// Gives a file input these files (or one folder, for a `webkitdirectory` input), as
    /// the file chooser would; the page gets its `change` event.
    pub fn set_files(&mut self, selector: &str, files: &[&Path]) {
        let document = self.send("DOM.getDocument", json!({"depth": 0}));
        let node = self.send(
            "DOM.querySelector",
            json!({"nodeId": document["root"]["nodeId"], "selector": selector}),
        );
        let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        self.send(
            "DOM.setFileInputFiles",
            json!({"nodeId": node["nodeId"], "files": files}),
        );
    }

    /// Drags `paths` (files or folders) from outside the browser and drops them on the
    /// middle of the element `selector` names.
    pub fn drop_files(&mut self, selector: &str, paths: &[&Path]) {
        self.eval(&format!(
            "document.querySelector({}).scrollIntoView({{ block: 'center' }})",
            json!(selector)
        ));
        let point = self.eval(&format!(
            "(() => {{ const r = document.querySelector({}).getBoundingClientRect(); \
             return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
            json!(selector)
        ));
        let files: Vec<String> = paths.iter().map(|f| f.display().to_string()).collect();
        let data = json!({"items": [], "files": files, "dragOperationsMask": 1});
        for kind in ["dragEnter", "dragOver", "drop"] {
            self.send(
                "Input.dispatchDragEvent",
                json!({"type": kind, "x": point[0], "y": point[1], "data": data}),
            );
        }
    }
}

impl Tab {
    /// Saves what the page shows (its full height) as a PNG.
    pub fn screenshot(&mut self, to: &Path) {
        use base64::Engine as _;
        let shot = self.send(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 screenshot");
        std::fs::write(to, png).expect("write the screenshot");
    }
}

impl Drop for Tab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
