//! A compact per-row column of 32-bit values, appended by one writer and read by scans.

use std::sync::atomic::{AtomicU32, Ordering};

/// Fixed-capacity column; rows below a snapshot's row count are written before the
/// snapshot is published, so readers never see a row being written.
pub struct U32Column {
    values: Box<[AtomicU32]>,
}

impl U32Column {
    /// A column of `capacity` zeros. Allocated zeroed rather than written: the pages
    /// past the rows in use (an index is opened with room for twice its rows) are not
    /// touched until rows reach them, which halves what an open of a large instance
    /// clears.
    pub fn with_capacity(capacity: usize) -> Self {
        let values = Box::<[AtomicU32]>::new_zeroed_slice(capacity);
        // SAFETY: all-zero bytes are a valid AtomicU32 (it has the layout of a u32).
        let values = unsafe { values.assume_init() };
        U32Column { values }
    }

    /// Number of rows it can hold.
    pub fn capacity(&self) -> usize {
        self.values.len()
    }

    /// Value of row `i` (0 beyond capacity).
    #[inline]
    pub fn get(&self, i: usize) -> u32 {
        self.values.get(i).map_or(0, |v| v.load(Ordering::Relaxed))
    }

    /// Values of rows `first..first + out.len()` into `out` (0 beyond capacity): a scan
    /// deciding a filter for many rows at once reads them here.
    #[inline]
    pub fn read(&self, first: usize, out: &mut [u32]) {
        let values = self.values.get(first..).unwrap_or(&[]);
        out.fill(0);
        for (o, v) in out.iter_mut().zip(values) {
            *o = v.load(Ordering::Relaxed);
        }
    }

    /// Sets row `i`; out of range is ignored (the caller grows first). Only the index
    /// writes, so that it stamps every change of a published row
    /// ([`super::Snapshot::column_stamp`]).
    pub(super) fn set(&self, i: usize, value: u32) {
        if let Some(v) = self.values.get(i) {
            v.store(value, Ordering::Relaxed);
        }
    }

    /// Sets rows `0..values.len()` at once (values past the capacity are ignored).
    pub(super) fn fill(&self, values: &[u32]) {
        for (v, value) in self.values.iter().zip(values) {
            v.store(*value, Ordering::Relaxed);
        }
    }

    /// A copy with a larger capacity.
    pub fn grown(&self, capacity: usize) -> Self {
        let grown = Self::with_capacity(capacity.max(self.capacity()));
        for (i, v) in self.values.iter().enumerate() {
            grown.values[i].store(v.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        grown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_grow() {
        let c = U32Column::with_capacity(4);
        c.set(1, 7);
        c.set(9, 1); // ignored
        let g = c.grown(10);
        assert_eq!((g.get(1), g.get(9), g.capacity()), (7, 0, 10));
        let mut out = [9u32; 4];
        g.read(8, &mut out);
        assert_eq!(out, [0, 0, 0, 0]);
        g.read(0, &mut out);
        assert_eq!(out, [0, 7, 0, 0]);
    }
}
