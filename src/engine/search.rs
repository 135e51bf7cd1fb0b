//! The read flows of an instance: search by picture, by name, by filter; existence
//! checks; comparing two pictures.
//!
//! A search takes one index snapshot, compiles its filter once against the instance's
//! dictionaries, and scans with a predicate that reads the category and attribute
//! columns before any vector is touched. Product instances search within the query's
//! category (given, or predicted), as the vendor does.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use super::attributes::{RowAttributes, COLUMN_CATEGORY};
use super::batcher::ScanJob;
use super::instance::{Instance, StageTimer, Subject, View};
use super::{EngineError, Result};
use crate::filter::{CompiledFilter, Expr};
use crate::index::{ScanQuery, ScanRequest, ScanResult, Snapshot};
use crate::store::Record;
use crate::vision::Region;

/// Candidates fetched per wanted result when each product may appear once.
pub(super) const DISTINCT_OVERSAMPLING: usize = 8;

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

    /// Searches with every view of a picture and keeps each stored picture's best
    /// score, so a product found in any window of a scene ranks as if searched alone.
    /// A silhouette view's scores are first lowered by how far its box's shape is from
    /// the stored subject's ([`silhouette_score`]). The reported region becomes the
    /// view that gave the best result.
    fn search_views(
        &self,
        views: &[View],
        mut subject: Subject,
        query: &SearchQuery,
    ) -> Result<SearchOutcome> {
        let wide = SearchQuery {
            start: 0,
            num: query.start + query.num,
            ..query.clone()
        };
        let mut best: HashMap<(String, String), (Found, Region)> = HashMap::new();
        let mut docs_found = 0;
        for view in views {
            let outcome = self.search_vector(&view.vector, subject.clone(), &wide)?;
            docs_found = docs_found.max(outcome.docs_found);
            for mut found in outcome.results {
                if view.silhouette {
                    found.score =
                        silhouette_score(found.score, &view.region, found.record.region.as_deref());
                    if found.score < f64::from(query.min_score) {
                        continue;
                    }
                }
                let key = (
                    found.record.product_id.clone(),
                    found.record.pic_name.clone(),
                );
                match best.entry(key) {
                    Entry::Occupied(mut e) if e.get().0.score < found.score => {
                        e.insert((found, view.region));
                    }
                    Entry::Occupied(_) => {}
                    Entry::Vacant(e) => {
                        e.insert((found, view.region));
                    }
                }
            }
        }
        let mut ranked: Vec<(Found, Region)> = best.into_values().collect();
        // Ties break on the names so the order does not depend on the hash map's.
        ranked.sort_by(|a, b| {
            b.0.score.total_cmp(&a.0.score).then_with(|| {
                (&a.0.record.product_id, &a.0.record.pic_name)
                    .cmp(&(&b.0.record.product_id, &b.0.record.pic_name))
            })
        });
        if query.distinct_product {
            let mut products = HashSet::new();
            ranked.retain(|(f, _)| products.insert(f.record.product_id.clone()));
        }
        if let Some((_, region)) = ranked.first() {
            subject.region = *region;
        }
        let results = ranked
            .into_iter()
            .skip(query.start)
            .take(query.num)
            .map(|(f, _)| f)
            .collect();
        Ok(SearchOutcome {
            subject,
            docs_found,
            results,
        })
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

    /// Docs of live rows matching `filter`, rows `start..start + num` of them in row
    /// order, and how many match in all.
    pub(super) fn matching_docs(
        &self,
        filter: &Expr,
        start: usize,
        num: usize,
    ) -> (Vec<u64>, usize) {
        let snap = self.snapshot();
        let gate = RowGate::new(self, &snap, None, Some(filter));
        let mut docs = Vec::new();
        let mut found = 0usize;
        for row in 0..snap.rows() {
            if snap.is_tombstone(row) || !gate.accepts(row) {
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
        if snap.generation() != first.generation {
            // A rebuild swapped the index (maybe its projection) since these queries
            // were projected: each scans alone on the snapshot it was projected for.
            return Vec::new();
        }
        let gate = RowGate::new(self, &snap, first.category, first.filter.as_ref());
        let queries: Vec<ScanQuery<'_>> = group
            .iter()
            .map(|j| ScanQuery {
                vector: &j.vector,
                k: j.k,
            })
            .collect();
        let request = ScanRequest {
            queries: &queries,
            min_score: first.min_score,
            accept: &|row| gate.accepts(row),
            // Each search was found not selective before it queued.
            collect_when_selective: false,
        };
        crate::index::scan(&snap, &self.scan_copy, &request)
    }

    /// Searches with an extractor's (raw) vector: it is projected as the rows of the
    /// snapshot it scans were.
    pub(super) fn search_vector(
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
        let gate = RowGate::new(self, &snap, category, query.filter.as_ref());
        if gate.refuses_all() {
            return Ok(SearchOutcome {
                subject,
                docs_found: 0,
                results: Vec::new(),
            });
        }
        let timer = StageTimer::start();
        let queries = [ScanQuery { vector, k }];
        let request = ScanRequest {
            queries: &queries,
            min_score: query.min_score,
            accept: &|row| gate.accepts(row),
            collect_when_selective: gate.narrows(),
        };
        let scan_alone = |request: &ScanRequest<'_>| {
            crate::index::scan(&snap, &self.scan_copy, request)
                .pop()
                .unwrap_or_default()
        };
        let scan = if !request.joins_batches(&snap, &self.scan_copy) {
            // A selective predicate (collected rows) or an f16 copy (no multi-query
            // kernel): the search scans alone.
            scan_alone(&request)
        } else {
            // Found not selective: alone or in a group, the rows are not collected.
            let request = ScanRequest {
                collect_when_selective: false,
                ..request
            };
            let job = ScanJob {
                generation: snap.generation(),
                vector: vector.to_vec(),
                k,
                min_score: query.min_score,
                category,
                filter: query.filter.clone(),
            };
            self.batcher.run(
                job,
                |_| scan_alone(&request),
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

/// The rows a search may return: those of a snapshot in a category (when the instance
/// has categories) that a filter, compiled against the snapshot's columns, matches.
pub(super) struct RowGate<'a> {
    snap: &'a Snapshot,
    source: RowAttributes<'a>,
    category: Option<u32>,
    filter: Option<CompiledFilter>,
}

impl<'a> RowGate<'a> {
    /// The gate of `instance`'s `snap` for a category and a filter.
    pub(super) fn new(
        instance: &'a Instance,
        snap: &'a Snapshot,
        category: Option<u32>,
        filter: Option<&Expr>,
    ) -> Self {
        let source = RowAttributes {
            snapshot: snap,
            dictionaries: &instance.dictionaries,
        };
        let filter = filter.map(|f| CompiledFilter::compile(f, &source));
        RowGate {
            snap,
            source,
            category,
            filter,
        }
    }

    /// Whether no row can pass (the filter is false whatever the row).
    pub(super) fn refuses_all(&self) -> bool {
        self.filter.as_ref().and_then(CompiledFilter::constant) == Some(false)
    }

    /// Whether the gate lets fewer than all rows through (a category or a filter).
    pub(super) fn narrows(&self) -> bool {
        self.category.is_some() || self.filter.is_some()
    }

    /// Whether a row passes the category and the filter.
    #[inline]
    pub(super) fn accepts(&self, row: usize) -> bool {
        if let (Some(c), Some(column)) = (self.category, self.snap.column(COLUMN_CATEGORY)) {
            if column.get(row) != c {
                return false;
            }
        }
        self.filter
            .as_ref()
            .is_none_or(|f| f.matches(&self.source, row))
    }
}

/// Score lost per unit of |ln| of the ratio between a silhouette's aspect ratio and the
/// stored subject box's. Garments of one colour and cut differ mostly in their outline
/// (a short dress and a long one, trousers and a dress); the penalty only decides near
/// ties: a box twice as tall for its width loses 0.021. Copy benchmark, model, pasted
/// on a scene, R@1: 0.875 without, 0.885 at 0.02, 0.890 at 0.03 and 0.04, 0.880 at 0.06
/// (seed 1); 0.865 → 0.870 at 0.03 on seed 2; built-in and the other transforms equal.
const SHAPE_DISAGREEMENT: f64 = 0.03;

/// What a silhouette view's vector `score` for a stored picture becomes: lowered by
/// [`SHAPE_DISAGREEMENT`] per unit of |ln| of the ratio of the aspect ratios of the
/// silhouette's box `view` and the picture's stored subject region (`x1,x2,y1,y2`;
/// unchanged without one). Pictures added with Crop store their product's box; those
/// added without it store the whole picture's, whose shape says less.
fn silhouette_score(score: f64, view: &Region, stored: Option<&str>) -> f64 {
    let Some(stored) = stored.and_then(|text| Region::parse(text).ok()) else {
        return score;
    };
    let log_aspect = |r: &Region| (f64::from(r.width().max(1)) / f64::from(r.height().max(1))).ln();
    let disagreement = (log_aspect(view) - log_aspect(&stored)).abs();
    score_of((score - SHAPE_DISAGREEMENT * disagreement) as f32)
}

/// Score 0..1 as reported: cosine clamped, rounded to 6 places so an identical picture is 1.0.
pub(super) fn score_of(dot: f32) -> f64 {
    ((dot as f64).clamp(0.0, 1.0) * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::{score_of, View, SHAPE_DISAGREEMENT};
    use crate::engine::{Engine, InstanceSpec, SearchQuery, Subject};
    use crate::store::Record;
    use crate::vision::Region;

    /// Adds `vector` as picture `pic` of `product` (category other) with a stored region.
    fn add_vector(
        instance: &crate::engine::Instance,
        product: &str,
        pic: &str,
        region: Option<&str>,
        vector: &[f32],
    ) {
        let record = Record {
            product_id: product.into(),
            pic_name: pic.into(),
            category_id: crate::engine::CATEGORY_OTHER,
            region: region.map(str::to_owned),
            ..Record::default()
        };
        instance.add_vector(&record, vector).unwrap();
    }

    /// The subject of a `width` × `height` query searched whole.
    fn whole(width: u32, height: u32) -> Subject {
        Subject {
            category_id: crate::engine::CATEGORY_OTHER,
            region: Region::full(width, height),
            multi_region: Vec::new(),
        }
    }

    #[test]
    fn views_keep_each_pictures_best_score() {
        let (_dir, _engine, instance) = crate::engine::testkit::generic_instance("views");
        let dim = instance.meta().dimension as usize;
        let vs = crate::index::testkit::unit_vectors(300, dim, 0xfeed, |u| u.powi(2));
        for (i, v) in vs.iter().enumerate() {
            add_vector(
                &instance,
                &format!("p{}", i / 2),
                &format!("{i}.jpg"),
                None,
                v,
            );
        }
        let subject = whole(100, 100);
        let boxes = [
            Region::full(100, 100),
            Region {
                x1: 0,
                x2: 50,
                y1: 0,
                y2: 50,
            },
            Region {
                x1: 50,
                x2: 100,
                y1: 50,
                y2: 100,
            },
        ];
        let views: Vec<View> = [7usize, 42, 199]
            .iter()
            .zip(boxes)
            .map(|(i, b)| View::of_box(vs[*i].clone(), b))
            .collect();
        // Expected: every picture's best score over the views, from complete searches.
        let everything = SearchQuery {
            num: 300,
            ..SearchQuery::default()
        };
        let mut best: std::collections::HashMap<String, (f64, Region)> = Default::default();
        for View {
            vector, region: b, ..
        } in &views
        {
            let out = instance
                .search_vector(vector, subject.clone(), &everything)
                .unwrap();
            for f in out.results {
                let e = best
                    .entry(f.record.pic_name.clone())
                    .or_insert((f.score, *b));
                if f.score > e.0 {
                    *e = (f.score, *b);
                }
            }
        }
        let query = SearchQuery {
            start: 1,
            num: 6,
            ..SearchQuery::default()
        };
        let out = instance
            .search_views(&views, subject.clone(), &query)
            .unwrap();
        assert_eq!(out.results.len(), 6);
        for f in &out.results {
            assert_eq!(f.score, best[&f.record.pic_name].0, "{}", f.record.pic_name);
        }
        assert!(out.results.windows(2).all(|w| w[0].score >= w[1].score));
        // Each view finds its own picture first; the page starts after the best of them.
        let top = instance
            .search_views(
                &views,
                subject.clone(),
                &SearchQuery {
                    start: 0,
                    num: 3,
                    ..query.clone()
                },
            )
            .unwrap();
        let mut names: Vec<&str> = top
            .results
            .iter()
            .map(|f| f.record.pic_name.as_str())
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["199.jpg", "42.jpg", "7.jpg"]);
        assert_eq!(
            out.results[0].record.pic_name,
            top.results[1].record.pic_name
        );
        assert_eq!(out.subject.region, best[&top.results[0].record.pic_name].1);
        // Distinct products: one picture per product, still best first.
        let distinct = instance
            .search_views(
                &views,
                subject,
                &SearchQuery {
                    distinct_product: true,
                    num: 20,
                    ..SearchQuery::default()
                },
            )
            .unwrap();
        let mut seen = std::collections::HashSet::new();
        assert!(distinct
            .results
            .iter()
            .all(|f| seen.insert(f.record.product_id.clone())));
    }

    #[test]
    fn silhouette_views_prefer_stored_subjects_of_their_shape() {
        let (_dir, _engine, instance) = crate::engine::testkit::generic_instance("shapes");
        let dim = instance.meta().dimension as usize;
        let vs = crate::index::testkit::unit_vectors(20, dim, 0x5a9e, |u| u.powi(2));
        // Two pictures with one vector: a tall subject (trousers) and a wide one; and a
        // picture without a stored region.
        for (name, region) in [
            ("tall", Some("10,60,0,200")),
            ("wide", Some("0,200,10,60")),
            ("unknown", None),
        ] {
            add_vector(&instance, name, &format!("{name}.jpg"), region, &vs[0]);
        }
        for (i, v) in vs.iter().enumerate().skip(1) {
            add_vector(
                &instance,
                &format!("other{i}"),
                &format!("{i}.jpg"),
                None,
                v,
            );
        }
        let subject = whole(400, 300);
        let tall_box = Region {
            x1: 100,
            x2: 150,
            y1: 40,
            y2: 240,
        };
        let query = SearchQuery {
            num: 3,
            ..SearchQuery::default()
        };
        let scores = |silhouette: bool| -> Vec<(String, f64)> {
            // The whole picture's view matches nothing well (the opposite direction).
            let away: Vec<f32> = vs[0].iter().map(|x| -x).collect();
            let views = [
                View::of_box(away, Region::full(400, 300)),
                View {
                    silhouette,
                    ..View::of_box(vs[0].clone(), tall_box)
                },
            ];
            let out = instance
                .search_views(&views, subject.clone(), &query)
                .unwrap();
            assert_eq!(out.subject.region, tall_box);
            out.results
                .into_iter()
                .map(|f| (f.record.product_id, f.score))
                .collect()
        };
        // A plain box: all three tie at the vector's score.
        let plain = scores(false);
        assert!(plain.iter().all(|(_, s)| *s == plain[0].1), "{plain:?}");
        // A silhouette: the tall subject keeps its score, the unknown one too, and the
        // wide one (aspect 4 against 1/4) loses SHAPE_DISAGREEMENT × ln 16.
        let shaped = scores(true);
        let of = |name: &str| shaped.iter().find(|(p, _)| p == name).unwrap().1;
        assert_eq!(of("tall"), plain[0].1);
        assert_eq!(of("unknown"), plain[0].1);
        let lost = plain[0].1 - of("wide");
        assert!(
            (lost - SHAPE_DISAGREEMENT * 16f64.ln()).abs() < 1e-5,
            "{lost}"
        );
        assert_eq!(shaped.last().unwrap().0, "wide");
    }

    #[test]
    fn crop_keeps_a_busy_scene_whole_and_tries_the_guess_as_a_second_view() {
        use crate::engine::{AddPicture, Attributes};
        use crate::vision::testkit;
        crate::index::kernels::init();
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let instance = engine
            .create_instance(&InstanceSpec::product("busy"))
            .unwrap();
        let add = |name: &str, img: &image::RgbImage| {
            instance
                .add(AddPicture {
                    product_id: name.into(),
                    pic_name: format!("{name}.jpg"),
                    picture: testkit::jpeg_bytes(img, 92),
                    category_id: Some(0),
                    crop: true,
                    region: None,
                    attributes: Attributes::default(),
                })
                .unwrap()
        };
        let shot = testkit::product(
            400,
            300,
            image::Rgb([250, 250, 250]),
            image::Rgb([200, 30, 40]),
            (120, 280, 90, 220),
        );
        let added_shot = add("shot", &shot);
        assert_ne!(
            added_shot.region,
            Region::full(400, 300),
            "a product shot is cropped"
        );
        // Shelf-like scenes with a product-like box in them, so the detector has a guess.
        let scenes: Vec<_> = (0..6u32)
            .map(|i| {
                let mut img = testkit::scene(100 + u64::from(i), 480, 360);
                let (x, y) = (60 + 40 * i, 50 + 20 * i);
                testkit::fill(
                    &mut img,
                    |px, py| px >= x && px < x + 150 && py >= y && py < y + 180,
                    image::Rgb([20, 40 * i as u8, 220]),
                );
                img
            })
            .collect();
        for (i, scene) in scenes.iter().enumerate() {
            assert!(crate::vision::is_cluttered(scene));
            let added = add(&format!("scene{i}"), scene);
            assert_eq!(
                added.region,
                Region::full(480, 360),
                "a busy scene is indexed whole"
            );
            assert!(
                !added.multi_region.is_empty(),
                "the guesses are still reported"
            );
        }
        // A cropped search of a scene finds that scene first, and the search itself is
        // whole (its first view) or the guess (its second), never a lost product.
        let query = SearchQuery {
            num: 3,
            ..SearchQuery::default()
        };
        for (i, scene) in scenes.iter().enumerate() {
            let (views, subject, _) = instance
                .analyse_views(
                    &testkit::jpeg_bytes(scene, 92),
                    (false, false),
                    true,
                    None,
                    None,
                )
                .unwrap();
            assert_eq!(views[0].region, Region::full(480, 360));
            assert_eq!(views.len(), 2, "whole picture and the detector's guess");
            assert_eq!(views[1].region, subject.multi_region[0]);
            let out = instance
                .search_by_picture(&testkit::jpeg_bytes(scene, 92), true, None, &query)
                .unwrap();
            assert_eq!(out.results[0].record.product_id, format!("scene{i}"));
        }
        // A product shot stays a single cropped view.
        let (views, _, _) = instance
            .analyse_views(
                &testkit::jpeg_bytes(&shot, 92),
                (false, false),
                true,
                None,
                None,
            )
            .unwrap();
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].region, added_shot.region);
    }

    #[test]
    fn proposals_find_a_plain_garment_pasted_on_a_busy_scene() {
        use crate::engine::{AddPicture, Attributes};
        use crate::vision::testkit;
        use image::{Rgb, RgbImage};
        crate::index::kernels::init();
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let instance = engine
            .create_instance(&InstanceSpec::product("shop"))
            .unwrap();
        // Garment silhouettes on a `w` x `h` box: a T-shirt, a dress, trousers, a skirt.
        let inside = |shape: usize, x: u32, y: u32, w: u32, h: u32| -> bool {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            match shape {
                0 => fy < 0.35 || (0.25..0.75).contains(&fx),
                1 => (fx - 0.5).abs() < 0.15 + 0.35 * fy,
                2 => fy < 0.3 || !(0.45..=0.55).contains(&fx),
                _ => (fx - 0.5).abs() < 0.5 - 0.3 * (1.0 - fy),
            }
        };
        let colours = [
            Rgb([230, 200, 40]),
            Rgb([40, 150, 70]),
            Rgb([200, 40, 50]),
            Rgb([40, 70, 190]),
        ];
        // The catalogue: every shape in every colour, on white with a margin.
        let shot = |shape: usize, colour: Rgb<u8>| {
            RgbImage::from_fn(220, 260, |x, y| {
                let (bx, by) = (x.wrapping_sub(20), y.wrapping_sub(20));
                if bx < 180 && by < 220 && inside(shape, bx, by, 180, 220) {
                    colour
                } else {
                    Rgb([255, 255, 255])
                }
            })
        };
        for shape in 0..4 {
            for (c, colour) in colours.iter().enumerate() {
                instance
                    .add(AddPicture {
                        product_id: format!("{shape}-{c}"),
                        pic_name: "shot.jpg".into(),
                        picture: testkit::jpeg_bytes(&shot(shape, *colour), 92),
                        category_id: Some(0),
                        crop: true,
                        region: None,
                        attributes: Attributes::default(),
                    })
                    .unwrap();
            }
        }
        let rank_and_score = |bytes: &[u8], proposals: bool, want: &str| {
            let query = SearchQuery {
                num: 16,
                category_id: Some(0),
                scene_proposals: proposals,
                ..SearchQuery::default()
            };
            let out = instance
                .search_by_picture(bytes, true, None, &query)
                .unwrap();
            let rank = out
                .results
                .iter()
                .position(|f| f.record.product_id == want)
                .unwrap_or(usize::MAX);
            let score = out.results.get(rank).map_or(0.0, |f| f.score);
            (rank, score, out.subject.region)
        };
        let mut first_without = 0;
        for (i, (shape, c)) in [(1, 0), (0, 1), (3, 3)].into_iter().enumerate() {
            // The garment, 200 pixels tall, pasted on a busy textured scene.
            let mut scene = testkit::textured(40 + i as u64, 512, 400);
            let (x0, y0) = (60 + 120 * i as u32, 90 + 30 * i as u32);
            for y in 0..200 {
                for x in 0..164 {
                    if inside(shape, x, y, 164, 200) {
                        scene.put_pixel(x0 + x, y0 + y, colours[c]);
                    }
                }
            }
            let bytes = testkit::jpeg_bytes(&scene, 90);
            let want = format!("{shape}-{c}");
            let (rank, score, region) = rank_and_score(&bytes, true, &want);
            assert_eq!(rank, 0, "{want} with proposals");
            // The reported region is the proposal that found it: the garment's box.
            let overlap = |a: u32, b: u32, c: u32, d: u32| b.min(d).saturating_sub(a.max(c));
            let shared = overlap(region.x1, region.x2, x0, x0 + 164)
                * overlap(region.y1, region.y2, y0, y0 + 200);
            assert!(shared * 10 >= 164 * 200 * 8, "{region}");
            assert!(region.area() * 10 <= 164 * 200 * 13, "{region}");
            let (rank_without, score_without, _) = rank_and_score(&bytes, false, &want);
            assert!(score > score_without, "{want}: {score} vs {score_without}");
            first_without += usize::from(rank_without == 0);
        }
        assert!(
            first_without < 3,
            "without proposals every garment was found first too"
        );
        // The server's switch (`serve --scene-proposals`) turns them on for every query.
        let (x0, y0) = (60, 90);
        let mut scene = testkit::textured(40, 512, 400);
        for y in 0..200 {
            for x in 0..164 {
                if inside(1, x, y, 164, 200) {
                    scene.put_pixel(x0 + x, y0 + y, colours[0]);
                }
            }
        }
        let bytes = testkit::jpeg_bytes(&scene, 90);
        let plain = rank_and_score(&bytes, false, "1-0");
        instance.set_scene_proposals(true);
        assert!(instance.scene_proposals());
        assert_eq!(
            rank_and_score(&bytes, false, "1-0"),
            rank_and_score(&bytes, true, "1-0")
        );
        assert_eq!(rank_and_score(&bytes, false, "1-0").0, 0);
        instance.set_scene_proposals(false);
        assert_eq!(rank_and_score(&bytes, false, "1-0"), plain);
    }

    #[test]
    fn scores_are_clamped_and_rounded() {
        assert_eq!(score_of(0.99999994), 1.0);
        assert_eq!(score_of(1.00001), 1.0);
        assert_eq!(score_of(-0.2), 0.0);
        assert_eq!(score_of(0.5), 0.5);
    }
}
