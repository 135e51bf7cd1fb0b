//! The read flows of an instance: search by picture, by name, by filter; existence
//! checks; comparing two pictures.
//!
//! A search takes one index snapshot, compiles its filter once against the instance's
//! dictionaries, and scans with a predicate that reads the category and attribute
//! columns before any vector is touched. Product instances search within the query's
//! category (given, or predicted), as the vendor does.
//!
//! The road of a search by picture, top-down, each file going only further down: this
//! file analyses the picture into views (`Instance::analyse_views`, in the instance),
//! merges several views (`views.rs`) or searches the one vector (`vector.rs`: the row
//! gate, then the accepted rows alone, a lone scan of the scan copy, or the batcher,
//! `engine/batcher.rs`, which answers a group in one pass); with local features the
//! keypoint vote stage (`votes.rs`) adds candidates and geometric verification re-ranks
//! them (`rerank.rs`). The costly stages run only while the vector ranking does not
//! decide (`cascade.rs`); so does the exposure-balanced view of a product shot on a
//! dimmed background (`exposure.rs`), the product vote for the first result of a
//! ranking nothing verified (`product_vote.rs`), a model scene's silhouettes compared
//! with the first candidates' previews (`silhouette_check.rs`) and, on request, average
//! query expansion (`expansion.rs`). What a search is asked and answers is `query.rs`.

mod busy;
mod cascade;
mod confirm;
mod expansion;
mod exposure;
mod product_vote;
mod query;
mod reciprocal;
mod rerank;
mod scene;
mod screened;
mod shot;
mod silhouette_check;
mod tone_check;
mod vector;
mod views;
mod votes;

use std::collections::HashSet;

use self::query::{score_of, DISTINCT_OVERSAMPLING};
use super::instance::{Instance, Subject, View};
use super::stage_timer::StageTimer;
use super::{EngineError, Result};
use crate::filter::Expr;
use crate::store::Record;
use crate::vision::Region;

pub use self::query::{FilterOutcome, Found, SearchOutcome, SearchQuery};
pub use self::reciprocal::Reciprocal;
pub use self::rerank::{verified_score, MIN_INLIERS};

impl Instance {
    /// SearchImageByPic: the vector ranking of the picture's first views, then, only
    /// while it is not decisive (`cascade.rs`), the segment proposals of a busy scene and
    /// the local-feature stages.
    pub fn search_by_picture(
        &self,
        bytes: &[u8],
        crop: bool,
        region: Option<Region>,
        query: &SearchQuery,
    ) -> Result<SearchOutcome> {
        let _running = busy::Running::start();
        // An index whitened within products (photos of products, several each) ranks
        // better without the server's proposals: a silhouette's whitened scores outbid the
        // whole picture's (GroceryStore val P@1 0.608 without them, 0.530 with); a query
        // asking for them still gets them.
        let server_proposals = self.scene_proposals() && !self.whitened_within_products();
        let proposals = crop && (query.scene_proposals || server_proposals);
        // A model scene segments ahead, beside its network runs, only while a core idles:
        // a scene decided before its proposals throws that segmentation away.
        let segment_ahead = proposals && !query.exhaustive && busy::core_idles();
        let (mut views, subject, mut picture) = self.analyse_views(
            bytes,
            (
                crop && query.scene_windows,
                proposals && query.exhaustive,
                segment_ahead,
            ),
            crop,
            region,
            query.category_id,
        )?;
        let local = self.analyser().local_features();
        // Local features: the first K candidates (more when the page reaches further)
        // in vector order and the pictures with most keypoint votes, re-ranked by
        // geometric verification, then paged.
        let k = self.rerank_candidates();
        let wanted = query.start + query.num;
        // k-reciprocal re-ranking re-orders the first K whatever the page, so it needs
        // them all (`reciprocal.rs`).
        let reciprocal = query.reciprocal.or(self.reciprocal());
        // Every page is cut from the ranking from the first result, so whether the
        // costly stages run (a decision on the first results) is the same for all pages.
        let wide = if local {
            SearchQuery {
                start: 0,
                num: if query.distinct_product {
                    k.max(wanted * DISTINCT_OVERSAMPLING)
                } else {
                    k.max(wanted)
                },
                distinct_product: false,
                ..query.clone()
            }
        } else {
            SearchQuery {
                start: 0,
                num: if reciprocal.is_some() {
                    k.max(wanted)
                } else {
                    // The product vote's voters, whatever the page.
                    wanted.max(product_vote::VOTERS)
                },
                ..query.clone()
            }
        };
        let mut candidates = self.search_views_or_vector(&views, subject.clone(), &wide)?;
        let decisive = |c: &SearchOutcome| cascade::decisive(&c.results);
        // A product shot on a dimmed background: its balanced copy is one more view and
        // gives the keypoints (`exposure.rs`).
        if query.exhaustive || !decisive(&candidates) {
            if let Some((outcome, balanced)) = self.exposure_balanced_search(
                &picture,
                &mut views,
                (crop, region),
                &subject,
                &wide,
            )? {
                candidates = outcome;
                picture = balanced;
            }
        }
        // The query's keypoints and what they verified, when found before the proposals.
        let (mut early_features, mut known) = (None, confirm::Verified::default());
        if proposals && !query.exhaustive && picture.scene && !decisive(&candidates) {
            // The first candidates are verified beside the proposals: a scene they
            // confirm needs no proposals (`confirm.rs`, `scene.rs`).
            match self.scene_stage(&picture, (crop, local), &candidates, k, &wide)? {
                scene::SceneStage::Confirmed(verified) => {
                    return self.rerank(candidates, Vec::new(), &verified.in_order, query);
                }
                scene::SceneStage::Proposed {
                    views: proposed,
                    features,
                    known: verified,
                } => {
                    views.extend(proposed);
                    (early_features, known) = (features, verified);
                }
            }
            candidates = self.search_views_or_vector(&views, subject.clone(), &wide)?;
        }
        if let [view] = views.as_slice() {
            if query.query_expansion > 0 && !decisive(&candidates) {
                candidates = self.expanded_search(&view.vector, candidates, subject, &wide)?;
            }
        }
        if !local {
            if !decisive(&candidates) {
                self.undecided_rerank(&mut candidates, &[], query)?;
            }
            candidates
                .results
                .drain(..query.start.min(candidates.results.len()));
            candidates.results.truncate(query.num);
            return Ok(candidates);
        }
        if !query.exhaustive && decisive(&candidates) {
            return self.rerank(candidates, Vec::new(), &[], query);
        }
        // A product shot: a few keypoints first, often enough to confirm (`shot.rs`).
        // Not confirmed: all its keypoints, chosen from the pyramid of the first try.
        if early_features.is_none() && !query.exhaustive && crop && !picture.scene {
            match self.confirmed_with_few_points(&picture, &candidates, k)? {
                shot::FirstTry::Confirmed(inliers) => {
                    return self.rerank(candidates, Vec::new(), &inliers, query);
                }
                shot::FirstTry::Unconfirmed(features) => early_features = features.map(Some),
            }
        }
        let features = early_features.unwrap_or_else(|| self.query_local_features(&picture, crop));
        let Some(features) = features else {
            self.undecided_rerank(&mut candidates, &[], query)?;
            let further = self.further_ranking(&views, candidates.subject.clone(), &wide);
            self.tone_rerank(&mut candidates, &picture, &[], further)?;
            return self.rerank(candidates, Vec::new(), &[], query);
        };
        let head = candidates.results.len().min(k);
        let docs: Vec<u64> = candidates.results[..head].iter().map(|f| f.doc).collect();
        // Down the vector order in growing batches, stopping at a copy beyond doubt.
        let mut inliers = Vec::with_capacity(head);
        let batches: Vec<std::ops::Range<usize>> = if query.exhaustive {
            std::iter::once(0..head).collect()
        } else {
            cascade::verification_batches(head).collect()
        };
        let confirmed = if picture.scene {
            confirm::SCENE_CONFIRMED_INLIERS
        } else {
            cascade::CONFIRMED_INLIERS
        };
        for batch in batches {
            inliers.extend(self.verify_unknown_docs(&docs[batch], &features, &known)?);
            if !query.exhaustive && inliers.iter().any(|&n| n >= confirmed) {
                return self.rerank(candidates, Vec::new(), &inliers, query);
            }
        }
        let category = self
            .service
            .has_categories()
            .then_some(candidates.subject.category_id);
        // Voted pictures already among the first K are verified anyway.
        let present: HashSet<u64> = docs.iter().copied().collect();
        let timer = StageTimer::start();
        let voted = self.voted_candidates(&features, &views, category, query, &present)?;
        timer.lap("votes");
        let voted_docs: Vec<u64> = voted.iter().map(|f| f.doc).collect();
        inliers.extend(self.verify_docs(&voted_docs, &features)?);
        self.undecided_rerank(&mut candidates, &inliers, query)?;
        self.silhouette_rerank(&mut candidates, &picture, &inliers)?;
        let further = self.further_ranking(&views, candidates.subject.clone(), &wide);
        self.tone_rerank(&mut candidates, &picture, &inliers, further)?;
        self.rerank(candidates, voted, &inliers, query)
    }

    /// One vector: a plain search; several (scene windows): [`Self::search_views`].
    /// The vector ranking's first `num` (asked by the tone check for a longer list).
    fn further_ranking<'a>(
        &'a self,
        views: &'a [View],
        subject: Subject,
        wide: &'a SearchQuery,
    ) -> impl FnOnce(usize) -> Result<SearchOutcome> + 'a {
        move |num| {
            let longer = SearchQuery {
                num,
                ..wide.clone()
            };
            self.search_views_or_vector(views, subject, &longer)
        }
    }

    fn search_views_or_vector(
        &self,
        views: &[View],
        subject: Subject,
        query: &SearchQuery,
    ) -> Result<SearchOutcome> {
        match views {
            [view] => self.search_vector(&view.vector, subject, query),
            _ => self.search_views(views, subject, query),
        }
    }

    /// SearchImageByName: the stored picture's own vector is the query.
    pub fn search_by_name(
        &self,
        product_id: &str,
        pic_name: &str,
        query: &SearchQuery,
    ) -> Result<SearchOutcome> {
        let (doc, record) = self.stored(product_id, pic_name)?;
        let vector =
            self.store
                .vector(self.meta.id, doc)?
                .ok_or_else(|| EngineError::PictureNotFound {
                    product_id: product_id.into(),
                    pic_name: pic_name.into(),
                })?;
        let region = record
            .region
            .as_deref()
            .and_then(|r| Region::parse(r).ok())
            .unwrap_or(Region::full(0, 0));
        let category_id = self
            .check_category(query.category_id)?
            .unwrap_or(record.category_id);
        let subject = Subject {
            category_id,
            region,
            multi_region: vec![region],
        };
        self.search_vector(&vector, subject, query)
    }

    /// CheckImageExists: the stored record of a (ProductId, PicName), if any.
    pub fn find(&self, product_id: &str, pic_name: &str) -> Result<Option<Record>> {
        match self.store.lookup(self.meta.id, product_id, pic_name)? {
            Some(doc) => Ok(self.store.record(self.meta.id, doc)?),
            None => Ok(None),
        }
    }

    /// CompareSimilarByImage: similarity 0..1 of two pictures (each on its subject).
    pub fn compare(&self, first: &[u8], second: &[u8]) -> Result<f64> {
        let category = self
            .service
            .has_categories()
            .then_some(super::CATEGORY_OTHER);
        let (a, _) = self.analyse(first, true, None, category)?;
        let (b, _) = self.analyse(second, true, None, category)?;
        // Scores are cosines of what the index holds: the projected vectors.
        let (_, projection) = self.layer();
        let (a, b) = (projection.apply(&a)?, projection.apply(&b)?);
        Ok(score_of(crate::index::kernels::dot(&a, &b)))
    }

    /// SearchImageByFilter: pictures matching a filter, oldest first.
    pub fn search_by_filter(
        &self,
        filter: &Expr,
        start: usize,
        num: usize,
    ) -> Result<FilterOutcome> {
        let (docs, docs_found) = self.matching_docs(filter, start, num);
        let records = self
            .store
            .records(self.meta.id, &docs)?
            .into_iter()
            .flatten()
            .collect();
        Ok(FilterOutcome {
            docs_found,
            records,
        })
    }
}

#[cfg(test)]
mod paging_tests;
#[cfg(test)]
mod tests;
