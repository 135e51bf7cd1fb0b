//! The vector index: per instance, a flat file of fixed-size rows, memory-mapped and
//! scanned in full with SIMD kernels across cores.
//!
//! A row is a doc id and a vector. Rows are appended in doc-id order, so the id column
//! is sorted and a doc's row is found by binary search. Deletes are tombstones (a bit
//! per row, in memory, derived from the store when the index opens); the space comes
//! back when a new generation is written. The file format is in [`vector_file`].
//!
//! Generations: the current file is named by `MANIFEST`, replaced atomically (write a
//! temporary file, sync it, rename, sync the folder). A rebuild writes
//! `gen-<N+1>.vec` beside the old one and switches the manifest; searches that hold a
//! [`Snapshot`] of the old generation finish on its map.
//!
//! Readers take a [`Snapshot`] (rows, tombstones, columns as of one moment) and never
//! wait for writers; the one writer appends a row, syncs it, and publishes a new snapshot
//! only after the caller's store batch (the receipt) has committed.
//!
//! Searches go through one entry, [`scan()`] (the `scan/` folder): the exact f32 scan,
//! a collected subset, a quantised copy ([`ScanCopy`]) with exact re-rank, and blocked
//! batches of queries.
//!
//! `codes.rs` is apart: binary codes → ids by multi-index hashing ([`CodeIndex`]), the
//! keypoint vote stage's structure.
//!
//! `columns_file.rs` saves the tombstones and attribute columns beside the vector file
//! ([`PersistedColumns`]), so that a large instance opens without rebuilding them.
//!
//! Entry point: [`VectorIndex`].

mod bitset;
pub mod codes;
mod column;
mod columns_file;
mod copy;
mod error;
mod generation;
pub mod kernels;
mod manifest;
mod reader;
pub mod scan;
#[cfg(test)]
pub(crate) mod testkit;
mod vector_file;
mod vector_index;

pub use bitset::AtomicBitset;
pub use codes::CodeIndex;
pub use column::U32Column;
pub use columns_file::{PersistedColumns, COLUMNS_FILE};
pub use copy::PinnedGeneration;
pub use error::{IndexError, Result};
pub use generation::{write_generation, GenerationWriter};
pub use manifest::{Manifest, MANIFEST_FILE};
pub use reader::{RowCheck, VectorFileReader};
pub use scan::{
    scan, search_batch, search_batch_above, selective, AcceptWords, BatchQuery, BitsRows, F16Rows,
    Hit, I8Rows, IvfRows, RowFilter, ScanCopy, ScanMode, ScanQuery, ScanRequest, ScanResult,
    UnknownScanMode, DEFAULT_NPROBE, DEFAULT_OVERSAMPLE, DEFAULT_SHORTLIST,
};
pub use vector_file::{Header, VectorFile, HEADER_BYTES};
pub use vector_index::{Snapshot, VectorIndex};
