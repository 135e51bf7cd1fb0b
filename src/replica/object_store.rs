//! Where a cluster's snapshots live: an object store (`s3://bucket/prefix` for S3 and
//! S3-compatible services, `file:///abs/dir` for one machine and the tests), reached
//! through the `object_store` crate, with the few whole-file operations snapshots need.
//!
//! S3 credentials and endpoint come from the usual environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`);
//! plain HTTP is allowed only for an endpoint on a loopback address (a test server such
//! as moto or a local MinIO). Files are streamed in 8 MiB parts (multipart uploads
//! above that size) and hashed on the way down, so memory stays flat whatever the size.

use std::io::{Read, Write};
use std::path::{Path as LocalPath, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Bytes read, sent or written at a time; files above it go up as multipart uploads.
const PART_BYTES: usize = 8 << 20;

/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// Errors of the snapshot store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The `--snapshot-store` URL is not one this build reads.
    #[error("--snapshot-store {url}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The object store refused or failed an operation.
    #[error("snapshot store: {0}")]
    Remote(#[from] object_store::Error),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Local {
        /// The local file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl StoreError {
    fn local(path: &LocalPath, source: std::io::Error) -> Self {
        StoreError::Local {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result of the snapshot store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A bucket (or folder) and the prefix under which snapshots are kept.
#[derive(Clone)]
pub struct SnapshotStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
}

impl std::fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl SnapshotStore {
    /// Opens `file:///abs/dir` (made when missing) or `s3://bucket[/prefix]`.
    pub fn open(url: &str) -> Result<SnapshotStore> {
        let bad = |reason: String| StoreError::Url {
            url: url.to_string(),
            reason,
        };
        let (store, prefix): (Arc<dyn ObjectStore>, Path) = if let Some(dir) =
            url.strip_prefix("file://")
        {
            let dir = PathBuf::from(dir);
            if !dir.is_absolute() {
                return Err(bad("not an absolute local path (file:///abs/dir)".into()));
            }
            std::fs::create_dir_all(&dir).map_err(|e| StoreError::local(&dir, e))?;
            // Empty folders left by a delete would still list as snapshots.
            let local = object_store::local::LocalFileSystem::new_with_prefix(&dir)?
                .with_automatic_cleanup(true);
            (Arc::new(local), Path::default())
        } else if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let mut builder =
                object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .unwrap_or_default();
            if is_loopback_http(&endpoint) {
                builder = builder.with_allow_http(true);
            }
            let prefix = Path::parse(prefix.trim_matches('/')).map_err(|e| bad(e.to_string()))?;
            (Arc::new(builder.build()?), prefix)
        } else {
            return Err(bad(
                "unknown scheme (file:///abs/dir or s3://bucket/prefix)".into(),
            ));
        };
        Ok(SnapshotStore {
            store,
            prefix,
            url: url.to_string(),
        })
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object of `key` (a `/`-separated path under the prefix).
    fn path(&self, key: &str) -> Path {
        key.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |path, part| path.child(part))
    }

    /// Writes a small object in one request.
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.path(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Reads a small object whole; `None` when it does not exist.
    pub async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.store.get(&self.path(key)).await {
            Ok(got) => Ok(Some(got.bytes().await?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Uploads a local file (multipart above one part).
    pub async fn put_file(&self, key: &str, file: &LocalPath) -> Result<()> {
        let mut reader = std::fs::File::open(file).map_err(|e| StoreError::local(file, e))?;
        let size = reader
            .metadata()
            .map_err(|e| StoreError::local(file, e))?
            .len();
        if size <= PART_BYTES as u64 {
            let mut bytes = Vec::with_capacity(size as usize);
            reader
                .read_to_end(&mut bytes)
                .map_err(|e| StoreError::local(file, e))?;
            return self.put_bytes(key, bytes).await;
        }
        let upload = self.store.put_multipart(&self.path(key)).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        loop {
            let (back, chunk) = read_part(reader, file).await?;
            reader = back;
            if chunk.is_empty() {
                break;
            }
            writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            writer.write(&chunk);
        }
        writer.finish().await?;
        Ok(())
    }

    /// Size of an object; `None` when it does not exist.
    pub async fn size(&self, key: &str) -> Result<Option<u64>> {
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Downloads an object into a new local file, synced; returns its size and SHA-256.
    pub async fn get_file(&self, key: &str, file: &LocalPath) -> Result<(u64, String)> {
        let mut out = std::fs::File::create(file).map_err(|e| StoreError::local(file, e))?;
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut stream = self.store.get(&self.path(key)).await?.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            bytes += chunk.len() as u64;
            let path = file.to_path_buf();
            out = tokio::task::spawn_blocking(move || out.write_all(&chunk).map(|_| out))
                .await
                .map_err(|e| StoreError::local(&path, std::io::Error::other(e)))?
                .map_err(|e| StoreError::local(&path, e))?;
        }
        out.sync_all().map_err(|e| StoreError::local(file, e))?;
        Ok((bytes, hex::encode(hasher.finalize())))
    }

    /// The names directly under `key` (the "folders" of a listing).
    pub async fn folders(&self, key: &str) -> Result<Vec<String>> {
        let listing = self
            .store
            .list_with_delimiter(Some(&self.path(key)))
            .await?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// Deletes every object under `key`.
    pub async fn delete_all(&self, key: &str) -> Result<u64> {
        let mut listed = self.store.list(Some(&self.path(key)));
        let mut deleted = 0;
        while let Some(meta) = listed.next().await {
            self.store.delete(&meta?.location).await?;
            deleted += 1;
        }
        Ok(deleted)
    }
}

/// Whether an endpoint is plain HTTP on this machine (a test server).
fn is_loopback_http(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Reads the next part of `reader` off the async threads.
async fn read_part(reader: std::fs::File, file: &LocalPath) -> Result<(std::fs::File, Vec<u8>)> {
    let path = file.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(PART_BYTES);
        let read = (&reader).take(PART_BYTES as u64).read_to_end(&mut chunk);
        read.map(|_| (reader, chunk))
    })
    .await
    .map_err(|e| StoreError::local(&path, std::io::Error::other(e)))?
    .map_err(|e| StoreError::local(&path, e))
}
