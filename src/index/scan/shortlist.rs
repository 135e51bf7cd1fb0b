//! The shortlist of the 1-bit stage (`bits_search.rs`): the best few thousand estimates of
//! a pass, kept without a heap, optionally starting at a floor sampled beforehand so that
//! only rows likely to be kept are ever offered.
//!
//! Offers at or above the floor are appended, and the buffer is cut back to the best
//! `keep` (a linear-time selection) when it holds twice that, so an offer costs O(1)
//! amortised instead of a heap insertion. Without a starting floor a pass offers about
//! `keep · (1 + ln(rows / keep))` rows per task, which dominates the pass when `keep` is
//! large (tens of thousands for 2,000 rows per wanted hit); with a floor that lets about
//! twice `keep` through, it offers those only.

use super::topk::Scored;

/// The best `keep` estimates seen (ties by row, as `TopK`).
pub(super) struct Shortlist {
    keep: usize,
    items: Vec<Scored>,
    floor: f32,
}

impl Shortlist {
    /// An empty shortlist of `keep` rows that accepts offers from `floor` up.
    pub(super) fn new(keep: usize, floor: f32) -> Self {
        Shortlist {
            keep,
            items: Vec::new(),
            floor: if keep == 0 { f32::INFINITY } else { floor },
        }
    }

    /// The least estimate an offer needs.
    #[inline]
    pub(super) fn floor(&self) -> f32 {
        self.floor
    }

    /// Offers a row (the caller has checked it reaches the floor).
    #[inline]
    pub(super) fn push(&mut self, item: Scored) {
        self.items.push(item);
        if self.items.len() >= 2 * self.keep.max(16) {
            self.cut();
        }
    }

    /// Keeps the best `keep`; the floor becomes the worst kept when `keep` are held.
    fn cut(&mut self) {
        if self.items.len() > self.keep {
            self.items
                .select_nth_unstable_by(self.keep, |a, b| b.cmp(a));
            self.items.truncate(self.keep);
        }
        if self.items.len() == self.keep {
            if let Some(worst) = self.items.iter().min() {
                self.floor = worst.score;
            }
        }
    }

    /// Both shortlists' offers in one.
    pub(super) fn merge(mut self, other: Shortlist) -> Shortlist {
        for item in other.items {
            if item.score >= self.floor {
                self.push(item);
            }
        }
        self
    }

    /// Whether `keep` rows are held (after a cut).
    pub(super) fn is_full(&mut self) -> bool {
        self.cut();
        self.items.len() >= self.keep
    }

    /// The `keep`-th best estimate when `keep` rows are held, else minus infinity.
    pub(super) fn kept_floor(mut self) -> f32 {
        if self.is_full() && self.keep > 0 {
            self.floor
        } else {
            f32::NEG_INFINITY
        }
    }

    /// The rows kept.
    pub(super) fn into_rows(mut self) -> Vec<usize> {
        self.cut();
        self.items.into_iter().map(|s| s.row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::scan::topk::TopK;
    use proptest::prelude::*;

    proptest! {
        /// Offers from a floor, split over two shortlists and merged, keep what a `TopK`
        /// of every offer keeps whenever `keep` rows reach the floor, and report short
        /// otherwise.
        #[test]
        fn a_floored_shortlist_keeps_the_best_or_reports_short(
            scores in proptest::collection::vec(0u8..40, 0..400),
            keep in 0usize..60,
            floor in 0u8..40,
            split in 0usize..400,
        ) {
            let floor = f32::from(floor);
            let items: Vec<Scored> = scores
                .iter()
                .enumerate()
                .map(|(row, &s)| Scored { score: f32::from(s), row })
                .collect();
            let (mut a, mut b) = (Shortlist::new(keep, floor), Shortlist::new(keep, floor));
            for (i, item) in items.iter().enumerate() {
                let part = if i < split { &mut a } else { &mut b };
                if item.score >= part.floor() {
                    part.push(*item);
                }
            }
            let mut merged = a.merge(b);
            let reaching = items.iter().filter(|s| s.score >= floor).count();
            prop_assert_eq!(merged.is_full(), reaching >= keep);
            let mut reference = TopK::new(keep);
            for item in &items {
                reference.push(*item);
            }
            let best = reference.into_sorted();
            if reaching >= keep {
                let mut rows = merged.into_rows();
                rows.sort_unstable();
                let mut want: Vec<usize> = best.iter().map(|s| s.row).collect();
                want.sort_unstable();
                prop_assert_eq!(rows, want);
            }
        }
    }

    #[test]
    fn the_kept_floor_is_the_keep_th_best_or_minus_infinity() {
        let mut list = Shortlist::new(3, f32::NEG_INFINITY);
        for (row, score) in [5.0, 1.0, 4.0, 2.0, 3.0].into_iter().enumerate() {
            list.push(Scored { score, row });
        }
        assert_eq!(list.kept_floor(), 3.0);
        let mut short = Shortlist::new(3, f32::NEG_INFINITY);
        short.push(Scored { score: 1.0, row: 0 });
        assert_eq!(short.kept_floor(), f32::NEG_INFINITY);
    }
}
