//! `imgsearch snapshot create|upload|restore`: the command line side of snapshots.
//!
//! `create` asks the server that runs on the data directory when there is one (found by
//! [`crate::client::discovery`]), or the server given with `--server`, through
//! `POST /admin/snapshot` (signed when an access key is given): only the process that
//! holds the store can checkpoint it while it writes. With no server it opens the data
//! directory itself and snapshots offline. `upload` always asks the server
//! (`POST /admin/snapshot/upload`). `restore` never needs a server ([`restore`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{restore, OfflineError, Result};
use crate::client::commands::{OnlineArgs, Target};
use crate::client::Client;
use crate::config::DEFAULT_DATA_DIR;
use crate::engine::snapshot::{default_snapshot_path, InstanceEntry};
use crate::engine::Engine;

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
        /// Which server to ask, and the key to sign with.
        #[command(flatten)]
        online: OnlineArgs,
    },
    /// Ask the running server to take a snapshot and upload it to its object store
    /// (`serve --snapshot-store`), moving the store's CURRENT pointer to it.
    Upload {
        /// Data directory (to find the server on it when no --server is given).
        #[arg(long, env = "IMGSEARCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Which server to ask, and the key to sign with.
        #[command(flatten)]
        online: OnlineArgs,
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
            online,
        } => {
            let (report, by) = match online.target(&data_dir)? {
                Target::Online(client) => (
                    create_online(&client, output.as_deref())?,
                    format!("by the server at {}", client.base()),
                ),
                Target::Offline(dir) => (create_offline(&dir, output)?, "offline".to_string()),
            };
            print_report(&report, &by);
            Ok(())
        }
        SnapshotCommand::Upload { data_dir, online } => {
            let Target::Online(client) = online.target(&data_dir)? else {
                return Err(OfflineError::InvalidOption(
                    "snapshot upload needs the running server (--server URL): only it holds \
                     the snapshot store"
                        .into(),
                ));
            };
            let reply = Value::Object(client.call("/admin/snapshot/upload", &[])?);
            println!(
                "snapshot {} uploaded by the server at {}: {} files, {:.1} MB in {:.2} s",
                reply["Id"].as_str().unwrap_or_default(),
                client.base(),
                reply["Files"],
                reply["Bytes"].as_f64().unwrap_or(0.0) / 1e6,
                reply["Milliseconds"].as_f64().unwrap_or(0.0) / 1e3
            );
            println!("  applied sequences: {}", reply["Applied"]);
            println!("  snapshots deleted: {}", reply["Pruned"]);
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

/// Opens the data directory (no server holds it) and snapshots it.
fn create_offline(data_dir: &Path, output: Option<PathBuf>) -> Result<Report> {
    let engine = Engine::open_existing(data_dir).map_err(|e| match OfflineError::from(e) {
        OfflineError::InUse(dir) => OfflineError::InvalidOption(format!(
            "the data directory {dir} is in use by a running server: leave out --offline \
             (the server then takes the snapshot) or name it with --server URL"
        )),
        other => other,
    })?;
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

/// Asks the server for a snapshot into `output` (made absolute here, since the server's
/// working folder is not ours).
fn create_online(client: &Client, output: Option<&Path>) -> Result<Report> {
    let absolute = match output {
        Some(o) => Some(std::path::absolute(o).map_err(|e| OfflineError::io(o, e))?),
        None => None,
    };
    let text = absolute.as_ref().map(|p| p.to_string_lossy().into_owned());
    let params: Vec<(&str, &str)> = text.iter().map(|t| ("Output", t.as_str())).collect();
    let reply = Value::Object(client.call("/admin/snapshot", &params)?);
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
