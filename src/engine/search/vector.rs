//! The search with one vector, the step every search by picture or name ends in:
//! project the query as the snapshot's rows were, gate the rows by category and filter,
//! scan (the accepted rows alone when few pass, else through the scan copy, alone or in
//! a batch), fetch the records and cut the page. Several vectors of one search (a
//! scene's screened proposals) share one gate and one multi-query scan.

use std::collections::{HashMap, HashSet};

use super::query::{score_of, Found, SearchOutcome, SearchQuery, DISTINCT_OVERSAMPLING};
use crate::engine::batcher::{BatchSource, ScanJob};
use crate::engine::instance::{Instance, Subject};
use crate::engine::row_gate::RowGate;
use crate::engine::stage_timer::StageTimer;
use crate::engine::Result;
use crate::index::{ScanQuery, ScanResult};
use crate::store::Record;

/// Records already fetched during one search with several views, by doc (`None`: the
/// picture was deleted). The views of a busy scene (its windows and a dozen proposals)
/// mostly find the same stored pictures: each record is then read from the store once
/// per search instead of once per view, where the store's reads were a twentieth of a
/// scene search's CPU.
pub(super) type RecordMemo = HashMap<u64, Option<Record>>;

impl Instance {
    /// Searches with an extractor's (raw) vector: it is projected as the rows of the
    /// snapshot it scans were.
    pub(in crate::engine) fn search_vector(
        &self,
        vector: &[f32],
        subject: Subject,
        query: &SearchQuery,
    ) -> Result<SearchOutcome> {
        self.search_vector_with(vector, subject, query, None)
    }

    /// [`Self::search_vector`], the records taken from `memo` when it holds them (and
    /// those fetched added to it).
    pub(super) fn search_vector_with(
        &self,
        vector: &[f32],
        subject: Subject,
        query: &SearchQuery,
        memo: Option<&mut RecordMemo>,
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
        let timer = StageTimer::start();
        let queries = [ScanQuery { vector, k }];
        let scan = gate.scan_with(&queries, query.min_score, true, |request| {
            let scan_alone = || {
                crate::index::scan(&snap, &self.scan_copy, request)
                    .pop()
                    .unwrap_or_default()
            };
            if !request.joins_batches(&snap, &self.scan_copy) {
                // A selective predicate (collected rows) or an f16 copy (no multi-query
                // kernel): the search scans alone.
                return scan_alone();
            }
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
                .run(job, self.settings().batch_window, &source, scan_alone)
        });
        let timer = timer.lap("scan");
        let docs: Vec<u64> = scan.hits.iter().map(|h| h.doc).collect();
        let records = match memo {
            Some(memo) => self.remembered_records(&docs, memo)?,
            None => self.store.records(self.meta.id, &docs)?,
        };
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

    /// The records of `docs` in their order: those in `memo` cloned, the others read
    /// from the store in one multi-get and remembered.
    fn remembered_records(
        &self,
        docs: &[u64],
        memo: &mut RecordMemo,
    ) -> Result<Vec<Option<Record>>> {
        let missing: Vec<u64> = docs
            .iter()
            .copied()
            .filter(|d| !memo.contains_key(d))
            .collect();
        if !missing.is_empty() {
            let fetched = self.store.records(self.meta.id, &missing)?;
            memo.extend(missing.into_iter().zip(fetched));
        }
        Ok(docs
            .iter()
            .map(|d| memo.get(d).cloned().flatten())
            .collect())
    }

    /// [`Self::search_vector`] for each of `vectors` under one `query` (start 0, no
    /// distinct products): one gate and one multi-query scan instead of one scan each,
    /// the records fetched at once; the outcomes in the order of `vectors`.
    pub(in crate::engine) fn search_vectors(
        &self,
        vectors: &[&[f32]],
        subject: &Subject,
        query: &SearchQuery,
    ) -> Result<Vec<SearchOutcome>> {
        debug_assert!(query.start == 0 && !query.distinct_product);
        let (snap, projection) = self.layer();
        let projected = vectors
            .iter()
            .map(|v| projection.apply(v).map(|p| p.into_owned()))
            .collect::<std::result::Result<Vec<Vec<f32>>, _>>()?;
        let category = self.service.has_categories().then_some(subject.category_id);
        let gate = RowGate::new(&self.dictionaries, &snap, category, query.filter.as_ref());
        let outcome = |results| SearchOutcome {
            subject: subject.clone(),
            docs_found: 0,
            results,
        };
        if gate.refuses_all() {
            return Ok(vectors.iter().map(|_| outcome(Vec::new())).collect());
        }
        let timer = StageTimer::start();
        let queries: Vec<ScanQuery> = projected
            .iter()
            .map(|vector| ScanQuery {
                vector,
                k: query.num,
            })
            .collect();
        let scans: Vec<ScanResult> = gate.scan_with(&queries, query.min_score, true, |request| {
            crate::index::scan(&snap, &self.scan_copy, request)
        });
        let timer = timer.lap("scan");
        let docs: Vec<u64> = scans
            .iter()
            .flat_map(|s| s.hits.iter().map(|h| h.doc))
            .collect();
        let mut records = self.store.records(self.meta.id, &docs)?.into_iter();
        timer.lap("fetch");
        Ok(scans
            .into_iter()
            .map(|scan| {
                let results = scan
                    .hits
                    .iter()
                    .zip(records.by_ref())
                    .filter_map(|(hit, record)| {
                        // Deleted since the scan began: skipped.
                        Some(Found {
                            score: score_of(hit.score),
                            doc: hit.doc,
                            record: record?,
                        })
                    })
                    .collect();
                SearchOutcome {
                    docs_found: scan.matched,
                    ..outcome(results)
                }
            })
            .collect())
    }
}
