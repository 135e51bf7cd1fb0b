//! The search with one vector, the step every search by picture or name ends in:
//! project the query as the snapshot's rows were, gate the rows by category and filter,
//! scan (the accepted rows alone when few pass, else through the scan copy, alone or in
//! a batch), fetch the records and cut the page.

use std::collections::{HashMap, HashSet};

use super::query::{score_of, Found, SearchOutcome, SearchQuery, DISTINCT_OVERSAMPLING};
use crate::engine::batcher::{BatchSource, ScanJob};
use crate::engine::instance::{Instance, Subject};
use crate::engine::row_gate::RowGate;
use crate::engine::stage_timer::StageTimer;
use crate::engine::Result;
use crate::index::{RowFilter, ScanQuery, ScanRequest};
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
        let accept = |row: usize| gate.accepts(row);
        let words = |word: usize| gate.accepts_word(word);
        let request = ScanRequest {
            queries: &queries,
            min_score: query.min_score,
            filter: gate.narrows().then_some(RowFilter {
                accept: &accept,
                words: Some(&words),
                key: Some(gate.key()),
            }),
            // Only a category or a filter can keep few rows: sample them once.
            collect: gate.narrows() && crate::index::selective(&snap, &accept),
        };
        let scan_alone = || {
            crate::index::scan(&snap, &self.scan_copy, &request)
                .pop()
                .unwrap_or_default()
        };
        let scan = if !request.joins_batches(&snap, &self.scan_copy) {
            // A selective predicate (collected rows) or an f16 copy (no multi-query
            // kernel): the search scans alone.
            scan_alone()
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
                .run(job, self.settings().batch_window, &source, scan_alone)
        };
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
}
