//! Tone-changed product shots: the source told apart by its stored preview.
//!
//! A copy taken brighter or darker than its catalogue shot (an exposure or gamma change)
//! can lose what the vector, the subject box and the keypoints read: a pale garment
//! clipped to white (95 % of the pixels at 255 on the fashion catalogue's misses), or a
//! darker copy whose balanced view (`exposure.rs`) still ranks its source 30th. Every
//! pixel left still sits where the source's is, its value a function of the source's:
//! the shortlist's stored previews of the query's framing (same aspect ratio; the others
//! are not even decoded) are compared with the query through a fitted tone curve
//! ([`crate::vision::Picture::tone_mismatch`]) and one that the curve explains far better
//! than the first candidate is moved first. A monotone curve explains any exposure or
//! gamma change (and nothing else does: a re-sized, blurred or stamped copy agrees with
//! its source too, an unrelated shot does not), so it runs for every product shot whose
//! ranking neither decided nor verified a copy, on instances that store previews.
//!
//! A query whose tone is known to be changed (mostly clipped to white, or on a dimmed
//! background) and whose shortlist holds no agreeing preview has the previews of a longer
//! vector list compared too ([`LONGER_SHORTLIST`]): its vector may rank the source far
//! down. Copy benchmark (2026-12-05): built-in R@1 0.959 → 0.970, exposure over 200
//! queries 0.945 → 0.970.
//!
//! A copy clipped nearly blank leaves too few pixels for a fitted curve (their variance
//! is JPEG noise, or too little to compare): when no curve agrees, the preview whose
//! darkest pixels are where the query's few pixels left below white are
//! ([`ToneAgreement::dark_overlap`]), over every preview compared, is moved first.
//! Copy benchmark (2026-12-06): exposure over 200 queries 0.970 → 1.000 (seed 2: 0.965
//! → 0.985, two of the three left are copies clipped entirely blank).

use std::collections::HashSet;

use rayon::prelude::*;

use super::query::{Found, SearchOutcome};
use crate::engine::instance::{Instance, QueryPicture};
use crate::engine::stage_timer::StageTimer;
use crate::engine::Result;
use crate::vision::{ScaledPictures, ToneAgreement};

/// Least share of the query's pixels clipped to white for its tone to be known changed
/// (a catalogue shot's white background alone is ~40–70 % of it).
const CLIPPED_SHARE: f32 = 0.8;
/// Largest unexplained share for a preview to be the query's source.
const AGREES: f64 = 0.3;
/// How much better than the first candidate's the source's agreement must be.
const BETTER_BY: f64 = 2.0;
/// Vector results whose previews a query of a known tone change has compared when its
/// shortlist holds no agreeing one (the exposure misses' sources ranked beyond 100).
const LONGER_SHORTLIST: usize = 400;
/// Least share of a clipped query's surviving pixels among a preview's darkest for it
/// to be the query's source ([`ToneAgreement::dark_overlap`]).
const DARK_AGREES: f64 = 0.35;
/// How much more of the surviving pixels the source's darkest must hold than the
/// first candidate's.
const DARK_MARGIN: f64 = 0.2;

/// Puts `moved` first with the first result's score (the ranking's scores stay in order).
fn promote(results: &mut Vec<Found>, mut moved: Found) {
    moved.score = results[0].score;
    results.insert(0, moved);
}

impl Instance {
    /// Moves first the candidate whose preview a tone curve maps onto `picture` far
    /// better than the first's (else whose darkest pixels are `picture`'s few left below
    /// white), when `picture` is a product shot and no candidate was
    /// verified (`inliers`); the moved picture takes the first score. `further(n)` is
    /// the vector ranking's first `n`, asked only when a longer shortlist is compared.
    pub(super) fn tone_rerank(
        &self,
        candidates: &mut SearchOutcome,
        picture: &QueryPicture,
        inliers: &[usize],
        further: impl FnOnce(usize) -> Result<SearchOutcome>,
    ) -> Result<()> {
        if picture.scene
            || candidates.results.len() < 2
            || inliers.iter().any(|&n| n >= super::MIN_INLIERS)
        {
            return Ok(());
        }
        let timer = StageTimer::start();
        let head = candidates.results.len().min(self.rerank_candidates());
        let agreements = self.tone_agreements(&candidates.results[..head], picture)?;
        let timer = timer.lap("tone");
        let first = Agreement::of(agreements[0]);
        if let Some(best) = first.best_by_curve(&agreements[1..]) {
            let moved = candidates.results.remove(best + 1);
            promote(&mut candidates.results, moved);
            return Ok(());
        }
        // A first candidate the curve explains, a query too flat to compare (or of
        // another framing than every preview), or a tone not known changed: no further.
        let toned = picture.balanced || picture.clipped_share() >= CLIPPED_SHARE;
        let compared = |agreements: &[Option<ToneAgreement>]| {
            agreements
                .iter()
                .flatten()
                .any(|a| a.unexplained.is_some() || a.dark_overlap.is_some())
        };
        let mut rest = Vec::new();
        let mut rest_agreements = Vec::new();
        if first.unexplained > AGREES && toned && head < LONGER_SHORTLIST && compared(&agreements) {
            let present: HashSet<u64> = candidates.results[..head].iter().map(|f| f.doc).collect();
            rest = further(LONGER_SHORTLIST)?
                .results
                .into_iter()
                .filter(|f| !present.contains(&f.doc))
                .collect();
            rest_agreements = self.tone_agreements(&rest, picture)?;
            timer.lap("tone_longer");
            if let Some(best) = first.best_by_curve(&rest_agreements) {
                promote(&mut candidates.results, rest.swap_remove(best));
                return Ok(());
            }
        }
        // No curve agrees: the darkest pixels of a clipped query, over every preview
        // compared.
        let others: Vec<Option<ToneAgreement>> = agreements[1..]
            .iter()
            .chain(&rest_agreements)
            .copied()
            .collect();
        if let Some(best) = first.best_by_dark_pixels(&others) {
            let moved = if best + 1 < head {
                candidates.results.remove(best + 1)
            } else {
                rest.swap_remove(best + 1 - head)
            };
            promote(&mut candidates.results, moved);
        }
        Ok(())
    }

    /// Per result, how its stored preview agrees with `picture` through a tone curve
    /// (`None`: no preview, or another framing).
    fn tone_agreements(
        &self,
        results: &[Found],
        picture: &QueryPicture,
    ) -> Result<Vec<Option<ToneAgreement>>> {
        // The previews are independent: compared on every core (the stage's wall time is
        // the slowest searches' share), the query scaled to each preview size once for
        // all the workers.
        let scaled = ScaledPictures::default();
        results
            .par_iter()
            .map_init(
                || picture.shared_tone_comparer(&scaled),
                |comparer, found| {
                    let preview = self.store.thumbnail(self.meta.id, found.doc)?;
                    Ok(preview.and_then(|p| comparer.compare(&p)))
                },
            )
            .collect()
    }
}

/// The first candidate's agreement, against which the others' are judged.
struct Agreement {
    /// Its unexplained share (1 when not compared).
    unexplained: f64,
    /// Its dark pixels' overlap (0 when not compared).
    dark_overlap: f64,
}

impl Agreement {
    /// The first candidate's figures from its comparison.
    fn of(first: Option<ToneAgreement>) -> Self {
        Self {
            unexplained: first.and_then(|a| a.unexplained).unwrap_or(1.0),
            dark_overlap: first.and_then(|a| a.dark_overlap).unwrap_or(0.0),
        }
    }

    /// Position in `others` of the least unexplained share that agrees and beats the
    /// first's.
    fn best_by_curve(&self, others: &[Option<ToneAgreement>]) -> Option<usize> {
        let curve: Vec<Option<f64>> = others
            .iter()
            .map(|a| a.and_then(|a| a.unexplained))
            .collect();
        most_agreeing(&curve, |m| m <= AGREES && m * BETTER_BY <= self.unexplained)
    }

    /// Position in `others` of the greatest dark overlap that agrees and beats the
    /// first's.
    fn best_by_dark_pixels(&self, others: &[Option<ToneAgreement>]) -> Option<usize> {
        // Greatest overlap as the least of its complement.
        let apart: Vec<Option<f64>> = others
            .iter()
            .map(|a| a.and_then(|a| a.dark_overlap).map(|o| 1.0 - o))
            .collect();
        let first_apart = 1.0 - self.dark_overlap;
        most_agreeing(&apart, |m| {
            m <= 1.0 - DARK_AGREES && m + DARK_MARGIN <= first_apart
        })
    }
}

/// Position of the least mismatch that `agrees`, if any.
fn most_agreeing(mismatches: &[Option<f64>], agrees: impl Fn(f64) -> bool) -> Option<usize> {
    mismatches
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.filter(|&m| agrees(m)).map(|m| (i, m)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use image::{Rgb, RgbImage};

    use super::LONGER_SHORTLIST;
    use crate::engine::search::query::{SearchOutcome, SearchQuery};
    use std::sync::Arc;

    use crate::engine::{AddPicture, Attributes, Engine, Instance};
    use crate::vision::testkit;

    /// A pale garment with darker stripes every `every` rows and a dark print at
    /// `print`, on white.
    fn shot(every: u32, print: (u32, u32)) -> RgbImage {
        let mut img = testkit::product(200, 240, Rgb([255; 3]), Rgb([226; 3]), (40, 160, 30, 210));
        testkit::fill(
            &mut img,
            |x, y| {
                (40..160).contains(&x) && (30..210).contains(&y) && (y / every).is_multiple_of(3)
            },
            Rgb([150; 3]),
        );
        testkit::fill(
            &mut img,
            |x, y| (print.0..print.0 + 30).contains(&x) && (print.1..print.1 + 20).contains(&y),
            Rgb([70, 40, 40]),
        );
        img
    }

    /// `img` with every channel mapped by `curve`, as a copy of another exposure.
    fn toned(img: &RgbImage, curve: impl Fn(f32) -> f32) -> RgbImage {
        RgbImage::from_fn(img.width(), img.height(), |x, y| {
            Rgb(img
                .get_pixel(x, y)
                .0
                .map(|c| curve(f32::from(c)).clamp(0.0, 255.0) as u8))
        })
    }

    /// An instance holding `shots` as products "0", "1", ... with previews.
    fn catalogue(shots: &[RgbImage]) -> (tempfile::TempDir, Engine, Arc<Instance>) {
        let (dir, engine, instance) = crate::engine::testkit::generic_instance("tone");
        engine.set_thumbnail_size(crate::vision::DEFAULT_THUMBNAIL_SIDE);
        for (i, img) in shots.iter().enumerate() {
            instance
                .add(AddPicture {
                    product_id: i.to_string(),
                    pic_name: "shot.jpg".into(),
                    picture: testkit::jpeg_bytes(img, 92),
                    category_id: None,
                    crop: false,
                    region: None,
                    attributes: Attributes::default(),
                })
                .unwrap();
        }
        (dir, engine, instance)
    }

    /// Moves the source (product "2") to the end of `out`'s results.
    fn source_last(out: &mut SearchOutcome) {
        let at = out
            .results
            .iter()
            .position(|f| f.record.product_id == "2")
            .unwrap();
        let found = out.results.remove(at);
        out.results.push(found);
    }

    #[test]
    fn a_tone_changed_copy_s_source_is_moved_first_by_its_preview() {
        let prints = [(50, 40), (100, 150), (60, 160), (110, 60)];
        let shots: Vec<RgbImage> = prints.iter().map(|&p| shot(10, p)).collect();
        let (_dir, _engine, instance) = catalogue(&shots);
        let query = SearchQuery {
            num: 4,
            ..SearchQuery::default()
        };
        let first_after = |img: &RgbImage| {
            let bytes = testkit::jpeg_bytes(img, 60);
            let (views, subject, picture) = instance
                .analyse_views(&bytes, (false, false, false), false, None, None)
                .unwrap();
            let mut out = instance
                .search_vector(&views[0].vector, subject, &query)
                .unwrap();
            // The source last, as a tone-changed copy's vector may place it.
            source_last(&mut out);
            let first_score = out.results[0].score;
            instance
                .tone_rerank(&mut out, &picture, &[], |_| unreachable!())
                .unwrap();
            assert_eq!(out.results[0].score, first_score);
            out.results[0].record.product_id.clone()
        };
        // 1.45 times brighter: the garment is clipped to white; its stripes and print are left.
        assert_eq!(first_after(&toned(&shots[2], |c| c * 1.45)), "2");
        // Any tone: a gamma change with white kept white, and the catalogue shot itself.
        let gamma = |c: f32| 255.0 * (c / 255.0).powf(1.4);
        assert_eq!(first_after(&toned(&shots[2], gamma)), "2");
        assert_eq!(first_after(&shots[2]), "2");
    }

    #[test]
    fn a_darker_copy_s_source_is_found_down_a_longer_vector_list() {
        let shots = [
            shot(7, (50, 40)),
            shot(10, (100, 150)),
            shot(14, (60, 160)),
            shot(19, (110, 60)),
        ];
        let (_dir, _engine, instance) = catalogue(&shots);
        let query = SearchQuery {
            num: 4,
            ..SearchQuery::default()
        };
        // The source left out of the shortlist; the longer list holds it.
        let first_after = |img: &RgbImage, balance: bool| {
            let bytes = testkit::jpeg_bytes(img, 60);
            let (views, subject, picture) = instance
                .analyse_views(&bytes, (false, false, false), false, None, None)
                .unwrap();
            let picture = if balance {
                picture.exposure_balanced().unwrap()
            } else {
                picture
            };
            let all = instance
                .search_vector(&views[0].vector, subject, &query)
                .unwrap();
            let mut out = all.clone();
            out.results.retain(|f| f.record.product_id != "1");
            let mut asked = None;
            instance
                .tone_rerank(&mut out, &picture, &[], |n| {
                    asked = Some(n);
                    Ok(all)
                })
                .unwrap();
            (out.results[0].record.product_id.clone(), asked)
        };
        // 38 % darker and a gamma: its background grey, balanced back to white.
        let darker = toned(&shots[1], |c| 0.62 * 255.0 * (c / 255.0).powf(1.2));
        assert_eq!(
            first_after(&darker, true),
            ("1".to_string(), Some(LONGER_SHORTLIST))
        );
        // A shot of an unchanged tone looks no further than the shortlist.
        assert_eq!(first_after(&shots[1], false).1, None);
    }

    #[test]
    fn an_all_but_blank_copy_s_source_is_moved_first_by_its_darkest_pixels() {
        // A pale garment with faint seams (a square of 195) at one place per shot.
        let seams = [(50, 40), (100, 150), (60, 160), (110, 60)];
        let shots: Vec<RgbImage> = seams
            .iter()
            .map(|&(x, y)| {
                let mut img =
                    testkit::product(200, 240, Rgb([255; 3]), Rgb([230; 3]), (40, 160, 30, 210));
                testkit::fill(
                    &mut img,
                    |px, py| (x..x + 12).contains(&px) && (y..y + 12).contains(&py),
                    Rgb([195; 3]),
                );
                img
            })
            .collect();
        let (_dir, _engine, instance) = catalogue(&shots);
        let query = SearchQuery {
            num: 4,
            ..SearchQuery::default()
        };
        // 1.25 times brighter: the garment is clipped to white, the seams barely left.
        let copy = toned(&shots[2], |c| c * 1.25);
        let bytes = testkit::jpeg_bytes(&copy, 60);
        let (views, subject, picture) = instance
            .analyse_views(&bytes, (false, false, false), false, None, None)
            .unwrap();
        assert!(
            picture.clipped_share() > 0.99,
            "{}",
            picture.clipped_share()
        );
        // Too flat for a fitted curve: no preview is explained by one.
        let mut comparer = picture.tone_comparer();
        let previews: Vec<Vec<u8>> = shots
            .iter()
            .map(|s| crate::vision::thumbnail(s, crate::vision::DEFAULT_THUMBNAIL_SIDE).unwrap())
            .collect();
        assert!(previews
            .iter()
            .all(|p| comparer.mismatch(p).is_none_or(|m| m > super::AGREES)));
        let all = instance
            .search_vector(&views[0].vector, subject, &query)
            .unwrap();
        let mut out = all.clone();
        source_last(&mut out);
        instance
            .tone_rerank(&mut out, &picture, &[], |_| Ok(all))
            .unwrap();
        assert_eq!(out.results[0].record.product_id, "2");
    }
}
