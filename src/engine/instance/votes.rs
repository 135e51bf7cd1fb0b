//! The keypoint vote index of an instance (instances created with `local_features`):
//! the strongest [`VOTE_POINTS`] descriptors of every stored picture held in memory in a
//! [`CodeIndex`], by doc.
//!
//! Only a prefix of the stored keypoints (stored strongest first across scales) is
//! indexed: the vote stage only picks which pictures to verify, and verification reads
//! all of a candidate's stored keypoints from the store. 128 codes cost ~13.5 KB of
//! memory per picture (104 bytes a code: the code, its owner, 16 table entries) against
//! ~47 KB for all 400.
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
/// Keypoints of a picture held in the vote index: the first (strongest) of its stored
/// ones.
pub const VOTE_POINTS: usize = 128;

/// The codes of `features` the vote index holds.
fn voting(features: &LocalFeatures) -> &[[u64; 4]] {
    &features.descriptors[..features.descriptors.len().min(VOTE_POINTS)]
}

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
            index.insert(doc, voting(&f));
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

    /// What the index holds.
    pub(in crate::engine) fn size(&self) -> VoteIndexSize {
        let index = self.0.read();
        VoteIndexSize {
            pictures: index.ids(),
            codes: index.codes(),
            bytes: index.memory_bytes(),
            fixed_bytes: index.fixed_bytes(),
        }
    }
}

/// The code index of every stored picture's descriptors of an instance.
fn read_all(store: &Store, meta: &InstanceMeta) -> Result<CodeIndex> {
    let mut index = CodeIndex::new();
    store.for_each_local_features(meta.id, |doc, bytes| {
        if let Some(f) = LocalFeatures::from_bytes(bytes) {
            index.insert(doc, voting(&f));
        }
        Ok(())
    })?;
    index.shrink_to_fit();
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
    /// Of `bytes`, what does not grow with the pictures (the tables' bucket headers).
    pub fixed_bytes: usize,
}

impl VoteIndexSize {
    /// Memory per picture, the fixed part left out (what a million pictures cost each).
    pub fn bytes_per_picture(&self) -> f64 {
        (self.bytes - self.fixed_bytes) as f64 / self.pictures.max(1) as f64
    }
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
        self.votes.as_ref().map(Votes::size)
    }
}
