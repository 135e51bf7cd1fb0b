//! The read flows of an instance: search by picture, by name, by filter; existence
//! checks; comparing two pictures.
//!
//! A search takes one index snapshot, compiles its filter once against the instance's
//! dictionaries, and scans with a predicate that reads the category and attribute
//! columns before any vector is touched. Product instances search within the query's
//! category (given, or predicted), as the vendor does.
//!
//! The road of a search by picture, top-down: the picture is analysed into views
//! (`Instance::analyse_views`); each view's vector is projected and scanned
//! ([`Instance::search_vector`]: the row gate, then the subset, a lone scan or the
//! batcher, `engine/batcher.rs`); several views are merged (`views.rs`); with local
//! features the keypoint vote stage (`votes.rs`) adds candidates and geometric
//! verification re-ranks them (`rerank.rs`).

mod rerank;
mod views;
mod votes;

use std::collections::HashSet;

use super::batcher::{BatchSource, ScanJob};
use super::instance::{Instance, Subject, View};
use super::row_gate::RowGate;
use super::stage_timer::StageTimer;
use super::{EngineError, Result};
use crate::filter::Expr;
use crate::store::Record;
use crate::vision::Region;

pub use self::rerank::{verified_score, MIN_INLIERS};

/// Candidates fetched per wanted result when each product may appear once.
pub(in crate::engine) const DISTINCT_OVERSAMPLING: usize = 8;

/// Rows sampled to estimate how many rows a category and filter accept.
const SHARE_SAMPLES: usize = 1024;

/// Below this estimated share of accepted rows, a search collects the accepted rows first
/// and scores only them (`index/subset.rs`) instead of scanning every row.
const SELECTIVE_SHARE: f64 = 0.02;

/// A search by vector.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Category to stay within (product instances predict one when absent).
    pub category_id: Option<u32>,
    /// Results skipped.
    pub start: usize,
    /// Results returned at most.
    pub num: usize,
    /// Least score returned.
    pub min_score: f32,
    /// Keep only the best picture of each product.
    pub distinct_product: bool,
    /// Attribute filter.
    pub filter: Option<Expr>,
    /// With Crop and no Region, search a busy scene by windows too
    /// ([`Instance::analyse_views`]). Off in the server for now: it costs ~30 extractions
    /// per such query (1–2 s with a model); `imgsearch-eval --windows true` turns it on.
    pub scene_windows: bool,
    /// With Crop and no Region, search a busy scene by segment proposals too: each
    /// proposal's silhouette on white is one more view ([`Instance::analyse_views`],
    /// up to [`super::SCENE_PROPOSALS`] extractions). `imgsearch-eval --proposals true`.
    pub scene_proposals: bool,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Score 0..1.
    pub score: f64,
    /// The picture's doc id (which row of the store it is).
    pub doc: u64,
    /// The picture's record.
    pub record: Record,
}

/// What a search reports.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    /// Subject and category of the query picture.
    pub subject: Subject,
    /// Pictures that matched (category, filter, threshold).
    pub docs_found: usize,
    /// The page asked for, best first.
    pub results: Vec<Found>,
}

/// What SearchImageByFilter reports.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterOutcome {
    /// Pictures the filter matches.
    pub docs_found: usize,
    /// The page asked for, oldest first.
    pub records: Vec<Record>,
}

impl Instance {
    /// SearchImageByPic.
    pub fn search_by_picture(
        &self,
        bytes: &[u8],
        crop: bool,
        region: Option<Region>,
        query: &SearchQuery,
    ) -> Result<SearchOutcome> {
        let scene_views = (
            crop && query.scene_windows,
            crop && (query.scene_proposals || self.scene_proposals()),
        );
        let (views, subject, local) =
            self.analyse_views(bytes, scene_views, crop, region, query.category_id)?;
        let Some(local) = local else {
            return self.search_views_or_vector(&views, subject, query);
        };
        // Local features: the first K candidates (more when the page reaches further)
        // in vector order and the pictures with most keypoint votes, re-ranked by
        // geometric verification, then paged.
        let k = self.rerank_candidates();
        let wanted = query.start + query.num;
        let wide = SearchQuery {
            start: 0,
            num: if query.distinct_product {
                k.max(wanted * DISTINCT_OVERSAMPLING)
            } else {
                k.max(wanted)
            },
            distinct_product: false,
            ..query.clone()
        };
        let category = self.service.has_categories().then_some(subject.category_id);
        let candidates = self.search_views_or_vector(&views, subject, &wide)?;
        // Voted pictures already among the first K are verified anyway.
        let present: HashSet<u64> = candidates.results.iter().take(k).map(|f| f.doc).collect();
        let timer = StageTimer::start();
        let voted = self.voted_candidates(&local, &views, category, query, &present)?;
        timer.lap("votes");
        self.rerank(candidates, voted, &local, k, query)
    }

    /// One vector: a plain search; several (scene windows): [`Self::search_views`].
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

    /// Searches with an extractor's (raw) vector: it is projected as the rows of the
    /// snapshot it scans were.
    pub(in crate::engine) fn search_vector(
        &self,
        vector: &[f32],
        subject: Subject,
        query: &SearchQuery,
    ) -> Result<SearchOutcome> {
        let (snap, projection) = self.layer();
        let vector: &[f32] = &projection.apply(vector)?;
        let wanted = query.start + query.num;
        // Distinct products need more candidates than results; each product keeps its best.
        let k = if query.distinct_product {
            (wanted * DISTINCT_OVERSAMPLING).max(64)
        } else {
            wanted
        };
        let category = self.service.has_categories().then_some(subject.category_id);
        let gate = RowGate::new(&self.dictionaries, &snap, category, query.filter.as_ref());
        if gate.refuses_all() {
            return Ok(SearchOutcome {
                subject,
                docs_found: 0,
                results: Vec::new(),
            });
        }
        let accept = |row: usize| gate.accepts(row);
        let timer = StageTimer::start();
        let selective =
            gate.narrows() && snap.accepted_share(&accept, SHARE_SAMPLES) < SELECTIVE_SHARE;
        let scan = if selective {
            // Few rows pass: collect them from the columns and score only those.
            let rows = snap.accepted_rows(&accept);
            snap.search_rows(vector, &rows, k, query.min_score)
        } else if !self.scan_copy.batchable(&snap) {
            // An f16 copy: no multi-query kernel, each search scans alone.
            self.scan_copy
                .search(&snap, vector, k, query.min_score, &accept)
        } else {
            let job = ScanJob {
                generation: snap.generation(),
                vector: vector.to_vec(),
                k,
                min_score: query.min_score,
                category,
                filter: query.filter.clone(),
            };
            let source = BatchSource {
                index: &self.index,
                dictionaries: &self.dictionaries,
                scan_copy: &self.scan_copy,
            };
            self.batcher
                .run(job, self.settings().batch_window, &source, || {
                    self.scan_copy
                        .search(&snap, vector, k, query.min_score, &accept)
                })
        };
        let timer = timer.lap("scan");
        let docs: Vec<u64> = scan.hits.iter().map(|h| h.doc).collect();
        let records = self.store.records(self.meta.id, &docs)?;
        timer.lap("fetch");
        let mut results = Vec::with_capacity(wanted);
        let mut products = HashSet::new();
        for (hit, record) in scan.hits.iter().zip(records) {
            // A picture deleted since the scan began has no record any more: skip it.
            let Some(record) = record else { continue };
            if query.distinct_product && !products.insert(record.product_id.clone()) {
                continue;
            }
            results.push(Found {
                score: score_of(hit.score),
                doc: hit.doc,
                record,
            });
            if results.len() == wanted {
                break;
            }
        }
        let docs_found = if query.distinct_product {
            products.len()
        } else {
            scan.matched
        };
        let results = results.into_iter().skip(query.start).collect();
        Ok(SearchOutcome {
            subject,
            docs_found,
            results,
        })
    }
}

/// Score 0..1 as reported: cosine clamped, rounded to 6 places so an identical picture is 1.0.
pub(in crate::engine) fn score_of(dot: f32) -> f64 {
    ((dot as f64).clamp(0.0, 1.0) * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests;
