//! A local cluster for the cluster tests (tools/cluster/up.sh): start, inspect, kill and
//! restart its processes, read a node's readiness and metrics and a stream's state.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::common;

/// The instance every node has from its start.
pub const INSTANCE: &str = "demoinstance";
/// Its stream.
pub const STREAM: &str = "IMGSEARCH_demoinstance";

/// One process of the cluster, as nodes.tsv lists it.
#[derive(Debug, Clone)]
pub struct Process {
    pub kind: String,
    pub id: String,
    pub pid: i32,
    pub addr: String,
}

pub struct Cluster {
    pub dir: PathBuf,
    pub processes: Vec<Process>,
    pub restarted: Vec<Child>,
    /// The environment the processes were started with (restarts get it too).
    pub envs: Vec<(String, String)>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script("down.sh"))
            .arg(&self.dir)
            .status();
        for child in &mut self.restarted {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tools/cluster")
        .join(name)
}

/// The nats-server to use: $NATS_SERVER, else the one tools/cluster/setup.sh installs.
pub fn nats_server() -> Option<PathBuf> {
    let path = match std::env::var_os("NATS_SERVER") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?)
            .join(".cache/imgsearch/nats-venv/bin/nats-server"),
    };
    path.is_file().then_some(path)
}

impl Cluster {
    pub fn up(dir: &Path, nats: &Path) -> Cluster {
        Cluster::up_with(dir, nats, &[])
    }

    /// `up` with more environment for every process (the nodes' options).
    pub fn up_with(dir: &Path, nats: &Path, envs: &[(&str, &str)]) -> Cluster {
        let status = Command::new("bash")
            .arg(script("up.sh"))
            .arg(dir)
            .arg("3")
            .env("IMGSEARCH_BIN", common::binary())
            .env("NATS_SERVER", nats)
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .status()
            .expect("run up.sh");
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            processes: Vec::new(),
            restarted: Vec::new(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        assert!(status.success(), "up.sh failed");
        let table = std::fs::read_to_string(dir.join("nodes.tsv")).expect("nodes.tsv");
        for line in table.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 4, "nodes.tsv line {line:?}");
            cluster.processes.push(Process {
                kind: f[0].into(),
                id: f[1].into(),
                pid: f[2].parse().expect("pid"),
                addr: f[3].into(),
            });
        }
        cluster
    }

    pub fn nodes(&self) -> Vec<Process> {
        let nodes: Vec<Process> = self
            .processes
            .iter()
            .filter(|p| p.kind == "imgsearch")
            .cloned()
            .collect();
        assert_eq!(nodes.len(), 3);
        nodes
    }

    pub fn process(&self, id: &str) -> Process {
        self.processes
            .iter()
            .find(|p| p.id == id)
            .cloned()
            .unwrap_or_else(|| panic!("no process {id}"))
    }

    /// SIGKILLs a process and starts it again as up.sh did.
    pub fn kill_and_restart(&mut self, id: &str) {
        self.kill(id);
        self.restart(id);
    }

    /// SIGKILLs a process (and gives the kernel a moment to release its ports).
    pub fn kill(&self, id: &str) {
        let process = self.process(id);
        // SAFETY: kill(2) has no memory effects.
        unsafe { libc::kill(process.pid, libc::SIGKILL) };
        std::thread::sleep(Duration::from_millis(500));
    }

    /// Starts a killed process again as up.sh did (same data directory and address).
    pub fn restart(&mut self, id: &str) {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join("logs").join(format!("{id}.log")))
            .expect("log");
        let child = Command::new("bash")
            .arg(self.dir.join("run").join(format!("{id}.sh")))
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("restart");
        let pid = child.id() as i32;
        self.restarted.push(child);
        for p in &mut self.processes {
            if p.id == id {
                p.pid = pid;
            }
        }
    }

    pub fn log(&self, id: &str) -> String {
        std::fs::read_to_string(self.dir.join("logs").join(format!("{id}.log"))).unwrap_or_default()
    }
}

pub fn ready(addr: &str) -> bool {
    ureq::get(&format!("http://{addr}/readyz"))
        .timeout(Duration::from_secs(2))
        .call()
        .is_ok()
}

/// The value of a metric line `NAME{instance="demoinstance"} VALUE` at `addr`.
pub fn metric(addr: &str, name: &str) -> Option<f64> {
    let text = ureq::get(&format!("http://{addr}/metrics"))
        .timeout(Duration::from_secs(2))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    let prefix = format!("{name}{{instance=\"{INSTANCE}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// The stream's last sequence, message count and leader (a server name).
pub fn stream_state(nats_addr: &str) -> (u64, u64, String) {
    let (info, leader) = stream_info(nats_addr);
    (info.state.last_sequence, info.state.messages, leader)
}

/// The first sequence still in the stream (entries below it were purged).
pub fn stream_first_sequence(nats_addr: &str) -> u64 {
    stream_info(nats_addr).0.state.first_sequence
}

/// The stream's description once it has a leader, and that leader.
fn stream_info(nats_addr: &str) -> (async_nats::jetstream::stream::Info, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = async_nats::connect(nats_addr).await.expect("connect");
        let js = async_nats::jetstream::new(client);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = match js.get_stream(STREAM).await {
                Ok(stream) => stream.get_info().await.ok(),
                Err(_) => None,
            };
            let leader = info
                .as_ref()
                .and_then(|i| i.cluster.as_ref())
                .and_then(|c| c.leader.clone());
            if let (Some(info), Some(leader)) = (info, leader) {
                return (info, leader);
            }
            assert!(Instant::now() < deadline, "no leader for {STREAM}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}
