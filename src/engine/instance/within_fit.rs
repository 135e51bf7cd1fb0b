//! The automatic whitening within products: a catalogue of photos that holds products
//! with several pictures gets a whitening fitted on what varies between pictures of one
//! product (`whitening/`, `WhiteningParams::within_products`), once writes pause, and
//! fitted again each time the catalogue has grown by half.
//!
//! Why: photos of one product differ by light, angle and background; the within-product
//! covariance says which directions of the descriptor are that noise, and whitening it
//! weighs the rest. GroceryStore val (index train, 81 products of ~33 photos), the
//! defaults: P@1 / mAP@100 0.601 / 0.360 → 0.608 / 0.371 built-in and 0.699 / 0.507 →
//! 0.747 / 0.654 with MobileNetV1 + colour. A catalogue of one picture per product (the
//! copy benchmark's) has nothing to fit and is left as it is.
//!
//! When: adds note the live count; once it reaches the next check ([`MIN_PICTURES`],
//! then half as much again as the last fit or check), a background thread waits until
//! the live count and rows stay unchanged for [`QUIET`] (a bulk load is fitted once, on
//! all of it) or [`MOST_WAIT`] has passed, then fits when [`MIN_REPEATS`] pictures (and
//! a [`MIN_REPEAT_SHARE`] of all) lie beside their product's first and most sampled
//! previews show a product in a scene ([`MIN_PHOTO_SHARE`]). An index whitened within
//! products searches scenes without segment proposals (`search/mod.rs`), which find
//! products in scenes by matching silhouettes on white to product shots: a catalogue of
//! product shots keeps them and is not whitened. The fit and rebuild are
//! `Instance::whiten`'s (writes wait only while the rebuild catches up with them). An
//! operator's own whitening (`imgsearch index whiten` without `--within-product`) is
//! never replaced.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::upkeep::{repeated_products, repeats, WhitenOutcome};
use super::whitening::Projection;
use super::whitening::WhiteningParams;
use super::Instance;
use crate::engine::{EngineError, Result};
use crate::vision;

/// Live pictures before a catalogue is first checked.
pub const MIN_PICTURES: u64 = 500;
/// Pictures beside their product's first needed for a fit.
const MIN_REPEATS: u64 = 500;
/// Share of the live pictures that must lie beside their product's first.
const MIN_REPEAT_SHARE: f64 = 0.25;
/// How long the catalogue must stay unchanged before the fit starts.
const QUIET: Duration = Duration::from_secs(2);
/// Longest wait for writes to pause: a steady stream of adds is fitted anyway.
const MOST_WAIT: Duration = Duration::from_secs(60);
/// Share of the sampled previews that must be photos of products in scenes.
const MIN_PHOTO_SHARE: f64 = 0.5;
/// Previews sampled to tell a catalogue of photos from one of product shots.
const SAMPLED_PREVIEWS: usize = 64;
/// How often the waiting thread looks at the catalogue.
const POLL: Duration = Duration::from_millis(250);

/// When the next check is due and whether one is under way.
#[derive(Debug)]
pub(super) struct WithinFit {
    next_check: AtomicU64,
    running: AtomicBool,
}

impl Default for WithinFit {
    fn default() -> Self {
        WithinFit {
            next_check: AtomicU64::new(MIN_PICTURES),
            running: AtomicBool::new(false),
        }
    }
}

/// Whether `e` says the instance was deleted meanwhile (nothing to fit, nothing to say).
fn deleted(e: &EngineError) -> bool {
    matches!(e, EngineError::InstanceNotFound(_))
}

/// The live count at which a catalogue of `live` pictures is checked again.
fn grown_by_half(live: u64) -> u64 {
    (live + live / 2).max(MIN_PICTURES)
}

impl Instance {
    /// After an add (and when the server starts): starts the background check when it
    /// is due (cheap otherwise).
    pub(in crate::engine) fn fit_within_if_due(&self) {
        if !self.settings().fit_within_products {
            return;
        }
        let live = self.live.load(Ordering::Relaxed);
        if live < self.within_fit.next_check.load(Ordering::Relaxed)
            || self.within_fit.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let Some(this) = self.this.upgrade() else {
            // Not shared (a tool's own instance): it calls the fit itself.
            self.within_fit.running.store(false, Ordering::Release);
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("within-fit".into())
            .spawn(move || {
                this.wait_for_quiet();
                let fitted = this.fit_within_products_if_due();
                if let Some(e) = fitted.as_ref().err().filter(|e| !deleted(e)) {
                    tracing::warn!(instance = %this.meta.name, error = %e, "whitening within products failed; the index stays as it was");
                    let live = this.live.load(Ordering::Relaxed);
                    this.within_fit
                        .next_check
                        .store(grown_by_half(live), Ordering::Relaxed);
                }
                this.within_fit.running.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            tracing::warn!(instance = %self.meta.name, error = %e, "cannot start the whitening thread");
            self.within_fit.running.store(false, Ordering::Release);
        }
    }

    /// Waits until neither the live count nor the rows change for [`QUIET`] (or
    /// [`MOST_WAIT`] has passed).
    fn wait_for_quiet(&self) {
        let started = Instant::now();
        let state = || (self.live.load(Ordering::Relaxed), self.snapshot().rows());
        let (mut seen, mut since) = (state(), Instant::now());
        while since.elapsed() < QUIET && started.elapsed() < MOST_WAIT {
            std::thread::sleep(POLL);
            let now = state();
            if now != seen {
                (seen, since) = (now, Instant::now());
            }
        }
    }

    /// The share of up to [`SAMPLED_PREVIEWS`] previews spread over `docs` that show a
    /// product in a scene (a busy border, as `vision::is_cluttered` tells a query's), 0
    /// when none has a preview (previews off: the catalogue's kind is unknown).
    fn photo_share(&self, docs: &[u64]) -> Result<f64> {
        let step = docs.len().div_ceil(SAMPLED_PREVIEWS).max(1);
        let (mut seen, mut photos) = (0usize, 0usize);
        for &doc in docs.iter().step_by(step) {
            let Some(bytes) = self.store.thumbnail(self.meta.id, doc)? else {
                continue;
            };
            let Some(preview) = vision::decode_thumbnail(&bytes) else {
                continue;
            };
            seen += 1;
            photos += usize::from(vision::is_cluttered(&preview));
        }
        Ok(if seen == 0 {
            0.0
        } else {
            photos as f64 / seen as f64
        })
    }

    /// Fits the whitening within products now when the catalogue calls for it (see the
    /// module header): the server's thread once writes pause, and tools and tests that
    /// hold their own instance after adding. `None` when nothing was due.
    pub fn fit_within_products_if_due(&self) -> Result<Option<WhitenOutcome>> {
        if !self.settings().fit_within_products {
            return Ok(None);
        }
        let live = self.live.load(Ordering::Relaxed);
        let params = match self.whitening() {
            // The operator's own whitening stays.
            Some(w) if !w.within_product() => {
                let next = grown_by_half(live);
                self.within_fit.next_check.store(next, Ordering::Relaxed);
                return Ok(None);
            }
            Some(w) if live < grown_by_half(w.fitted_on()) => {
                let next = grown_by_half(w.fitted_on());
                self.within_fit.next_check.store(next, Ordering::Relaxed);
                return Ok(None);
            }
            Some(w) => w.params(),
            None if live < MIN_PICTURES => return Ok(None),
            None => WhiteningParams::within_products(),
        };
        // One walk of the records serves the decision and the fit.
        let products = repeated_products(&self.store, &self.meta)?;
        let (repeats, docs) = repeats(&products);
        self.within_fit
            .next_check
            .store(grown_by_half(live), Ordering::Relaxed);
        if repeats < MIN_REPEATS || (repeats as f64) < MIN_REPEAT_SHARE * live as f64 {
            return Ok(None);
        }
        // Product shots are what the scene proposals find products in (a silhouette on
        // white), and an index whitened within products goes without them.
        let photos = self.photo_share(&docs)?;
        if photos < MIN_PHOTO_SHARE {
            tracing::debug!(instance = %self.meta.name, photos, "not whitened within products: a catalogue of product shots");
            return Ok(None);
        }
        let started = Instant::now();
        let whitening = self.fit_whitening(&params, Some(&products))?;
        drop(products);
        let outcome = self.swap_projection(Projection::whitening(whitening))?;
        tracing::info!(
            instance = %self.meta.name,
            pictures = outcome.fitted_on,
            repeats,
            photos,
            generation = outcome.generation,
            ms = started.elapsed().as_millis() as u64,
            "whitened within products"
        );
        metrics::counter!("imgsearch_within_product_fits_total", "instance" => self.meta.name.clone())
            .increment(1);
        let next = grown_by_half(outcome.fitted_on);
        self.within_fit.next_check.store(next, Ordering::Relaxed);
        Ok(Some(outcome))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use image::{ImageFormat, Rgb, RgbImage};

    use super::super::whitening::WhiteningParams;
    use super::*;
    use crate::engine::testkit::generic_instance;
    use crate::engine::{AddPicture, Engine};
    use crate::vision::testkit;

    /// Picture `i` of product `p`: a busy scene (a photo) or a product shot on white.
    fn picture(p: usize, i: usize, photo: bool) -> RgbImage {
        let seed = (p * 16 + i) as u64;
        if photo {
            return testkit::scene(seed, 120, 120);
        }
        let mut rng = testkit::Rng::new(p as u64 + 1);
        let (x, y) = (10 + i as u32 * 2, 12 + i as u32);
        let colour = Rgb([rng.below(200) as u8, rng.below(200) as u8, 40]);
        testkit::product(
            120,
            120,
            Rgb([255, 255, 255]),
            colour,
            (x, x + 70, y, y + 60),
        )
    }

    /// Adds `each` pictures of products `from..to` (ProductId `{prefix}{p}`).
    fn add(
        instance: &Instance,
        prefix: &str,
        (from, to): (usize, usize),
        each: usize,
        photo: bool,
    ) {
        for p in from..to {
            for i in 0..each {
                instance
                    .add(AddPicture {
                        product_id: format!("{prefix}{p}"),
                        pic_name: format!("{p}-{i}.png"),
                        picture: testkit::encode(&picture(p, i, photo), ImageFormat::Png),
                        category_id: None,
                        crop: false,
                        region: None,
                        attributes: Default::default(),
                    })
                    .unwrap();
            }
        }
    }

    fn filled(
        products: usize,
        each: usize,
        photo: bool,
    ) -> (tempfile::TempDir, Engine, Arc<Instance>) {
        let (dir, engine, instance) = generic_instance("within");
        add(&instance, "p", (0, products), each, photo);
        (dir, engine, instance)
    }

    #[test]
    fn a_catalogue_of_photos_of_products_with_several_each_is_whitened_within_them() {
        assert!(vision::is_cluttered(&picture(3, 1, true)));
        // 100 products of 6: 500 pictures beside their product's first.
        let (_dir, _engine, instance) = filled(100, 6, true);
        let off = instance.fit_within_products_if_due().unwrap();
        assert_eq!(off, None, "setting off");
        instance.set_fit_within_products(true);
        let outcome = instance.fit_within_products_if_due().unwrap().unwrap();
        assert_eq!(outcome.fitted_on, 600);
        assert!(instance.whitened_within_products());
        let w = instance.whitening().unwrap();
        let dims = Some(instance.meta().dimension as usize);
        let want = WhiteningParams {
            dims,
            ..WhiteningParams::within_products()
        };
        assert_eq!(w.params(), want);
        // Fitted again only once the catalogue has grown by half.
        assert_eq!(instance.fit_within_products_if_due().unwrap(), None);
        add(&instance, "more", (0, 100), 2, true);
        assert_eq!(
            instance.fit_within_products_if_due().unwrap(),
            None,
            "800 < 900"
        );
        add(&instance, "more", (100, 150), 2, true);
        let outcome = instance.fit_within_products_if_due().unwrap().unwrap();
        assert_eq!(outcome.fitted_on, 900);
    }

    #[test]
    fn product_shots_single_pictures_and_an_operators_whitening_are_left_alone() {
        // Product shots on white, six per product: the scene proposals' catalogue.
        let (_dir, _engine, instance) = filled(100, 6, false);
        assert!(!vision::is_cluttered(&picture(3, 1, false)));
        instance.set_fit_within_products(true);
        assert_eq!(instance.fit_within_products_if_due().unwrap(), None);
        assert!(instance.whitening().is_none());
        // 600 products of one photo: nothing varies within a product.
        let (_dir, _engine, instance) = filled(600, 1, true);
        instance.set_fit_within_products(true);
        assert_eq!(instance.fit_within_products_if_due().unwrap(), None);
        assert!(instance.whitening().is_none());
        // Too few pictures beside their product's first: 300 of 900 is a third, but
        // under the 500 needed.
        let (_dir, _engine, instance) = filled(300, 2, true);
        add(&instance, "single", (0, 300), 1, true);
        instance.set_fit_within_products(true);
        assert_eq!(instance.fit_within_products_if_due().unwrap(), None);
        assert!(instance.whitening().is_none());
        // The operator's own whitening stays.
        let (_dir, _engine, instance) = filled(100, 6, true);
        instance.whiten(Some(&WhiteningParams::default())).unwrap();
        instance.set_fit_within_products(true);
        assert_eq!(instance.fit_within_products_if_due().unwrap(), None);
        assert!(!instance.whitened_within_products());
    }

    #[test]
    fn the_server_fits_in_the_background_once_writes_pause() {
        let (_dir, _engine, instance) = generic_instance("within");
        instance.set_fit_within_products(true);
        add(&instance, "p", (0, 100), 6, true);
        let started = Instant::now();
        while !instance.whitened_within_products() {
            let waited = started.elapsed();
            assert!(
                waited < Duration::from_secs(60),
                "no whitening 60 s after the adds"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // On every picture: the thread waited for the adds to stop.
        assert_eq!(instance.whitening().unwrap().fitted_on(), 600);
    }
}
