//! Pixel buffers of decoded pictures, kept for the next decode instead of freed.
//!
//! A decoded 640×480 picture is 0.9 MB, above the allocator's mmap threshold (see
//! `allocator.rs`): each one was mapped, zeroed and faulted in page by page, then unmapped
//! when the request ended. With a model, those page faults were 3.1 of the JPEG decode's
//! 13.4 % of the server's CPU time (profiled at 8 clients). A dropped [`Picture`](super::decode::Picture)
//! gives its pixels back here, and the next decode reuses them, already mapped.
//!
//! The pool is bounded: at most [`KEPT`] buffers of at most [`LARGEST_KEPT`] bytes each
//! (32 MB in all), in practice as many as pictures were decoded at once; a larger
//! picture's buffer is freed as before.

use parking_lot::Mutex;

/// Buffers kept at most: more than the requests a server decodes at once.
const KEPT: usize = 16;

/// Largest buffer kept, in bytes (a 1024×682 RGB picture is 2.1 MB).
const LARGEST_KEPT: usize = 2 * 1024 * 1024;

/// Smallest buffer kept: below the allocator's mmap threshold it reuses freed memory.
const SMALLEST_KEPT: usize = 256 * 1024;

/// Buffers given back, waiting for a decode.
pub(crate) struct Pool {
    kept: Mutex<Vec<Vec<u8>>>,
}

/// The process's pool, which decodes take from and dropped pictures give back to.
pub(crate) static POOL: Pool = Pool::new();

impl Pool {
    /// An empty pool.
    const fn new() -> Self {
        Pool {
            kept: Mutex::new(Vec::new()),
        }
    }

    /// A buffer of `len` zero bytes: a kept one with room for them when there is one,
    /// else a new one.
    pub(crate) fn take(&self, len: usize) -> Vec<u8> {
        let kept = {
            let mut kept = self.kept.lock();
            kept.iter()
                .position(|b| b.capacity() >= len)
                .map(|at| kept.swap_remove(at))
        };
        match kept {
            Some(mut buffer) => {
                buffer.clear();
                buffer.resize(len, 0);
                buffer
            }
            None => vec![0; len],
        }
    }

    /// Keeps `buffer` for a later [`Self::take`] when it is worth keeping and the pool
    /// has room; frees it otherwise.
    pub(crate) fn give_back(&self, buffer: Vec<u8>) {
        // Below the mmap threshold the allocator reuses the memory anyway.
        if !(SMALLEST_KEPT..=LARGEST_KEPT).contains(&buffer.capacity()) {
            return;
        }
        let mut kept = self.kept.lock();
        if kept.len() < KEPT {
            kept.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_reused_zeroed_and_others_are_not_kept() {
        let pool = Pool::new();
        let mut buffer = pool.take(600_000);
        assert!(buffer.iter().all(|&b| b == 0));
        buffer.iter_mut().for_each(|b| *b = 7);
        let address = buffer.as_ptr();
        pool.give_back(buffer);
        let again = pool.take(500_000);
        assert_eq!(again.as_ptr(), address, "the kept buffer is taken again");
        assert_eq!(again.len(), 500_000);
        assert!(again.iter().all(|&b| b == 0), "a reused buffer is zeroed");
        // Too small to be worth it, too large to keep, or the pool full.
        pool.give_back(vec![0; 1000]);
        pool.give_back(vec![0; LARGEST_KEPT + 1]);
        assert!(pool.kept.lock().is_empty());
        (0..KEPT + 3).for_each(|_| pool.give_back(vec![0; SMALLEST_KEPT]));
        assert_eq!(pool.kept.lock().len(), KEPT);
        // A kept buffer too small for the length asked is left for a smaller picture.
        let larger = pool.take(SMALLEST_KEPT + 1);
        assert_eq!(larger.len(), SMALLEST_KEPT + 1);
        assert_eq!(pool.kept.lock().len(), KEPT);
    }
}
