//! `--add-clients N`: AddImage over HTTP, the same pictures on imgsearch and on the
//! hand-built peer, so that the ingest ratio is measured in the same run with the same
//! client. Each request adds a new picture (a name unique to the run), as a user filling
//! an instance picture by picture would, to an instance of its own with the searched
//! instance's extractor (the searched one is full).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use base64::Engine as _;

use super::peer::Level;
use super::process::{cpu_ms_per, cpu_seconds};
use super::run_level;

/// The instance pictures are added to (kept between runs, each adding new names).
pub const INSTANCE: &str = "load-add";
/// Its capacity.
pub const CAPACITY: u64 = 200_000;

/// The AddImage call's path.
pub const ADD_PATH: &str = "/?Action=AddImage";

/// `pictures` AddImage form bodies for `instance`, cycling over the JPEGs, each under a
/// name of its own (stamped with the time, so a kept data directory only grows).
pub fn bodies(instance: &str, jpegs: &[Vec<u8>], crop: bool, pictures: usize) -> Vec<String> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let encoded: Vec<String> = jpegs
        .iter()
        .map(|j| base64::engine::general_purpose::STANDARD.encode(j))
        .collect();
    (0..pictures)
        .map(|i| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair("InstanceName", instance)
                .append_pair("ProductId", &format!("add-{stamp}-{}", i / 4))
                .append_pair("PicName", &format!("add-{stamp}-{i}.jpg"))
                .append_pair("PicContent", &encoded[i % encoded.len()])
                .append_pair("Crop", if crop { "true" } else { "false" })
                .append_pair("IntAttr", &(i % 100).to_string())
                .finish()
        })
        .collect()
}

/// Sends every body once from `clients` connections to the server of process `pid`;
/// returns the level's figures (QPS is pictures added per second).
pub fn measure(addr: &str, bodies: &[String], clients: usize, pid: u32) -> Result<Level> {
    let cpu = cpu_seconds(pid);
    let (latencies, elapsed) = run_level(addr, ADD_PATH, bodies, clients, bodies.len())?;
    let cpu = cpu_ms_per(pid, cpu, latencies.len());
    Ok(Level {
        cpu_ms: cpu,
        ..Level::from_latencies(clients, latencies, elapsed)
    })
}

/// Prints one server's AddImage figures.
pub fn print(who: &str, level: &Level) {
    println!(
        "AddImage {who:<10} {:>3} clients: {:>7.1} pictures/s, p50 {:.2} ms, p99 {:.2} ms, \
         server CPU {:.2} ms per picture",
        level.clients, level.qps, level.p50, level.p99, level.cpu_ms
    );
}

/// Prints imgsearch's AddImage rate over the peer's.
pub fn print_ratio(ours: &Level, peer: &Level) {
    println!(
        "AddImage imgsearch / hand-built peer, {} clients: {:.1} / {:.1} pictures/s = {:.2}; \
         server CPU per picture {:.2} / {:.2} ms = {:.2}",
        ours.clients,
        ours.qps,
        peer.qps,
        ours.qps / peer.qps,
        ours.cpu_ms,
        peer.cpu_ms,
        ours.cpu_ms / peer.cpu_ms
    );
}
