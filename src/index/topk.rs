//! Bounded top-k selection: a min-heap of the k best (score, row) seen so far.

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
}

impl TopK {
    /// An empty selection of at most `k` rows.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Offers a row; cheap when it does not beat the current k-th best.
    #[inline]
    pub fn push(&mut self, item: Scored) {
        if self.heap.len() < self.k {
            self.heap.push(Reverse(item));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if item > worst.0 {
                *worst = Reverse(item);
            }
        }
    }

    /// Merges another selection into this one.
    pub fn merge(mut self, other: TopK) -> TopK {
        for Reverse(item) in other.heap {
            self.push(item);
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
}
