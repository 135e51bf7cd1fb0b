//! Bounded top-k selection: a min-heap of the k best (score, row) seen so far, with its
//! floor (the k-th best score so far) cached, so a hot loop that offers tens of millions
//! of scores rejects almost all of them with one float comparison instead of a heap peek.
//!
//! Every scan path (flat, subset, quantised, batched) selects with this one type.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A scored row; orders by score, then prefers the lower row on ties (older pictures
/// first), so results are deterministic whatever the thread split.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    /// Similarity.
    pub score: f32,
    /// Row number in the generation.
    pub row: usize,
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.row.cmp(&self.row))
    }
}

/// Keeps the k best scored rows.
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Scored>>,
    floor: f32,
}

impl TopK {
    /// An empty selection of at most `k` rows.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            // Nothing can enter an empty selection of size zero.
            floor: if k == 0 {
                f32::INFINITY
            } else {
                f32::NEG_INFINITY
            },
        }
    }

    /// Scores below this cannot enter; scores equal to it might (a lower row wins a tie),
    /// so hot loops offer a score when `score >= floor()`.
    #[inline]
    pub fn floor(&self) -> f32 {
        self.floor
    }

    /// Offers a row; cheap when it does not beat the current k-th best.
    #[inline]
    pub fn push(&mut self, item: Scored) {
        if self.heap.len() < self.k {
            self.heap.push(Reverse(item));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if item > worst.0 {
                *worst = Reverse(item);
            } else {
                return;
            }
        }
        if self.heap.len() == self.k {
            if let Some(Reverse(worst)) = self.heap.peek() {
                self.floor = worst.score;
            }
        }
    }

    /// Merges another selection into this one.
    pub fn merge(mut self, other: TopK) -> TopK {
        for Reverse(item) in other.heap {
            if item.score >= self.floor {
                self.push(item);
            }
        }
        self
    }

    /// The rows, best first.
    pub fn into_sorted(self) -> Vec<Scored> {
        let mut items: Vec<Scored> = self.heap.into_iter().map(|Reverse(s)| s).collect();
        items.sort_by(|a, b| b.cmp(a));
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_best_k_in_order_with_ties_by_row() {
        let mut t = TopK::new(3);
        for (row, score) in [0.1, 0.9, 0.5, 0.9, 0.2, 0.7].into_iter().enumerate() {
            t.push(Scored { score, row });
        }
        let rows: Vec<usize> = t.into_sorted().iter().map(|s| s.row).collect();
        assert_eq!(rows, vec![1, 3, 5]);
    }

    #[test]
    fn merge_equals_single_pass() {
        let scores: Vec<f32> = (0..100).map(|i| ((i * 37) % 101) as f32).collect();
        let mut all = TopK::new(10);
        let (mut a, mut b) = (TopK::new(10), TopK::new(10));
        for (row, &score) in scores.iter().enumerate() {
            all.push(Scored { score, row });
            if row % 2 == 0 {
                a.push(Scored { score, row })
            } else {
                b.push(Scored { score, row })
            }
        }
        let merged: Vec<usize> = a.merge(b).into_sorted().iter().map(|s| s.row).collect();
        let single: Vec<usize> = all.into_sorted().iter().map(|s| s.row).collect();
        assert_eq!(merged, single);
    }

    #[test]
    fn zero_k_keeps_nothing() {
        let mut t = TopK::new(0);
        t.push(Scored { score: 1.0, row: 0 });
        assert!(t.into_sorted().is_empty());
    }

    /// Offering only scores at or above the floor (as the hot loops do) selects what
    /// offering every score does, ties and merges included.
    #[test]
    fn floor_gated_offers_match_plain_ones_with_ties_and_merge() {
        let scores: Vec<f32> = (0..500).map(|i| ((i * 37) % 53) as f32).collect();
        let mut want = TopK::new(7);
        let (mut a, mut b) = (TopK::new(7), TopK::new(7));
        for (row, &score) in scores.iter().enumerate() {
            want.push(Scored { score, row });
            let half = if row % 3 == 0 { &mut a } else { &mut b };
            if score >= half.floor() {
                half.push(Scored { score, row });
            }
        }
        let got: Vec<usize> = a.merge(b).into_sorted().iter().map(|s| s.row).collect();
        let want: Vec<usize> = want.into_sorted().iter().map(|s| s.row).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn zero_k_floor_rejects_everything() {
        let mut b = TopK::new(0);
        assert!(1e30 < b.floor());
        b.push(Scored { score: 1.0, row: 0 });
        assert!(b.into_sorted().is_empty());
    }
}
