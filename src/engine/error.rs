//! Errors of the engine, wrapping those of the layers below.

use crate::index::IndexError;
use crate::store::StoreError;
use crate::vision::{ModelError, VisionError};

/// What can go wrong in an engine operation.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No instance of that name.
    #[error("instance {0} does not exist")]
    InstanceNotFound(String),
    /// A command that reads a data directory was pointed at one that does not exist.
    #[error("the data directory {0}")]
    NoDataDir(String),
    /// An instance name is empty, too long or has characters other than letters, digits, `-`, `_`.
    #[error("invalid instance name {0:?}: use 1 to 20 letters, digits, '-' or '_'")]
    InvalidInstanceName(String),
    /// The instance holds its capacity of pictures.
    #[error("instance {name} is full ({capacity} pictures)")]
    OverQuota {
        /// Instance name.
        name: String,
        /// Its capacity.
        capacity: u64,
    },
    /// The batched commit this picture shared with others failed as a whole.
    #[error("the commit of this picture's batch failed: {0}")]
    BatchFailed(std::sync::Arc<EngineError>),
    /// The writer committing this picture's batch panicked; the picture is not stored.
    #[error("the writer committing this picture's batch stopped before it finished")]
    WriterGone,
    /// No picture of that ProductId and PicName.
    #[error("no picture with ProductId {product_id:?} and PicName {pic_name:?}")]
    PictureNotFound {
        /// ProductId asked for.
        product_id: String,
        /// PicName asked for.
        pic_name: String,
    },
    /// A category id that the instance's service type does not have.
    #[error("category {0} does not exist for this instance's service type")]
    InvalidCategory(u32),
    /// The instance was made with an extractor this build does not have, or of another dimension.
    #[error("instance {name} uses extractor {extractor} ({dimension} dimensions), which this server cannot run")]
    ExtractorUnavailable {
        /// Instance name.
        name: String,
        /// Extractor recorded with the instance.
        extractor: String,
        /// Dimension recorded with the instance.
        dimension: u32,
    },
    /// The instance's model file is missing, changed or unusable.
    #[error("instance {name}: {problem}")]
    Model {
        /// Instance name.
        name: String,
        /// What is wrong with the model (in the message, not a `source`, so it prints once).
        problem: ModelError,
    },
    /// A task of that kind still runs for the instance (one at a time per instance).
    #[error(
        "a {kind} task (Id {id}) is still running for instance {instance}; wait until it ends"
    )]
    TaskAlreadyExists {
        /// DumpMeta or IncreaseInstance.
        kind: &'static str,
        /// Instance name.
        instance: String,
        /// Id of the running task.
        id: u64,
    },
    /// BucketName names no bucket configured on this server.
    #[error("bucket {name:?} is not configured on this server; configured buckets: {known}")]
    UnknownBucket {
        /// BucketName asked for.
        name: String,
        /// The configured bucket names, for the message.
        known: String,
    },
    /// An increase's Path cannot be used: `..`, leading out of the bucket, missing.
    #[error("Path {path:?} in bucket {bucket}: {reason}")]
    InvalidTaskPath {
        /// BucketName.
        bucket: String,
        /// Path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A bucket of the server's configuration cannot be used.
    #[error("bucket {name}: {reason}")]
    InvalidBucket {
        /// Bucket name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The task list or a task's result file could not be written.
    /// A manifest to import is refused: unreadable, damaged, or of another extractor.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// A server-side manifest import was given a relative path.
    #[error("the manifest path {0:?} must be absolute: the server reads it")]
    RelativeManifestPath(String),
    /// A task's file or list could not be written.
    #[error("task storage failed: {0}")]
    TaskStorage(String),
    /// A task's writes could not go through the cluster's write log.
    #[error("the write log failed: {0}")]
    WriteLog(String),
    /// A whitening cannot be fitted (too few pictures, a setting out of range).
    #[error(transparent)]
    Whitening(#[from] super::instance::whitening::WhiteningError),
    /// The projection stored with the instance does not fit its extractor: the instance
    /// is refused rather than searched with garbage.
    #[error("instance {name}: stored index projection unusable: {reason}")]
    ProjectionMismatch {
        /// Instance name.
        name: String,
        /// What does not fit.
        reason: String,
    },
    /// The picture was refused or could not be read.
    #[error(transparent)]
    Vision(#[from] VisionError),
    /// The record store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vector index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// Result alias of the engine.
pub type Result<T> = std::result::Result<T, EngineError>;
