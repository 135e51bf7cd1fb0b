//! `imgsearch import` through a running server: the same sources, order rules, progress
//! bar and failure summary as the offline import (`mod.rs`, [`super::apply_in_order`]), but every picture goes
//! as an AddImage request (base64 picture, ProductId, PicName, CategoryId, Crop, Region,
//! CustomContent and attributes) and every DELETE line as a DeleteImage, over several
//! connections at once. The server does the decoding and extraction, so the import runs
//! while it keeps serving; throttled requests wait and are sent again. A manifest goes
//! to the server's own import task instead (`manifest_online.rs`).

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rayon::prelude::*;

use super::summary::{ImportSummary, Tally};
use super::{
    apply_in_order, check_category, read_picture_counted, refused, worker_pool, ImportOptions,
};
use crate::client::{Client, ClientError};
use crate::engine::ServiceType;
use crate::offline::sources::{self as source, Action, Entry};
use crate::offline::Result;

/// Imports `source` into instance `name` of the server `client` talks to, with
/// `connections` requests in flight. `Err` when the source cannot be read or the
/// instance does not exist; failures of single entries are in the summary.
pub fn import_online(
    client: &Client,
    name: &str,
    source: &Path,
    options: &ImportOptions,
    connections: usize,
) -> Result<ImportSummary> {
    if super::is_manifest(source) {
        return super::manifest_online::import_manifest_online(client, name, source);
    }
    let read = source::read(source, options.defaults())?;
    let shown = client
        .call("/admin/instance/show", &[("InstanceName", name)])
        .map_err(|e| refused(client, name, e))?;
    let service = shown["Instance"]["ServiceType"]
        .as_str()
        .and_then(ServiceType::parse)
        .unwrap_or(ServiceType::Generic);
    check_category(service, name, options.category)?;
    let pool = worker_pool(connections.max(1), "import-http")?;

    Ok(apply_in_order(
        name,
        source,
        read,
        |run, tally, progress| {
            pool.install(|| {
                // One picture per task: each is a request that waits on the network.
                run.par_iter().with_max_len(1).for_each(|(i, entry)| {
                    add_entry(client, name, *i, entry, tally);
                    progress.inc();
                })
            })
        },
        |i, entry, product_id, pic_name, tally| {
            let mut params = vec![("InstanceName", name), ("ProductId", product_id)];
            if let Some(pic) = pic_name {
                params.push(("PicName", pic));
            }
            match client.action("DeleteImage", &params) {
                Ok(reply) => {
                    let removed = reply
                        .get("Data")
                        .and_then(|d| d.get("PicNames"))
                        .and_then(|v| v.as_array())
                        .map_or(0, |a| a.len() as u64);
                    tally.deleted(removed);
                }
                Err(e) => failed(tally, i, entry, &e),
            }
        },
    ))
}

/// Counts a refused request under its vendor code (the server's message is the example).
fn failed(tally: &Tally, index: usize, entry: &Entry, e: &ClientError) {
    let reason = match e {
        ClientError::Refused { code, .. } => code.clone(),
        ClientError::Unreachable { .. } => "server unreachable".into(),
        ClientError::BadReply { .. } => "unexpected reply".into(),
        // Raised when the client is made, never by a call; kept total for the compiler.
        ClientError::Ca { .. } => "unusable CA".into(),
    };
    tally.failed(index, &entry.location, reason, &e.to_string());
}

/// Reads one picture and sends it as an AddImage, counting the outcome.
fn add_entry(client: &Client, name: &str, index: usize, entry: &Entry, tally: &Tally) {
    let Action::Add { file, line } = &entry.action else {
        return;
    };
    let Some(bytes) = read_picture_counted(file, index, entry, tally) else {
        return;
    };
    let picture = STANDARD.encode(bytes);
    let category = line.category_id.map(|c| c.to_string());
    let region = line.region.map(|r| r.to_string());
    let attrs = &line.attributes;
    let ints: Vec<Option<String>> = attrs
        .int_attrs
        .iter()
        .map(|v| v.map(|i| i.to_string()))
        .collect();
    let mut params: Vec<(&str, &str)> = vec![
        ("InstanceName", name),
        ("ProductId", &line.product_id),
        ("PicName", &line.pic_name),
        ("PicContent", &picture),
        ("Crop", if line.crop { "true" } else { "false" }),
    ];
    if let Some(c) = &category {
        params.push(("CategoryId", c));
    }
    if let Some(r) = &region {
        params.push(("Region", r));
    }
    if let Some(c) = &attrs.custom_content {
        params.push(("CustomContent", c));
    }
    const INT_NAMES: [&str; 4] = ["IntAttr", "IntAttr2", "IntAttr3", "IntAttr4"];
    const STR_NAMES: [&str; 4] = ["StrAttr", "StrAttr2", "StrAttr3", "StrAttr4"];
    for (i, v) in ints.iter().enumerate() {
        if let Some(v) = v {
            params.push((INT_NAMES[i], v));
        }
    }
    for (i, v) in attrs.str_attrs.iter().enumerate() {
        if let Some(v) = v {
            params.push((STR_NAMES[i], v));
        }
    }
    // The API does not tell an added picture from a replaced one: all count as added.
    match client.action("AddImage", &params) {
        Ok(_) => tally.added(false),
        Err(e) => failed(tally, index, entry, &e),
    }
}
