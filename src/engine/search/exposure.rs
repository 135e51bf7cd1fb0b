//! The exposure-balanced view of a product shot: one more query view when the picture's
//! plain background is a dimmed or tinted white.
//!
//! A copy taken darker than its catalogue shot turns the white background grey, and
//! every stage reads the grey: the vector's colours shift, Crop's box shrinks to what
//! still stands out from the grey (a pale garment vanishes into it), and the keypoints
//! lose contrast. The picture with its background brought back to white
//! ([`crate::vision::Picture::exposure_balanced`]) is analysed as a second view, and its
//! pixels are the ones the keypoints are taken from. It runs only when the first views
//! do not decide (`cascade.rs`) and the background needs it, so a search of a catalogue
//! shot on white pays nothing.

use super::query::{SearchOutcome, SearchQuery};
use crate::engine::instance::{Instance, QueryPicture, Subject, View};
use crate::engine::stage_timer::StageTimer;
use crate::engine::Result;
use crate::vision::Region;

impl Instance {
    /// With `picture`'s exposure-balanced copy (`None`: nothing to balance), the views
    /// searched again with its view added, and the balanced picture (the one to take
    /// keypoints from).
    pub(super) fn exposure_balanced_search(
        &self,
        picture: &QueryPicture,
        views: &mut Vec<View>,
        (crop, region): (bool, Option<Region>),
        subject: &Subject,
        query: &SearchQuery,
    ) -> Result<Option<(SearchOutcome, QueryPicture)>> {
        let Some(balanced) = picture.exposure_balanced() else {
            return Ok(None);
        };
        let timer = StageTimer::start();
        // The category the first analysis settled on: predicting it again would cost
        // a classification and might disagree.
        let analysis =
            self.analyser()
                .analyse_picture(&balanced, crop, region, Some(subject.category_id))?;
        timer.lap("exposure");
        views.push(View::of_box(analysis.vector, analysis.region));
        let outcome = self.search_views_or_vector(views, subject.clone(), query)?;
        Ok(Some((outcome, balanced)))
    }
}

#[cfg(test)]
mod tests {
    use image::{Rgb, RgbImage};

    use crate::engine::search::query::SearchQuery;
    use crate::engine::{AddPicture, Attributes, Engine, InstanceSpec};
    use crate::vision::testkit;

    /// A pale garment `shade` with a darker stripe pattern in `b`, on white.
    fn shot(shade: [u8; 3], b: (u32, u32, u32, u32)) -> RgbImage {
        let mut img = testkit::product(240, 280, Rgb([255; 3]), Rgb(shade), b);
        let stripe = Rgb(shade.map(|c| c - 25));
        testkit::fill(
            &mut img,
            |x, y| x >= b.0 && x < b.1 && y >= b.2 && y < b.3 && (y / 12) % 3 == 0,
            stripe,
        );
        img
    }

    #[test]
    fn a_darker_copy_of_a_pale_product_shot_finds_its_source_through_the_balanced_view() {
        crate::index::kernels::init();
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let instance = engine
            .create_instance(&InstanceSpec::product("pale"))
            .unwrap();
        let shades = [
            [236, 226, 214],
            [224, 234, 240],
            [240, 224, 230],
            [232, 232, 204],
            [226, 226, 226],
        ];
        let boxes = [(40, 200, 30, 250), (60, 180, 20, 260), (30, 210, 60, 220)];
        let mut shots = Vec::new();
        for (s, shade) in shades.iter().enumerate() {
            for (b, bx) in boxes.iter().enumerate() {
                let img = shot(*shade, *bx);
                instance
                    .add(AddPicture {
                        product_id: format!("{s}-{b}"),
                        pic_name: "shot.jpg".into(),
                        picture: testkit::jpeg_bytes(&img, 92),
                        category_id: Some(0),
                        crop: true,
                        region: None,
                        attributes: Attributes::default(),
                    })
                    .unwrap();
                shots.push((format!("{s}-{b}"), img));
            }
        }
        let query = SearchQuery {
            num: 15,
            category_id: Some(0),
            ..SearchQuery::default()
        };
        let mut balanced_views = 0;
        for (name, img) in shots.iter().step_by(4) {
            // The copy 38 % darker: its white is grey, the garment barely stands out.
            let dimmed = RgbImage::from_fn(img.width(), img.height(), |x, y| {
                Rgb(img.get_pixel(x, y).0.map(|c| (f32::from(c) * 0.62) as u8))
            });
            let bytes = testkit::jpeg_bytes(&dimmed, 60);
            let out = instance
                .search_by_picture(&bytes, true, None, &query)
                .unwrap();
            assert_eq!(&out.results[0].record.product_id, name, "{name}");
            // The dimmed picture's own view alone scores its source lower.
            let (views, subject, picture) = instance
                .analyse_views(&bytes, (false, false, false), true, None, Some(0))
                .unwrap();
            assert!(picture.exposure_balanced().is_some());
            let plain = instance
                .search_vector(&views[0].vector, subject, &query)
                .unwrap();
            let plain_score = plain
                .results
                .iter()
                .find(|f| &f.record.product_id == name)
                .map_or(0.0, |f| f.score);
            assert!(out.results[0].score > plain_score, "{name}: {plain_score}");
            balanced_views += 1;
        }
        assert_eq!(balanced_views, 4);
        // A catalogue shot on white has nothing to balance.
        let (_, _, picture) = instance
            .analyse_views(
                &testkit::jpeg_bytes(&shots[0].1, 92),
                (false, false, false),
                true,
                None,
                Some(0),
            )
            .unwrap();
        assert!(picture.exposure_balanced().is_none());
    }
}
