//! The gates of a coarse partition's filters, decided once per filter and column state
//! instead of once per search.
//!
//! A filtered search of the partition needs the filter decided for every row it holds:
//! the probes test one bit per row, DocsFound is the count of kept live rows, and the
//! kept share steers how many lists are probed. At 10M rows deciding it from the
//! columns costs more than the probes themselves, and it is the same answer for every
//! search with the same filter until a published row's column value changes.
//!
//! So a partition keeps the accepted rows of its last few filters ([`GATES`]), one bit
//! per row and without tombstones, keyed by the filter's canonical text (given by the
//! caller, which alone knows what the predicate is) and the snapshot's column stamp
//! (`Snapshot::column_stamp`, changed by every write of a published row's columns).
//! Each search folds the tombstones in (one AND NOT and popcount over the words, well
//! under a millisecond at 10M rows), so deletes never make a kept gate wrong; rows
//! appended after the build are past the partition and decided per search as before
//! (`quantized::rerank`). A partition built again starts with no gates.
//!
//! A stamp read before deciding names what was decided: a write during the decision
//! gives the columns a newer stamp, so the gate is never found again.

use std::sync::Arc;

use parking_lot::Mutex;
use rayon::prelude::*;

use super::RowFilter;
use crate::index::Snapshot;

/// Gates kept per partition (the least recently used goes first): 1.25 MB each at 10M
/// rows.
pub(super) const GATES: usize = 8;

/// Words of the gate per parallel task (64k rows).
const GATE_WORDS: usize = 1024;

/// Which rows of the partition a search may return.
pub(super) enum Gate {
    /// Every live row.
    Live,
    /// The accepted live rows: bit `r % 64` of word `r / 64`, `count` of them.
    Kept { bits: Vec<u64>, count: usize },
}

impl Gate {
    /// Whether `row` (of the partition) may be returned.
    #[inline]
    pub(super) fn keeps(&self, snap: &Snapshot, row: usize) -> bool {
        match self {
            Gate::Live => !snap.is_tombstone(row),
            Gate::Kept { bits, .. } => bits[row / 64] >> (row % 64) & 1 == 1,
        }
    }
}

/// A filter's accepted rows of a partition (tombstones not folded in): bit `r % 64` of
/// word `r / 64`.
struct Accepted {
    /// The filter's canonical text.
    key: String,
    /// The column stamp the rows were decided at.
    stamp: u64,
    bits: Arc<Vec<u64>>,
}

/// The accepted rows of a partition's last few filters, most recently used last.
#[derive(Default)]
pub(super) struct GateCache {
    kept: Mutex<Vec<Accepted>>,
}

impl GateCache {
    /// The accepted rows of `key` at column stamp `stamp`, decided by `decide` when not
    /// kept; gates of older stamps are dropped (no later search can use them).
    fn get_or_decide(
        &self,
        key: &str,
        stamp: u64,
        decide: impl FnOnce() -> Vec<u64>,
    ) -> Arc<Vec<u64>> {
        {
            let mut kept = self.kept.lock();
            kept.retain(|a| a.stamp >= stamp);
            if let Some(i) = kept.iter().position(|a| a.stamp == stamp && a.key == key) {
                let found = kept.remove(i);
                let bits = found.bits.clone();
                kept.push(found);
                return bits;
            }
        }
        // Decided without the lock: two searches of a new filter may both decide it,
        // but no search waits for another's filter.
        let bits = Arc::new(decide());
        let mut kept = self.kept.lock();
        if !kept.iter().any(|a| a.stamp == stamp && a.key == key) {
            if kept.len() == GATES {
                kept.remove(0);
            }
            kept.push(Accepted {
                key: key.to_string(),
                stamp,
                bits: bits.clone(),
            });
        }
        bits
    }

    /// The rows of the partition a search may return: with a filter, its accepted rows
    /// (kept for its key, else decided now) with the tombstones folded in.
    pub(super) fn gate(&self, snap: &Snapshot, rows: usize, filter: Option<RowFilter<'_>>) -> Gate {
        let Some(filter) = filter else {
            return Gate::Live;
        };
        let accepted = match filter.key {
            Some(key) => {
                let stamp = snap.column_stamp();
                self.get_or_decide(key, stamp, || accepted(rows, filter))
            }
            None => Arc::new(accepted(rows, filter)),
        };
        let mut bits = vec![0u64; accepted.len()];
        let count = bits
            .par_chunks_mut(GATE_WORDS)
            .zip(accepted.par_chunks(GATE_WORDS))
            .enumerate()
            .map(|(c, (out, accepted))| {
                let mut count = 0;
                for (i, (out, &accepted)) in out.iter_mut().zip(accepted).enumerate() {
                    *out = accepted & !snap.tombstones().word(c * GATE_WORDS + i);
                    count += out.count_ones() as usize;
                }
                count
            })
            .sum();
        Gate::Kept { bits, count }
    }

    /// Gates kept now (tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.kept.lock().len()
    }
}

/// Rows `0..rows` (a partition's) that `filter` accepts, tombstones aside: 64 at a time
/// through its words when given, else row by row.
fn accepted(rows: usize, filter: RowFilter<'_>) -> Vec<u64> {
    let mut bits = vec![0u64; rows.div_ceil(64)];
    bits.par_chunks_mut(GATE_WORDS)
        .enumerate()
        .for_each(|(c, chunk)| {
            for (i, bits) in chunk.iter_mut().enumerate() {
                let w = c * GATE_WORDS + i;
                let inside = if rows - w * 64 < 64 {
                    (1u64 << (rows - w * 64)) - 1
                } else {
                    u64::MAX
                };
                *bits = match filter.words {
                    Some(words) => words(w) & inside,
                    None => (0..64).fold(0, |kept, i| {
                        kept | u64::from(inside >> i & 1 == 1 && (filter.accept)(w * 64 + i)) << i
                    }),
                };
            }
        });
    bits
}
