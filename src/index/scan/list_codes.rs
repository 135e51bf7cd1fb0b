//! The i8 codes of a coarse partition, list by list, wherever they lie: encoded in memory
//! by a build, or in the mapped file of a saved partition (`ivf_saved.rs`), whose pages
//! an open neither zeroes nor copies. Searches see a slice either way.

/// The i8 codes of a partition, list by list: built in memory, or mapped from the
/// partition's saved file.
pub(super) enum ListCodes {
    /// Encoded by a build (`IvfRows::build`).
    Built(Vec<i8>),
    /// The codes section of a saved file, from byte `start` to the end.
    Mapped {
        /// The whole file.
        map: memmap2::Mmap,
        /// Where the codes begin.
        start: usize,
    },
}

impl std::ops::Deref for ListCodes {
    type Target = [i8];

    fn deref(&self) -> &[i8] {
        match self {
            ListCodes::Built(codes) => codes,
            ListCodes::Mapped { map, start } => {
                let bytes = &map[*start..];
                // SAFETY: i8 and u8 have the same size and alignment, and any byte is a
                // valid i8.
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<i8>(), bytes.len()) }
            }
        }
    }
}
