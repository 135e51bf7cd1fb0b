//! Server settings and their defaults; every flag can also come from an environment
//! variable (`IMGSEARCH_*`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod file;

pub use file::{AccessKeyEntry, ConfigFile};

use crate::auth::KeyConfigError;
use crate::engine::ScanMode;

/// What is wrong with a setting, the configuration file or the keys they give.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--compact-dead-share` is not a number from 0 to 1.
    #[error("expected a number from 0 to 1, got {0:?}")]
    NotAShare(String),
    /// `--bucket` is not `NAME=DIR`.
    #[error("expected NAME=DIR, got {0:?}")]
    NotABucket(String),
    /// `--tls-cert` without `--tls-key`.
    #[error("--tls-cert needs --tls-key (the certificate's private key)")]
    CertWithoutKey,
    /// `--tls-key` without `--tls-cert`.
    #[error("--tls-key needs --tls-cert (the certificate chain)")]
    KeyWithoutCert,
    /// The configuration file cannot be read.
    // The I/O error is part of the message rather than a source, so the program's
    // error output names it once.
    #[error("cannot read {}: {error}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        error: std::io::Error,
    },
    /// The configuration file is not valid TOML of the expected settings.
    #[error("{}: {error}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Where and what the parser refused.
        error: toml::de::Error,
    },
    /// The access keys of the flags and the file do not make a usable list.
    #[error(transparent)]
    Keys(KeyConfigError),
}

/// Default data directory: `./data`, next to where the server starts.
pub const DEFAULT_DATA_DIR: &str = "data";
/// Default listening address: loopback only, since no access keys are configured by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Name of the file holding the running server's process id, inside the data directory.
pub const PID_FILE: &str = "imgsearch.pid";
/// Name of the file holding the running server's base URL (`http://127.0.0.1:PORT`),
/// beside [`PID_FILE`]: how the CLI finds the server of a data directory.
pub const ADDR_FILE: &str = "imgsearch.addr";

/// One access key given as flags or environment variables: the server's (requests must
/// then be signed with it) or the command-line client's (it signs with it).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AccessKeyArgs {
    /// An access key id (with --access-key-secret): a server then requires signed
    /// requests, a client signs its requests with it.
    #[arg(long, env = "IMGSEARCH_ACCESS_KEY_ID", requires = "access_key_secret")]
    pub access_key_id: Option<String>,
    /// The secret of --access-key-id.
    #[arg(
        long,
        env = "IMGSEARCH_ACCESS_KEY_SECRET",
        requires = "access_key_id",
        hide_env_values = true
    )]
    pub access_key_secret: Option<String>,
}

/// Settings of `imgsearch serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Data directory (RocksDB store and vector files); created with one ready instance when empty.
    #[arg(long, env = "IMGSEARCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "IMGSEARCH_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Writes (AddImage, UpdateImage, DeleteImage) per second per instance; 0 = unlimited
    /// (default). A value emulates the vendor's write limit (50 for its smallest tier).
    /// Searches are limited by each instance's own QPS (unlimited unless created with --qps).
    #[arg(long, env = "IMGSEARCH_WRITE_QPS", default_value_t = crate::api::DEFAULT_WRITE_QPS)]
    pub write_qps: u32,
    /// An access key from the flags or the environment: requests must then be signed.
    #[command(flatten)]
    pub access_key: AccessKeyArgs,
    /// TOML file with settings; today `[[access_keys]]` tables (id, secret, optional instances).
    #[arg(long, env = "IMGSEARCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// A bucket for IncreaseInstance, `NAME=DIR` (repeat the flag for more; in the
    /// environment `name=dir,name2=dir2`). BucketName picks one; Path and the PicNames
    /// of its meta file cannot name a file outside DIR.
    #[arg(long = "bucket", env = "IMGSEARCH_BUCKETS", value_name = "NAME=DIR",
          value_delimiter = ',', value_parser = parse_bucket)]
    pub buckets: Vec<(String, PathBuf)>,
    /// Longest side in pixels of the JPEG preview stored with each added picture, shown
    /// by the console (`/console`); 0 = no previews.
    #[arg(long, env = "IMGSEARCH_THUMBNAIL_SIZE",
          default_value_t = crate::vision::DEFAULT_THUMBNAIL_SIDE,
          value_parser = clap::value_parser!(u32).range(0..=crate::vision::MAX_THUMBNAIL_SIDE as i64))]
    pub thumbnail_size: u32,
    /// Rows searches scan: `i8` or `f16` (a quantised copy in memory, built in the
    /// background, candidates re-ranked exactly in f32), `bits` (a 1-bit copy first),
    /// `ivf` (the nearest lists of a coarse partition, from 200k rows) or `f32`.
    #[arg(long, env = "IMGSEARCH_SCAN", default_value_t = ScanMode::I8,
          value_parser = scan_mode_parser())]
    pub scan: ScanMode,
    /// Batching of concurrent searches of one instance into one blocked scan (searches
    /// arriving while a scan runs share the next one); a batch of fewer than four waits
    /// up to this many microseconds for more. 0 = every search scans alone.
    #[arg(long, env = "IMGSEARCH_BATCH_WINDOW_US", default_value_t = DEFAULT_BATCH_WINDOW_US,
          value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub batch_window_us: u64,
    /// Share of dead (deleted or replaced) rows in an instance's vector file at which it
    /// is rewritten without them, in the background (0 = never; `imgsearch index
    /// rebuild` and `/admin/rebuild` still do it on demand).
    #[arg(long, env = "IMGSEARCH_COMPACT_DEAD_SHARE",
          default_value_t = crate::engine::DEFAULT_DEAD_SHARE, value_parser = parse_share)]
    pub compact_dead_share: f64,
    /// Least number of dead rows before a compaction (small instances are not rewritten
    /// for a handful of rows).
    #[arg(long, env = "IMGSEARCH_COMPACT_MIN_DEAD_ROWS",
          default_value_t = crate::engine::DEFAULT_MIN_DEAD_ROWS)]
    pub compact_min_dead_rows: u64,
    /// SearchImageByPic with Crop on a busy scene (a shelf, a street) whose whole-picture
    /// ranking is not decisive also searches with up to 12 segment proposals, each the
    /// segment's silhouette on white as a catalogue shot shows it: finds catalogue
    /// products photographed in a scene (copy benchmark scenes R@1 0.13 -> 0.76
    /// built-in), costs ~50-120 ms and 12 extractions more per such search and a little
    /// on shelf photos of the catalogue's own kind. On by default.
    #[arg(long, env = "IMGSEARCH_SCENE_PROPOSALS", default_value_t = true,
          action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub scene_proposals: bool,
    /// Re-rank the first 100 results of a search by picture whose ranking neither decided
    /// nor verified a copy by k-reciprocal neighbours (the first five stay): on shelf
    /// photos mAP@100 rises (GroceryStore val 0.318 -> 0.360 built-in), the first five
    /// are unchanged. On by default (`--reciprocal-rerank false` turns it off).
    #[arg(long, env = "IMGSEARCH_RECIPROCAL_RERANK", default_value_t = true,
          action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub reciprocal_rerank: bool,
    /// An instance whose catalogue holds photos of products, several per product (at
    /// least 500 pictures, a quarter of them beside their product's first, most previews
    /// showing a product in a scene rather than a product shot) gets a whitening fitted
    /// on what varies between pictures of one product, once writes pause for 2 s, and
    /// again each time it has grown by half (`imgsearch index whiten --within-product`
    /// does it by hand): GroceryStore val P@1 / mAP@100 0.601 / 0.360 -> 0.608 / 0.371
    /// built-in, 0.699 / 0.507 -> 0.747 / 0.654 with MobileNetV1. Such an index searches
    /// busy scenes without segment proposals, so catalogues of product shots (what the
    /// proposals find in scenes) and of one picture per product are left as they are.
    /// Off on replicated nodes (each would fit its own). On by default.
    #[arg(long, env = "IMGSEARCH_FIT_WITHIN_PRODUCTS", default_value_t = true,
          action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub fit_within_products: bool,
    /// PEM certificate chain (the server's certificate first): serve HTTPS instead of
    /// plain HTTP. Needs --tls-key.
    #[arg(long, env = "IMGSEARCH_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, RSA or EC).
    #[arg(long, env = "IMGSEARCH_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// NATS servers of the replicated write log (`nats://HOST:PORT,...`): every write goes
    /// through it and every node applies it. Absent: a single node, writes applied here.
    #[arg(long, env = "IMGSEARCH_CLUSTER", value_name = "URLS")]
    pub cluster: Option<String>,
    /// This node's name in the cluster (logs, metrics, consumer names).
    #[arg(long, env = "IMGSEARCH_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,
    /// Log entries a node may be behind the log and still answer /readyz as ready.
    #[arg(long, env = "IMGSEARCH_CLUSTER_MAX_LAG", default_value_t = DEFAULT_CLUSTER_MAX_LAG)]
    pub cluster_max_lag: u64,
    /// Object store of the cluster's snapshots (`s3://bucket/prefix` with the AWS_*
    /// variables, or `file:///abs/dir`): uploads go there, and a cluster node started on
    /// an empty data directory first restores the latest one.
    #[arg(long, env = "IMGSEARCH_SNAPSHOT_STORE", value_name = "URL")]
    pub snapshot_store: Option<String>,
    /// Seconds between snapshot uploads to --snapshot-store; 0: only on demand.
    #[arg(long, env = "IMGSEARCH_SNAPSHOT_INTERVAL", default_value_t = 0)]
    pub snapshot_interval: u64,
    /// Snapshots kept in --snapshot-store (older ones are deleted after an upload).
    #[arg(long, env = "IMGSEARCH_SNAPSHOT_KEEP", default_value_t = DEFAULT_SNAPSHOT_KEEP)]
    pub snapshot_keep: usize,
}

/// Default of `--snapshot-keep`.
pub const DEFAULT_SNAPSHOT_KEEP: usize = 2;

/// Default of `--cluster-max-lag`.
pub const DEFAULT_CLUSTER_MAX_LAG: u64 = 100;

impl ServeConfig {
    /// The snapshot store settings, as the replica layer takes them.
    pub fn snapshot_options(&self) -> crate::replica::snapshots::SnapshotOptions {
        crate::replica::snapshots::SnapshotOptions {
            store: self.snapshot_store.clone(),
            cluster: self.cluster.is_some(),
            data_dir: self.data_dir.clone(),
            interval: std::time::Duration::from_secs(self.snapshot_interval),
            keep: self.snapshot_keep,
        }
    }

    /// The certificate and key files when HTTPS is asked for; an error when only one of
    /// them is given (checked after the configuration file is applied, which may give
    /// the other).
    pub fn tls_files(&self) -> Result<Option<(&Path, &Path)>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some((cert.as_path(), key.as_path()))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::CertWithoutKey),
            (None, Some(_)) => Err(ConfigError::KeyWithoutCert),
        }
    }

    /// `https` when the server speaks TLS, else `http`: the scheme of its base URL
    /// (the start-up log line, the address file the CLI reads).
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The compaction policy of `--compact-dead-share` and `--compact-min-dead-rows`.
    pub fn compaction(&self) -> crate::engine::CompactionPolicy {
        crate::engine::CompactionPolicy {
            dead_share: self.compact_dead_share,
            min_dead_rows: self.compact_min_dead_rows,
        }
    }
}

/// A share between 0 and 1 (`--compact-dead-share`).
fn parse_share(text: &str) -> Result<f64, ConfigError> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(ConfigError::NotAShare(text.to_string())),
    }
}

/// Default of `--batch-window-us`.
pub const DEFAULT_BATCH_WINDOW_US: u64 = 300;

/// `NAME=DIR` of `--bucket`.
fn parse_bucket(text: &str) -> Result<(String, PathBuf), ConfigError> {
    match text.split_once('=') {
        Some((name, dir)) if !name.trim().is_empty() && !dir.trim().is_empty() => {
            Ok((name.trim().to_string(), PathBuf::from(dir.trim())))
        }
        _ => Err(ConfigError::NotABucket(text.to_string())),
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The command-line parser of a scan mode: its names listed in `--help`, parsed by the
/// index's own `FromStr` (the index does not depend on the CLI's crate).
pub fn scan_mode_parser() -> impl clap::builder::TypedValueParser<Value = ScanMode> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(ScanMode::NAMES)
        .try_map(|name| name.parse::<ScanMode>())
}

#[cfg(test)]
mod tests;
