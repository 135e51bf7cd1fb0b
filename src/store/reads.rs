//! Reads of the store: instance settings, counters, names, records, vectors and the
//! optional families, one at a time, as multi-gets, or as whole-instance scans.

use rocksdb::{Direction, IteratorMode, ReadOptions};

use super::families::{
    CF_COUNTERS, CF_INSTANCES, CF_LOCAL, CF_NAMES, CF_PROJECTIONS, CF_RECORDS, CF_THUMBNAILS,
    CF_VECTORS,
};
use super::keys;
use super::meta::decode_meta;
use super::record::decode;
use super::{InstanceMeta, Record, Result, Store, StoreError};

/// One key-value pair read from RocksDB.
type RawEntry = std::result::Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>;

impl Store {
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

    /// An import's progress mark ([`super::ProgressMark::value`]), if one was committed.
    pub fn progress(&self, inst: u32, source: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .db
            .get_cf(self.cf(CF_COUNTERS), keys::progress_key(inst, source))?)
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

    /// The instance's index projection as the engine stored it (`None`: no projection;
    /// also when a read-only view of a database from before projections lacks the family).
    pub fn projection(&self, inst: u32) -> Result<Option<Vec<u8>>> {
        let Some(cf) = self.db.cf_handle(CF_PROJECTIONS) else {
            return Ok(None);
        };
        Ok(self.db.get_cf(cf, keys::instance_prefix(inst))?)
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
    pub(super) fn prefix_iter<'a>(
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
}

/// Vector bytes as stored (f32 little-endian) back to a vector.
fn vector_from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
