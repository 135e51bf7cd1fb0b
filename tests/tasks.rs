//! Tasks over real HTTP: IncreaseInstance from a bucket directory (adds, a delete,
//! failed lines with their error file, one task at a time), the pictures found with
//! their attributes, DumpMeta with a MetaUrl that downloads, the task list across a
//! restart, and the refusals: unknown buckets, `..`, absolute paths, links out of the
//! bucket, and download names that are not result files.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{auctions, b64, picture, Server};
use serde_json::Value;

const INSTANCE: &str = "demoinstance";
const PICTURES: u64 = 30;
/// Seeds of the bucket's pictures (other tests' pictures use small seeds).
const SEED: u64 = 5000;

/// Lines of the meta file after the 30 ADDs.
const DELETE_LINE: usize = 31;
const MISSING_LINE: usize = 32;
const ESCAPE_LINE: usize = 33;
const LINK_LINE: usize = 34;
const GARBAGE_LINE: usize = 35;

/// Writes `<root>/bucket/batch1/{increment.meta, pics/*.png}` and a picture outside the
/// bucket that the meta file tries to reach; returns the bucket directory.
fn write_bucket(root: &Path) -> PathBuf {
    let bucket = root.join("bucket");
    let pics = bucket.join("batch1").join("pics");
    std::fs::create_dir_all(&pics).unwrap();
    std::fs::write(root.join("secret.png"), picture(SEED - 1)).unwrap();
    std::os::unix::fs::symlink(root.join("secret.png"), pics.join("link.png")).unwrap();
    std::os::unix::fs::symlink(root, bucket.join("outside")).unwrap();
    let mut meta = String::new();
    for i in 0..PICTURES {
        std::fs::write(pics.join(format!("{i}.png")), picture(SEED + i)).unwrap();
        // Half the lines write numbers as strings, as hand-made files do.
        let int_attr = if i % 2 == 0 {
            format!("{}", i * 10)
        } else {
            format!("\"{}\"", i * 10)
        };
        meta.push_str(&format!(
            "{{\"OperationType\":\"ADD\",\"ProductId\":\"p{i}\",\"PicName\":\"pics/{i}.png\",\"IntAttr\":{int_attr},\"StrAttr\":\"s{i}\",\"CustomContent\":\"c{i}\"}}\n"
        ));
    }
    let last = PICTURES - 1;
    for line in [
        format!(
            r#"{{"OperationType":"DELETE","ProductId":"p{last}","PicName":"pics/{last}.png"}}"#
        ),
        r#"{"OperationType":"ADD","ProductId":"bad","PicName":"pics/missing.png"}"#.into(),
        r#"{"OperationType":"ADD","ProductId":"esc","PicName":"../../secret.png"}"#.into(),
        r#"{"OperationType":"ADD","ProductId":"lnk","PicName":"pics/link.png"}"#.into(),
        "this is not JSON".into(),
    ] {
        meta.push_str(&line);
        meta.push('\n');
    }
    std::fs::write(bucket.join("batch1").join("increment.meta"), meta).unwrap();
    bucket
}

fn start(data: &Path, bucket: &Path) -> Server {
    let arg = format!("b1={}", bucket.display());
    Server::start_with(data, &["--bucket", &arg])
}

fn increase(server: &Server, path: &str) -> (u16, Value) {
    server.call(
        "IncreaseInstance",
        &[
            ("InstanceName", INSTANCE),
            ("BucketName", "b1"),
            ("Path", path),
            ("CallbackAddress", "http://callback.invalid/done"),
        ],
    )
}

/// The task of that id in IncreaseList.
fn increase_task(server: &Server, id: &str) -> Value {
    let (status, reply) = server.call("IncreaseList", &[("InstanceName", INSTANCE), ("Id", id)]);
    assert_eq!(status, 200, "{reply}");
    let list = reply["Data"]["Increments"]["Instance"].as_array().cloned();
    let list = list.unwrap_or_else(|| panic!("no Increments.Instance: {reply}"));
    assert_eq!(list.len(), 1, "{reply}");
    list[0].clone()
}

/// The dump task of that id in DumpMetaList.
fn dump_task(server: &Server, id: &str) -> Value {
    let (status, reply) = server.call("DumpMetaList", &[("InstanceName", INSTANCE), ("Id", id)]);
    assert_eq!(status, 200, "{reply}");
    let list = reply["Data"]["DumpMetaList"].as_array().cloned();
    let list = list.unwrap_or_else(|| panic!("no DumpMetaList: {reply}"));
    assert_eq!(list.len(), 1, "{reply}");
    list[0].clone()
}

/// Polls `get` until the task is no longer PROCESSING.
fn wait_done(get: impl Fn() -> Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let task = get();
        if task["Status"] != "PROCESSING" {
            return task;
        }
        assert!(Instant::now() < deadline, "task never ended: {task}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GETs a URL; the status and the body.
fn get(url: &str) -> (u16, String) {
    let response = match ureq::get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = response.status();
    (status, response.into_string().unwrap())
}

/// Sends a GET with a literal request target (no client-side `..` clean-up).
fn raw_get(addr: &str, target: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {reply:?}"))
}

fn assert_bad_request(reply: (u16, Value), needle: &str) {
    let (status, body) = reply;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["Code"], "BadRequest", "{body}");
    let message = body["Message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
}

#[test]
fn increase_dump_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bucket = write_bucket(dir.path());
    let mut server = start(&data, &bucket);

    let (status, reply) = increase(&server, "/batch1");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["Code"], 0);
    let id = reply["Data"]["Id"]
        .as_str()
        .expect("Id is a string")
        .to_string();
    assert_eq!(reply["Data"]["IncrementStatus"], "PROCESSING");

    // One increase at a time per instance.
    let (status, second) = increase(&server, "batch1/increment.meta");
    match status {
        409 => assert_eq!(second["Code"], "Console.TaskAlreadyExist", "{second}"),
        200 => {
            // Only possible when the first one had already ended.
            assert_ne!(increase_task(&server, &id)["Status"], "PROCESSING");
            let other = second["Data"]["Id"].as_str().unwrap().to_string();
            wait_done(|| increase_task(&server, &other));
        }
        _ => panic!("second IncreaseInstance: {status} {second}"),
    }

    let task = wait_done(|| increase_task(&server, &id));
    assert_eq!(task["Status"], "SUCCESS", "{task}");
    assert_eq!(task["Code"], "0");
    assert_eq!(task["Msg"], "30 added, 1 deleted, 4 failed", "{task}");
    assert_eq!(task["BucketName"], "b1");
    assert_eq!(task["Path"], "/batch1");
    assert_eq!(task["CallbackAddress"], "http://callback.invalid/done");
    assert_eq!(task["Id"].as_u64(), id.parse().ok(), "{task}");
    assert!(
        task["UtcCreate"].is_string() && task["UtcModified"].is_u64(),
        "{task}"
    );

    // The error file lists exactly the failed lines, with reasons.
    let error_url = task["ErrorUrl"].as_str().expect("ErrorUrl").to_string();
    let (status, errors) = get(&error_url);
    assert_eq!(status, 200, "{errors}");
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(lines.len(), 4, "{errors}");
    assert!(
        lines[0].starts_with(&format!("line {MISSING_LINE}:"))
            && lines[0].contains("does not exist"),
        "{errors}"
    );
    assert!(
        lines[1].starts_with(&format!("line {ESCAPE_LINE}:")) && lines[1].contains(".."),
        "{errors}"
    );
    assert!(
        lines[2].starts_with(&format!("line {LINK_LINE}:"))
            && lines[2].contains("outside the bucket"),
        "{errors}"
    );
    assert!(
        lines[3].starts_with(&format!("line {GARBAGE_LINE}:")) && lines[3].contains("JSON"),
        "{errors}"
    );
    assert!(!errors.contains(&format!("line {DELETE_LINE}:")));
    // The link is signed: without its query it is refused.
    let bare = error_url.split('?').next().unwrap();
    assert_eq!(get(bare).0, 403);

    // Added pictures are found first, with their attributes; the deleted one is gone.
    for i in [0, 7, 16, 28] {
        let content = b64(&picture(SEED + i));
        let (status, reply) = server.call(
            "SearchImageByPic",
            &[("InstanceName", INSTANCE), ("PicContent", &content)],
        );
        assert_eq!(status, 200, "{reply}");
        let hits = auctions(&reply);
        assert_eq!(
            (hits[0].0.as_str(), hits[0].1.as_str()),
            (format!("p{i}").as_str(), format!("pics/{i}.png").as_str()),
            "{reply}"
        );
        let first = &reply["Auctions"][0];
        assert_eq!(first["IntAttr"].as_i64(), Some(i as i64 * 10), "{first}");
        assert_eq!(first["StrAttr"], format!("s{i}"));
        assert_eq!(first["CustomContent"], format!("c{i}"));
    }
    let last = PICTURES - 1;
    let content = b64(&picture(SEED + last));
    let (_, reply) = server.call(
        "SearchImageByPic",
        &[("InstanceName", INSTANCE), ("PicContent", &content)],
    );
    assert!(
        auctions(&reply)
            .iter()
            .all(|(p, _, _)| *p != format!("p{last}")),
        "deleted picture found: {reply}"
    );

    // DumpMeta: one ADD line per stored picture.
    let (status, reply) = server.call("DumpMeta", &[("InstanceName", INSTANCE)]);
    assert_eq!(status, 200, "{reply}");
    let dump_id = reply["Data"]["Id"]
        .as_str()
        .expect("Id is a string")
        .to_string();
    let dump = wait_done(|| dump_task(&server, &dump_id));
    assert_eq!(dump["Status"], "SUCCESS", "{dump}");
    assert_eq!(dump["Code"], "0");
    let (status, meta) = get(dump["MetaUrl"].as_str().expect("MetaUrl"));
    assert_eq!(status, 200, "{meta}");
    let records: Vec<Value> = meta
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(records.len() as u64, PICTURES - 1, "{meta}");
    assert!(records.iter().all(|r| r["OperationType"] == "ADD"));
    let p3 = records
        .iter()
        .find(|r| r["ProductId"] == "p3")
        .expect("p3 dumped");
    assert_eq!(p3["PicName"], "pics/3.png");
    assert_eq!(p3["IntAttr"], 30);
    assert_eq!(p3["StrAttr"], "s3");
    assert!(
        p3["Region"]
            .as_str()
            .is_some_and(|r| r.split(',').count() == 4),
        "{p3}"
    );
    assert!(
        p3.get("IntAttr2").is_none(),
        "absent fields are omitted: {p3}"
    );

    // A restart keeps both lists; links are signed afresh.
    let (_, before) = server.call("IncreaseList", &[("InstanceName", INSTANCE)]);
    server.stop();
    let server = start(&data, &bucket);
    let (status, after) = server.call("IncreaseList", &[("InstanceName", INSTANCE)]);
    assert_eq!(status, 200, "{after}");
    assert_eq!(
        after["Data"]["TotalCount"], before["Data"]["TotalCount"],
        "{after}"
    );
    assert_eq!(
        increase_task(&server, &id)["Msg"],
        "30 added, 1 deleted, 4 failed"
    );
    let dump = dump_task(&server, &dump_id);
    assert_eq!(dump["Status"], "SUCCESS");
    let (status, again) = get(dump["MetaUrl"].as_str().unwrap());
    assert_eq!((status, again.len()), (200, meta.len()));
}

#[test]
fn refusals() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bucket = write_bucket(dir.path());
    let server = start(&data, &bucket);

    assert_bad_request(increase(&server, "../secret.png"), "..");
    assert_bad_request(increase(&server, "batch1/../../secret.png"), "..");
    // Absolute paths are read from the bucket's root, never from the file system's.
    assert_bad_request(increase(&server, "/etc/passwd"), "does not exist");
    let absolute = bucket.join("batch1").join("increment.meta");
    assert_bad_request(
        increase(&server, absolute.to_str().unwrap()),
        "does not exist",
    );
    assert_bad_request(
        increase(&server, "outside/secret.png"),
        "outside the bucket",
    );
    assert_bad_request(increase(&server, "batch1/pics"), "increment.meta");
    let (status, reply) = server.call(
        "IncreaseInstance",
        &[
            ("InstanceName", INSTANCE),
            ("BucketName", "nope"),
            ("Path", "batch1"),
        ],
    );
    assert_bad_request((status, reply.clone()), "b1");
    assert!(reply["Message"].as_str().unwrap().contains("nope"));
    let (status, reply) = server.call(
        "IncreaseInstance",
        &[("InstanceName", INSTANCE), ("Path", "batch1")],
    );
    assert_eq!(
        (status, reply["Code"].as_str()),
        (400, Some("MissingParameter")),
        "{reply}"
    );
    let (status, reply) = server.call(
        "IncreaseInstance",
        &[
            ("InstanceName", "nosuch"),
            ("BucketName", "b1"),
            ("Path", "batch1"),
        ],
    );
    assert_eq!(
        (status, reply["Code"].as_str()),
        (400, Some("InvalidInstance")),
        "{reply}"
    );
    let (status, reply) = server.call(
        "DumpMetaList",
        &[("InstanceName", INSTANCE), ("PageSize", "101")],
    );
    assert_eq!(
        (status, reply["Code"].as_str()),
        (400, Some("BadRequest")),
        "{reply}"
    );
    // Nothing was started by the refusals.
    let (_, list) = server.call("IncreaseList", &[("InstanceName", INSTANCE)]);
    assert_eq!(list["Data"]["TotalCount"], 0, "{list}");
    assert_eq!(list["Data"]["PageNumber"], 1);
    assert_eq!(list["Data"]["PageSize"], 20);

    // Only result files can be downloaded.
    for target in [
        "/downloads/../../etc/passwd",
        "/downloads/..%2F..%2Fetc%2Fpasswd",
        "/downloads/..%2Ftasks%2Ftasks.json",
        "/downloads/demoinstance-999.meta",
        "/downloads/tasks.json",
        "/downloads/%2Fetc%2Fpasswd",
    ] {
        assert_eq!(raw_get(&server.addr, target), 404, "{target}");
    }
}
