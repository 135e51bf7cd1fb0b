//! Re-ranking a search's first candidates by geometric verification of local features
//! (instances created with `local_features`).
//!
//! The vector scan finds candidates, and the keypoint vote stage (`votes.rs`) a few more;
//! for the first K of the former and all of the latter the stored keypoints are
//! matched against the query's ([`vision::verify`]). A candidate with at least
//! [`MIN_INLIERS`] matches explained by one similarity transform is a verified copy:
//! verified candidates come first, most inliers first, then the others in their vector
//! order. Scores stay in 0..1 and never rise down the list: a verified hit reports
//! [`verified_score`] of its inliers above the best vector score among the candidates,
//! every other hit its vector score. ScoreThreshold still applies to the vector score
//! (re-ranking only ever raises a score), and distinct products and paging apply after
//! the re-ranking.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use super::query::{score_of, Found, SearchOutcome, SearchQuery};
use crate::engine::instance::Instance;
use crate::engine::stage_timer::StageTimer;
use crate::engine::Result;
use crate::vision::{self, LocalFeatures};

/// Inliers from which a candidate counts as a verified copy. On the fashion catalogue's
/// pasted-on-scene queries unrelated pictures reached at most 11 by chance, their
/// sources a median of 18; plain copies (JPEG, text, rotation) reach 50–250.
pub const MIN_INLIERS: usize = 12;
/// Inliers at which a verified score is halfway between the best vector score and 1.
const HALF_SCORE_INLIERS: f64 = 30.0;

/// Score of a verified hit with `inliers` inliers when the best vector score among the
/// candidates is `best`: above `best`, rising towards 1 with the inliers (so verified
/// hits keep the order of their inliers and stay above every unverified hit).
pub fn verified_score(best: f64, inliers: usize) -> f64 {
    let n = inliers as f64;
    let best = best.clamp(0.0, 1.0);
    score_of((best + (1.0 - best) * n / (n + HALF_SCORE_INLIERS)) as f32)
}

impl Instance {
    /// Inliers of the stored features of each of `docs` against the query's `local`, in
    /// order (0 for a picture without features), verified in parallel.
    pub(in crate::engine) fn verify_docs(
        &self,
        docs: &[u64],
        local: &LocalFeatures,
    ) -> Result<Vec<usize>> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let timer = StageTimer::start();
        let stored = self.store.local_features(self.meta.id, docs)?;
        let inliers = stored
            .par_iter()
            .map(|bytes| {
                bytes
                    .as_deref()
                    .and_then(LocalFeatures::from_bytes)
                    .map_or(0, |s| vision::verify(&s, local).inliers)
            })
            .collect();
        timer.lap("verify");
        Ok(inliers)
    }

    /// Re-ranks the first candidates of `candidates` (a search with start 0, no distinct
    /// products, enough results for `query`'s page) and the `voted` pictures (not among
    /// those first: moved up from further down the candidates when verified, otherwise
    /// kept only when verified, after verified candidates with as many inliers) by
    /// `inliers`: those of the first `inliers.len() - voted.len()` candidates, then those
    /// of the voted pictures ([`Self::verify_docs`]). Cuts `query`'s page from them; with
    /// no inliers at all the page is the vector order's.
    pub(in crate::engine) fn rerank(
        &self,
        candidates: SearchOutcome,
        voted: Vec<Found>,
        inliers: &[usize],
        query: &SearchQuery,
    ) -> Result<SearchOutcome> {
        let SearchOutcome {
            subject,
            docs_found,
            results,
        } = candidates;
        let head = inliers.len() - voted.len();
        let best = results.first().map_or(0.0, |f| f.score);
        let mut verified: Vec<(usize, Found)> = Vec::new();
        let mut others: Vec<Found> = Vec::with_capacity(results.len());
        // Inliers of the voted pictures (not among the first k); those further down the
        // candidates are moved up from there when verified.
        let mut voted_inliers: HashMap<u64, usize> = voted
            .iter()
            .zip(&inliers[head..])
            .map(|(f, &n)| (f.doc, n))
            .collect();
        for (i, found) in results.into_iter().enumerate() {
            let n = if i < head {
                inliers[i]
            } else {
                voted_inliers.remove(&found.doc).unwrap_or(0)
            };
            if n >= MIN_INLIERS {
                verified.push((n, found));
            } else {
                others.push(found);
            }
        }
        // Voted pictures outside the candidates only enter verified.
        for found in voted {
            match voted_inliers.get(&found.doc) {
                Some(&n) if n >= MIN_INLIERS => verified.push((n, found)),
                _ => {}
            }
        }
        // Stable: equal inliers keep the vector order.
        verified.sort_by_key(|v| std::cmp::Reverse(v.0));
        let ranked = verified
            .into_iter()
            .map(|(n, found)| Found {
                score: verified_score(best, n),
                ..found
            })
            .chain(others);
        let wanted = query.start + query.num;
        let mut page = Vec::with_capacity(wanted);
        let mut products = HashSet::new();
        for found in ranked {
            if query.distinct_product && !products.insert(found.record.product_id.clone()) {
                continue;
            }
            page.push(found);
            if page.len() == wanted {
                break;
            }
        }
        let docs_found = if query.distinct_product {
            products.len()
        } else {
            docs_found
        };
        Ok(SearchOutcome {
            subject,
            docs_found,
            results: page.into_iter().skip(query.start).collect(),
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::engine::{AddPicture, Attributes, Engine, InstanceSpec, ServiceType};
    use crate::vision::testkit::{jpeg_bytes, pasted_jpeg, textured};

    /// Catalogue pictures of the engine test.
    const PICTURES: u64 = 24;

    pub(in crate::engine) fn add(
        instance: &Instance,
        product: &str,
        pic: &str,
        seed: u64,
        int_attr: i32,
    ) {
        let picture = jpeg_bytes(&textured(seed, 260, 220), 90);
        instance
            .add(AddPicture {
                product_id: product.into(),
                pic_name: pic.into(),
                picture,
                category_id: None,
                crop: false,
                region: None,
                attributes: Attributes {
                    int_attrs: [Some(int_attr), None, None, None],
                    ..Attributes::default()
                },
            })
            .unwrap();
    }

    /// Picture `seed` at 45 % of its size pasted on a busy scene, as a shopper's photo.
    fn pasted(seed: u64) -> Vec<u8> {
        pasted_jpeg(textured(1000 + seed, 520, 400), seed, 0.45, (300, 60))
    }

    fn search(instance: &Instance, bytes: &[u8], query: &SearchQuery) -> SearchOutcome {
        instance
            .search_by_picture(bytes, false, None, query)
            .unwrap()
    }

    fn names(outcome: &SearchOutcome) -> Vec<String> {
        outcome
            .results
            .iter()
            .map(|f| format!("{}/{}", f.record.product_id, f.record.pic_name))
            .collect()
    }

    #[test]
    fn pasted_copies_rank_first_and_features_live_and_die_with_their_pictures() {
        crate::index::kernels::init();
        let dir = tempfile::tempdir().unwrap();
        let top = SearchQuery {
            num: 10,
            ..SearchQuery::default()
        };
        let query = pasted(7);
        let doc;
        {
            let engine = Engine::open(dir.path()).unwrap();
            let instance = engine
                .create_instance(&InstanceSpec {
                    service_type: ServiceType::Generic,
                    local_features: true,
                    ..InstanceSpec::product("local")
                })
                .unwrap();
            assert!(instance.meta().local_features);
            for i in 0..PICTURES {
                add(&instance, &format!("p{i}"), "a.jpg", i, (i % 3) as i32);
            }
            // A second picture of product p7, unrelated to the query.
            add(&instance, "p7", "b.jpg", 500, 0);
            let stored = instance.local_features("p7", "a.jpg").unwrap().unwrap();
            assert!(stored.len() > 100, "{} keypoints", stored.len());
            // Added by vector: no pixels, no features.
            let dim = instance.meta().dimension as usize;
            let record = crate::store::Record {
                product_id: "v".into(),
                pic_name: "v".into(),
                ..Default::default()
            };
            instance
                .add_vector(&record, &vec![1.0 / (dim as f32).sqrt(); dim])
                .unwrap();
            assert!(instance.local_features("v", "v").unwrap().is_none());

            let out = search(&instance, &query, &top);
            assert_eq!(names(&out)[0], "p7/a.jpg", "{:?}", names(&out));
            doc = out.results[0].doc;
            assert!(out.results.windows(2).all(|w| w[0].score >= w[1].score));
            assert!(out.results[0].score > out.results[1].score);
            assert!(out.results.iter().all(|f| (0.0..=1.0).contains(&f.score)));

            // Paging cuts the re-ranked list.
            let page = search(
                &instance,
                &query,
                &SearchQuery {
                    start: 1,
                    num: 3,
                    ..SearchQuery::default()
                },
            );
            assert_eq!(names(&page), names(&out)[1..4]);
            assert_eq!(page.docs_found, out.docs_found);
            // Distinct products: p7 once.
            let distinct = search(
                &instance,
                &query,
                &SearchQuery {
                    num: 30,
                    distinct_product: true,
                    ..SearchQuery::default()
                },
            );
            assert_eq!(names(&distinct)[0], "p7/a.jpg");
            let mut seen = HashSet::new();
            assert!(distinct
                .results
                .iter()
                .all(|f| seen.insert(f.record.product_id.clone())));
            // A filter that excludes p7/a.jpg (IntAttr 7 % 3 = 1) keeps it out.
            let filtered = search(
                &instance,
                &query,
                &SearchQuery {
                    num: 30,
                    filter: Some(crate::filter::parse("int_attr!=1", 4096).unwrap()),
                    ..SearchQuery::default()
                },
            );
            assert!(!filtered.results.is_empty());
            assert!(filtered
                .results
                .iter()
                .all(|f| f.record.int_attrs[0] != Some(1)));
            // ScoreThreshold applies to the vector score; re-ranking only raises scores.
            let threshold = out.results[5].score as f32;
            let above = search(
                &instance,
                &query,
                &SearchQuery {
                    num: 30,
                    min_score: threshold,
                    ..SearchQuery::default()
                },
            );
            assert!(above.results.len() < out.docs_found.min(30));
            assert!(above
                .results
                .iter()
                .all(|f| f.score >= f64::from(threshold) - 1e-6));

            // Replace half the pictures (tombstones), then compact the vector file.
            for i in (0..PICTURES).step_by(2).filter(|i| *i != 7) {
                add(&instance, &format!("p{i}"), "a.jpg", 100 + i, 0);
            }
            instance.rebuild().unwrap();
            let out = search(&instance, &query, &top);
            assert_eq!(names(&out)[0], "p7/a.jpg");
            assert_eq!(out.results[0].doc, doc);
            let replaced = search(&instance, &pasted(104), &top);
            assert_eq!(names(&replaced)[0], "p4/a.jpg");
        }
        // Restart: the features are read back from the store.
        let engine = Engine::open(dir.path()).unwrap();
        let instance = engine.instance("local").unwrap();
        assert!(instance.meta().local_features);
        let out = search(&instance, &query, &top);
        assert_eq!(names(&out)[0], "p7/a.jpg");
        // Deleting the picture deletes its features.
        instance.delete("p7", Some("a.jpg")).unwrap();
        assert_eq!(
            instance
                .store
                .local_features(instance.meta.id, &[doc])
                .unwrap(),
            vec![None]
        );
        assert!(instance.local_features("p7", "a.jpg").unwrap().is_none());
        let out = search(&instance, &query, &top);
        assert!(names(&out).iter().all(|n| n != "p7/a.jpg"));
    }

    #[test]
    fn verified_scores_rise_with_inliers_and_stay_above_the_best() {
        for best in [0.0, 0.42, 0.9, 1.0] {
            let mut last = best;
            for n in [MIN_INLIERS, 13, 20, 50, 400] {
                let s = verified_score(best, n);
                assert!(s >= last && s <= 1.0, "best {best}, {n} inliers: {s}");
                last = s;
            }
            assert!(verified_score(best, MIN_INLIERS) >= best);
        }
        assert!(verified_score(0.5, 30) > 0.74 && verified_score(0.5, 30) < 0.76);
    }
}
