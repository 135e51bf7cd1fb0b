//! Uploads to and bootstraps from a local-filesystem object store: what goes up, that
//! `CURRENT` is written after every file, that a damaged file is refused, and that only
//! the last K snapshots stay.

use super::*;
use crate::engine::InstanceSpec;
use crate::replica::bootstrap::{bootstrap, BootstrapError};
use crate::store::{ProgressMark, Record};

/// An engine with `pictures` pictures in instance "s", the last one applied with
/// sequence `pictures` (as an applier would have stored it).
fn engine_with(dir: &std::path::Path, pictures: usize) -> Arc<Engine> {
    crate::index::kernels::init();
    let engine = Engine::open(dir).unwrap();
    let instance = engine.create_instance(&InstanceSpec::product("s")).unwrap();
    add(&instance, 0, pictures);
    Arc::new(engine)
}

fn add(instance: &crate::engine::Instance, from: usize, to: usize) {
    let dim = instance.meta().dimension as usize;
    for n in from..to {
        let mut vector: Vec<f32> = (0..dim)
            .map(|i| ((i * 31 + n * 17) % 97) as f32 + 1.0)
            .collect();
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        vector.iter_mut().for_each(|x| *x /= norm);
        let record = Record {
            product_id: format!("p{n}"),
            pic_name: "a".into(),
            ..Record::default()
        };
        let picture = instance.prepare_vector(record, vector, None, None).unwrap();
        let mark = ProgressMark {
            inst: instance.meta().id,
            source: APPLIED_SOURCE.to_string(),
            value: (n as u64 + 1).to_be_bytes().to_vec(),
        };
        instance.commit_batch(vec![picture], Some(mark)).unwrap();
    }
}

fn store_at(dir: &std::path::Path) -> SnapshotStore {
    SnapshotStore::open(&format!("file://{}", dir.display())).unwrap()
}

fn restore(from: &std::path::Path, to: &std::path::Path) -> crate::offline::Result<()> {
    crate::offline::restore_moving(from, to).map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_then_bootstrap_gives_the_same_pictures_and_sequence() {
    let root = tempfile::tempdir().unwrap();
    let engine = engine_with(&root.path().join("node1"), 30);
    let store = store_at(&root.path().join("bucket"));
    let uploader = Uploader::new(store.clone(), engine.clone(), None, 2);
    let uploaded = uploader.upload().await.unwrap();
    let current = &uploaded.current;
    assert_eq!(current.applied.get("s"), Some(&30));
    assert!(current.files.iter().any(|f| f.path == DESCRIPTION_FILE));
    assert!(current.files.iter().any(|f| f.path.starts_with("store/")));
    for file in &current.files {
        assert_eq!(
            store.size(&current.key(&file.path)).await.unwrap(),
            Some(file.bytes)
        );
    }
    // The temporary local copy is gone.
    let left = std::fs::read_dir(
        engine
            .data_dir()
            .join(crate::engine::snapshot::SNAPSHOTS_DIR),
    )
    .unwrap()
    .count();
    assert_eq!(left, 0);

    // CURRENT was written after every file of the snapshot.
    let bucket = root.path().join("bucket");
    let modified = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let pointer_time = modified(&bucket.join(CURRENT_KEY));
    for file in &current.files {
        assert!(modified(&bucket.join(current.key(&file.path))) <= pointer_time);
    }

    let node4 = root.path().join("node4");
    let done = bootstrap(&store, &node4, restore).await.unwrap().unwrap();
    assert_eq!(done.current.id, current.id);
    let restored = Engine::open(&node4).unwrap();
    let instance = restored.instance("s").unwrap();
    assert_eq!(instance.info().total_count, 30);
    let mark = instance.progress(APPLIED_SOURCE).unwrap().unwrap();
    assert_eq!(u64::from_be_bytes(mark.as_slice().try_into().unwrap()), 30);
    assert!(!root
        .path()
        .read_dir()
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().contains(".download-")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_file_is_refused_and_no_data_dir_is_made() {
    let root = tempfile::tempdir().unwrap();
    let engine = engine_with(&root.path().join("node1"), 5);
    let bucket = root.path().join("bucket");
    let store = store_at(&bucket);
    let current = Uploader::new(store.clone(), engine, None, 2)
        .upload()
        .await
        .unwrap()
        .current;
    let victim = current
        .files
        .iter()
        .filter(|f| f.bytes > 0)
        .max_by_key(|f| f.bytes)
        .unwrap();
    let object = bucket.join(current.key(&victim.path));
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&object, bytes).unwrap();
    let node4 = root.path().join("node4");
    match bootstrap(&store, &node4, restore).await {
        Err(BootstrapError::Damaged { path, .. }) => assert_eq!(path, victim.path),
        other => panic!("expected a damaged file, got {other:?}"),
    }
    assert!(!node4.exists());

    // A damaged pointer is refused before any file is fetched.
    let mut pointer = std::fs::read(bucket.join(CURRENT_KEY)).unwrap();
    let last = pointer.len() - 3;
    pointer[last] ^= 1;
    std::fs::write(bucket.join(CURRENT_KEY), pointer).unwrap();
    assert!(matches!(
        bootstrap(&store, &node4, restore).await,
        Err(BootstrapError::Current(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_last_k_snapshots_stay_and_current_names_the_newest() {
    let root = tempfile::tempdir().unwrap();
    let engine = engine_with(&root.path().join("node1"), 3);
    let store = store_at(&root.path().join("bucket"));
    let uploader = Uploader::new(store.clone(), engine.clone(), None, 2);
    let instance = engine.instance("s").unwrap();
    let mut ids = Vec::new();
    for round in 0..4 {
        add(&instance, 3 + round, 4 + round);
        // Ids are milliseconds: make each upload's distinct.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let uploaded = uploader.upload().await.unwrap();
        assert_eq!(uploaded.current.applied.get("s"), Some(&(4 + round as u64)));
        ids.push(uploaded.current.id);
    }
    let mut kept = store.folders(SNAPSHOTS_KEY).await.unwrap();
    kept.sort();
    assert_eq!(kept, ids[2..].to_vec());
    let pointer = store.get_bytes(CURRENT_KEY).await.unwrap().unwrap();
    assert_eq!(Current::decode(&pointer).unwrap().id, ids[3]);
}

#[test]
fn store_urls() {
    assert!(SnapshotStore::open("file://relative/dir").is_err());
    assert!(SnapshotStore::open("ftp://host/dir").is_err());
    std::env::set_var("AWS_REGION", "us-east-1");
    assert!(SnapshotStore::open("s3://bucket/some/prefix").is_ok());
}
