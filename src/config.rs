//! Server settings and their defaults; every flag can also come from an environment
//! variable (`IMGSEARCH_*`).

use std::net::SocketAddr;
use std::path::PathBuf;

/// Default data directory: `./data`, next to where the server starts.
pub const DEFAULT_DATA_DIR: &str = "data";
/// Default listening address: loopback only, since no access keys are configured by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Name of the file holding the running server's process id, inside the data directory.
pub const PID_FILE: &str = "imgsearch.pid";

/// Settings of `imgsearch serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Data directory (RocksDB store and vector files); created with one ready instance when empty.
    #[arg(long, env = "IMGSEARCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "IMGSEARCH_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Writes (AddImage, UpdateImage, DeleteImage) per second per instance; 0 = unlimited.
    /// Searches are limited by each instance's own QPS.
    #[arg(long, env = "IMGSEARCH_WRITE_QPS", default_value_t = crate::api::DEFAULT_WRITE_QPS)]
    pub write_qps: u32,
}
