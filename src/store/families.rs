//! The column families: their names (see the key layout in the module above), which were
//! added after the first release, and the memory each may hold.
//!
//! A family added later is created at a read-write open of an older database; a read-only
//! open of such a database goes without it, so readers of those families accept its absence.

use std::path::Path;

use rocksdb::{Options, DB};

/// Instance settings by name.
pub(super) const CF_INSTANCES: &str = "instances";
pub(super) const CF_RECORDS: &str = "records";
pub(super) const CF_VECTORS: &str = "vectors";
pub(super) const CF_NAMES: &str = "names";
pub(super) const CF_COUNTERS: &str = "counters";
/// Added after the first release: a database from before has it created at a read-write
/// open, and a read-only open of such a database goes without it.
pub(super) const CF_THUMBNAILS: &str = "thumbnails";
/// Added with per-instance whitening, like `thumbnails`: an instance's index projection
/// (bytes the engine encodes), absent when its rows are the extractor's vectors.
pub(super) const CF_PROJECTIONS: &str = "projections";
/// Added later still, the same way: keypoints of instances created with local features.
pub(super) const CF_LOCAL: &str = "local_features";
/// Every family, created at a read-write open.
pub(super) const COLUMN_FAMILIES: [&str; 8] = [
    CF_INSTANCES,
    CF_RECORDS,
    CF_VECTORS,
    CF_NAMES,
    CF_COUNTERS,
    CF_THUMBNAILS,
    CF_PROJECTIONS,
    CF_LOCAL,
];

/// Memory all column families' memtables may use together before RocksDB flushes.
/// Small, so that a trickle of writes fills it within minutes and RSS then stays flat
/// (a large budget keeps growing for as long as it takes to fill).
pub const MEMTABLE_BUDGET_BYTES: usize = 8 << 20;
/// Write-ahead log size past which RocksDB flushes the families that hold the oldest log.
pub const MAX_TOTAL_WAL_BYTES: u64 = 64 << 20;
/// The block cache shared by every column family.
pub const BLOCK_CACHE_BYTES: usize = 32 << 20;

/// The options of one family: its share of the memtable budget, and the shared block
/// cache unless its entries are read once.
pub(super) fn family_options(name: &str, cache: &rocksdb::Cache) -> Options {
    let mut cf = Options::default();
    cf.set_compression_type(rocksdb::DBCompressionType::Lz4);
    cf.set_write_buffer_size(MEMTABLE_BUDGET_BYTES / 4);
    cf.set_max_write_buffer_number(2);
    let mut table = rocksdb::BlockBasedOptions::default();
    if name == CF_VECTORS || name == CF_THUMBNAILS || name == CF_LOCAL {
        // Read one entry at a time (SearchImageByName, the console) or in whole
        // scans; every replacing add rewrites them, so cached blocks of files
        // compacted away would fill the cache with dead blocks. The OS page
        // cache serves these reads.
        table.disable_cache();
    } else {
        table.set_block_cache(cache);
    }
    cf.set_block_based_table_factory(&table);
    cf
}

/// The families of [`COLUMN_FAMILIES`] the database at `path` has (all of them when it
/// cannot be listed, so that opening reports the real problem).
pub(super) fn existing_families(opts: &Options, path: &Path) -> Vec<&'static str> {
    match DB::list_cf(opts, path) {
        Ok(present) => COLUMN_FAMILIES
            .into_iter()
            .filter(|name| present.iter().any(|p| p == name))
            .collect(),
        Err(_) => COLUMN_FAMILIES.to_vec(),
    }
}
