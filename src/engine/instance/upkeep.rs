//! Upkeep of an instance's vector file: automatic compaction, reload after an offline
//! rebuild, rebuild from the store, and fitting or removing a whitening.
//!
//! Each writes or opens a generation and swaps it in whole ([`super::Layer`]); searches
//! under way finish on the snapshot they hold. They are ordered by the instance's upkeep
//! lock; a rebuild or whitening holds the write lock only to catch up (`catch_up.rs`),
//! a reload for its whole run. The whitening within products fitted on its own is
//! `within_fit.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::reconcile::open_reconciled;
use super::whitening::{Projection, Whitening, WhiteningFit, WhiteningParams};
use super::{Instance, Layer};
use crate::engine::Result;
use crate::store::{InstanceMeta, Store};

/// What fitting or removing a whitening did ([`Instance::whiten`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WhitenOutcome {
    /// The generation written.
    pub generation: u64,
    /// Dimension of the rows now.
    pub dimension: usize,
    /// Pictures the whitening was fitted on (0 when removed).
    pub fitted_on: u64,
    /// Share of the variance the kept components hold (1 when removed).
    pub kept_variance: f64,
}

impl Instance {
    /// Starts a compaction on a background thread when dead rows have reached the
    /// policy's share (cheap otherwise: called after every tombstoning write). The thread
    /// waits for the write lock, so it starts after the write that called it.
    pub(super) fn compact_if_due(&self) {
        let rows = self.index.load().snapshot().rows() as u64;
        let live = self.live.load(Ordering::Relaxed);
        if !self.compaction.try_start(rows, live) {
            return;
        }
        let Some(this) = self.this.upgrade() else {
            // Not shared (a tool's own instance): nothing can hold it for a thread.
            self.compaction.finish(true);
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("compact".into())
            .spawn(move || {
                let ok = this.compact();
                this.compaction.finish(ok);
            });
        if let Err(e) = spawned {
            tracing::warn!(instance = %self.meta.name, error = %e, "cannot start a compaction thread");
            self.compaction.finish(false);
        }
    }

    /// Rewrites the vector file without its dead rows ([`Self::rebuild`]); logs and counts
    /// the outcome; true when it succeeded.
    fn compact(&self) -> bool {
        let started = std::time::Instant::now();
        let before = self.snapshot();
        let (rows, live) = (before.rows(), before.live_rows());
        let old_generation = before.generation();
        drop(before);
        let name = self.meta.name.clone();
        match self.rebuild_as("compaction") {
            Ok(generation) => {
                let seconds = started.elapsed().as_secs_f64();
                tracing::info!(
                    instance = %name,
                    rows,
                    dead = rows - live,
                    rows_after = self.snapshot().rows(),
                    from_generation = old_generation,
                    generation,
                    ms = (seconds * 1000.0).round() as u64,
                    "vector file compacted"
                );
                metrics::counter!("imgsearch_compactions_total", "instance" => name.clone())
                    .increment(1);
                metrics::counter!("imgsearch_compacted_rows_total", "instance" => name.clone())
                    .increment((rows - live) as u64);
                metrics::histogram!("imgsearch_compaction_seconds", "instance" => name)
                    .record(seconds);
                true
            }
            Err(e) => {
                tracing::error!(instance = %name, error = %e, "compaction failed; the old vector file stays in use");
                metrics::counter!("imgsearch_compaction_failures_total", "instance" => name)
                    .increment(1);
                false
            }
        }
    }

    /// Pins the current vector file for a snapshot (`snapshot/take.rs`): under the write
    /// lock, so its header counts exactly the acknowledged rows; also returns how long
    /// writes were held.
    pub(in crate::engine) fn pin_generation(
        &self,
    ) -> Result<(crate::index::PinnedGeneration, std::time::Duration)> {
        let _writer = self.writer.lock();
        let held = std::time::Instant::now();
        let pinned = self.index.load().pin_generation();
        Ok((pinned?, held.elapsed()))
    }

    /// Re-opens the index from its manifest (after an offline rebuild) and reconciles it
    /// with the store; searches under way finish on the old map.
    pub fn reload(&self) -> Result<()> {
        let _upkeep = self.upkeep.lock();
        let _writer = self.write_lock()?;
        let projection = super::whitening::stored(&self.store, &self.meta)?;
        if let Some(votes) = &self.votes {
            votes.reload(&self.store, &self.meta)?;
        }
        self.open_and_swap(projection, None)
    }

    /// Opens the manifest's generation, reconciles it with the store and swaps it in with
    /// `projection` (searches under way finish on the old one); `fault` is the crash
    /// point between the two. The caller holds the write lock.
    pub(super) fn open_and_swap(
        &self,
        projection: Projection,
        fault: Option<&'static str>,
    ) -> Result<()> {
        let (index, reconciled) = open_reconciled(
            &self.store,
            &self.meta,
            &self.index_dir,
            &self.dictionaries,
            &projection,
        )?;
        if let Some(name) = fault {
            crate::fault::point(name);
        }
        self.live.store(reconciled.live, Ordering::Relaxed);
        self.index.store(Arc::new(Layer { index, projection }));
        self.scan_copy.refresh(self.snapshot());
        Ok(())
    }

    /// Writes a compacted generation from the store (dropping deleted rows) and swaps to it.
    pub fn rebuild(&self) -> Result<u64> {
        self.rebuild_as("admin")
    }

    /// [`Self::rebuild`], counted under `reason` (`admin` or `compaction`). Writes go on
    /// while the store is read and the new file written; they wait only while the new
    /// index catches up with them and is swapped in (`catch_up.rs`); searches keep
    /// scanning the old snapshot until the swap.
    fn rebuild_as(&self, reason: &'static str) -> Result<u64> {
        let _upkeep = self.upkeep.lock();
        self.rebuild_catching_up(reason)
    }

    /// Fits a whitening on the instance's stored vectors (`Some`) or removes it (`None`),
    /// stores it with the instance and rebuilds the index through it.
    ///
    /// The fit reads the store without the write lock (writes go on meanwhile; the fit
    /// need not see the last few pictures). Then the whitening is committed to the store
    /// first (the store is the truth) and the index rebuilt through it, writes held back
    /// only to catch up (`catch_up.rs`; the rows added meanwhile are projected again from
    /// their stored vectors): a crash in between leaves a vector file of the old
    /// projection, which the next open detects and rebuilds ([`open_reconciled`]).
    pub fn whiten(&self, params: Option<&WhiteningParams>) -> Result<WhitenOutcome> {
        let projection = match params {
            Some(params) => {
                let products = params
                    .within_product
                    .then(|| repeated_products(&self.store, &self.meta))
                    .transpose()?;
                Projection::whitening(self.fit_whitening(params, products.as_ref())?)
            }
            None => Projection::none(),
        };
        self.swap_projection(projection)
    }

    /// Stores `projection` with the instance and rebuilds the index through it (the
    /// second half of [`Self::whiten`]).
    pub(super) fn swap_projection(&self, projection: Projection) -> Result<WhitenOutcome> {
        let _upkeep = self.upkeep.lock();
        // A deleted or replaced instance refuses here, before anything is stored for it
        // (both take the upkeep lock, so it cannot happen after).
        drop(self.write_lock()?);
        let bytes = projection.get().map(Whitening::to_bytes);
        self.store.set_projection(self.meta.id, bytes.as_deref())?;
        crate::fault::point("whiten.after_store_commit");
        let generation = self.rebuild_catching_up_to("whiten", Some(projection.clone()))?;
        let w = projection.get();
        Ok(WhitenOutcome {
            generation,
            dimension: projection.dimension(self.meta.dimension as usize),
            fitted_on: w.map_or(0, Whitening::fitted_on),
            kept_variance: w.map_or(1.0, Whitening::kept_variance),
        })
    }

    /// Fits a whitening on the stored vectors; within products, each picture is given
    /// its product in `products` ([`repeated_products`]; pictures not there only move
    /// the mean).
    pub(super) fn fit_whitening(
        &self,
        params: &WhiteningParams,
        products: Option<&RepeatedProducts>,
    ) -> Result<Whitening> {
        let mut fit = WhiteningFit::new(self.meta.dimension as usize);
        let mut failed = None;
        self.store.for_each_vector(self.meta.id, |doc, vector| {
            if failed.is_none() {
                let added = match products.map(|p| p.get(&doc)) {
                    None => fit.add(&vector),
                    Some(Some(product)) => fit.add_of_product(&vector, *product),
                    Some(None) => fit.add_mean_only(&vector),
                };
                failed = added.err();
            }
            Ok(())
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        Ok(fit.finish(params)?)
    }
}

/// The product (numbered) of each picture a fit within products takes, by doc.
pub(super) type RepeatedProducts = HashMap<u64, u32>;

/// Pictures beside their product's first in `products`, and their docs in doc order.
pub(super) fn repeats(products: &RepeatedProducts) -> (u64, Vec<u64>) {
    let distinct: HashSet<u32> = products.values().copied().collect();
    let mut docs: Vec<u64> = products.keys().copied().collect();
    docs.sort_unstable();
    ((products.len() - distinct.len()) as u64, docs)
}

/// Bytes of per-product sums a fit within products holds at most (8 per dimension per
/// product): 256 MiB, 131,072 products at 256 dimensions.
const WITHIN_FIT_SUM_BYTES: usize = 256 << 20;

/// The product (numbered) of every stored picture whose product has another, for the
/// first products (in doc order) whose sums fit in [`WITHIN_FIT_SUM_BYTES`]; pictures of
/// later products only move the mean.
pub(super) fn repeated_products(store: &Store, meta: &InstanceMeta) -> Result<RepeatedProducts> {
    let (inst, dim) = (meta.id, meta.dimension as usize);
    let mut numbers: HashMap<String, u32> = HashMap::new();
    let mut docs: Vec<(u64, u32)> = Vec::new();
    store.for_each_record(inst, |doc, record| {
        let next = numbers.len() as u32;
        let number = *numbers.entry(record.product_id).or_insert(next);
        docs.push((doc, number));
        Ok(())
    })?;
    let mut counts = vec![0u32; numbers.len()];
    for (_, number) in &docs {
        counts[*number as usize] += 1;
    }
    // Products are numbered in doc order: keep the first that fit.
    let most = WITHIN_FIT_SUM_BYTES / (8 * dim.max(1));
    let mut kept = vec![false; counts.len()];
    let mut taken = 0;
    for (number, count) in counts.iter().enumerate() {
        if *count > 1 && taken < most {
            kept[number] = true;
            taken += 1;
        }
    }
    Ok(docs
        .into_iter()
        .filter(|(_, number)| kept[*number as usize])
        .collect())
}
