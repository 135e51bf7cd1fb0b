//! Errors of the vector index.

/// What can go wrong with vector files.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading, writing, syncing or mapping a file failed.
    #[error("index I/O error on {path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a vector file of a format this build reads, or fails its checksum.
    #[error("vector file {path} is damaged: {reason}")]
    Corrupt {
        /// The file concerned.
        path: String,
        /// What check failed.
        reason: String,
    },
    /// A vector of the wrong length was given.
    #[error("vector has {got} dimensions, the index has {expected}")]
    Dimension {
        /// The index's dimension.
        expected: usize,
        /// The vector's length.
        got: usize,
    },
    /// Rows must be appended in increasing doc order.
    #[error("doc {doc} is not after the last row's doc {last}")]
    OutOfOrder {
        /// Doc being appended.
        doc: u64,
        /// Last doc in the file.
        last: u64,
    },
}

impl IndexError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        IndexError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// A corruption report for a path.
    pub fn corrupt(path: &std::path::Path, reason: impl Into<String>) -> Self {
        IndexError::Corrupt {
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }
}

/// Result alias of the index.
pub type Result<T> = std::result::Result<T, IndexError>;
