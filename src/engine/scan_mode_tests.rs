//! The scan modes through an engine instance: i8 and f16 copies give the f32 results for
//! plain, thresholded, filtered, selective, paged and distinct searches, also after
//! appends and deletes (the index-level tests of the copies are in `index/scan/`).

use crate::engine::instance::Instance;
use crate::engine::ScanMode;
use crate::engine::{SearchQuery, Subject};
use crate::store::Record;
use crate::vision::Region;

/// Non-negative unit vectors like the built-in features (cubed draws), so many scores sit close together.
fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    crate::index::testkit::unit_vectors(n, dim, seed, |u| u.powi(3))
}

fn record(i: usize) -> Record {
    Record {
        product_id: format!("p{}", i / 2),
        pic_name: format!("{i}.jpg"),
        category_id: crate::engine::CATEGORY_OTHER,
        int_attrs: [Some((i % 3) as i32), Some((i % 100) as i32), None, None],
        ..Record::default()
    }
}

fn subject() -> Subject {
    Subject {
        category_id: crate::engine::CATEGORY_OTHER,
        region: Region::full(1, 1),
        multi_region: Vec::new(),
    }
}

/// Every search the test compares: plain, thresholded, filtered, paged, distinct.
fn queries() -> Vec<SearchQuery> {
    let filter = crate::filter::parse("int_attr=1", 4096).unwrap();
    // 1 % of the rows: the selective path (collect, then score).
    let selective = crate::filter::parse("int_attr2=7", 4096).unwrap();
    let base = SearchQuery {
        num: 10,
        ..SearchQuery::default()
    };
    vec![
        base.clone(),
        SearchQuery {
            min_score: 0.8,
            num: 20,
            ..base.clone()
        },
        SearchQuery {
            filter: Some(filter),
            ..base.clone()
        },
        SearchQuery {
            filter: Some(selective),
            ..base.clone()
        },
        SearchQuery {
            start: 5,
            num: 7,
            ..base.clone()
        },
        SearchQuery {
            distinct_product: true,
            ..base
        },
    ]
}

fn run(instance: &Instance, probes: &[Vec<f32>]) -> Vec<crate::engine::SearchOutcome> {
    let mut out = Vec::new();
    for v in probes {
        for q in queries() {
            out.push(instance.search_vector(v, subject(), &q).unwrap());
        }
    }
    out
}

#[test]
fn quantised_searches_equal_f32_searches() {
    let (_dir, engine, instance) = crate::engine::testkit::generic_instance("quant");
    let dim = instance.meta().dimension as usize;
    let vs = vectors(1_500, dim, 0x9e3779b97f4a7c15);
    for (i, v) in vs.iter().enumerate() {
        instance.add_vector(&record(i), v).unwrap();
    }
    // Own rows and fresh vectors.
    let mut probes: Vec<Vec<f32>> = vs.iter().step_by(150).cloned().collect();
    probes.extend(vectors(5, dim, 77));
    assert_eq!(instance.scan_mode(), ScanMode::F32);
    assert_eq!(instance.scan_copy_rows(), None);
    let exact = run(&instance, &probes);
    // The selective filter's results: its rows only, all of them when few.
    let picked = &exact[3];
    assert_eq!(picked.docs_found, 15);
    assert_eq!(picked.results.len(), 10);
    assert!(picked
        .results
        .iter()
        .all(|f| f.record.int_attrs[1] == Some(7)));

    for mode in [ScanMode::I8, ScanMode::F16] {
        engine.set_scan_mode(mode);
        instance.build_scan_copy();
        assert_eq!(instance.scan_copy_rows(), Some(vs.len()), "{mode:?}");
        assert_eq!(run(&instance, &probes), exact, "{mode:?}");
    }

    // Appended after the copy: scored in f32 and found.
    let extra = vectors(3, dim, 4242);
    for (i, v) in extra.iter().enumerate() {
        instance.add_vector(&record(10_000 + i), v).unwrap();
    }
    assert_eq!(instance.scan_copy_rows(), Some(vs.len()));
    let query = SearchQuery {
        num: 3,
        ..SearchQuery::default()
    };
    let found = instance
        .search_vector(&extra[1], subject(), &query)
        .unwrap();
    assert_eq!(found.results[0].record.pic_name, "10001.jpg");
    assert_eq!(found.results[0].score, 1.0);

    // Deleted pictures (inside the copy and after it) are not found.
    instance.delete("p0", Some("0.jpg")).unwrap();
    instance.delete("p5000", Some("10001.jpg")).unwrap();
    for v in [&vs[0], &extra[1]] {
        let found = instance.search_vector(v, subject(), &query).unwrap();
        assert!(found
            .results
            .iter()
            .all(|f| f.record.pic_name != "0.jpg" && f.record.pic_name != "10001.jpg"));
        assert!(found.results[0].score < 1.0);
    }
    // And the quantised engine still agrees with f32 after the changes.
    let quantised = run(&instance, &probes);
    engine.set_scan_mode(ScanMode::F32);
    assert_eq!(instance.scan_copy_rows(), None);
    assert_eq!(run(&instance, &probes), quantised);
}
