//! The read flows of an instance: search by picture, by name, by filter; existence
//! checks; comparing two pictures.
//!
//! A search takes one index snapshot, compiles its filter once against the instance's
//! dictionaries, and scans with a predicate that reads the category and attribute
//! columns before any vector is touched. Product instances search within the query's
//! category (given, or predicted), as the vendor does.

use std::collections::HashSet;

use super::attributes::{RowAttributes, COLUMN_CATEGORY};
use super::batcher::ScanJob;
use super::instance::{Instance, StageTimer, Subject};
use super::{EngineError, Result};
use crate::filter::{CompiledFilter, Expr};
use crate::index::{search_batch_above, ScanResult, Snapshot};
use crate::store::Record;
use crate::vision::Region;

/// Candidates fetched per wanted result when each product may appear once.
const DISTINCT_OVERSAMPLING: usize = 8;

/// Rows sampled to estimate how many rows a category and filter accept.
const SHARE_SAMPLES: usize = 1024;
/// Below this estimated share of accepted rows, a search collects the accepted rows first
/// and scores only them (`index/subset.rs`) instead of scanning every row.
const SELECTIVE_SHARE: f64 = 0.02;

/// Queries of one predicate group scanned together at least: the panel kernels pad a
/// batch to 16 queries, and a 16-query pass costs about as much as four single scans
/// (`imgsearch-scan-compare`), so smaller groups are scanned one by one.
const MIN_BATCH: usize = 4;

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
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Score 0..1.
    pub score: f64,
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
        let (vector, subject) = self.analyse(bytes, crop, region, query.category_id)?;
        self.search_vector(&vector, subject, query)
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

    /// Docs of live rows matching `filter`, rows `start..start + num` of them in row
    /// order, and how many match in all.
    pub(super) fn matching_docs(
        &self,
        filter: &Expr,
        start: usize,
        num: usize,
    ) -> (Vec<u64>, usize) {
        let snap = self.snapshot();
        let source = RowAttributes {
            snapshot: &snap,
            dictionaries: &self.dictionaries,
        };
        let compiled = CompiledFilter::compile(filter, &source);
        let mut docs = Vec::new();
        let mut found = 0usize;
        for row in 0..snap.rows() {
            if snap.is_tombstone(row) || !compiled.matches(&source, row) {
                continue;
            }
            if found >= start && docs.len() < num {
                docs.push(snap.doc_at(row));
            }
            found += 1;
        }
        (docs, found)
    }

    /// Answers searches that share category, filter and threshold with one blocked
    /// multi-query scan of the current snapshot (the batcher's `together`): over the i8
    /// copy when one is usable, else over the f32 rows.
    fn scan_group(&self, group: &[&ScanJob]) -> Vec<ScanResult> {
        let Some(first) = group.first() else {
            return Vec::new();
        };
        let snap = self.snapshot();
        let source = RowAttributes {
            snapshot: &snap,
            dictionaries: &self.dictionaries,
        };
        let filter = first
            .filter
            .as_ref()
            .map(|f| CompiledFilter::compile(f, &source));
        let accept = |row: usize| accepts(&snap, &source, first.category, filter.as_ref(), row);
        if group.len() < MIN_BATCH {
            // The panel kernels pad to 16 queries: a few queries cost less one by one.
            return group
                .iter()
                .map(|j| {
                    self.scan_copy
                        .search(&snap, &j.vector, j.k, j.min_score, &accept)
                })
                .collect();
        }
        let jobs: Vec<(&[f32], usize)> = group.iter().map(|j| (j.vector.as_slice(), j.k)).collect();
        if let Some(results) = self
            .scan_copy
            .search_batch(&snap, &jobs, first.min_score, &accept)
        {
            return results;
        }
        let k = group.iter().map(|j| j.k).max().unwrap_or(0);
        let queries: Vec<&[f32]> = group.iter().map(|j| j.vector.as_slice()).collect();
        let mut results = search_batch_above(&snap, &queries, k, first.min_score, &accept);
        for (result, job) in results.iter_mut().zip(group) {
            // The best k of a query are the first k of its best k' >= k.
            result.hits.truncate(job.k);
        }
        results
    }

    pub(super) fn search_vector(
        &self,
        vector: &[f32],
        subject: Subject,
        query: &SearchQuery,
    ) -> Result<SearchOutcome> {
        let snap = self.snapshot();
        let wanted = query.start + query.num;
        // Distinct products need more candidates than results; each product keeps its best.
        let k = if query.distinct_product {
            (wanted * DISTINCT_OVERSAMPLING).max(64)
        } else {
            wanted
        };
        let category = self.service.has_categories().then_some(subject.category_id);
        let source = RowAttributes {
            snapshot: &snap,
            dictionaries: &self.dictionaries,
        };
        let filter = query
            .filter
            .as_ref()
            .map(|f| CompiledFilter::compile(f, &source));
        if filter.as_ref().and_then(CompiledFilter::constant) == Some(false) {
            return Ok(SearchOutcome {
                subject,
                docs_found: 0,
                results: Vec::new(),
            });
        }
        let accept = |row: usize| accepts(&snap, &source, category, filter.as_ref(), row);
        let timer = StageTimer::start();
        let selective = (category.is_some() || filter.is_some())
            && snap.accepted_share(&accept, SHARE_SAMPLES) < SELECTIVE_SHARE;
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
                vector: vector.to_vec(),
                k,
                min_score: query.min_score,
                category,
                filter: query.filter.clone(),
            };
            self.batcher.run(
                job,
                |_| {
                    self.scan_copy
                        .search(&snap, vector, k, query.min_score, &accept)
                },
                |group| self.scan_group(group),
            )
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

/// Whether a row passes the category and the filter.
#[inline]
fn accepts(
    snap: &Snapshot,
    source: &RowAttributes<'_>,
    category: Option<u32>,
    filter: Option<&CompiledFilter>,
    row: usize,
) -> bool {
    if let (Some(c), Some(column)) = (category, snap.column(COLUMN_CATEGORY)) {
        if column.get(row) != c {
            return false;
        }
    }
    filter.is_none_or(|f| f.matches(source, row))
}

/// Score 0..1 as reported: cosine clamped, rounded to 6 places so an identical picture is 1.0.
pub(super) fn score_of(dot: f32) -> f64 {
    ((dot as f64).clamp(0.0, 1.0) * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::score_of;

    #[test]
    fn scores_are_clamped_and_rounded() {
        assert_eq!(score_of(0.99999994), 1.0);
        assert_eq!(score_of(1.00001), 1.0);
        assert_eq!(score_of(-0.2), 0.0);
        assert_eq!(score_of(0.5), 0.5);
    }
}
