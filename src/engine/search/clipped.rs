//! Over-exposed product shots: the source told apart by its stored preview.
//!
//! A copy taken much brighter than a pale garment's catalogue shot is clipped to white
//! (95 % of the pixels at 255 on the fashion catalogue's misses): its vector, subject box
//! and keypoints say little, and every near-white shot scores alike, the source often
//! not first. What is left (a print, seams, the outline's shadow) still sits where the
//! source's darker pixels are, so the shortlist's stored previews of the query's framing
//! (same aspect ratio; the others are not even decoded) are compared
//! with the query through a fitted tone curve ([`crate::vision::Picture::tone_mismatch`])
//! and one that the curve explains far better than the first candidate is moved first.
//! It runs only for a product shot mostly clipped to white whose ranking neither decided
//! nor verified a copy, on instances that store previews.

use super::query::SearchOutcome;
use crate::engine::instance::{Instance, QueryPicture};
use crate::engine::stage_timer::StageTimer;
use crate::engine::Result;

/// Least share of the query's pixels clipped to white for the previews to be compared
/// (a catalogue shot's white background alone is ~40–70 % of it).
const CLIPPED_SHARE: f32 = 0.8;
/// Largest unexplained share for a preview to be the query's source.
const AGREES: f64 = 0.3;
/// How much better than the first candidate's the source's agreement must be.
const BETTER_BY: f64 = 2.0;

impl Instance {
    /// Moves first the candidate among the shortlist's whose preview a tone curve
    /// maps onto `picture` when `picture` is a clipped product shot and no candidate was
    /// verified (`inliers`); the moved picture takes the first score.
    pub(super) fn clipped_rerank(
        &self,
        candidates: &mut SearchOutcome,
        picture: &QueryPicture,
        inliers: &[usize],
    ) -> Result<()> {
        if picture.scene
            || candidates.results.len() < 2
            || inliers.iter().any(|&n| n >= super::MIN_INLIERS)
            || picture.clipped_share() < CLIPPED_SHARE
        {
            return Ok(());
        }
        let timer = StageTimer::start();
        let head = candidates.results.len().min(self.rerank_candidates());
        let mut mismatches = Vec::with_capacity(head);
        for found in &candidates.results[..head] {
            let preview = self.store.thumbnail(self.meta.id, found.doc)?;
            mismatches.push(preview.and_then(|p| picture.tone_mismatch(&p)));
        }
        timer.lap("clipped");
        let best = mismatches
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.map(|m| (i, m)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let Some((best, mismatch)) = best else {
            return Ok(());
        };
        let first = mismatches[0].unwrap_or(1.0);
        if best > 0 && mismatch <= AGREES && mismatch * BETTER_BY <= first {
            let score = candidates.results[0].score;
            let mut moved = candidates.results.remove(best);
            moved.score = score;
            candidates.results.insert(0, moved);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use image::{Rgb, RgbImage};

    use crate::engine::search::query::SearchQuery;
    use crate::engine::{AddPicture, Attributes};
    use crate::vision::testkit;

    /// A pale garment with darker stripes and a dark print at `print`, on white.
    fn shot(print: (u32, u32)) -> RgbImage {
        let mut img = testkit::product(200, 240, Rgb([255; 3]), Rgb([226; 3]), (40, 160, 30, 210));
        testkit::fill(
            &mut img,
            |x, y| (40..160).contains(&x) && (30..210).contains(&y) && (y / 10).is_multiple_of(3),
            Rgb([150; 3]),
        );
        testkit::fill(
            &mut img,
            |x, y| (print.0..print.0 + 30).contains(&x) && (print.1..print.1 + 20).contains(&y),
            Rgb([70, 40, 40]),
        );
        img
    }

    #[test]
    fn an_over_exposed_copy_s_source_is_moved_first_by_its_preview() {
        let (_dir, engine, instance) = crate::engine::testkit::generic_instance("clipped");
        engine.set_thumbnail_size(crate::vision::DEFAULT_THUMBNAIL_SIDE);
        let prints = [(50, 40), (100, 150), (60, 160), (110, 60)];
        for (i, &print) in prints.iter().enumerate() {
            instance
                .add(AddPicture {
                    product_id: i.to_string(),
                    pic_name: "shot.jpg".into(),
                    picture: testkit::jpeg_bytes(&shot(print), 92),
                    category_id: None,
                    crop: false,
                    region: None,
                    attributes: Attributes::default(),
                })
                .unwrap();
        }
        let source = shot(prints[2]);
        let query = SearchQuery {
            num: 4,
            ..SearchQuery::default()
        };
        let first_after = |img: &RgbImage| {
            let bytes = testkit::jpeg_bytes(img, 60);
            let (views, subject, picture) = instance
                .analyse_views(&bytes, (false, false), false, None, None)
                .unwrap();
            let mut out = instance
                .search_vector(&views[0].vector, subject, &query)
                .unwrap();
            // The source last, as a clipped copy's vector may place it.
            let at = out
                .results
                .iter()
                .position(|f| f.record.product_id == "2")
                .unwrap();
            let found = out.results.remove(at);
            out.results.push(found);
            let first_score = out.results[0].score;
            instance.clipped_rerank(&mut out, &picture, &[]).unwrap();
            assert_eq!(out.results[0].score, first_score);
            out.results[0].record.product_id.clone()
        };
        // 1.45 times brighter: the garment is clipped to white; its stripes and print are left.
        let clipped = RgbImage::from_fn(200, 240, |x, y| {
            Rgb(source
                .get_pixel(x, y)
                .0
                .map(|c| (f32::from(c) * 1.45).min(255.0) as u8))
        });
        assert_eq!(first_after(&clipped), "2");
        // The same order for the catalogue shot itself: too little of it is white.
        assert_ne!(first_after(&source), "2");
    }
}
