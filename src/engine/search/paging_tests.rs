//! Paging a search by picture that runs several views (scene proposals): every page is
//! cut from one ranking, so pages 1..n concatenate to the first results of one big
//! page, none repeated, none missed.

use std::collections::HashSet;

use crate::engine::{AddPicture, Attributes, Engine, Instance, InstanceSpec, SearchQuery};
use crate::vision::testkit;

/// Results compared: one big page of this many, against pages of `PAGE`.
const RESULTS: usize = 28;
const PAGE: usize = 4;

fn add(instance: &Instance, product: &str, picture: &image::RgbImage) {
    instance
        .add(AddPicture {
            product_id: product.into(),
            pic_name: "a.jpg".into(),
            picture: testkit::jpeg_bytes(picture, 90),
            category_id: Some(0),
            crop: true,
            region: None,
            attributes: Attributes::default(),
        })
        .unwrap();
}

/// A shelf-like scene with a product-like box, as the detector's tests draw them.
fn shelf(seed: u64) -> image::RgbImage {
    let mut img = testkit::scene(seed, 480, 360);
    let (x, y) = (60 + 7 * (seed as u32 % 20), 50);
    testkit::fill(
        &mut img,
        |px, py| px >= x && px < x + 150 && py >= y && py < y + 180,
        image::Rgb([20, (seed * 37 % 200) as u8, 220]),
    );
    img
}

/// Names of `start..start + num` of a search for `bytes` with proposals.
fn page(instance: &Instance, bytes: &[u8], start: usize, num: usize) -> Vec<String> {
    let query = SearchQuery {
        start,
        num,
        category_id: Some(0),
        scene_proposals: true,
        ..SearchQuery::default()
    };
    instance
        .search_by_picture(bytes, true, None, &query)
        .unwrap()
        .results
        .into_iter()
        .map(|f| f.record.product_id)
        .collect()
}

fn pages_cut_one_ranking(local_features: bool, reciprocal: bool) {
    crate::index::kernels::init();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let instance = engine
        .create_instance(&InstanceSpec {
            local_features,
            ..InstanceSpec::product("pages")
        })
        .unwrap();
    if reciprocal {
        instance.set_reciprocal(Some(crate::engine::Reciprocal::DEFAULT));
    }
    for i in 0..8 {
        add(&instance, &format!("shelf{i}"), &shelf(100 + i));
    }
    for i in 0..28 {
        add(
            &instance,
            &format!("shot{i}"),
            &testkit::textured(i, 260, 220),
        );
    }
    // A stored scene searched as it is (its first page decided by the whole picture
    // alone), and a new scene with a catalogue shot pasted in it (proposals run).
    let mut pasted = shelf(300);
    image::imageops::overlay(
        &mut pasted,
        &testkit::scaled(&testkit::textured(5, 260, 220), 0.5),
        280,
        150,
    );
    for (name, picture) in [("stored scene", shelf(103)), ("pasted shot", pasted)] {
        let bytes = testkit::jpeg_bytes(&picture, 92);
        let (views, _, _) = instance
            .analyse_views(&bytes, (false, true, false), true, None, Some(0))
            .unwrap();
        assert!(
            views.iter().any(|v| v.silhouette),
            "{name}: no proposal was made"
        );
        let whole = page(&instance, &bytes, 0, RESULTS);
        assert_eq!(whole.len(), RESULTS, "{name}");
        let mut paged = Vec::new();
        for start in (0..RESULTS).step_by(PAGE) {
            paged.extend(page(&instance, &bytes, start, PAGE));
        }
        let mut seen = HashSet::new();
        assert!(
            paged.iter().all(|n| seen.insert(n.clone())),
            "{name}: {paged:?}"
        );
        assert_eq!(
            paged, whole,
            "{name}, local features {local_features}, reciprocal {reciprocal}"
        );
    }
}

#[test]
fn pages_of_a_proposals_search_cut_one_ranking() {
    pages_cut_one_ranking(false, false);
}

#[test]
fn pages_of_a_verified_proposals_search_cut_one_ranking() {
    pages_cut_one_ranking(true, false);
}

#[test]
fn pages_of_a_reciprocal_reranked_search_cut_one_ranking() {
    pages_cut_one_ranking(false, true);
    pages_cut_one_ranking(true, true);
}
