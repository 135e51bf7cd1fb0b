//! Searches with several views: best score per picture, silhouettes, busy scenes and
//! segment proposals; several query vectors in one scan; reported scores.

use super::query::score_of;
use super::views::SHAPE_DISAGREEMENT;
use crate::engine::instance::View;
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
                (false, false, false),
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
            (false, false, false),
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

#[test]
fn a_search_with_several_views_reads_each_record_once() {
    let (_dir, _engine, instance) = crate::engine::testkit::generic_instance("memo");
    let dim = instance.meta().dimension as usize;
    let vs = crate::index::testkit::unit_vectors(40, dim, 0xbeef, |u| u.powi(2));
    for (i, v) in vs.iter().enumerate() {
        add_vector(&instance, &format!("p{i}"), &format!("{i}.jpg"), None, v);
    }
    let query = SearchQuery {
        num: 10,
        ..SearchQuery::default()
    };
    let plain = instance
        .search_vector(&vs[3], whole(100, 100), &query)
        .unwrap();
    let mut memo = super::vector::RecordMemo::new();
    let remembered = instance
        .search_vector_with(&vs[3], whole(100, 100), &query, Some(&mut memo))
        .unwrap();
    assert_eq!(remembered, plain);
    // Every fetched record is remembered, and a remembered one is not read again: the
    // memo's (altered) copy is what the next view sees.
    assert!(plain.results.iter().all(|f| memo.contains_key(&f.doc)));
    let first = plain.results[0].doc;
    if let Some(Some(record)) = memo.get_mut(&first) {
        record.custom_content = Some("remembered".into());
    }
    let again = instance
        .search_vector_with(&vs[3], whole(100, 100), &query, Some(&mut memo))
        .unwrap();
    assert_eq!(
        again.results[0].record.custom_content.as_deref(),
        Some("remembered")
    );
    assert_eq!(again.results[1..], plain.results[1..]);
}

#[test]
fn several_vectors_in_one_scan_find_what_each_finds_alone() {
    let (_dir, _engine, instance) = crate::engine::testkit::generic_instance("many");
    let dim = instance.meta().dimension as usize;
    let vs = crate::index::testkit::unit_vectors(200, dim, 0xabc, |u| u.powi(2));
    for (i, v) in vs.iter().enumerate() {
        add_vector(&instance, &format!("p{i}"), "a.jpg", None, v);
    }
    let subject = whole(10, 10);
    let query = SearchQuery {
        num: 5,
        ..SearchQuery::default()
    };
    // Enough queries for the blocked multi-query pass, and a one-query request.
    for n in [7, 1] {
        let queries: Vec<&[f32]> = vs.iter().step_by(13).take(n).map(Vec::as_slice).collect();
        let together = instance.search_vectors(&queries, &subject, &query).unwrap();
        assert_eq!(together.len(), n);
        for (vector, outcome) in queries.iter().zip(&together) {
            let alone = instance
                .search_vector(vector, subject.clone(), &query)
                .unwrap();
            let docs = |o: &super::SearchOutcome| -> Vec<(u64, String)> {
                o.results
                    .iter()
                    .map(|f| (f.doc, f.record.product_id.clone()))
                    .collect()
            };
            assert_eq!(docs(outcome), docs(&alone));
            assert_eq!(outcome.results.len(), 5);
            for (a, b) in outcome.results.iter().zip(&alone.results) {
                assert!((a.score - b.score).abs() < 1e-6, "{} {}", a.score, b.score);
            }
            assert_eq!(outcome.docs_found, alone.docs_found);
        }
    }
}
