//! The saved coarse partition: an [`IvfRows`] written beside its generation's vector file
//! (`gen-<N>.ivf` next to `gen-<N>.vec`), so that opening a large instance in `--scan
//! ivf` reads its partition back in a fraction of a second instead of training it again
//! for minutes.
//!
//! The file is only a cache of what [`IvfRows::build`] computes from the rows. It names
//! the generation, the dimension and the row count it covers, and a fingerprint of those
//! rows (a CRC of a spread sample of them with their doc ids); [`IvfRows::load`] refuses
//! a file whose checks fail or that does not match the snapshot, and the caller builds
//! the partition again. The rows a snapshot holds past the file's count are the
//! partition's tail (scanned flat), as for a partition built in memory. A generation's
//! published rows never change, so the count and the fingerprint are enough: tombstones
//! are read from the snapshot at search time.
//!
//! Layout (all integers and floats little-endian; d dimensions, n rows, L lists):
//!
//! ```text
//! offset size
//! 0      8    magic "IMGIVF\0\0"
//! 8      4    format version (1)
//! 12     4    dimension (d)
//! 16     8    generation of the vector file
//! 24     8    rows covered (n)
//! 32     8    lists (L)
//! 40     4    fingerprint: CRC-32 of the sampled rows (doc id and vector bytes)
//! 44     4    the i8 copy's largest Σ|code| of a row (f32)
//! 48     8    reserved (0)
//! 56     4    CRC-32 (IEEE) of the body
//! 60     4    CRC-32 (IEEE) of bytes 0..60
//! 64     ..   body: i8 offsets (d f32), i8 steps (d f32), centroids (L·d f32),
//!             radii (L f32), list starts (L+1 u64), row order (n u32),
//!             i8 codes in list order (n·d i8)
//! ```
//!
//! Written to `gen-<N>.ivf.tmp`, synced, renamed, folder synced: a reader sees a whole
//! file or none. A reader maps the file (the i8 codes, most of
//! it, are searched where they lie in the page cache: an open neither zeroes nor copies
//! them), checks the body's CRC on all cores and copies the small sections out. The vector index deletes the files of other generations with theirs.

use std::fs;
use std::io::{BufWriter, Read, Write};

use rayon::prelude::*;
use std::path::{Path, PathBuf};

use super::code_i8::I8Fit;
use super::ivf::IvfRows;
use super::ivf_gates::GateCache;
use super::list_codes::ListCodes;
use crate::index::manifest::sync_dir;
use crate::index::{IndexError, Manifest, Result, Snapshot};

const MAGIC: &[u8; 8] = b"IMGIVF\0\0";
const VERSION: u32 = 1;
const HEADER: usize = 64;
/// Suffix of a saved partition's file name (`gen-<N>.ivf`).
const SUFFIX: &str = ".ivf";
/// Rows whose bytes make the fingerprint (spread over the covered rows, and the last).
const FINGERPRINT_ROWS: usize = 1024;

/// File name of generation `generation`'s saved partition.
pub fn partition_file_name(generation: u64) -> String {
    format!("gen-{generation:06}{SUFFIX}")
}

/// The generation whose saved partition `name` is (`gen-<N>.ivf`), the inverse of
/// [`partition_file_name`].
pub fn partition_generation_of(name: &str) -> Option<u64> {
    name.strip_prefix("gen-")?
        .strip_suffix(SUFFIX)?
        .parse()
        .ok()
}

/// Whether `name` is a saved partition of a generation other than `keep`, or one left
/// half written (an open deletes both).
pub fn stale_partition_file(name: &str, keep: u64) -> bool {
    match name.strip_suffix(".tmp") {
        Some(written) => partition_generation_of(written).is_some(),
        None => partition_generation_of(name).is_some_and(|g| g != keep),
    }
}

/// Plain values whose bytes are written as they lie in memory (the host is
/// little-endian, as the vector files require).
trait Plain: Copy {}
impl Plain for f32 {}
impl Plain for u32 {}
impl Plain for u64 {}
impl Plain for i8 {}

fn bytes_of<T: Plain>(values: &[T]) -> &[u8] {
    // SAFETY: `Plain` types have no padding and every byte of them is initialised.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

fn bytes_of_mut<T: Plain>(values: &mut [T]) -> &mut [u8] {
    // SAFETY: as above, and any bit pattern is a valid `Plain` value.
    unsafe {
        std::slice::from_raw_parts_mut(
            values.as_mut_ptr().cast::<u8>(),
            std::mem::size_of_val(values),
        )
    }
}

/// The fingerprint of the first `rows` rows of `snap`: a CRC of a spread sample of them.
fn fingerprint(snap: &Snapshot, rows: usize) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    let picked = (0..FINGERPRINT_ROWS.min(rows)).map(|i| i * rows / FINGERPRINT_ROWS.min(rows));
    for r in picked.chain(rows.checked_sub(1)) {
        crc.update(&snap.doc_at(r).to_le_bytes());
        crc.update(bytes_of(snap.vector_at(r)));
    }
    crc.finalize()
}

impl IvfRows {
    /// Path of this partition's file in `dir`.
    pub fn saved_path(&self, dir: &Path) -> PathBuf {
        dir.join(partition_file_name(self.generation))
    }

    /// Writes the partition of `snap` (the snapshot it was built from, or a later one of
    /// the same generation) into `dir`, replacing a previous file atomically.
    pub fn save(&self, snap: &Snapshot, dir: &Path) -> Result<()> {
        let path = self.saved_path(dir);
        let tmp = path.with_extension("ivf.tmp");
        let starts: Vec<u64> = self.starts.iter().map(|&s| s as u64).collect();
        let (offset, step, max_l1) = self.fit.parts();
        let sections: [&[u8]; 7] = [
            bytes_of(offset),
            bytes_of(step),
            bytes_of(&self.centroids),
            bytes_of(&self.radius),
            bytes_of(&starts),
            bytes_of(&self.order),
            bytes_of(&self.codes[..]),
        ];
        let mut body_crc = crc32fast::Hasher::new();
        sections.iter().for_each(|s| body_crc.update(s));
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&(self.dimension as u32).to_le_bytes());
        header[16..24].copy_from_slice(&self.generation.to_le_bytes());
        header[24..32].copy_from_slice(&(self.rows as u64).to_le_bytes());
        header[32..40].copy_from_slice(&(self.lists() as u64).to_le_bytes());
        header[40..44].copy_from_slice(&fingerprint(snap, self.rows).to_le_bytes());
        header[44..48].copy_from_slice(&max_l1.to_le_bytes());
        header[56..60].copy_from_slice(&body_crc.finalize().to_le_bytes());
        let header_crc = crc32fast::hash(&header[..60]);
        header[60..64].copy_from_slice(&header_crc.to_le_bytes());
        let file = fs::File::create(&tmp).map_err(|e| IndexError::io(&tmp, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let written = std::iter::once(&header[..])
            .chain(sections)
            .try_for_each(|s| out.write_all(s))
            .and_then(|()| out.into_inner().map_err(|e| e.into_error()))
            .and_then(|file| file.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(IndexError::io(&tmp, e));
        }
        fs::rename(&tmp, &path).map_err(|e| IndexError::io(&path, e))?;
        sync_dir(dir)
    }

    /// Reads the saved partition of `snap`'s generation from `dir`: `Ok(None)` when there
    /// is none or it covers fewer than `fewest_rows` rows (too old to be worth reading);
    /// Corrupt when it fails a check or does not match `snap` (its generation, dimension,
    /// rows or their fingerprint).
    pub fn load(snap: &Snapshot, dir: &Path, fewest_rows: usize) -> Result<Option<Self>> {
        let path = dir.join(partition_file_name(snap.generation()));
        let mut file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(IndexError::io(&path, e)),
        };
        let corrupt = |reason: &str| IndexError::corrupt(&path, reason.to_string());
        let mut header = [0u8; HEADER];
        file.read_exact(&mut header)
            .map_err(|_| corrupt("header is truncated"))?;
        let u32_at = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let u64_at = |at: usize| u64::from(u32_at(at)) | u64::from(u32_at(at + 4)) << 32;
        if &header[..8] != MAGIC {
            return Err(corrupt("not a saved partition"));
        }
        if u32_at(60) != crc32fast::hash(&header[..60]) {
            return Err(corrupt("header checksum mismatch"));
        }
        if u32_at(8) != VERSION {
            return Err(corrupt("unknown format version"));
        }
        let (dimension, generation) = (u32_at(12) as usize, u64_at(16));
        let (rows, lists) = (u64_at(24), u64_at(32));
        if generation != snap.generation() || dimension != snap.dimension() {
            return Err(corrupt("saved for another generation or dimension"));
        }
        if rows > snap.rows() as u64 {
            return Err(corrupt("covers more rows than the vector file holds"));
        }
        let rows = rows as usize;
        if rows < fewest_rows {
            return Ok(None);
        }
        if u32_at(40) != fingerprint(snap, rows) {
            return Err(corrupt("saved from other rows"));
        }
        let body = (lists.checked_mul(4 * dimension as u64 + 12))
            .and_then(|b| b.checked_add(8 + 8 * dimension as u64))
            .and_then(|b| b.checked_add(rows as u64 * (4 + dimension as u64)));
        let length = file.metadata().map_err(|e| IndexError::io(&path, e))?.len();
        if body.and_then(|b| b.checked_add(HEADER as u64)) != Some(length) {
            return Err(corrupt("length does not match the header"));
        }
        let lists = lists as usize;
        // Mapped, not read: the i8 codes (most of the file) are used where they lie, in
        // page-cache pages, so an open neither zeroes nor copies them.
        // SAFETY: a saved partition is only ever replaced by a rename, never written in
        // place, so the mapped bytes do not change under the map.
        let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }
            .map_err(|e| IndexError::io(&path, e))?;
        if map.len() as u64 != length {
            return Err(corrupt("length changed while opening"));
        }
        if parallel_crc(&map[HEADER..]) != u32_at(56) {
            return Err(corrupt("body checksum mismatch"));
        }
        let mut offset = vec![0f32; dimension];
        let mut step = vec![0f32; dimension];
        let mut centroids = vec![0f32; lists * dimension];
        let mut radius = vec![0f32; lists];
        let mut starts = vec![0u64; lists + 1];
        let mut order = vec![0u32; rows];
        let mut at = HEADER;
        for section in [
            bytes_of_mut(&mut offset),
            bytes_of_mut(&mut step),
            bytes_of_mut(&mut centroids),
            bytes_of_mut(&mut radius),
            bytes_of_mut(&mut starts),
            bytes_of_mut(&mut order),
        ] {
            section.copy_from_slice(&map[at..at + section.len()]);
            at += section.len();
        }
        // The checksum vouches for the bytes; these keep a search in bounds whatever.
        let bounded = starts.first() == Some(&0)
            && starts.last() == Some(&(rows as u64))
            && starts.windows(2).all(|w| w[0] <= w[1])
            && order.iter().all(|&r| (r as usize) < rows);
        if !bounded {
            return Err(corrupt("list bounds or row order out of range"));
        }
        Ok(Some(IvfRows {
            dimension,
            generation,
            rows,
            centroids,
            radius,
            starts: starts.into_iter().map(|s| s as usize).collect(),
            order,
            codes: ListCodes::Mapped { map, start: at },
            fit: I8Fit::from_parts(offset, step, f32::from_bits(u32_at(44))),
            gates: GateCache::default(),
        }))
    }
}

/// CRC-32 of `bytes`, its 16 MB pieces hashed on all cores and combined in order.
fn parallel_crc(bytes: &[u8]) -> u32 {
    bytes
        .par_chunks(16 << 20)
        .map(|piece| {
            let mut crc = crc32fast::Hasher::new();
            crc.update(piece);
            crc
        })
        .reduce_with(|mut first, then| {
            first.combine(&then);
            first
        })
        .map_or(0, |crc| crc.finalize())
}

/// [`IvfRows::load`] for instance `name`, a refused file logged (the caller builds).
pub(super) fn load_partition(
    snap: &Snapshot,
    dir: &Path,
    fewest_rows: usize,
    name: &str,
) -> Option<IvfRows> {
    let started = std::time::Instant::now();
    match IvfRows::load(snap, dir, fewest_rows) {
        Ok(Some(partition)) => {
            tracing::info!(
                instance = %name,
                rows = partition.rows(),
                lists = partition.lists(),
                millis = started.elapsed().as_millis() as u64,
                "coarse partition read from its saved file"
            );
            Some(partition)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(instance = %name, error = %e, "saved coarse partition refused: building it again");
            None
        }
    }
}

/// [`IvfRows::save`] into the index folder `dir` of instance `name`, unless the
/// generation was replaced meanwhile (its vector file is gone); a failure is logged (the
/// next open builds again).
pub(super) fn save_partition(partition: &IvfRows, snap: &Snapshot, dir: &Path, name: &str) {
    if !dir.join(Manifest::file_name(partition.generation)).exists() {
        return;
    }
    let started = std::time::Instant::now();
    match partition.save(snap, dir) {
        Ok(()) => tracing::info!(
            instance = %name,
            rows = partition.rows(),
            millis = started.elapsed().as_millis() as u64,
            "coarse partition saved"
        ),
        Err(e) => {
            tracing::warn!(instance = %name, error = %e, "could not save the coarse partition")
        }
    }
}
