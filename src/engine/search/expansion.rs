//! Average query expansion: the query vector averaged with its first neighbours'
//! stored vectors, searched again.
//!
//! Other photos of one product (the GroceryStore case: a shelf, a hand, a bag) differ
//! more from each other than from their closest catalogue neighbours, and a vector
//! search ranks only what looks like the query. The first neighbours of a query are
//! mostly right; their mean with the query lies nearer the middle of the product's
//! pictures and reaches the ones that look less like this particular photo (Chum et
//! al. 2007). Only an undecided single-view ranking is expanded (a decisive one is a
//! copy already, several views are a scene searched by parts), and only on request
//! (`SearchQuery::query_expansion`).

use super::query::{SearchOutcome, SearchQuery};
use crate::engine::instance::{Instance, Subject};
use crate::engine::stage_timer::StageTimer;
use crate::engine::Result;

impl Instance {
    /// `candidates` (the search of `vector`) searched again with the mean of `vector` and
    /// the stored vectors of its first `query.query_expansion` results, unit length.
    pub(super) fn expanded_search(
        &self,
        vector: &[f32],
        candidates: SearchOutcome,
        subject: Subject,
        query: &SearchQuery,
    ) -> Result<SearchOutcome> {
        let k = query.query_expansion.min(candidates.results.len());
        if k == 0 {
            return Ok(candidates);
        }
        let timer = StageTimer::start();
        let mut mean = vector.to_vec();
        for found in &candidates.results[..k] {
            let Some(stored) = self.store.vector(self.meta.id, found.doc)? else {
                continue;
            };
            if stored.len() != mean.len() {
                continue;
            }
            for (m, s) in mean.iter_mut().zip(&stored) {
                *m += s;
            }
        }
        crate::vision::l2_normalize(&mut mean);
        timer.lap("expansion");
        self.search_vector(&mean, subject, query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Record;
    use crate::vision::Region;

    /// A unit vector of the instance's dimension with `parts` on its first axes.
    fn unit(dim: usize, parts: &[f32]) -> Vec<f32> {
        let mut v = vec![0.0; dim];
        v[..parts.len()].copy_from_slice(parts);
        crate::vision::l2_normalize(&mut v);
        v
    }

    #[test]
    fn the_mean_with_the_first_neighbour_reaches_its_product_s_other_picture() {
        let (_dir, _engine, instance) = crate::engine::testkit::generic_instance("qe");
        let dim = instance.meta().dimension as usize;
        // Product a: one picture near the query, one far from it but near the first;
        // d, another product, lies between.
        let pictures = [
            ("a", [1.0, 0.5, 0.0]),
            ("a", [0.3, 1.0, 0.0]),
            ("d", [0.5, 0.0, 1.0]),
        ];
        for (i, (product, parts)) in pictures.iter().enumerate() {
            let record = Record {
                product_id: product.to_string(),
                pic_name: format!("{i}.jpg"),
                category_id: crate::engine::CATEGORY_OTHER,
                ..Record::default()
            };
            instance.add_vector(&record, &unit(dim, parts)).unwrap();
        }
        let query_vector = unit(dim, &[1.0]);
        let subject = Subject {
            category_id: crate::engine::CATEGORY_OTHER,
            region: Region::full(10, 10),
            multi_region: Vec::new(),
        };
        let names = |out: &SearchOutcome| -> Vec<String> {
            out.results
                .iter()
                .map(|f| f.record.pic_name.clone())
                .collect()
        };
        let query = SearchQuery {
            num: 3,
            query_expansion: 1,
            ..SearchQuery::default()
        };
        let plain = instance
            .search_vector(&query_vector, subject.clone(), &query)
            .unwrap();
        assert_eq!(names(&plain), ["0.jpg", "2.jpg", "1.jpg"]);
        let expanded = instance
            .expanded_search(&query_vector, plain.clone(), subject.clone(), &query)
            .unwrap();
        assert_eq!(names(&expanded), ["0.jpg", "1.jpg", "2.jpg"]);
        // Off: the ranking as it was.
        let off = SearchQuery {
            query_expansion: 0,
            ..query
        };
        let same = instance
            .expanded_search(&query_vector, plain.clone(), subject, &off)
            .unwrap();
        assert_eq!(same, plain);
    }
}
