//! Binary codes → ids: multi-index hashing over 256-bit codes (the descriptors of local
//! features), to find which stored ids hold codes near a query's.
//!
//! Every code is cut into [`SUBSTRINGS`] substrings of 16 bits, and each substring has a
//! table from its 65,536 values to the codes holding it. A code within Hamming distance
//! `r < SUBSTRINGS` of the query agrees exactly with it on at least one substring
//! (pigeonhole), so exact lookups in the tables find every code within
//! [`GUARANTEED_RADIUS`] bits; farther ones are found whenever some substring happens to
//! agree (a pair 40 bits apart does on one of the 16 about two times in three). The
//! candidates are then checked on their full 256 bits.
//!
//! Nothing here knows about pictures: an id is the caller's (a doc), with any number of
//! codes. Entry point: [`CodeIndex`].

use std::collections::HashMap;

/// A 256-bit code.
pub type Code = [u64; 4];

/// Substrings (and tables) per code.
pub const SUBSTRINGS: usize = 16;
/// Bits of a substring: a table has `1 << SUBSTRING_BITS` buckets.
const SUBSTRING_BITS: usize = 256 / SUBSTRINGS;
const BUCKETS: usize = 1 << SUBSTRING_BITS;
/// Distance within which every stored code is found.
pub const GUARANTEED_RADIUS: u32 = SUBSTRINGS as u32 - 1;
/// A bucket holding more than this many times the mean number of codes per bucket (and
/// more than [`MIN_CROWDED`]) is skipped by lookups.
pub const CROWDED: usize = 16;
/// Bucket size below which no bucket counts as crowded.
pub const MIN_CROWDED: usize = 64;
/// Marks a free slot in `owners`.
const FREE: u64 = u64::MAX;

/// Hamming distance of two codes.
#[inline]
pub fn hamming(a: &Code, b: &Code) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// Substring `t` of a code (16 bits).
#[inline]
fn substring(code: &Code, t: usize) -> usize {
    let bit = t * SUBSTRING_BITS;
    ((code[bit / 64] >> (bit % 64)) & (BUCKETS as u64 - 1)) as usize
}

/// Pushes onto a bucket growing it by an eighth (at least one) when full, not by
/// doubling: the buckets are most of the memory, and a doubled one is half empty.
#[inline]
fn push_compact(bucket: &mut Vec<u32>, slot: u32) {
    if bucket.len() == bucket.capacity() {
        bucket.reserve_exact((bucket.len() / 8).max(1));
    }
    bucket.push(slot);
}

/// Ids with their codes, searchable by Hamming distance (see the module doc).
///
/// Codes live in slots; a removed id's slots are reused. Memory: 32 bytes per code, its
/// owner (8) and one slot number per table (4 × 16), plus the empty buckets' headers
/// (16 × 65,536 × 24 bytes ≈ 25 MB, allocated at the first insert).
#[derive(Default)]
pub struct CodeIndex {
    /// Code of each slot.
    codes: Vec<Code>,
    /// Id owning each slot ([`FREE`] when none).
    owners: Vec<u64>,
    /// Free slots.
    free: Vec<u32>,
    /// Slots of each id.
    slots: HashMap<u64, Vec<u32>>,
    /// Per substring, per value: the slots whose code has that value there.
    tables: Vec<Box<[Vec<u32>]>>,
}

impl CodeIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ids held.
    pub fn ids(&self) -> usize {
        self.slots.len()
    }

    /// Codes held.
    pub fn codes(&self) -> usize {
        self.owners.len() - self.free.len()
    }

    /// Codes held for `id`.
    pub fn codes_of(&self, id: u64) -> usize {
        self.slots.get(&id).map_or(0, Vec::len)
    }

    /// Adds `codes` for `id`, replacing those it had.
    pub fn insert(&mut self, id: u64, codes: &[Code]) {
        assert_ne!(id, FREE, "id {FREE} is reserved");
        self.remove(id);
        if codes.is_empty() {
            return;
        }
        if self.tables.is_empty() {
            self.tables = (0..SUBSTRINGS)
                .map(|_| vec![Vec::new(); BUCKETS].into_boxed_slice())
                .collect();
        }
        let mut mine = Vec::with_capacity(codes.len());
        for code in codes {
            let slot = match self.free.pop() {
                Some(s) => {
                    self.codes[s as usize] = *code;
                    self.owners[s as usize] = id;
                    s
                }
                None => {
                    self.codes.push(*code);
                    self.owners.push(id);
                    (self.owners.len() - 1) as u32
                }
            };
            for (t, table) in self.tables.iter_mut().enumerate() {
                push_compact(&mut table[substring(code, t)], slot);
            }
            mine.push(slot);
        }
        self.slots.insert(id, mine);
    }

    /// Removes `id` and its codes; false when it had none.
    pub fn remove(&mut self, id: u64) -> bool {
        let Some(mine) = self.slots.remove(&id) else {
            return false;
        };
        for slot in mine {
            let code = self.codes[slot as usize];
            for (t, table) in self.tables.iter_mut().enumerate() {
                let bucket = &mut table[substring(&code, t)];
                if let Some(at) = bucket.iter().position(|s| *s == slot) {
                    bucket.swap_remove(at);
                }
            }
            self.owners[slot as usize] = FREE;
            self.free.push(slot);
        }
        true
    }

    /// Calls `visit(query index, id, distance)` for every stored code within
    /// `max_distance` of a query code that shares a substring with it (all of them up to
    /// [`GUARANTEED_RADIUS`]), once per (query code, stored code). Buckets holding more
    /// than [`CROWDED`] times the mean (at least [`MIN_CROWDED`]) codes are skipped: a
    /// substring that common says little, and checking them would cost most of the time.
    pub fn near(&self, query: &[Code], max_distance: u32, mut visit: impl FnMut(usize, u64, u32)) {
        if self.tables.is_empty() {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("popcnt") {
                // SAFETY: the CPU supports POPCNT, checked just above.
                return unsafe { self.near_popcnt(query, max_distance, &mut visit) };
            }
        }
        self.near_portable(query, max_distance, &mut visit)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn near_popcnt(
        &self,
        query: &[Code],
        max_distance: u32,
        visit: &mut dyn FnMut(usize, u64, u32),
    ) {
        self.near_portable(query, max_distance, visit)
    }

    #[inline(always)]
    fn near_portable(
        &self,
        query: &[Code],
        max_distance: u32,
        visit: &mut dyn FnMut(usize, u64, u32),
    ) {
        let crowded = (self.codes() * CROWDED / BUCKETS).max(MIN_CROWDED);
        // Stamp per slot: the query code that last checked it (a code found in several
        // tables is checked once).
        let mut seen = vec![u32::MAX; self.owners.len()];
        for (q, code) in query.iter().enumerate() {
            for (t, table) in self.tables.iter().enumerate() {
                let bucket = &table[substring(code, t)];
                if bucket.len() > crowded {
                    continue;
                }
                for &slot in bucket {
                    let s = slot as usize;
                    if seen[s] == q as u32 {
                        continue;
                    }
                    seen[s] = q as u32;
                    let d = hamming(code, &self.codes[s]);
                    if d <= max_distance {
                        visit(q, self.owners[s], d);
                    }
                }
            }
        }
    }

    /// Ids by votes, most first (ties by id), at most `n`: a query code votes for the id
    /// holding its nearest code within `max_distance` when the nearest code of any other
    /// id is farther by the ratio test (`nearest * 100 < other * ratio_percent`; 100
    /// votes for the nearest whatever the others).
    pub fn votes(
        &self,
        query: &[Code],
        max_distance: u32,
        ratio_percent: u32,
        n: usize,
    ) -> Vec<(u64, u32)> {
        self.voters(query, max_distance, ratio_percent, n)
            .into_iter()
            .map(|(id, voters)| (id, voters.len() as u32))
            .collect()
    }

    /// [`Self::votes`] with the query codes that voted for each id (ascending) instead
    /// of their number.
    pub fn voters(
        &self,
        query: &[Code],
        max_distance: u32,
        ratio_percent: u32,
        n: usize,
    ) -> Vec<(u64, Vec<u32>)> {
        let mut tally: HashMap<u64, Vec<u32>> = HashMap::new();
        // Per query code: (distance, id) of the nearest hit and the nearest distance
        // among other ids.
        let mut best: Option<(u32, u64)> = None;
        let mut other = u32::MAX;
        let mut current_q = usize::MAX;
        let mut flush = |q: usize, best: &mut Option<(u32, u64)>, other: &mut u32| {
            if let Some((d, id)) = best.take() {
                if ratio_percent >= 100 || *other == u32::MAX || d * 100 < *other * ratio_percent {
                    tally.entry(id).or_default().push(q as u32);
                }
            }
            *other = u32::MAX;
        };
        self.near(query, max_distance, |q, id, d| {
            if q != current_q {
                flush(current_q, &mut best, &mut other);
                current_q = q;
            }
            match best {
                Some((bd, bid)) if bid == id => best = Some((bd.min(d), id)),
                Some((bd, _)) if d < bd => {
                    other = other.min(bd);
                    best = Some((d, id));
                }
                Some(_) => other = other.min(d),
                None => best = Some((d, id)),
            }
        });
        flush(current_q, &mut best, &mut other);
        let mut ranked: Vec<(u64, Vec<u32>)> = tally.into_iter().collect();
        ranked.sort_unstable_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        ranked.truncate(n);
        ranked
    }

    /// Gives back the slack of every bucket and list (after a bulk load: a bucket
    /// grown by pushes holds up to twice its entries).
    pub fn shrink_to_fit(&mut self) {
        for table in &mut self.tables {
            table.iter_mut().for_each(Vec::shrink_to_fit);
        }
        self.codes.shrink_to_fit();
        self.owners.shrink_to_fit();
        self.slots.values_mut().for_each(Vec::shrink_to_fit);
        self.slots.shrink_to_fit();
    }

    /// Of [`Self::memory_bytes`], the empty buckets' headers: the same whatever the
    /// number of codes.
    pub fn fixed_bytes(&self) -> usize {
        self.tables.len() * BUCKETS * std::mem::size_of::<Vec<u32>>()
    }

    /// Bytes held (codes, owners, table entries and bucket headers), for reports.
    pub fn memory_bytes(&self) -> usize {
        let entries: usize = self
            .tables
            .iter()
            .flat_map(|t| t.iter())
            .map(|b| b.capacity() * 4)
            .sum();
        self.codes.capacity() * 32
            + self.owners.capacity() * 8
            + entries
            + self.fixed_bytes()
            + self
                .slots
                .values()
                .map(|v| v.capacity() * 4 + 32)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random codes.
    fn codes(seed: u64, n: usize) -> Vec<Code> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        (0..n).map(|_| [next(), next(), next(), next()]).collect()
    }

    /// `code` with `bits` bits flipped, spread so every substring loses at most one
    /// (the worst case for multi-index hashing: no substring left intact when
    /// `bits >= SUBSTRINGS`).
    fn flipped(code: &Code, bits: usize) -> Code {
        let mut out = *code;
        for i in 0..bits {
            let bit = (i % SUBSTRINGS) * SUBSTRING_BITS + (i / SUBSTRINGS + 3 * i) % SUBSTRING_BITS;
            out[bit / 64] ^= 1 << (bit % 64);
        }
        out
    }

    fn near_ids(index: &CodeIndex, query: &[Code], max: u32) -> Vec<(usize, u64, u32)> {
        let mut out = Vec::new();
        index.near(query, max, |q, id, d| out.push((q, id, d)));
        out.sort_unstable();
        out
    }

    #[test]
    fn exact_and_near_codes_are_found_within_the_guaranteed_radius() {
        let mut index = CodeIndex::new();
        let stored: Vec<Vec<Code>> = (0..50).map(|i| codes(i, 40)).collect();
        for (id, c) in stored.iter().enumerate() {
            index.insert(id as u64, c);
        }
        assert_eq!((index.ids(), index.codes()), (50, 2000));
        assert_eq!(index.codes_of(7), 40);
        // Exact: found at distance 0, and nothing else comes near random codes.
        let hits = near_ids(&index, &stored[7][3..4], 40);
        assert_eq!(hits, vec![(0, 7, 0)]);
        // Flipping GUARANTEED_RADIUS bits, one per substring but one: still found.
        for id in [0usize, 19, 49] {
            let query: Vec<Code> = stored[id]
                .iter()
                .map(|c| flipped(c, GUARANTEED_RADIUS as usize))
                .collect();
            let hits = near_ids(&index, &query, GUARANTEED_RADIUS);
            assert_eq!(hits.len(), 40, "id {id}");
            assert!(hits
                .iter()
                .enumerate()
                .all(|(q, h)| *h == (q, id as u64, GUARANTEED_RADIUS)));
            // A larger distance bound admits the same (random codes are ~128 apart).
            assert_eq!(near_ids(&index, &query, 60).len(), 40);
            // A code with every substring touched is out of reach of exact lookups.
            let far: Vec<Code> = stored[id].iter().map(|c| flipped(c, 16)).collect();
            assert!(near_ids(&index, &far, 60).is_empty());
        }
        // The distance bound is applied: at 14 the 15-bit neighbours are refused.
        let query = [flipped(&stored[3][0], 15)];
        assert!(near_ids(&index, &query, 14).is_empty());
        assert_eq!(near_ids(&index, &query, 15), vec![(0, 3, 15)]);
    }

    #[test]
    fn votes_rank_the_id_holding_most_near_codes() {
        let mut index = CodeIndex::new();
        for id in 0..30u64 {
            index.insert(id, &codes(id, 60));
        }
        // Query: 25 noisy codes of id 12, 10 of id 4, 100 unrelated ones.
        let mut query: Vec<Code> = codes(12, 25).iter().map(|c| flipped(c, 9)).collect();
        query.extend(codes(4, 10).iter().map(|c| flipped(c, 5)));
        query.extend(codes(999, 100));
        let votes = index.votes(&query, 40, 80, 5);
        assert_eq!(votes, vec![(12, 25), (4, 10)]);
        assert_eq!(index.votes(&query, 40, 80, 1), vec![(12, 25)]);
        // The voters are the query codes made from id 4's (25..35).
        let voters = index.voters(&query, 40, 80, 2);
        assert_eq!(voters[1], (4, (25..35).collect::<Vec<u32>>()));
        // The same codes under another id: ambiguous, no vote unless the ratio is off
        // (then ties go to the first visited).
        index.insert(100, &codes(12, 25));
        assert_eq!(index.votes(&query, 40, 80, 5), vec![(4, 10)]);
        let all = index.votes(&query, 40, 100, 5);
        assert_eq!(all.iter().map(|v| v.1).sum::<u32>(), 25 + 10);
        // A nearer code of another id takes the vote: id 101 holds 12's codes 2 bits off.
        index.remove(100);
        index.insert(
            101,
            &codes(12, 25)
                .iter()
                .map(|c| flipped(c, 2))
                .collect::<Vec<_>>(),
        );
        let query: Vec<Code> = codes(12, 25).iter().map(|c| flipped(c, 2)).collect();
        assert_eq!(index.votes(&query, 40, 80, 5), vec![(101, 25)]);
    }

    #[test]
    fn removed_and_replaced_ids_are_gone_and_slots_are_reused() {
        let mut index = CodeIndex::new();
        for id in 0..10u64 {
            index.insert(id, &codes(id, 30));
        }
        let before = index.owners.len();
        assert!(index.remove(3));
        assert!(!index.remove(3));
        assert_eq!((index.ids(), index.codes()), (9, 270));
        assert!(near_ids(&index, &codes(3, 30), 0).is_empty());
        // Replacing: the old codes are gone, the new ones found, slots reused.
        index.insert(5, &codes(55, 30));
        index.insert(11, &codes(11, 30));
        assert_eq!(index.owners.len(), before);
        assert!(near_ids(&index, &codes(5, 30), 0).is_empty());
        assert_eq!(near_ids(&index, &codes(55, 30), 0).len(), 30);
        assert!(near_ids(&index, &codes(11, 30), 0)
            .iter()
            .all(|h| h.1 == 11 && h.2 == 0));
        // Every remaining bucket entry belongs to a live id.
        for table in &index.tables {
            for bucket in table.iter() {
                assert!(bucket.iter().all(|s| index.owners[*s as usize] != FREE));
            }
        }
        // No codes: the id is not held.
        index.insert(5, &[]);
        assert_eq!(index.codes_of(5), 0);
        assert_eq!(index.ids(), 9);
    }
}
