//! The TOML configuration file `serve --config` reads, and how its settings and access
//! keys combine with the flags (a flag or environment variable given explicitly wins).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, LogFormat, ServeConfig};
use crate::auth::{AccessKey, AccessKeys};
use crate::engine::ScanMode;

/// The TOML configuration file: every `serve` setting, under the same names as the flags
/// (with `_` for `-`). A flag or environment variable given explicitly wins over the file.
///
/// ```toml
/// data_dir = "/var/lib/imgsearch"
/// listen = "0.0.0.0:8080"
/// write_qps = 100
/// scan = "i8"
/// batch_window_us = 300
/// compact_dead_share = 0.25
/// log_format = "json"
/// tls_cert = "/etc/imgsearch/fullchain.pem"
/// tls_key = "/etc/imgsearch/key.pem"
/// cluster = "nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.3:4222"
/// node_id = "node-1"
/// snapshot_store = "s3://imgsearch-snapshots/prod"
/// snapshot_interval = 3600
/// [buckets]
/// catalogue = "/srv/catalogue"
/// [[access_keys]]
/// id = "shop-frontend"
/// secret = "..."
/// instances = ["demoinstance"]
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--write-qps`.
    pub write_qps: Option<u32>,
    /// `--log-format` (`text` or `json`).
    pub log_format: Option<LogFormat>,
    /// `--bucket NAME=DIR`, as a table of names to directories.
    #[serde(default)]
    pub buckets: std::collections::BTreeMap<String, PathBuf>,
    /// `--thumbnail-size`.
    pub thumbnail_size: Option<u32>,
    /// `--scan` (`f32`, `i8` or `f16`).
    pub scan: Option<ScanMode>,
    /// `--batch-window-us`.
    pub batch_window_us: Option<u64>,
    /// `--compact-dead-share`.
    pub compact_dead_share: Option<f64>,
    /// `--compact-min-dead-rows`.
    pub compact_min_dead_rows: Option<u64>,
    /// `--scene-proposals`.
    pub scene_proposals: Option<bool>,
    /// `--reciprocal-rerank`.
    pub reciprocal_rerank: Option<bool>,
    /// `--fit-within-products`.
    pub fit_within_products: Option<bool>,
    /// `--tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `--cluster`.
    pub cluster: Option<String>,
    /// `--node-id`.
    pub node_id: Option<String>,
    /// `--cluster-max-lag`.
    pub cluster_max_lag: Option<u64>,
    /// `--snapshot-store`.
    pub snapshot_store: Option<String>,
    /// `--snapshot-interval`.
    pub snapshot_interval: Option<u64>,
    /// `--snapshot-keep`.
    pub snapshot_keep: Option<usize>,
    /// Access keys.
    #[serde(default)]
    pub access_keys: Vec<AccessKeyEntry>,
}

/// One `[[access_keys]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyEntry {
    /// AccessKeyId.
    pub id: String,
    /// AccessKeySecret.
    pub secret: String,
    /// Instances the key may use; all when absent.
    pub instances: Option<Vec<String>>,
}

impl ConfigFile {
    /// Reads and parses a configuration file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Unreadable {
            path: path.to_path_buf(),
            error,
        })?;
        toml::from_str(&text).map_err(|error| ConfigError::Malformed {
            path: path.to_path_buf(),
            error,
        })
    }
}

impl ServeConfig {
    /// Takes every setting the command line left at its default from the file.
    /// `explicit(name)` tells whether a flag or environment variable set `name`.
    pub fn apply_file(&mut self, file: &ConfigFile, explicit: impl Fn(&str) -> bool) {
        if let (Some(dir), false) = (&file.data_dir, explicit("data_dir")) {
            self.data_dir = dir.clone();
        }
        if let (Some(listen), false) = (file.listen, explicit("listen")) {
            self.listen = listen;
        }
        if let (Some(qps), false) = (file.write_qps, explicit("write_qps")) {
            self.write_qps = qps;
        }
        if let (Some(side), false) = (file.thumbnail_size, explicit("thumbnail_size")) {
            self.thumbnail_size = side.min(crate::vision::MAX_THUMBNAIL_SIDE);
        }
        if let (Some(scan), false) = (file.scan, explicit("scan")) {
            self.scan = scan;
        }
        if let (Some(us), false) = (file.batch_window_us, explicit("batch_window_us")) {
            self.batch_window_us = us.min(100_000);
        }
        if let (Some(share), false) = (file.compact_dead_share, explicit("compact_dead_share")) {
            self.compact_dead_share = if share.is_finite() {
                share.clamp(0.0, 1.0)
            } else {
                0.0
            };
        }
        if let (Some(rows), false) = (
            file.compact_min_dead_rows,
            explicit("compact_min_dead_rows"),
        ) {
            self.compact_min_dead_rows = rows;
        }
        if let (Some(on), false) = (file.scene_proposals, explicit("scene_proposals")) {
            self.scene_proposals = on;
        }
        if let (Some(on), false) = (file.reciprocal_rerank, explicit("reciprocal_rerank")) {
            self.reciprocal_rerank = on;
        }
        if let (Some(on), false) = (file.fit_within_products, explicit("fit_within_products")) {
            self.fit_within_products = on;
        }
        if let (Some(cert), false) = (&file.tls_cert, explicit("tls_cert")) {
            self.tls_cert = Some(cert.clone());
        }
        if let (Some(key), false) = (&file.tls_key, explicit("tls_key")) {
            self.tls_key = Some(key.clone());
        }
        if let (Some(urls), false) = (&file.cluster, explicit("cluster")) {
            self.cluster = Some(urls.clone());
        }
        if let (Some(id), false) = (&file.node_id, explicit("node_id")) {
            self.node_id = Some(id.clone());
        }
        if let (Some(lag), false) = (file.cluster_max_lag, explicit("cluster_max_lag")) {
            self.cluster_max_lag = lag;
        }
        if let (Some(url), false) = (&file.snapshot_store, explicit("snapshot_store")) {
            self.snapshot_store = Some(url.clone());
        }
        if let (Some(secs), false) = (file.snapshot_interval, explicit("snapshot_interval")) {
            self.snapshot_interval = secs;
        }
        if let (Some(keep), false) = (file.snapshot_keep, explicit("snapshot_keep")) {
            self.snapshot_keep = keep;
        }
        if !explicit("buckets") {
            self.buckets
                .extend(file.buckets.iter().map(|(n, d)| (n.clone(), d.clone())));
        }
    }

    /// Every access key from the flags and the configuration file.
    pub fn access_keys(&self) -> Result<AccessKeys, ConfigError> {
        let mut keys = Vec::new();
        if let (Some(id), Some(secret)) = (
            &self.access_key.access_key_id,
            &self.access_key.access_key_secret,
        ) {
            keys.push(AccessKey::new(id.clone(), secret.clone()));
        }
        if let Some(path) = &self.config {
            for entry in ConfigFile::read(path)?.access_keys {
                let key = AccessKey::new(entry.id, entry.secret);
                keys.push(match entry.instances {
                    Some(instances) => key.limited_to(instances),
                    None => key,
                });
            }
        }
        AccessKeys::from_list(keys).map_err(ConfigError::Keys)
    }
}
