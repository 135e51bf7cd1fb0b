//! `Store`: the RocksDB database and its typed operations.

use std::path::Path;

use rocksdb::{
    ColumnFamilyDescriptor, Direction, IteratorMode, Options, ReadOptions, WriteBatch,
    WriteOptions, DB,
};

use super::keys;
use super::meta::{decode_meta, encode_meta};
use super::record::{decode, encode};
use super::{InstanceMeta, Record, Result, StoreError};

pub(super) const CF_INSTANCES: &str = "instances";
const CF_RECORDS: &str = "records";
const CF_VECTORS: &str = "vectors";
const CF_NAMES: &str = "names";
const CF_COUNTERS: &str = "counters";
/// Added after the first release: a database from before has it created at a read-write
/// open, and a read-only open of such a database goes without it.
const CF_THUMBNAILS: &str = "thumbnails";
/// Added with per-instance whitening, like `thumbnails`: an instance's index projection
/// (bytes the engine encodes), absent when its rows are the extractor's vectors.
const CF_PROJECTIONS: &str = "projections";
/// Added later still, the same way: keypoints of instances created with local features.
const CF_LOCAL: &str = "local_features";
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

/// One key-value pair read from RocksDB.
type RawEntry = std::result::Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>;

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
    db: DB,
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

/// A picture added to an instance, with what it replaces.
pub struct AddBatch<'a> {
    /// Instance id.
    pub inst: u32,
    /// New doc id (must equal the instance's next doc id).
    pub doc: u64,
    /// Its record.
    pub record: &'a Record,
    /// Its vector.
    pub vector: &'a [f32],
    /// Doc id of the picture of the same (ProductId, PicName) that it replaces.
    pub replaces: Option<u64>,
    /// Its JPEG preview, if thumbnails are on.
    pub thumbnail: Option<&'a [u8]>,
    /// Its local features ([`crate::vision::LocalFeatures::to_bytes`]), if the instance
    /// keeps them.
    pub local_features: Option<&'a [u8]>,
}

/// Memory all column families' memtables may use together before RocksDB flushes.
/// Small, so that a trickle of writes fills it within minutes and RSS then stays flat
/// (a large budget keeps growing for as long as it takes to fill).
pub const MEMTABLE_BUDGET_BYTES: usize = 8 << 20;
/// Write-ahead log size past which RocksDB flushes the families that hold the oldest log.
pub const MAX_TOTAL_WAL_BYTES: u64 = 64 << 20;
/// The block cache shared by every column family.
pub const BLOCK_CACHE_BYTES: usize = 32 << 20;

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
        let family = |name: &str| {
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
                table.set_block_cache(&cache);
            }
            cf.set_block_based_table_factory(&table);
            cf
        };
        let cfs = COLUMN_FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, family(name)));
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

    /// Every instance, ordered by name.
    pub fn instances(&self) -> Result<Vec<InstanceMeta>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_INSTANCES), IteratorMode::Start)
        {
            let (_, value) = item?;
            out.push(decode_meta(&value)?);
        }
        Ok(out)
    }

    /// Creates an instance, assigning its id; fails if the name is taken.
    pub fn create_instance(&self, mut meta: InstanceMeta) -> Result<InstanceMeta> {
        let cf = self.cf(CF_INSTANCES);
        if self.db.get_cf(cf, meta.name.as_bytes())?.is_some() {
            return Err(StoreError::InstanceExists(meta.name));
        }
        let counters = self.cf(CF_COUNTERS);
        let next = match self.db.get_cf(counters, keys::NEXT_INSTANCE_KEY)? {
            Some(bytes) => u32::from_be_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("instance counter".into()))?,
            ),
            None => 1,
        };
        meta.id = next;
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, meta.name.as_bytes(), encode_meta(&meta));
        batch.put_cf(counters, keys::NEXT_INSTANCE_KEY, (next + 1).to_be_bytes());
        self.sync_write(batch)?;
        Ok(meta)
    }

    /// The doc id the next picture of the instance gets; every lower id was acknowledged or abandoned.
    pub fn next_doc(&self, inst: u32) -> Result<u64> {
        match self
            .db
            .get_cf(self.cf(CF_COUNTERS), keys::next_doc_key(inst))?
        {
            Some(bytes) => Ok(u64::from_be_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("doc counter".into()))?,
            )),
            None => Ok(0),
        }
    }

    /// Doc id of a (ProductId, PicName).
    pub fn lookup(&self, inst: u32, product_id: &str, pic_name: &str) -> Result<Option<u64>> {
        let key = keys::name_key(inst, product_id, pic_name);
        match self.db.get_cf(self.cf(CF_NAMES), key)? {
            Some(bytes) => Ok(Some(u64::from_be_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("name entry".into()))?,
            ))),
            None => Ok(None),
        }
    }

    /// Every (PicName, doc) of one product.
    pub fn pictures_of_product(&self, inst: u32, product_id: &str) -> Result<Vec<(String, u64)>> {
        let prefix = keys::product_prefix(inst, product_id);
        let mut out = Vec::new();
        for item in self.prefix_iter(CF_NAMES, &prefix, true) {
            let (key, value) = item?;
            let pic = keys::pic_of_name_key(&key, prefix.len())
                .ok_or_else(|| StoreError::Corrupt("name key".into()))?;
            let doc = u64::from_be_bytes(
                value
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("name entry".into()))?,
            );
            out.push((pic, doc));
        }
        Ok(out)
    }

    /// The record of a doc.
    pub fn record(&self, inst: u32, doc: u64) -> Result<Option<Record>> {
        match self
            .db
            .get_cf(self.cf(CF_RECORDS), keys::doc_key(inst, doc))?
        {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The records of many docs, in the order asked (one multi-get).
    pub fn records(&self, inst: u32, docs: &[u64]) -> Result<Vec<Option<Record>>> {
        let cf = self.cf(CF_RECORDS);
        let keys: Vec<_> = docs.iter().map(|d| (cf, keys::doc_key(inst, *d))).collect();
        self.db
            .multi_get_cf(keys)
            .into_iter()
            .map(|item| match item? {
                Some(bytes) => Ok(Some(decode(&bytes)?)),
                None => Ok(None),
            })
            .collect()
    }

    /// The stored vector of a doc.
    pub fn vector(&self, inst: u32, doc: u64) -> Result<Option<Vec<f32>>> {
        Ok(self
            .db
            .get_cf(self.cf(CF_VECTORS), keys::doc_key(inst, doc))?
            .map(|bytes| vector_from_bytes(&bytes)))
    }

    /// The JPEG preview of a doc; `None` when it has none (added with thumbnails off, or
    /// before they existed) or the store was opened read-only from before they existed.
    pub fn thumbnail(&self, inst: u32, doc: u64) -> Result<Option<Vec<u8>>> {
        let Some(cf) = self.db.cf_handle(CF_THUMBNAILS) else {
            return Ok(None);
        };
        Ok(self.db.get_cf(cf, keys::doc_key(inst, doc))?)
    }

    /// The stored local features of many docs, in the order asked (one multi-get);
    /// `None` for a doc without (added without pixels, or before the family existed).
    pub fn local_features(&self, inst: u32, docs: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        let Some(cf) = self.db.cf_handle(CF_LOCAL) else {
            return Ok(vec![None; docs.len()]);
        };
        let keys: Vec<_> = docs.iter().map(|d| (cf, keys::doc_key(inst, *d))).collect();
        self.db
            .multi_get_cf(keys)
            .into_iter()
            .map(|item| Ok(item?))
            .collect()
    }

    /// Commits one added picture: record, vector, thumbnail, name entry, receipt; removes
    /// what it replaces.
    pub fn commit_add(&self, add: &AddBatch<'_>) -> Result<()> {
        self.commit_adds(std::slice::from_ref(add))
    }

    /// Commits several added pictures (increasing docs, distinct names) in one synced
    /// batch; the receipt ends past the last one.
    pub fn commit_adds(&self, adds: &[AddBatch<'_>]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for add in adds {
            self.add_to_batch(&mut batch, add);
        }
        self.sync_write(batch)
    }

    fn add_to_batch(&self, batch: &mut WriteBatch, add: &AddBatch<'_>) {
        let key = keys::doc_key(add.inst, add.doc);
        batch.put_cf(self.cf(CF_RECORDS), key, encode(add.record));
        batch.put_cf(self.cf(CF_VECTORS), key, vector_to_bytes(add.vector));
        batch.put_cf(
            self.cf(CF_NAMES),
            keys::name_key(add.inst, &add.record.product_id, &add.record.pic_name),
            add.doc.to_be_bytes(),
        );
        if let Some(thumbnail) = add.thumbnail {
            batch.put_cf(self.cf(CF_THUMBNAILS), key, thumbnail);
        }
        if let Some(features) = add.local_features {
            batch.put_cf(self.cf(CF_LOCAL), key, features);
        }
        if let Some(old) = add.replaces {
            let old_key = keys::doc_key(add.inst, old);
            batch.delete_cf(self.cf(CF_RECORDS), old_key);
            batch.delete_cf(self.cf(CF_VECTORS), old_key);
            batch.delete_cf(self.cf(CF_THUMBNAILS), old_key);
            batch.delete_cf(self.cf(CF_LOCAL), old_key);
        }
        batch.put_cf(
            self.cf(CF_COUNTERS),
            keys::next_doc_key(add.inst),
            (add.doc + 1).to_be_bytes(),
        );
    }

    /// Commits the removal of pictures (doc, ProductId, PicName) in one batch.
    pub fn commit_delete(&self, inst: u32, pictures: &[(u64, &str, &str)]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (doc, product_id, pic_name) in pictures {
            let key = keys::doc_key(inst, *doc);
            batch.delete_cf(self.cf(CF_RECORDS), key);
            batch.delete_cf(self.cf(CF_VECTORS), key);
            batch.delete_cf(self.cf(CF_THUMBNAILS), key);
            batch.delete_cf(self.cf(CF_LOCAL), key);
            batch.delete_cf(
                self.cf(CF_NAMES),
                keys::name_key(inst, product_id, pic_name),
            );
        }
        self.sync_write(batch)
    }

    /// Replaces a record's attributes in place (its vector and doc id stay).
    pub fn commit_update(&self, inst: u32, doc: u64, record: &Record) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_RECORDS),
            keys::doc_key(inst, doc),
            encode(record),
        );
        self.sync_write(batch)
    }

    /// The instance's index projection as the engine stored it (`None`: no projection;
    /// also when a read-only view of a database from before projections lacks the family).
    pub fn projection(&self, inst: u32) -> Result<Option<Vec<u8>>> {
        let Some(cf) = self.db.cf_handle(CF_PROJECTIONS) else {
            return Ok(None);
        };
        Ok(self.db.get_cf(cf, keys::instance_prefix(inst))?)
    }

    /// Sets (or with `None` removes) the instance's index projection, synced.
    pub fn set_projection(&self, inst: u32, bytes: Option<&[u8]>) -> Result<()> {
        let cf = self.cf(CF_PROJECTIONS);
        let mut batch = WriteBatch::default();
        match bytes {
            Some(b) => batch.put_cf(cf, keys::instance_prefix(inst), b),
            None => batch.delete_cf(cf, keys::instance_prefix(inst)),
        }
        self.sync_write(batch)
    }

    /// Calls `visit` for every record of an instance in doc order.
    pub fn for_each_record(
        &self,
        inst: u32,
        mut visit: impl FnMut(u64, Record) -> Result<()>,
    ) -> Result<()> {
        for item in self.prefix_iter(CF_RECORDS, &keys::instance_prefix(inst), false) {
            let (key, value) = item?;
            let doc =
                keys::doc_of_key(&key).ok_or_else(|| StoreError::Corrupt("doc key".into()))?;
            visit(doc, decode(&value)?)?;
        }
        Ok(())
    }

    /// Calls `visit` for every vector of an instance in doc order.
    pub fn for_each_vector(
        &self,
        inst: u32,
        mut visit: impl FnMut(u64, Vec<f32>) -> Result<()>,
    ) -> Result<()> {
        for item in self.prefix_iter(CF_VECTORS, &keys::instance_prefix(inst), false) {
            let (key, value) = item?;
            let doc =
                keys::doc_of_key(&key).ok_or_else(|| StoreError::Corrupt("doc key".into()))?;
            visit(doc, vector_from_bytes(&value))?;
        }
        Ok(())
    }

    /// Calls `visit` for every stored local features of an instance in doc order (none
    /// when the store was opened read-only from before the family existed).
    pub fn for_each_local_features(
        &self,
        inst: u32,
        mut visit: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        if self.db.cf_handle(CF_LOCAL).is_none() {
            return Ok(());
        }
        for item in self.prefix_iter(CF_LOCAL, &keys::instance_prefix(inst), false) {
            let (key, value) = item?;
            let doc =
                keys::doc_of_key(&key).ok_or_else(|| StoreError::Corrupt("doc key".into()))?;
            visit(doc, &value)?;
        }
        Ok(())
    }

    /// Entries of `cf` under `prefix`. Whole-instance scans (rebuilds, reconciliation)
    /// pass `fill_cache = false`: their blocks are read once and would only push the
    /// blocks lookups need out of the cache (and, as files are rewritten, keep dead
    /// files' blocks in it).
    fn prefix_iter<'a>(
        &'a self,
        cf: &str,
        prefix: &[u8],
        fill_cache: bool,
    ) -> impl Iterator<Item = RawEntry> + 'a {
        let mut opts = ReadOptions::default();
        opts.fill_cache(fill_cache);
        if let Some(end) = keys::prefix_end(prefix) {
            opts.set_iterate_upper_bound(end);
        }
        let prefix = prefix.to_vec();
        self.db
            .iterator_cf_opt(
                self.cf(cf),
                opts,
                IteratorMode::From(&prefix, Direction::Forward),
            )
            .take_while(move |item| match item {
                Ok((key, _)) => key.starts_with(&prefix),
                Err(_) => true,
            })
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

/// The families of [`COLUMN_FAMILIES`] the database at `path` has (all of them when it
/// cannot be listed, so that opening reports the real problem).
fn existing_families(opts: &Options, path: &Path) -> Vec<&'static str> {
    match DB::list_cf(opts, path) {
        Ok(present) => COLUMN_FAMILIES
            .into_iter()
            .filter(|name| present.iter().any(|p| p == name))
            .collect(),
        Err(_) => COLUMN_FAMILIES.to_vec(),
    }
}

/// Vector bytes as stored: f32 little-endian.
fn vector_to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn vector_from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str) -> InstanceMeta {
        InstanceMeta {
            id: 0,
            name: name.into(),
            service_type: 0,
            qps: 10,
            capacity: 1000,
            extractor: "builtin-v1".into(),
            model: None,
            dimension: 4,
            created_ms: 0,
            local_features: false,
        }
    }

    fn record(product: &str, pic: &str) -> Record {
        Record {
            product_id: product.into(),
            pic_name: pic.into(),
            ..Record::default()
        }
    }

    /// Bytes of the write-ahead log files in a database folder.
    fn log_bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    }

    #[test]
    fn a_clean_close_leaves_no_logs_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreMode::ReadWrite).unwrap();
        let inst = store.create_instance(meta("a")).unwrap().id;
        let vector = vec![0.5f32; 256];
        let thumbnail = vec![7u8; 4096];
        for doc in 0..500u64 {
            let r = record("p", &format!("{doc}.jpg"));
            store
                .commit_add(&AddBatch {
                    inst,
                    doc,
                    record: &r,
                    vector: &vector,
                    replaces: None,
                    thumbnail: Some(&thumbnail),
                    local_features: None,
                })
                .unwrap();
        }
        assert!(log_bytes(dir.path()) > 1 << 20, "the adds are in the log");
        drop(store);
        assert!(
            log_bytes(dir.path()) < 64 << 10,
            "{} bytes of logs",
            log_bytes(dir.path())
        );
        let store = Store::open(dir.path(), StoreMode::ReadWrite).unwrap();
        assert_eq!(store.next_doc(inst).unwrap(), 500);
        assert_eq!(store.lookup(inst, "p", "499.jpg").unwrap(), Some(499));
    }

    #[test]
    fn add_replace_delete_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreMode::ReadWrite).unwrap();
        let a = store.create_instance(meta("a")).unwrap();
        let b = store.create_instance(meta("b")).unwrap();
        assert_ne!(a.id, b.id);
        assert!(matches!(
            store.create_instance(meta("a")),
            Err(StoreError::InstanceExists(_))
        ));

        let r = record("p", "1.jpg");
        let v = [1.0, 0.0, 0.0, 0.0];
        store
            .commit_add(&AddBatch {
                inst: a.id,
                doc: 0,
                record: &r,
                vector: &v,
                replaces: None,
                thumbnail: Some(&b"jpeg-0"[..]),
                local_features: Some(&b"kp-0"[..]),
            })
            .unwrap();
        store
            .commit_add(&AddBatch {
                inst: a.id,
                doc: 1,
                record: &r,
                vector: &v,
                replaces: Some(0),
                thumbnail: Some(&b"jpeg-1"[..]),
                local_features: Some(&b"kp-1"[..]),
            })
            .unwrap();
        assert_eq!(store.next_doc(a.id).unwrap(), 2);
        assert_eq!(store.next_doc(b.id).unwrap(), 0);
        assert_eq!(store.lookup(a.id, "p", "1.jpg").unwrap(), Some(1));
        assert_eq!(store.record(a.id, 0).unwrap(), None);
        assert_eq!(store.vector(a.id, 1).unwrap().unwrap(), v.to_vec());
        assert_eq!(
            store.pictures_of_product(a.id, "p").unwrap(),
            vec![("1.jpg".into(), 1)]
        );
        assert!(store.pictures_of_product(b.id, "p").unwrap().is_empty());
        assert_eq!(
            store.thumbnail(a.id, 0).unwrap(),
            None,
            "replaced with its record"
        );
        assert_eq!(store.thumbnail(a.id, 1).unwrap().unwrap(), b"jpeg-1");
        assert_eq!(
            store.local_features(a.id, &[0, 1]).unwrap(),
            vec![None, Some(b"kp-1".to_vec())],
            "replaced with its record"
        );

        store.commit_delete(a.id, &[(1, "p", "1.jpg")]).unwrap();
        assert_eq!(store.lookup(a.id, "p", "1.jpg").unwrap(), None);
        assert_eq!(store.thumbnail(a.id, 1).unwrap(), None);
        assert_eq!(store.local_features(a.id, &[1]).unwrap(), vec![None]);
        let mut seen = 0;
        store
            .for_each_record(a.id, |_, _| {
                seen += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, 0);
    }

    #[test]
    fn a_database_from_before_thumbnails_opens_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut opts = Options::default();
            opts.create_if_missing(true);
            opts.create_missing_column_families(true);
            DB::open_cf(&opts, dir.path(), &COLUMN_FAMILIES[..5]).unwrap();
        }
        let reader = Store::open(dir.path(), StoreMode::ReadOnly).unwrap();
        assert_eq!(reader.thumbnail(1, 0).unwrap(), None);
        drop(reader);
        let store = Store::open(dir.path(), StoreMode::ReadWrite).unwrap();
        let a = store.create_instance(meta("a")).unwrap();
        let r = record("p", "x");
        store
            .commit_add(&AddBatch {
                inst: a.id,
                doc: 0,
                record: &r,
                vector: &[0.5; 4],
                replaces: None,
                thumbnail: Some(&b"jpeg"[..]),
                local_features: None,
            })
            .unwrap();
        assert_eq!(store.thumbnail(a.id, 0).unwrap().unwrap(), b"jpeg");
    }

    #[test]
    fn data_survives_reopen_and_read_only_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), StoreMode::ReadWrite).unwrap();
            let a = store.create_instance(meta("a")).unwrap();
            let r = record("p", "x");
            store
                .commit_add(&AddBatch {
                    inst: a.id,
                    doc: 0,
                    record: &r,
                    vector: &[0.5; 4],
                    replaces: None,
                    thumbnail: None,
                    local_features: None,
                })
                .unwrap();
            let reader = Store::open(dir.path(), StoreMode::ReadOnly).unwrap();
            assert_eq!(reader.instances().unwrap().len(), 1);
            assert!(matches!(
                Store::open(dir.path(), StoreMode::ReadWrite),
                Err(StoreError::Locked(_))
            ));
        }
        let store = Store::open(dir.path(), StoreMode::ReadWrite).unwrap();
        let a = &store.instances().unwrap()[0];
        assert_eq!(store.record(a.id, 0).unwrap().unwrap().pic_name, "x");
        assert_eq!(store.records(a.id, &[0, 5]).unwrap()[1], None);
    }
}
