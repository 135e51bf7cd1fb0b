//! One line of an IncreaseInstance: what it did, why it failed, and reading the
//! picture an ADD line names (shared by the task's reader and its batches).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::buckets::PicNameRefused;
use super::meta_line::LineError;
use crate::engine::EngineError;
use crate::vision::PixelLimits;

/// Longest line of a meta file (a line with every field at its limit is under 10 KB).
pub(super) const MAX_LINE_BYTES: usize = 64 * 1024;

/// Why one line failed (the task goes on).
#[derive(Debug, thiserror::Error)]
pub(super) enum LineFailed {
    /// Over [`MAX_LINE_BYTES`].
    #[error("longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
    /// Not UTF-8.
    #[error("not UTF-8 text")]
    NotUtf8,
    /// The line is malformed or out of limits.
    #[error(transparent)]
    Line(#[from] LineError),
    /// Its PicName is outside the bucket or not a file.
    #[error(transparent)]
    PicName(#[from] PicNameRefused),
    /// The picture file cannot be read.
    #[error("PicName {pic_name:?} cannot be read: {source}")]
    Unreadable {
        /// The PicName as given.
        pic_name: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The instance refused the add or delete.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What a line did.
pub(super) enum Done {
    /// A picture added (or replaced).
    Added,
    /// Pictures removed by a DELETE line.
    Deleted(u64),
}

/// Reads a picture file, refusing one over the API's size limit without reading it all.
pub(super) fn read_picture(path: &Path) -> std::io::Result<Vec<u8>> {
    let max = PixelLimits::default().max_bytes;
    let mut bytes = Vec::new();
    File::open(path)?
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > max {
        return Err(std::io::Error::other(format!(
            "larger than {} MB",
            max / (1024 * 1024)
        )));
    }
    Ok(bytes)
}
