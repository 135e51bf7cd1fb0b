//! A fixed-capacity bitset that one writer sets while many readers scan it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Tombstone bits, one per row; set with `Relaxed` stores since a reader that misses a
/// delete by a microsecond sees the same answer it would have had a moment earlier.
pub struct AtomicBitset {
    words: Box<[AtomicU64]>,
}

impl AtomicBitset {
    /// A bitset able to hold `capacity` bits, all clear.
    pub fn with_capacity(capacity: usize) -> Self {
        let words = (0..capacity.div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect();
        AtomicBitset { words }
    }

    /// Number of bits it can hold.
    pub fn capacity(&self) -> usize {
        self.words.len() * 64
    }

    /// Sets bit `i`; out of range is ignored (the caller grows first).
    pub fn set(&self, i: usize) {
        if let Some(word) = self.words.get(i / 64) {
            word.fetch_or(1 << (i % 64), Ordering::Relaxed);
        }
    }

    /// Whether bit `i` is set.
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (i % 64)) != 0)
    }

    /// The 64 bits of word `w` (bits 64w..64w+63).
    #[inline]
    pub fn word(&self, w: usize) -> u64 {
        self.words.get(w).map_or(0, |x| x.load(Ordering::Relaxed))
    }

    /// Sets the bits set in `words` (word w holds bits 64w..64w+63; words past the
    /// capacity are ignored).
    pub fn set_words(&self, words: &[u64]) {
        for (word, bits) in self.words.iter().zip(words) {
            word.fetch_or(*bits, Ordering::Relaxed);
        }
    }

    /// Number of set bits.
    pub fn count(&self) -> usize {
        self.words
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones() as usize)
            .sum()
    }

    /// A copy with a larger capacity (bits beyond the old capacity clear).
    pub fn grown(&self, capacity: usize) -> Self {
        let grown = Self::with_capacity(capacity.max(self.capacity()));
        for (i, w) in self.words.iter().enumerate() {
            grown.words[i].store(w.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        grown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_grow() {
        let b = AtomicBitset::with_capacity(100);
        assert_eq!(b.capacity(), 128);
        b.set(3);
        b.set(99);
        b.set(1000); // ignored
        assert!(b.get(3) && b.get(99) && !b.get(4) && !b.get(1000));
        let g = b.grown(300);
        assert!(g.capacity() >= 300 && g.get(3) && g.get(99));
        assert_eq!(g.count(), 2);
        assert_eq!(g.word(0), 1 << 3);
    }
}
