//! Administration while the server runs, through the real binary: the CLI finds the
//! server of its data directory (pid and address files) and creates, lists, fills,
//! shows and deletes an instance through the admin routes while searches of another
//! instance keep being answered; with access keys it signs its requests; an instance's
//! deletion survives a crash at every step; commands that read a data directory do not
//! create one, and only `serve` seeds `demoinstance`.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{auctions, b64, output_text as text, picture, run_cli, Server};
use serde_json::Value;

const DEMO: &str = "demoinstance";

/// Runs the CLI with extra arguments after `--data-dir DATA`.
fn cli(data: &Path, args: &[&str]) -> std::process::Output {
    run_cli(data, args)
}

/// Writes `n` pictures as `dir/p{i}/{i}.png` (ProductId = folder name).
fn picture_folder(dir: &Path, seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let path = dir.join(format!("p{seed}")).join(format!("{seed}.png"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, picture(seed)).unwrap();
    }
}

/// The first hit's ProductId of a search of `instance` by picture `seed`.
fn first_hit(server: &Server, instance: &str, seed: u64) -> (u16, Value) {
    server.call(
        "SearchImageByPic",
        &[
            ("InstanceName", instance),
            ("PicContent", &b64(&picture(seed))),
            ("Crop", "false"),
            ("Num", "3"),
        ],
    )
}

/// The number on the import summary line starting with `label` (`added`, `failed`).
fn count(out: &std::process::Output, label: &str) -> u64 {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no {label} line:
{}",
                text(out)
            )
        })
}

/// The pictures column of an `instance list`/`show` row for `name`.
fn pictures_in_table(stdout: &str, name: &str) -> Option<u64> {
    stdout
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|n| n.parse().ok())
}

/// Searches demoinstance in a loop until stopped; counts searches and failures.
struct Searcher {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Searcher {
    fn start(addr: &str) -> Searcher {
        let stop: Arc<AtomicBool> = Arc::default();
        let (done, failed): (Arc<AtomicU64>, Arc<AtomicU64>) = (Arc::default(), Arc::default());
        let (s, d, f) = (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&failed));
        let addr = addr.to_string();
        let content = b64(&picture(1));
        let thread = std::thread::spawn(move || {
            let mut problems = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let reply = common::try_call(
                    &addr,
                    "SearchImageByPic",
                    &[
                        ("InstanceName", DEMO),
                        ("PicContent", &content),
                        ("Crop", "false"),
                    ],
                );
                d.fetch_add(1, Ordering::Relaxed);
                if !matches!(reply, Ok((200, _))) {
                    f.fetch_add(1, Ordering::Relaxed);
                    problems.push(format!("{reply:?}"));
                }
            }
            problems
        });
        Searcher {
            stop,
            done,
            failed,
            thread: Some(thread),
        }
    }

    /// Stops; (searches, failures, first failures).
    fn finish(mut self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let problems = self.thread.take().unwrap().join().unwrap();
        (
            self.done.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            problems.into_iter().take(3).collect(),
        )
    }
}

#[test]
fn an_instance_is_created_filled_shown_and_deleted_while_searches_go_on() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let mut server = Server::start_with(&data, &["--write-qps", "0"]);
    let addr_file = data.join(imgsearch::config::ADDR_FILE);
    assert_eq!(
        std::fs::read_to_string(&addr_file).unwrap().trim(),
        format!("http://{}", server.addr),
        "the server records its address"
    );
    for seed in 0..3 {
        server.add_image(DEMO, &format!("d{seed}"), "a.png", &picture(seed), &[]);
    }
    let searcher = Searcher::start(&server.addr);

    let out = cli(&data, &["instance", "create", "q", "--capacity", "500"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("on the server at http://127.0.0.1"),
        "{}",
        text(&out)
    );
    let out = cli(&data, &["instance", "create", "q"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    let out = cli(&data, &["instance", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(pictures_in_table(&listed, "q"), Some(0), "{listed}");
    assert_eq!(pictures_in_table(&listed, DEMO), Some(3), "{listed}");

    let pictures = root.path().join("pictures");
    picture_folder(&pictures, 10..18);
    let out = cli(
        &data,
        &["import", "q", pictures.to_str().unwrap(), "--crop", "false"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(count(&out, "added"), 8, "{}", text(&out));
    assert_eq!(count(&out, "failed"), 0, "{}", text(&out));
    for seed in [10, 13, 17] {
        let (status, reply) = first_hit(&server, "q", seed);
        assert_eq!(status, 200, "{reply}");
        assert_eq!(auctions(&reply)[0].0, format!("p{seed}"), "{reply}");
    }
    // Whitening and rebuilding go through the server too.
    let out = cli(&data, &["index", "whiten", "q", "--dims", "6"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("whitened instance q on the server: 6 dimensions"),
        "{}",
        text(&out)
    );
    let out = cli(&data, &["index", "rebuild", "q"]);
    assert!(out.status.success(), "{}", text(&out));
    let (status, reply) = first_hit(&server, "q", 13);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(auctions(&reply)[0].0, "p13", "whitened: {reply}");
    let out = cli(&data, &["instance", "show", "q"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(pictures_in_table(&shown, "q"), Some(8), "{shown}");
    assert!(shown.contains("500"), "capacity: {shown}");
    assert!(shown.contains("whitened"), "{shown}");

    let out = cli(&data, &["instance", "delete", "q"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = cli(&data, &["instance", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(pictures_in_table(&listed, "q"), None, "{listed}");
    assert_eq!(pictures_in_table(&listed, DEMO), Some(3), "{listed}");
    let (status, reply) = first_hit(&server, "q", 10);
    assert_eq!(
        (status, reply["Code"].as_str()),
        (400, Some("InvalidInstance")),
        "{reply}"
    );
    assert!(!data.join("instances").join("q").exists());
    let out = cli(&data, &["instance", "show", "q"]);
    assert!(
        !out.status.success() && text(&out).contains("InvalidInstance"),
        "{}",
        text(&out)
    );

    let (searches, failures, examples) = searcher.finish();
    assert!(searches > 0);
    assert_eq!(
        failures, 0,
        "{failures} of {searches} searches failed: {examples:?}"
    );

    server.stop();
    assert!(!addr_file.exists(), "the address file goes on a clean stop");
    // Offline now: the same table, from the data directory itself.
    let out = cli(&data, &["instance", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let offline = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(offline, listed, "online and offline tables agree");
    assert!(imgsearch::client::discovery::running_server(&data).is_none());
}

#[test]
fn with_access_keys_the_cli_signs_and_unsigned_or_limited_requests_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let config = root.path().join("keys.toml");
    std::fs::write(
        &config,
        "[[access_keys]]\nid = \"shop\"\nsecret = \"shop-secret\"\ninstances = [\"demoinstance\"]\n",
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let _server = Server::start_with(
        &data,
        &[
            "--access-key-id",
            "admin",
            "--access-key-secret",
            "adm1n/+=",
            "--config",
            &config,
        ],
    );
    let admin = [
        "--access-key-id",
        "admin",
        "--access-key-secret",
        "adm1n/+=",
    ];
    let with = |args: &[&str], key: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(key);
        cli(&data, &all)
    };

    let out = cli(&data, &["instance", "list"]);
    assert!(!out.status.success(), "unsigned: {}", text(&out));
    let out = with(
        &["instance", "list"],
        &[
            "--access-key-id",
            "shop",
            "--access-key-secret",
            "shop-secret",
        ],
    );
    assert!(!out.status.success(), "limited key: {}", text(&out));
    assert!(text(&out).contains("NoPermission"), "{}", text(&out));
    let out = with(
        &["instance", "list"],
        &["--access-key-id", "admin", "--access-key-secret", "wrong"],
    );
    assert!(!out.status.success(), "wrong secret: {}", text(&out));
    assert!(
        text(&out).contains("SignatureDoesNotMatch"),
        "{}",
        text(&out)
    );

    let out = with(
        &["instance", "create", "signed", "--service-type", "generic"],
        &admin,
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = with(&["instance", "list"], &admin);
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("signed ") && l.contains("generic")),
        "{listed}"
    );
    let pictures = root.path().join("pictures");
    picture_folder(&pictures, 0..3);
    let out = with(&["import", "signed", pictures.to_str().unwrap()], &admin);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(count(&out, "added"), 3, "{}", text(&out));
    let out = with(&["index", "rebuild", "signed"], &admin);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("the server at"), "{}", text(&out));
    let out = cli(&data, &["instance", "delete", "signed"]);
    assert!(!out.status.success(), "unsigned delete: {}", text(&out));
    let out = with(&["instance", "delete", "signed"], &admin);
    assert!(out.status.success(), "{}", text(&out));
    let out = with(&["instance", "show", "signed"], &admin);
    assert!(text(&out).contains("InvalidInstance"), "{}", text(&out));
}

/// The instance count of `name` as Detail reports it; `None` for InvalidInstance.
fn detail_count(server: &Server, name: &str) -> Option<u64> {
    let (status, reply) = server.call("Detail", &[("InstanceName", name)]);
    if status == 400 && reply["Code"] == "InvalidInstance" {
        return None;
    }
    assert_eq!(status, 200, "{reply}");
    reply["Instance"]["TotalCount"].as_u64()
}

#[test]
fn a_crash_at_any_step_of_a_deletion_leaves_the_instance_whole_or_gone() {
    let points = imgsearch::fault::POINTS
        .iter()
        .filter(|p| p.starts_with("instance_delete."));
    let mut tried = 0;
    for point in points {
        tried += 1;
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let server = Server::start_with(&data, &["--write-qps", "0"]);
        let out = cli(&data, &["instance", "create", "q"]);
        assert!(out.status.success(), "{}", text(&out));
        for seed in 0..3 {
            server.add_image("q", &format!("q{seed}"), "a.png", &picture(seed), &[]);
        }
        server.add_image(DEMO, "d", "a.png", &picture(9), &[]);
        drop(server);

        let mut armed = Server::start_with_env(&data, &[], &[("IMGSEARCH_FAULT", point)]);
        let reply = ureq::post(&format!(
            "http://{}/admin/instance/delete?InstanceName=q",
            armed.addr
        ))
        .timeout(Duration::from_secs(60))
        .call();
        assert!(reply.is_err(), "{point}: answered although it crashed");
        let status = armed
            .wait_exit(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{point}: no crash:\n{}", armed.log()));
        assert!(!status.success(), "{point}");
        assert!(
            armed
                .log()
                .contains(&format!("fault point {point} reached")),
            "{point}"
        );

        let server = Server::start(&data);
        let folder = data.join("instances").join("q");
        if *point == "instance_delete.before_store_commit" {
            assert_eq!(detail_count(&server, "q"), Some(3), "{point}: q whole");
            let (status, reply) = first_hit(&server, "q", 2);
            assert_eq!(status, 200, "{reply}");
            assert_eq!(auctions(&reply)[0].0, "q2", "{point}: {reply}");
        } else {
            assert_eq!(detail_count(&server, "q"), None, "{point}: q gone");
            assert!(!folder.exists(), "{point}: folder left behind");
        }
        assert_eq!(detail_count(&server, DEMO), Some(1), "{point}: neighbour");
        let out = cli(&data, &["verify"]);
        assert!(out.status.success(), "{point}: {}", text(&out));
        // Whatever the crash left, deleting and creating again gives an empty instance.
        if detail_count(&server, "q").is_some() {
            assert!(cli(&data, &["instance", "delete", "q"]).status.success());
        }
        let out = cli(&data, &["instance", "create", "q"]);
        assert!(out.status.success(), "{point}: {}", text(&out));
        assert_eq!(
            detail_count(&server, "q"),
            Some(0),
            "{point}: recreated q is empty"
        );
    }
    assert_eq!(tried, 3);
}

#[test]
fn only_serve_seeds_demoinstance_and_readers_do_not_create_a_data_directory() {
    let root = tempfile::tempdir().unwrap();
    let typo = root.path().join("typo");
    for args in [
        &["instance", "list"][..],
        &["instance", "show", DEMO],
        &["instance", "delete", DEMO],
        &["index", "rebuild", DEMO],
        &["index", "whiten", DEMO],
        &["verify"],
        &["export", DEMO],
    ] {
        let out = cli(&typo, args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("does not exist"),
            "{args:?}: {}",
            text(&out)
        );
        assert!(!typo.exists(), "{args:?} created the data directory");
    }

    let data = root.path().join("data");
    let out = cli(&data, &["instance", "create", "q"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = cli(&data, &["instance", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(pictures_in_table(&listed, "q"), Some(0), "{listed}");
    assert_eq!(
        pictures_in_table(&listed, DEMO),
        None,
        "created beside q: {listed}"
    );
    // Offline deletion works the same way.
    let out = cli(&data, &["instance", "delete", "q"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!data.join("instances").join("q").exists());
    let out = cli(&data, &["instance", "list"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "{}",
        text(&out)
    );
    // A server on a directory with no instance at all answers at once with demoinstance.
    let server = Server::start(&data);
    assert_eq!(detail_count(&server, DEMO), Some(0));
}
