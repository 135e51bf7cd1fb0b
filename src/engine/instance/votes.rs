//! The keypoint vote index of an instance (instances created with `local_features`):
//! every stored picture's descriptors held in memory in a [`CodeIndex`], by doc.
//!
//! It is read from the `local_features` column family when the instance opens and on
//! reload, and kept current by add, replace and delete under the write lock (rebuilds
//! and compactions keep docs, so it stays as it is). The vote stage of a search, which
//! asks it for the pictures with most votes, is `engine/search/votes.rs`.
use parking_lot::RwLock;

use super::Instance;
use crate::engine::Result;
use crate::index::CodeIndex;
use crate::store::{InstanceMeta, Record, Store};
use crate::vision::LocalFeatures;

/// Largest Hamming distance (of 256 bits) at which a query keypoint votes.
pub const VOTE_DISTANCE: u32 = 48;
/// Ratio test of a vote (%): a query keypoint votes for the picture holding its nearest
/// code only when every other picture's nearest is farther by this ratio.
pub const VOTE_RATIO: u32 = 80;
/// Pictures with most votes verified by default besides the vector candidates.
pub const DEFAULT_VOTE_CANDIDATES: usize = 20;

/// The in-memory descriptors of an instance's stored pictures, by doc.
pub(in crate::engine) struct Votes(RwLock<CodeIndex>);

impl Votes {
    /// Reads every stored picture's local features of the instance `meta` (`None` when
    /// it does not keep them).
    pub(in crate::engine) fn load(store: &Store, meta: &InstanceMeta) -> Result<Option<Self>> {
        if !meta.local_features {
            return Ok(None);
        }
        Ok(Some(Votes(RwLock::new(read_all(store, meta)?))))
    }

    /// Reads the features again from the store (after offline tools changed it).
    pub(in crate::engine) fn reload(&self, store: &Store, meta: &InstanceMeta) -> Result<()> {
        let index = read_all(store, meta)?;
        *self.0.write() = index;
        Ok(())
    }

    /// Records a committed picture's features (stored form) and forgets the doc it
    /// replaced.
    pub(in crate::engine) fn added(
        &self,
        doc: u64,
        features: Option<&[u8]>,
        replaces: Option<u64>,
    ) {
        let mut index = self.0.write();
        if let Some(old) = replaces {
            index.remove(old);
        }
        if let Some(f) = features.and_then(LocalFeatures::from_bytes) {
            index.insert(doc, &f.descriptors);
        }
    }

    /// Forgets deleted docs.
    pub(in crate::engine) fn removed(&self, docs: impl IntoIterator<Item = u64>) {
        let mut index = self.0.write();
        for doc in docs {
            index.remove(doc);
        }
    }

    /// The `n` docs with most votes from `local`'s keypoints, most first, with the
    /// query keypoints that voted for them.
    pub(in crate::engine) fn top(&self, local: &LocalFeatures, n: usize) -> Vec<(u64, Vec<u32>)> {
        if n == 0 {
            return Vec::new();
        }
        self.0
            .read()
            .voters(&local.descriptors, VOTE_DISTANCE, VOTE_RATIO, n)
    }

    /// (pictures, codes, bytes) held.
    pub(in crate::engine) fn size(&self) -> (usize, usize, usize) {
        let index = self.0.read();
        (index.ids(), index.codes(), index.memory_bytes())
    }
}

/// The code index of every stored picture's descriptors of an instance.
fn read_all(store: &Store, meta: &InstanceMeta) -> Result<CodeIndex> {
    let mut index = CodeIndex::new();
    store.for_each_local_features(meta.id, |doc, bytes| {
        if let Some(f) = LocalFeatures::from_bytes(bytes) {
            index.insert(doc, &f.descriptors);
        }
        Ok(())
    })?;
    Ok(index)
}

/// What the vote index of an instance holds ([`Instance::vote_index_size`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteIndexSize {
    /// Pictures with keypoints.
    pub pictures: usize,
    /// Keypoints.
    pub codes: usize,
    /// Memory held, bytes.
    pub bytes: usize,
}

impl Instance {
    /// The pictures with most keypoint votes for a query's features, most first, with
    /// their votes (tools: the vote stage alone). Empty without local features.
    pub fn voted(&self, local: &LocalFeatures, n: usize) -> Result<Vec<(Record, u32)>> {
        let Some(votes) = &self.votes else {
            return Ok(Vec::new());
        };
        let top = votes.top(local, n);
        let docs: Vec<u64> = top.iter().map(|t| t.0).collect();
        let records = self.store.records(self.meta.id, &docs)?;
        Ok(records
            .into_iter()
            .zip(top)
            .filter_map(|(r, (_, v))| r.map(|r| (r, v.len() as u32)))
            .collect())
    }

    /// What the vote index holds; `None` without local features.
    pub fn vote_index_size(&self) -> Option<VoteIndexSize> {
        self.votes.as_ref().map(|v| {
            let (pictures, codes, bytes) = v.size();
            VoteIndexSize {
                pictures,
                codes,
                bytes,
            }
        })
    }
}
