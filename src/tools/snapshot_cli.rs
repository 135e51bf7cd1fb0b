//! `imgsearch snapshot create|restore`: the command line side of snapshots.
//!
//! `create` asks the server that runs on the data directory when there is one (its pid
//! file names a live process and `imgsearch.addr` beside it holds its base URL), or the
//! server given with `--server`, through `POST /admin/snapshot`: only the process that
//! holds the store can checkpoint it while it writes. With no server it opens the data
//! directory itself and snapshots offline. `restore` never needs a server ([`restore`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{restore, Result, ToolError};
use crate::config::{DEFAULT_DATA_DIR, PID_FILE};
use crate::engine::snapshot::{default_snapshot_path, InstanceEntry};
use crate::engine::{Engine, STORE_DIR};

/// File beside the pid file holding the running server's base URL.
pub const ADDR_FILE: &str = "imgsearch.addr";

/// The `snapshot` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Write a consistent copy of the data directory while the server keeps serving and
    /// writing (through the running server when there is one, else offline).
    Create {
        /// Folder to create (default: <data-dir>/snapshots/<UTC time>).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Data directory.
        #[arg(long, env = "IMGSEARCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Base URL of the server to ask, e.g. http://127.0.0.1:8080 (default: the
        /// server running on the data directory, if any).
        #[arg(long)]
        server: Option<String>,
    },
    /// Make a new data directory from a snapshot, checking every file's checksum.
    Restore {
        /// The snapshot folder.
        dir: PathBuf,
        /// The data directory to create (must not exist, or be empty).
        #[arg(long)]
        data_dir: PathBuf,
    },
}

/// What a snapshot holds, as the server or the engine reported it.
struct Report {
    path: String,
    instances: Vec<InstanceEntry>,
    files: u64,
    bytes: u64,
    writes_held: Duration,
    took: Duration,
}

/// Runs a `snapshot` subcommand, printing what it did.
pub fn run(command: SnapshotCommand) -> Result<()> {
    match command {
        SnapshotCommand::Create {
            output,
            data_dir,
            server,
        } => {
            let server = match server {
                Some(url) => Some(url),
                None => running_server(&data_dir)?,
            };
            let (report, by) = match server {
                Some(url) => (
                    create_online(&url, output.as_deref())?,
                    format!("by the server at {url}"),
                ),
                None => (create_offline(&data_dir, output)?, "offline".to_string()),
            };
            print_report(&report, &by);
            Ok(())
        }
        SnapshotCommand::Restore { dir, data_dir } => {
            let summary = restore(&dir, &data_dir)?;
            let d = &summary.description;
            println!(
                "restored {} from {} (taken {} from {})",
                summary.data_dir.display(),
                dir.display(),
                d.created,
                d.source
            );
            for i in &d.instances {
                println!("  {:<20} {} pictures", i.name, i.pictures);
            }
            println!(
                "  {} files checked against their SHA-256 and copied; verify passed",
                d.files.len()
            );
            if !summary.rebuilt.is_empty() {
                println!(
                    "  vector files written again from the store: {}",
                    summary.rebuilt.join(", ")
                );
            }
            println!(
                "start a server on it with: imgsearch serve --data-dir {}",
                summary.data_dir.display()
            );
            Ok(())
        }
    }
}

/// The base URL of the server running on `data_dir`, if one runs.
fn running_server(data_dir: &Path) -> Result<Option<String>> {
    let Ok(text) = std::fs::read_to_string(data_dir.join(PID_FILE)) else {
        return Ok(None);
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return Ok(None);
    };
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !alive {
        return Ok(None);
    }
    match std::fs::read_to_string(data_dir.join(ADDR_FILE)) {
        Ok(url) if !url.trim().is_empty() => Ok(Some(url.trim().trim_end_matches('/').to_string())),
        _ => Err(ToolError::InvalidOption(format!(
            "a server (pid {pid}) runs on {} but recorded no address in {ADDR_FILE}: pass --server URL",
            data_dir.display()
        ))),
    }
}

/// Opens the data directory (no server holds it) and snapshots it.
fn create_offline(data_dir: &Path, output: Option<PathBuf>) -> Result<Report> {
    if !data_dir.join(STORE_DIR).join("CURRENT").exists() {
        return Err(ToolError::Source {
            path: data_dir.display().to_string(),
            reason: "no imgsearch data directory here (no store/ in it)".into(),
        });
    }
    let engine = Engine::open(data_dir)?;
    let dest = output.unwrap_or_else(|| default_snapshot_path(data_dir));
    let info = engine.snapshot(&dest)?;
    Ok(Report {
        path: info.path.display().to_string(),
        files: info.description.files.len() as u64,
        bytes: info.bytes(),
        instances: info.description.instances,
        writes_held: info.writes_held,
        took: info.took,
    })
}

/// Asks the server at `url` for a snapshot into `output` (made absolute here, since the
/// server's working folder is not ours).
fn create_online(url: &str, output: Option<&Path>) -> Result<Report> {
    let server_error = |message: String| ToolError::Source {
        path: url.to_string(),
        reason: message,
    };
    let mut request = ureq::post(&format!("{url}/admin/snapshot"));
    if let Some(output) = output {
        let absolute = std::path::absolute(output).map_err(|e| ToolError::io(output, e))?;
        request = request.query("Output", &absolute.to_string_lossy());
    }
    let reply: Value = match request.call() {
        Ok(r) => r
            .into_string()
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .ok_or_else(|| server_error("the reply is not JSON".into()))?,
        Err(ureq::Error::Status(code, r)) => {
            let body: Value = r
                .into_string()
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_default();
            return Err(server_error(format!(
                "HTTP {code} {}: {}",
                body["Code"].as_str().unwrap_or(""),
                body["Message"].as_str().unwrap_or("")
            )));
        }
        Err(e) => return Err(server_error(e.to_string())),
    };
    let number = |field: &str| reply[field].as_u64().unwrap_or(0);
    let instances = reply["Instances"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|i| InstanceEntry {
                    name: i["Name"].as_str().unwrap_or_default().to_string(),
                    pictures: i["Pictures"].as_u64().unwrap_or(0),
                    generation: i["Generation"].as_u64().unwrap_or(0),
                    rows: i["Rows"].as_u64().unwrap_or(0),
                    copied: i["Copied"].as_bool().unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Report {
        path: reply["Path"].as_str().unwrap_or_default().to_string(),
        instances,
        files: number("Files"),
        bytes: number("Bytes"),
        writes_held: Duration::from_micros(number("WritesHeldMicros")),
        took: Duration::from_millis(number("Milliseconds")),
    })
}

fn print_report(report: &Report, by: &str) {
    println!("snapshot written to {} ({by})", report.path);
    for i in &report.instances {
        println!(
            "  {:<20} {} pictures, {} rows (generation {}{})",
            i.name,
            i.pictures,
            i.rows,
            i.generation,
            if i.copied {
                ""
            } else {
                ", written from the store"
            }
        );
    }
    println!(
        "  {} instances, {} files, {:.1} MB in {:.2} s; writes held at most {:.3} ms",
        report.instances.len(),
        report.files,
        report.bytes as f64 / 1e6,
        report.took.as_secs_f64(),
        report.writes_held.as_secs_f64() * 1e3
    );
}
