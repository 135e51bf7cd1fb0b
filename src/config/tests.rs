//! Parsing of the flags, the configuration file and their precedence.

use super::*;

/// A serve configuration with every optional setting off, which each test changes field by field.
fn serve_defaults() -> ServeConfig {
    ServeConfig {
        data_dir: DEFAULT_DATA_DIR.into(),
        listen: DEFAULT_LISTEN.parse().unwrap(),
        write_qps: 0,
        access_key: AccessKeyArgs::default(),
        config: None,
        buckets: Vec::new(),
        thumbnail_size: 0,
        scan: ScanMode::I8,
        batch_window_us: DEFAULT_BATCH_WINDOW_US,
        compact_dead_share: crate::engine::DEFAULT_DEAD_SHARE,
        compact_min_dead_rows: crate::engine::DEFAULT_MIN_DEAD_ROWS,
        scene_proposals: false,
        reciprocal_rerank: false,
        fit_within_products: false,
        tls_cert: None,
        tls_key: None,
        cluster: None,
        node_id: None,
        cluster_max_lag: DEFAULT_CLUSTER_MAX_LAG,
        snapshot_store: None,
        snapshot_interval: 0,
        snapshot_keep: DEFAULT_SNAPSHOT_KEEP,
    }
}

#[test]
fn config_file_keys_merge_with_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("imgsearch.toml");
    std::fs::write(
        &path,
        "[[access_keys]]\nid = \"a\"\nsecret = \"s\"\ninstances = [\"demoinstance\"]\n[[access_keys]]\nid = \"b\"\nsecret = \"t\"\n",
    )
    .unwrap();
    let config = ServeConfig {
        data_dir: "data".into(),
        access_key: AccessKeyArgs {
            access_key_id: Some("c".into()),
            access_key_secret: Some("u".into()),
        },
        config: Some(path.clone()),
        ..serve_defaults()
    };
    assert_eq!(
        (config.scheme(), config.tls_files().ok()),
        ("http", Some(None))
    );
    let keys = config.access_keys().unwrap();
    assert_eq!(keys.len(), 3);
    assert!(keys.contains("a") && keys.contains("c"));
    std::fs::write(&path, "[[access_keys]]\nid = \"a\"\n").unwrap();
    assert!(config.access_keys().is_err());
    std::fs::write(&path, "bogus = 1\n").unwrap();
    assert!(config
        .access_keys()
        .unwrap_err()
        .to_string()
        .contains("bogus"));
}

#[test]
fn scene_proposals_are_on_unless_switched_off() {
    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        config: ServeConfig,
    }
    let parse = |args: &[&str]| {
        <Serve as clap::Parser>::try_parse_from(args)
            .unwrap()
            .config
    };
    assert!(parse(&["serve"]).scene_proposals);
    assert!(!parse(&["serve", "--scene-proposals", "false"]).scene_proposals);
    assert!(parse(&["serve", "--scene-proposals"]).scene_proposals);
    assert!(parse(&["serve"]).reciprocal_rerank);
    assert!(parse(&["serve", "--reciprocal-rerank"]).reciprocal_rerank);
    assert!(!parse(&["serve", "--reciprocal-rerank", "false"]).reciprocal_rerank);
    assert!(parse(&["serve"]).fit_within_products);
    assert!(!parse(&["serve", "--fit-within-products", "false"]).fit_within_products);
}

#[test]
fn file_settings_fill_what_flags_left_at_default() {
    let file: ConfigFile = toml::from_str(
        "data_dir = \"/srv/img\"\nlisten = \"0.0.0.0:9000\"\nwrite_qps = 7\nlog_format = \"json\"\nscan = \"f16\"\nbatch_window_us = 0\ncompact_dead_share = 0.5\nscene_proposals = true\nreciprocal_rerank = true\nfit_within_products = false\ntls_key = \"/etc/k.pem\"\ntls_cert = \"/file/c.pem\"\n[buckets]\ncat = \"/srv/cat\"\n",
    )
    .unwrap();
    assert_eq!(file.log_format, Some(LogFormat::Json));
    let mut config = ServeConfig {
        write_qps: 3,
        ..serve_defaults()
    };
    config.tls_cert = Some("/etc/c.pem".into());
    config.apply_file(&file, |name| name == "write_qps" || name == "tls_cert");
    let (cert, key) = config
        .tls_files()
        .unwrap()
        .expect("a pair from flag and file");
    assert_eq!(
        (cert, key),
        (Path::new("/etc/c.pem"), Path::new("/etc/k.pem"))
    );
    assert_eq!(config.scheme(), "https");
    config.tls_key = None;
    assert!(config
        .tls_files()
        .unwrap_err()
        .to_string()
        .contains("--tls-key"));
    assert_eq!(config.data_dir, PathBuf::from("/srv/img"));
    assert_eq!(config.listen.port(), 9000);
    assert_eq!(config.write_qps, 3, "an explicit flag wins");
    assert_eq!(config.scan, ScanMode::F16);
    assert_eq!(config.batch_window_us, 0);
    assert_eq!(config.compaction().dead_share, 0.5);
    assert!(config.scene_proposals);
    assert!(config.reciprocal_rerank);
    assert!(!config.fit_within_products);
    assert_eq!(
        config.compaction().min_dead_rows,
        crate::engine::DEFAULT_MIN_DEAD_ROWS
    );
    assert_eq!(
        config.buckets,
        vec![("cat".to_string(), PathBuf::from("/srv/cat"))]
    );
}
