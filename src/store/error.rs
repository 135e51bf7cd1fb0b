//! Errors of the record store.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB reported an error (I/O, corruption, lock held by another process).
    #[error("storage error: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored value could not be decoded: the data directory is damaged or from a newer version.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// A stored value has a format version this build does not read (written by a newer imgsearch).
    #[error("stored {what} have format version {version}; this build reads up to {newest}")]
    UnsupportedVersion {
        /// What the value is.
        what: &'static str,
        /// The version found.
        version: u16,
        /// The newest version this build reads.
        newest: u16,
    },
    /// A stored value's checksum does not match its bytes.
    #[error("stored {what} are damaged: checksum mismatch")]
    ChecksumMismatch {
        /// What the value is.
        what: &'static str,
    },
    /// The data directory is already opened for writing by another process.
    #[error("the data directory {0} is in use by another imgsearch process (stop it first)")]
    Locked(String),
    /// An instance of that name exists already.
    #[error("instance {0} already exists")]
    InstanceExists(String),
}

/// Result alias of the store.
pub type Result<T> = std::result::Result<T, StoreError>;
