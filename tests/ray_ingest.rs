//! Distributed extraction through Ray: a 2-node Ray cluster on 127.0.0.1 (a head and a
//! worker node, own ports and temporary folder) runs `tools/distributed/ray_extract.py`
//! on 500 pictures (GroceryStore's when `../shared` is there, generated ones otherwise);
//! the worker node is removed while the job runs. The manifest must then list every
//! picture exactly once, each vector must be bit for bit the one a local `imgsearch
//! import` of the same picture stores, and once the manifest is imported each picture
//! must be found first by its own picture.
//!
//! Skipped (with the reason printed) when the Ray environment of
//! `tools/distributed/setup.sh` is absent.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use imgsearch::engine::{Engine, SearchQuery};
use imgsearch::manifest::ManifestReader;
use imgsearch::store::{Store, StoreMode};

/// The environment of every Ray process: no usage reports, and no token authentication
/// (a token file another cluster left in `~/.ray` would otherwise lock the client out).
const RAY_ENV: [(&str, &str); 2] = [
    ("RAY_USAGE_STATS_ENABLED", "0"),
    ("RAY_AUTH_MODE", "disabled"),
];

/// Pictures the job extracts.
const PICTURES: usize = 500;
/// Parts (tasks) they are split into.
const PARTS: usize = 20;

/// The Ray environment made by `tools/distributed/setup.sh`, if present.
fn ray_venv() -> Option<PathBuf> {
    let venv = std::env::var_os("IMGSEARCH_RAY_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/imgsearch/ray-venv"))
        })?;
    (venv.join("bin/ray").exists() && venv.join("bin/python").exists()).then_some(venv)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A Ray node started with `ray start --block` in its own process group; the group is
/// terminated when dropped (even when the test fails).
struct RayNode {
    child: Child,
}

impl RayNode {
    fn start(venv: &Path, args: &[String], log: &Path) -> RayNode {
        let log = std::fs::File::create(log).expect("node log");
        let child = Command::new(venv.join("bin/ray"))
            .arg("start")
            .args(args)
            .args([
                "--node-ip-address",
                "127.0.0.1",
                "--num-cpus",
                "1",
                "--disable-usage-stats",
                "--object-store-memory",
                "100000000",
                "--block",
            ])
            .envs(RAY_ENV)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("ray start");
        RayNode { child }
    }

    /// Terminates the node's processes (its raylet and workers leave the cluster).
    fn stop(&mut self) {
        let group = self.child.id() as i32;
        // SAFETY: a signal to the process group this node was started in.
        unsafe { libc::kill(-group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: as above; it did not stop in time.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for RayNode {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            self.stop();
        }
    }
}

/// Waits until the cluster at `address` has `nodes` alive nodes; the log of the node
/// that did not come up is shown otherwise.
fn wait_for_nodes(venv: &Path, address: &str, nodes: usize, log: &Path) {
    let script = format!(
        "import ray, sys\nray.init(address='{address}', logging_level='ERROR')\n\
         sys.exit(0 if sum(n['Alive'] for n in ray.nodes()) >= {nodes} else 1)"
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ok = Command::new(venv.join("bin/python"))
            .args(["-c", &script])
            .envs(RAY_ENV)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{nodes} Ray node(s) never came up at {address}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The pictures as an import CSV: GroceryStore's first training pictures when the data
/// is there, else generated ones. (file, pic_name, product_id) of each.
fn pictures_csv(dir: &Path) -> (PathBuf, Vec<(PathBuf, String, String)>) {
    let shared = std::env::var_os("IMGSEARCH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let grocery = shared.join("datasets/grocery-store/dataset");
    let mut rows = Vec::new();
    if let Ok(list) = std::fs::read_to_string(grocery.join("train.txt")) {
        for line in list.lines().take(PICTURES) {
            let mut fields = line.split(',').map(str::trim);
            let (Some(path), Some(class)) = (fields.next(), fields.next()) else {
                continue;
            };
            rows.push((grocery.join(path), path.to_string(), format!("c{class}")));
        }
    }
    if rows.len() < PICTURES {
        eprintln!(
            "GroceryStore not found under {}: generated pictures",
            shared.display()
        );
        rows.clear();
        let folder = dir.join("pictures");
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..PICTURES {
            let path = folder.join(format!("{i}.png"));
            std::fs::write(&path, common::picture(i as u64 + 1)).unwrap();
            rows.push((path, format!("{i}.png"), format!("p{}", i / 5)));
        }
    }
    let mut text = String::from("path,product_id,pic_name\n");
    for (path, pic_name, product) in &rows {
        text += &format!("{},{product},{pic_name}\n", path.display());
    }
    let csv = dir.join("pictures.csv");
    std::fs::write(&csv, text).unwrap();
    (csv, rows)
}

#[test]
fn a_ray_job_that_loses_a_node_extracts_every_picture_once_as_a_local_import_would() {
    let Some(venv) = ray_venv() else {
        eprintln!("skipped: no Ray environment (run tools/distributed/setup.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (csv, pictures) = pictures_csv(dir.path());

    let spec_path = dir.path().join("spec.json");
    let spec_text = common::generic_instance_spec(&data, "g", &spec_path);
    let spec: serde_json::Value = serde_json::from_str(&spec_text).unwrap();

    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let temp = dir.path().join("ray");
    let head_args: Vec<String> = [
        "--head".to_string(),
        "--port".into(),
        port.to_string(),
        "--include-dashboard".into(),
        "false".into(),
        "--temp-dir".into(),
        temp.display().to_string(),
        "--dashboard-agent-listen-port".into(),
        free_port().to_string(),
    ]
    .into();
    let head_log = dir.path().join("head.log");
    let _head = RayNode::start(&venv, &head_args, &head_log);
    wait_for_nodes(&venv, &address, 1, &head_log);
    let worker_args: Vec<String> = [
        "--address".to_string(),
        address.clone(),
        "--dashboard-agent-listen-port".into(),
        free_port().to_string(),
    ]
    .into();
    let worker_log = dir.path().join("worker.log");
    let mut worker = RayNode::start(&venv, &worker_args, &worker_log);
    wait_for_nodes(&venv, &address, 2, &worker_log);

    let outdir = dir.path().join("out");
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/distributed/ray_extract.py");
    let mut job = Command::new(venv.join("bin/python"))
        .arg(&driver)
        .arg(&csv)
        .arg(&outdir)
        .arg("--spec")
        .arg(&spec_path)
        .args(["--address", &address, "--parts", &PARTS.to_string()])
        .arg("--imgsearch")
        .arg(common::binary())
        .envs(RAY_ENV)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the driver");
    let (lines, progress) = mpsc::channel();
    let stderr = job.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line.clone());
            all += &line;
            all.push('\n');
        }
        all
    });
    // The worker node goes once the first part is done: the job is under way.
    let mut done_before = 0;
    while let Ok(line) = progress.recv_timeout(Duration::from_secs(120)) {
        if line.starts_with("part ") {
            done_before = 1;
            break;
        }
    }
    assert_eq!(done_before, 1, "no part finished");
    worker.stop();
    let output = job.wait_with_output().expect("the driver ran");
    let log = reader.join().unwrap();
    assert!(
        output.status.success(),
        "driver failed:\n{log}\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let done_after = log.lines().filter(|l| l.starts_with("part ")).count() - done_before;
    assert!(
        done_after > 0,
        "every part was done before the node went:\n{log}"
    );
    eprintln!("{}", String::from_utf8_lossy(&output.stdout).trim());

    // Every picture exactly once, none failed.
    let manifest = ManifestReader::open(&outdir).unwrap();
    manifest.verify(spec["spec_id"].as_str().unwrap()).unwrap();
    assert_eq!(manifest.manifest().parts.len(), PARTS);
    let mut rows = HashMap::new();
    for part in 0..manifest.manifest().parts.len() {
        for batch in manifest.part(part, 128, 0).unwrap() {
            for row in batch.unwrap() {
                assert_eq!(row.error, None, "{}", row.path);
                let name = row.pic_name.clone();
                assert!(rows.insert(name, row).is_none(), "a picture twice");
            }
        }
    }
    assert_eq!(rows.len(), PICTURES);
    let leftovers: Vec<_> = std::fs::read_dir(&outdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // The same pictures imported locally: the same vectors, bit for bit, and regions.
    let out = common::run_cli(&data, &["import", "g", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::output_text(&out));
    let store = Store::open(&data.join("store"), StoreMode::ReadOnly).unwrap();
    let inst = store.instances().unwrap()[0].id;
    for (_, pic_name, product) in &pictures {
        let row = &rows[pic_name];
        assert_eq!(&row.product_id, product);
        let doc = store
            .lookup(inst, product, pic_name)
            .unwrap()
            .expect("imported");
        let stored = store.vector(inst, doc).unwrap().unwrap();
        let extracted = row.vector.as_ref().unwrap();
        assert!(
            stored
                .iter()
                .map(|x| x.to_bits())
                .eq(extracted.iter().map(|x| x.to_bits())),
            "{pic_name}: the vectors differ"
        );
        let record = store.record(inst, doc).unwrap().unwrap();
        assert_eq!(record.region, row.subject_region, "{pic_name}");
        assert_eq!(Some(record.category_id), row.category_id, "{pic_name}");
    }
    drop(store);

    // The manifest imported into a second instance of the same spec: every picture
    // stored once, each found first by its own picture.
    let out = common::run_cli(
        &data,
        &["instance", "create", "m", "--service-type", "generic"],
    );
    assert!(out.status.success(), "{}", common::output_text(&out));
    let manifest_path = outdir.join("_MANIFEST.json");
    let out = common::run_cli(&data, &["import", "m", manifest_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::output_text(&out));
    let engine = Engine::open_existing(&data).unwrap();
    let imported = engine.instance("m").unwrap();
    assert_eq!(imported.info().total_count, PICTURES as u64);
    let query = SearchQuery {
        num: 5,
        ..SearchQuery::default()
    };
    for (file, pic_name, product) in &pictures {
        let bytes = std::fs::read(file).unwrap();
        let found = imported
            .search_by_picture(&bytes, true, None, &query)
            .unwrap()
            .results;
        let best = found.first().map_or(-1.0, |f| f.score);
        // Identical pictures tie at the top; the picture must be among the best.
        assert!(
            found.iter().any(|f| f.score == best
                && f.record.pic_name == *pic_name
                && f.record.product_id == *product),
            "{pic_name}: not first by its own picture: {found:?}"
        );
    }
}
