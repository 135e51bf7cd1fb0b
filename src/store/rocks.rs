//! `Store`: the RocksDB database of one data directory, how it is opened, its memory, and
//! its flush at close and checkpoints. Reads are in `reads.rs`, writes in `writes.rs`.

use std::path::Path;

use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};

use super::families::{
    existing_families, family_options, BLOCK_CACHE_BYTES, COLUMN_FAMILIES, MAX_TOTAL_WAL_BYTES,
    MEMTABLE_BUDGET_BYTES,
};
use super::{Result, StoreError};

/// How to open the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// The one writer (the server, or a CLI command while no server runs).
    ReadWrite,
    /// A reader beside a running server (offline tools): sees the data as of opening.
    ReadOnly,
}

/// The record store of one data directory.
pub struct Store {
    pub(super) db: DB,
    mode: StoreMode,
    cache: rocksdb::Cache,
}

/// Memory RocksDB holds, in bytes (for `/metrics` and the soak).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreMemory {
    /// All memtables of all column families (`rocksdb.cur-size-all-mem-tables`).
    pub memtables: u64,
    /// The shared block cache.
    pub block_cache: u64,
    /// Index and filter blocks of open table files (`rocksdb.estimate-table-readers-mem`).
    pub table_readers: u64,
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, mode: StoreMode) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        opts.set_keep_log_file_num(4);
        // A write-ahead log file is deleted only once every family with data in it has
        // been flushed; a family written rarely (instance metas, counters) would keep old
        // logs of busy ones alive. Past this total RocksDB flushes the laggards.
        opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        // Bounded memory: RocksDB's defaults give each column family 64 MB memtables and
        // grow with every write until a flush, which a steady trickle of adds (records,
        // vectors, thumbnails) takes long to reach. One budget for all memtables and one
        // block cache shared by all families keep the store's share of RSS fixed.
        opts.set_db_write_buffer_size(MEMTABLE_BUDGET_BYTES);
        let cache = rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let cfs = COLUMN_FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, family_options(name, &cache)));
        let db = match mode {
            StoreMode::ReadWrite => DB::open_cf_descriptors(&opts, path, cfs),
            StoreMode::ReadOnly => {
                DB::open_cf_for_read_only(&opts, path, existing_families(&opts, path), false)
            }
        }
        .map_err(|e| {
            if e.to_string().contains("lock") {
                StoreError::Locked(path.display().to_string())
            } else {
                StoreError::Rocks(e)
            }
        })?;
        Ok(Store { db, mode, cache })
    }

    /// What the memtables, block cache and table readers hold now.
    pub fn memory(&self) -> StoreMemory {
        let mut memory = StoreMemory {
            block_cache: self.cache.get_usage() as u64,
            ..StoreMemory::default()
        };
        for name in COLUMN_FAMILIES {
            let Some(cf) = self.db.cf_handle(name) else {
                continue;
            };
            let int = |property: &str| {
                self.db
                    .property_int_value_cf(cf, property)
                    .ok()
                    .flatten()
                    .unwrap_or(0)
            };
            memory.memtables += int("rocksdb.cur-size-all-mem-tables");
            memory.table_readers += int("rocksdb.estimate-table-readers-mem");
        }
        memory
    }

    /// RocksDB's own account of write stalls: its cumulative stall line
    /// (`rocksdb.stats`) and whether writes are stopped now (`rocksdb.is-write-stopped`),
    /// so that a slow write can be told apart from a stall of the store.
    pub fn write_stalls(&self) -> String {
        let stopped = self
            .db
            .property_int_value("rocksdb.is-write-stopped")
            .ok()
            .flatten()
            .unwrap_or(0);
        let stats = self
            .db
            .property_value("rocksdb.stats")
            .ok()
            .flatten()
            .unwrap_or_default();
        let cumulative = stats
            .lines()
            .find(|line| line.starts_with("Cumulative stall"))
            .unwrap_or("no stall line");
        format!("{cumulative}; stopped now: {stopped}")
    }

    /// How this store was opened.
    pub fn mode(&self) -> StoreMode {
        self.mode
    }

    pub(super) fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        // Every family in COLUMN_FAMILIES is created at open, so this lookup cannot miss.
        self.db
            .cf_handle(name)
            .expect("column family created at open")
    }

    pub(super) fn sync_write(&self, batch: WriteBatch) -> Result<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    /// Flushes every family's memtable to table files, so that the write-ahead logs hold
    /// nothing and are deleted (a clean stop leaves no logs to replay or to store).
    pub fn flush(&self) -> Result<()> {
        let families: Vec<_> = COLUMN_FAMILIES
            .iter()
            .filter_map(|name| self.db.cf_handle(name))
            .collect();
        let mut opts = rocksdb::FlushOptions::default();
        opts.set_wait(true);
        self.db.flush_cfs_opt(&families, &opts)?;
        Ok(())
    }

    /// Writes a consistent copy of the database to `path` (hard links where possible).
    pub fn checkpoint(&self, path: &Path) -> Result<()> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(path)?;
        Ok(())
    }
}

impl Drop for Store {
    /// A clean close flushes, so the data directory holds no replayable logs after it.
    fn drop(&mut self) {
        if self.mode == StoreMode::ReadWrite {
            if let Err(e) = self.flush() {
                tracing::warn!(error = %e, "flushing the store at close failed; its logs replay at the next open");
            }
        }
    }
}
