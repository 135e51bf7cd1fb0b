//! The applier without a log: each kind of change applied with its sequence, the
//! outcome a single node would report, and the sequence stored with it.

use super::*;
use crate::engine::{Engine, InstanceSpec};
use crate::store::Record;

fn applier(dir: &std::path::Path, capacity: u64) -> (Engine, Arc<Applier>) {
    crate::index::kernels::init();
    let engine = Engine::open(dir).unwrap();
    let mut spec = InstanceSpec::product("r");
    spec.capacity = capacity;
    let instance = engine.create_instance(&spec).unwrap();
    let applier = Arc::new(Applier {
        name: "r".into(),
        instance,
        position: watch::Sender::new(Position::default()),
        last: Default::default(),
        outcomes: Default::default(),
    });
    (engine, applier)
}

fn add(applier: &Applier, product: &str, pic: &str, seed: usize) -> Change {
    let dim = applier.instance.meta().dimension as usize;
    let mut vector: Vec<f32> = (0..dim)
        .map(|i| ((i * 31 + seed * 17) % 97) as f32 + 1.0)
        .collect();
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    vector.iter_mut().for_each(|x| *x /= norm);
    Change::Add {
        record: Record {
            product_id: product.into(),
            pic_name: pic.into(),
            ..Record::default()
        },
        vector,
        thumbnail: None,
        local_features: None,
    }
}

fn stored_mark(instance: &Instance) -> Option<u64> {
    instance
        .progress(APPLIED_SOURCE)
        .unwrap()
        .map(|b| u64::from_be_bytes(b.as_slice().try_into().unwrap()))
}

fn update(product: &str, pic: &str, int_attr: i32) -> Change {
    Change::Update {
        product_id: product.into(),
        pic_name: pic.into(),
        custom_content: None,
        int_attrs: [Some(int_attr), None, None, None],
        str_attrs: Default::default(),
    }
}

#[test]
fn every_change_commits_its_sequence_and_reports_as_one_node_would() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, a) = applier(dir.path(), 2);
    assert_eq!(stored_mark(&a.instance), None);
    assert_eq!(
        a.apply(1, add(&a, "p", "a", 1)).unwrap().unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(stored_mark(&a.instance), Some(1));
    a.apply(2, add(&a, "p", "b", 2)).unwrap().unwrap();
    // Over capacity: the write fails as on one node, and its sequence is still stored.
    let full = a.apply(3, add(&a, "q", "c", 3)).unwrap();
    assert!(
        matches!(full, Err(EngineError::OverQuota { .. })),
        "{full:?}"
    );
    assert_eq!(stored_mark(&a.instance), Some(3));
    let missing = a.apply(4, update("z", "z", 1)).unwrap();
    assert!(
        matches!(missing, Err(EngineError::PictureNotFound { .. })),
        "{missing:?}"
    );
    assert_eq!(stored_mark(&a.instance), Some(4));
    a.apply(5, update("p", "a", 7)).unwrap().unwrap();
    // The filter sees the update applied before it.
    let filter = Change::DeleteByFilter {
        filter: "int_attr=7".into(),
    };
    assert_eq!(a.apply(6, filter).unwrap().unwrap(), vec!["a".to_string()]);
    let product = Change::Delete {
        product_id: "p".into(),
        pic_name: None,
    };
    assert_eq!(a.apply(7, product).unwrap().unwrap(), vec!["b".to_string()]);
    let nothing = Change::Delete {
        product_id: "p".into(),
        pic_name: Some("a".into()),
    };
    assert_eq!(a.apply(8, nothing).unwrap().unwrap(), Vec::<String>::new());
    assert_eq!(stored_mark(&a.instance), Some(8));
    assert_eq!(a.instance.info().total_count, 0);
    drop(a);
    drop(engine);
    let engine = Engine::open(dir.path()).unwrap();
    assert_eq!(stored_mark(&engine.instance("r").unwrap()), Some(8));
}

#[test]
fn a_waiting_request_gets_its_outcome_or_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, a) = applier(dir.path(), 10);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let short = Duration::from_millis(50);
    a.applied(1, Ok(vec!["x".into()]));
    let got = runtime.block_on(a.wait(1, short)).unwrap().unwrap();
    assert_eq!(got, vec!["x".to_string()]);
    assert_eq!(a.lag().applied, 1);
    let late = runtime.block_on(a.wait(2, short)).unwrap_err();
    assert!(
        matches!(late, ReplicaError::NotApplied { sequence: 2, .. }),
        "{late}"
    );
    a.stop("test".into());
    let stopped = runtime.block_on(a.wait(2, short)).unwrap_err();
    assert!(matches!(stopped, ReplicaError::Stopped(..)), "{stopped}");
    assert_eq!(a.lag().stopped.as_deref(), Some("test"));
}

#[test]
fn consecutive_adds_commit_once_with_the_last_sequence_and_each_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, a) = applier(dir.path(), 2);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let logged = time::OffsetDateTime::now_utc();
    let batch: Vec<batch::Pending> = vec![
        (1, logged, add(&a, "p", "a", 1)),
        (2, logged, add(&a, "p", "b", 2)),
        // Over capacity: its own failure, the others stored.
        (3, logged, add(&a, "q", "c", 3)),
        // The same name again in the batch: replaces, as on one node.
        (4, logged, add(&a, "p", "a", 4)),
    ];
    runtime.block_on(a.apply_batch(batch)).unwrap();
    assert_eq!(stored_mark(&a.instance), Some(4));
    assert_eq!(a.lag().applied, 4);
    assert_eq!(a.instance.info().total_count, 2);
    let short = Duration::from_millis(50);
    assert!(runtime.block_on(a.wait(1, short)).unwrap().is_ok());
    let full = runtime.block_on(a.wait(3, short)).unwrap();
    assert!(
        matches!(full, Err(EngineError::OverQuota { .. })),
        "{full:?}"
    );
    assert!(runtime.block_on(a.wait(4, short)).unwrap().is_ok());
    // A batch that cannot be stored leaves neither pictures nor the mark.
    let wrong = Change::Add {
        record: Record {
            product_id: "r".into(),
            pic_name: "x".into(),
            ..Record::default()
        },
        vector: vec![1.0; 3],
        thumbnail: None,
        local_features: None,
    };
    let failed = runtime
        .block_on(a.apply_batch(vec![(5, logged, add(&a, "p", "d", 5)), (6, logged, wrong)]));
    assert!(failed.is_err());
    assert_eq!(stored_mark(&a.instance), Some(4));
    assert_eq!(a.lag().applied, 4);
}
