//! The vote stage of local features: candidates for verification found by the keypoints
//! themselves, beside the vector search's (instances created with `local_features`).
//!
//! A product pasted small on a busy scene often scores too low against its catalogue
//! shot for the vector search to put it among its first K, though many of its keypoints
//! are in the query. The instance's vote index (`instance/votes.rs`) is asked for the
//! pictures whose stored codes the query's keypoints vote for (Hamming ≤
//! [`crate::engine::VOTE_DISTANCE`], ratio test [`crate::engine::VOTE_RATIO`]), and the pictures with most votes are
//! verified with the vector candidates (`rerank.rs`).
//!
//! A voted picture must pass what a vector candidate passes: live in the snapshot, the
//! category, the filter and ScoreThreshold on its vector score against the query (the
//! best over the query's views), which is also its score when it is not verified (then it
//! is dropped: only verification lets a picture past the vector order).

use std::collections::HashSet;

use super::query::{score_of, Found, SearchQuery};
use crate::engine::instance::{Instance, View};
use crate::engine::row_gate::RowGate;
use crate::engine::Result;
use crate::vision::LocalFeatures;

impl Instance {
    /// The voted pictures for `local` not already among `present` that pass the
    /// category (`category`), `query`'s filter and threshold, as found with their best
    /// vector score over `views`, in vote order.
    pub(in crate::engine) fn voted_candidates(
        &self,
        local: &LocalFeatures,
        views: &[View],
        category: Option<u32>,
        query: &SearchQuery,
        present: &HashSet<u64>,
    ) -> Result<Vec<Found>> {
        let n = self.vote_candidates();
        let Some(votes) = &self.votes else {
            return Ok(Vec::new());
        };
        let top = votes.top(local, n);
        let (snap, projection) = self.layer();
        let gate = RowGate::new(&self.dictionaries, &snap, category, query.filter.as_ref());
        let projected = views
            .iter()
            .map(|v| projection.apply(&v.vector).map(|p| p.into_owned()))
            .collect::<std::result::Result<Vec<Vec<f32>>, _>>()?;
        let mut kept: Vec<(u64, f64)> = Vec::new();
        for (doc, _) in top {
            if present.contains(&doc) {
                continue;
            }
            // Not in this snapshot (added since, or deleted) or refused: left out.
            let Some(row) = snap.row_of(doc) else {
                continue;
            };
            if snap.is_tombstone(row) || !gate.accepts(row) {
                continue;
            }
            let row_vector = snap.vector_at(row);
            let score = projected
                .iter()
                .map(|v| crate::index::kernels::dot(v, row_vector))
                .fold(f32::MIN, f32::max);
            if score < query.min_score {
                continue;
            }
            kept.push((doc, score_of(score)));
        }
        let docs: Vec<u64> = kept.iter().map(|k| k.0).collect();
        let records = self.store.records(self.meta.id, &docs)?;
        let found = kept
            .into_iter()
            .zip(records)
            .filter_map(|((doc, score), record)| record.map(|record| Found { score, doc, record }))
            .collect();
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, InstanceSpec, ServiceType};
    use crate::vision::testkit::{pasted_jpeg, textured};

    /// Catalogue pictures of the test.
    const PICTURES: u64 = 24;

    fn add(instance: &Instance, product: &str, seed: u64, int_attr: i32) {
        super::super::rerank::tests::add(instance, product, "a.jpg", seed, int_attr);
    }

    /// Picture `seed` at 35 % pasted on a busy scene drawn like another catalogue
    /// picture (same colours, other layout): the whole picture's vector finds that one
    /// first, and its keypoints do not match it.
    fn pasted(seed: u64) -> Vec<u8> {
        pasted_jpeg(
            textured((seed + 5) % PICTURES, 560, 420),
            seed,
            0.35,
            (340, 200),
        )
    }

    fn features(bytes: &[u8]) -> LocalFeatures {
        let picture = crate::vision::decode(bytes, &Default::default()).unwrap();
        LocalFeatures::extract(picture.rgb(), crate::engine::QUERY_LOCAL_POINTS)
    }

    fn search(instance: &Instance, bytes: &[u8], query: &SearchQuery) -> Vec<(String, f64)> {
        instance
            .search_by_picture(bytes, false, None, query)
            .unwrap()
            .results
            .into_iter()
            .map(|f| (f.record.product_id, f.score))
            .collect()
    }

    /// The vote index holds exactly the stored features: as many pictures as the
    /// `local_features` column family, and the first `VOTE_POINTS` codes of each.
    fn assert_consistent(instance: &Instance) {
        let (mut pictures, mut codes) = (0, 0);
        instance
            .store
            .for_each_local_features(instance.meta.id, |_, bytes| {
                pictures += 1;
                codes += LocalFeatures::from_bytes(bytes)
                    .unwrap()
                    .len()
                    .min(crate::engine::VOTE_POINTS);
                Ok(())
            })
            .unwrap();
        let size = instance.vote_index_size().unwrap();
        assert_eq!((size.pictures, size.codes), (pictures, codes));
    }

    #[test]
    fn votes_find_a_pasted_copy_the_vector_search_misses_and_follow_the_store() {
        crate::index::kernels::init();
        let dir = tempfile::tempdir().unwrap();
        let query = pasted(7);
        let local = features(&query);
        let wide = SearchQuery {
            num: 30,
            ..SearchQuery::default()
        };
        let before;
        {
            let engine = Engine::open(dir.path()).unwrap();
            let instance = engine
                .create_instance(&InstanceSpec {
                    service_type: ServiceType::Generic,
                    local_features: true,
                    ..InstanceSpec::product("votes")
                })
                .unwrap();
            for i in 0..PICTURES {
                add(&instance, &format!("p{i}"), i, (i % 3) as i32);
            }
            assert_consistent(&instance);
            assert_eq!(
                instance.vote_index_size().unwrap().pictures,
                PICTURES as usize
            );
            // The vote stage alone puts the source among its first three (only the
            // strongest `VOTE_POINTS` codes of a picture vote: these synthetic textures
            // share corners, so another picture may gather more).
            let top3 = |voted: Vec<(crate::store::Record, u32)>| -> Vec<String> {
                voted.into_iter().take(3).map(|v| v.0.product_id).collect()
            };
            let voted = top3(instance.voted(&local, 5).unwrap());
            assert!(voted.contains(&"p7".to_string()), "{voted:?}");

            // Verifying only the vector search's first candidate misses it.
            instance.set_rerank_candidates(1);
            instance.set_vote_candidates(0);
            let vector_only = search(&instance, &query, &wide);
            let rank = vector_only.iter().position(|(p, _)| p == "p7").unwrap();
            assert!(
                rank >= 1,
                "p7 at {rank} of the vector order: {vector_only:?}"
            );
            let vector_score = vector_only[rank].1;
            // With the vote stage it is verified and first, above every other score.
            instance.set_vote_candidates(3);
            let out = search(&instance, &query, &wide);
            assert_eq!(out[0].0, "p7", "{out:?}");
            assert!(out[0].1 > out[1].1);
            assert!(out.windows(2).all(|w| w[0].1 >= w[1].1));
            // Not in the list twice; the rest is the vector order.
            assert_eq!(out.iter().filter(|(p, _)| p == "p7").count(), 1);
            let rest: Vec<&String> = vector_only
                .iter()
                .map(|f| &f.0)
                .filter(|p| *p != "p7")
                .collect();
            let out_rest: Vec<&String> = out[1..].iter().map(|f| &f.0).collect();
            assert_eq!(out_rest, rest[..out_rest.len()]);
            // A voted picture must pass the filter (IntAttr of p7 is 1) and the threshold
            // on its vector score, like a vector candidate.
            let filtered = search(
                &instance,
                &query,
                &SearchQuery {
                    filter: Some(crate::filter::parse("int_attr!=1", 4096).unwrap()),
                    ..wide.clone()
                },
            );
            assert!(!filtered.is_empty() && filtered.iter().all(|(p, _)| p != "p7"));
            let above = search(
                &instance,
                &query,
                &SearchQuery {
                    min_score: vector_score as f32 + 1e-4,
                    ..wide.clone()
                },
            );
            assert!(above.iter().all(|(p, _)| p != "p7"), "{above:?}");
            let at = search(
                &instance,
                &query,
                &SearchQuery {
                    min_score: vector_score as f32 - 1e-4,
                    ..wide.clone()
                },
            );
            assert_eq!(at[0].0, "p7");

            // Replace p3 and delete p11: their old codes are gone, p3's new ones vote.
            add(&instance, "p3", 103, 0);
            instance.delete("p11", None).unwrap();
            assert_consistent(&instance);
            let voted = top3(instance.voted(&features(&pasted(103)), 3).unwrap());
            assert!(voted.contains(&"p3".to_string()), "{voted:?}");
            for old in [3, 11] {
                let voted = instance.voted(&features(&pasted(old)), 3).unwrap();
                assert!(voted.iter().all(|(r, _)| r.product_id != format!("p{old}")));
            }
            // A rebuild rewrites the vector file only: votes unchanged, still first.
            instance.rebuild().unwrap();
            assert_consistent(&instance);
            assert_eq!(search(&instance, &query, &wide)[0].0, "p7");
            before = instance.voted(&local, 10).unwrap();
        }
        // Restart: read back from the column family, the same votes.
        let engine = Engine::open(dir.path()).unwrap();
        let instance = engine.instance("votes").unwrap();
        assert_consistent(&instance);
        assert_eq!(
            instance.vote_index_size().unwrap().pictures,
            PICTURES as usize - 1
        );
        assert_eq!(instance.voted(&local, 10).unwrap(), before);
        instance.set_rerank_candidates(1);
        instance.set_vote_candidates(3);
        assert_eq!(search(&instance, &query, &wide)[0].0, "p7");
        // Deleting the source takes it out of the votes.
        instance.delete("p7", None).unwrap();
        assert_consistent(&instance);
        assert!(instance
            .voted(&local, 10)
            .unwrap()
            .iter()
            .all(|(r, _)| r.product_id != "p7"));
    }
}
