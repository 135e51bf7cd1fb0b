//! Bounded top-k for hot loops: [`Best`] keeps the k best (score, row) like
//! [`super::topk::TopK`] and also exposes its floor (the k-th best score so far), so a
//! loop that offers tens of millions of scores rejects almost all of them with one float
//! comparison instead of a heap peek.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::topk::Scored;

/// The k best scored rows (same order as [`super::topk::TopK`]: higher score first,
/// lower row first on ties), with a cached floor.
pub(super) struct Best {
    k: usize,
    heap: BinaryHeap<Reverse<Scored>>,
    floor: f32,
}

impl Best {
    /// An empty selection of at most `k` rows.
    pub(super) fn new(k: usize) -> Self {
        Best {
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
    /// so callers offer a score when `score >= floor()`.
    #[inline]
    pub(super) fn floor(&self) -> f32 {
        self.floor
    }

    /// Offers a row.
    #[inline]
    pub(super) fn push(&mut self, item: Scored) {
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
    pub(super) fn merge(mut self, other: Best) -> Best {
        for Reverse(item) in other.heap {
            if item.score >= self.floor {
                self.push(item);
            }
        }
        self
    }

    /// The rows, best first.
    pub(super) fn into_sorted(self) -> Vec<Scored> {
        let mut items: Vec<Scored> = self.heap.into_iter().map(|Reverse(s)| s).collect();
        items.sort_by(|a, b| b.cmp(a));
        items
    }
}

#[cfg(test)]
mod tests {
    use super::super::topk::TopK;
    use super::*;

    #[test]
    fn matches_topk_with_ties_and_merge() {
        let scores: Vec<f32> = (0..500).map(|i| ((i * 37) % 53) as f32).collect();
        let mut want = TopK::new(7);
        let (mut a, mut b) = (Best::new(7), Best::new(7));
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
    fn zero_k_rejects_everything() {
        let mut b = Best::new(0);
        assert!(1e30 < b.floor());
        b.push(Scored { score: 1.0, row: 0 });
        assert!(b.into_sorted().is_empty());
    }
}
