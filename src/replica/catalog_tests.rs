//! The catalog without a log: entries round-trip, applying them creates and deletes
//! instances, and applying one again (a crash before its mark) changes nothing.

use super::*;

fn create(name: &str, engine: &Engine) -> CatalogEntry {
    CatalogEntry::Create {
        name: name.into(),
        service_type: ServiceType::Generic.code(),
        qps: 5,
        capacity: 1234,
        local_features: false,
        extractor: engine
            .record_extractor(name, &ExtractorChoice::Builtin)
            .unwrap(),
    }
}

#[test]
fn entries_round_trip_and_damage_is_refused() {
    crate::index::kernels::init();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    for entry in [
        create("a", &engine),
        CatalogEntry::Delete { name: "a".into() },
    ] {
        let bytes = seal(&entry).unwrap();
        assert_eq!(&bytes[..4], &MAGIC);
        assert_eq!(open(&bytes).unwrap(), entry);
        let mut damaged = bytes.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(open(&damaged).is_err());
        // An instance log entry is not a catalog entry.
        assert!(open(
            &super::super::entry::seal(&super::super::Change::Delete {
                product_id: "p".into(),
                pic_name: None,
            })
            .unwrap()
        )
        .is_err());
    }
}

#[test]
fn create_delete_and_create_again_each_applied_once() {
    crate::index::kernels::init();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let entry = create("shop", &engine);

    apply(&engine, &entry).unwrap().unwrap();
    let instance = engine.instance("shop").unwrap();
    assert_eq!(instance.meta().capacity, 1234);
    assert_eq!(instance.meta().qps, 5);
    assert_eq!(instance.service_type(), ServiceType::Generic);
    // The same entry again (replayed after a crash, or a second creation of the name)
    // leaves the instance as it is and answers that the name is taken.
    let again = apply(&engine, &entry).unwrap();
    assert!(matches!(
        again,
        Err(EngineError::Store(StoreError::InstanceExists(_)))
    ));
    assert!(Arc::ptr_eq(&instance, &engine.instance("shop").unwrap()));

    let delete = CatalogEntry::Delete {
        name: "shop".into(),
    };
    apply(&engine, &delete).unwrap().unwrap();
    assert!(engine.instance("shop").is_err());
    assert!(matches!(
        apply(&engine, &delete).unwrap(),
        Err(EngineError::InstanceNotFound(_))
    ));

    apply(&engine, &entry).unwrap().unwrap();
    let recreated = engine.instance("shop").unwrap();
    assert_ne!(recreated.meta().id, instance.meta().id);
    assert_eq!(recreated.summary().pictures, 0);
}

#[test]
fn an_extractor_this_node_cannot_build_stops_the_catalog() {
    crate::index::kernels::init();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let mut entry = create("m", &engine);
    if let CatalogEntry::Create { extractor, .. } = &mut entry {
        extractor.dimension += 1;
    }
    assert!(apply(&engine, &entry).is_err());
    assert!(engine.instance("m").is_err());
}

#[test]
fn the_applied_position_survives_a_reopen() {
    crate::index::kernels::init();
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(dir.path()).unwrap();
        assert_eq!(Catalog::load(&engine).unwrap().applied(), 0);
        engine
            .commit_node_progress(CATALOG_SOURCE, 41u64.to_be_bytes().to_vec())
            .unwrap();
        // A node mark is not any instance's mark.
        let instance = engine.create_instance(&InstanceSpec::product("x")).unwrap();
        assert_eq!(instance.progress(CATALOG_SOURCE).unwrap(), None);
    }
    let engine = Engine::open(dir.path()).unwrap();
    assert_eq!(Catalog::load(&engine).unwrap().applied(), 41);
}

/// A replica whose log is unreachable (nothing listens on port 1): enough for what
/// happens on this node between catalog entries.
async fn offline_replica(engine: Arc<Engine>) -> Arc<Replica> {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect("nats://127.0.0.1:1")
        .await
        .unwrap();
    Arc::new(Replica {
        jetstream: async_nats::jetstream::new(client),
        config: super::super::ClusterConfig {
            urls: vec!["nats://127.0.0.1:1".into()],
            node_id: "n".into(),
            max_lag: 0,
            rebootstrap: None,
        },
        appliers: Default::default(),
        catalog: Catalog::load(&engine).unwrap(),
        engine,
        rebootstrapping: Default::default(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_to_an_instance_being_created_waits_for_its_applier() {
    crate::index::kernels::init();
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path()).unwrap());
    let replica = offline_replica(engine.clone()).await;

    // A creation entry being applied: the engine shows the instance before the entry
    // starts its applier.
    let entry = replica.catalog.between_entries().await;
    engine
        .create_instance(&InstanceSpec::product("fresh"))
        .unwrap();
    let asking = tokio::spawn({
        let replica = replica.clone();
        async move { replica.applier("fresh").await.map(|a| a.name.clone()) }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !asking.is_finished(),
        "answered before the entry was applied"
    );
    replica.follow_instances(&engine).unwrap();
    drop(entry);
    assert_eq!(asking.await.unwrap().unwrap(), "fresh");

    // No entry under way and no such instance: the answer is at once "no such instance".
    assert!(matches!(
        replica.applier("absent").await,
        Err(ReplicaError::Engine(EngineError::InstanceNotFound(_)))
    ));
}
