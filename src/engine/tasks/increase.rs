//! The IncreaseInstance task: apply an `increment.meta` file, line by line, to an
//! instance.
//!
//! Each line is one ADD (read the picture beside the meta file and add it; consecutive
//! ADDs are prepared in parallel and committed in batches, `increase_batch.rs`) or
//! DELETE; both go through the task's write sink (this node, or a cluster's log, each
//! line's write keyed by the request's nonce and the line number); see `meta_line.rs`
//! for the format. A line that fails (bad JSON, a field out of limits, a picture missing,
//! outside the bucket or refused by the vision checks) is written to
//! `<instance>-<id>.errors` as `line N: reason` and the task goes on. The task ends
//! SUCCESS with `"A added, D deleted, F failed"` (pictures added and removed, lines
//! failed), or FAIL when the meta file cannot be read. Pictures go through the same
//! validation as AddImage, but not through the API's write rate limit: a batch is the
//! operator's own data.
//!
//! The CallbackAddress is stored and reported but never called: the server makes no
//! outbound connections.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use super::buckets::MetaSource;
use super::error_list::ErrorList;
use super::increase_batch::{Pending, Settled};
use super::increase_line::{Done, LineFailed, MAX_LINE_BYTES};
use super::meta_line::{self, Operation};
use super::write_sink::LineWrites;
use super::{spawn, Registry, TaskInfo, TaskKind, TaskRegistry, TaskStatus};
use crate::engine::{Instance, Result};

/// Why the task stopped before the end of the meta file.
#[derive(Debug, thiserror::Error)]
enum Stopped {
    /// The meta file cannot be opened.
    #[error("cannot read the meta file: {0}")]
    Open(std::io::Error),
    /// Reading it failed part-way.
    #[error("cannot read the meta file at line {line}: {source}")]
    Read {
        /// The line being read.
        line: u64,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The list of failed lines cannot be written.
    #[error("cannot write the list of failed lines: {0}")]
    ErrorList(std::io::Error),
}

/// What the request that starts an increase gave.
pub(super) struct Started<'a> {
    /// BucketName.
    pub(super) bucket: &'a str,
    /// Path as given.
    pub(super) path: &'a str,
    /// CallbackAddress, stored only.
    pub(super) callback: Option<&'a str>,
    /// The request's nonce, if it had one.
    pub(super) request: Option<&'a str>,
}

/// Records an increase task and starts its thread.
pub(super) fn start(
    registry: &Registry,
    instance: Arc<Instance>,
    source: MetaSource,
    started: Started<'_>,
) -> Result<TaskInfo> {
    let task = registry.start(TaskKind::Increase, &instance.meta().name, |t| {
        t.bucket = Some(started.bucket.to_string());
        t.path = Some(started.path.to_string());
        t.callback = started.callback.map(str::to_string);
    })?;
    // A resent request (same nonce) keys its lines as the first copy did; otherwise
    // the task's writes are its own.
    let prefix = match started.request {
        Some(nonce) => format!("increase/{nonce}"),
        None => format!("increase/{}", uuid::Uuid::new_v4()),
    };
    let (reg, id) = (registry.clone(), task.id);
    let writes = LineWrites::new(registry.sink(), prefix);
    spawn(registry, id, move || {
        run(&reg, &instance, &source, &writes, id)
    })?;
    Ok(task)
}

/// What the lines did so far.
#[derive(Debug, Default)]
struct Counts {
    added: u64,
    deleted: u64,
    failed: u64,
}

impl Counts {
    fn summary(&self) -> String {
        format!(
            "{} added, {} deleted, {} failed",
            self.added, self.deleted, self.failed
        )
    }
}

/// The task's thread: apply the lines, publish the error list, record the outcome.
fn run(
    registry: &TaskRegistry,
    instance: &Instance,
    source: &MetaSource,
    writes: &LineWrites,
    id: u64,
) {
    let mut errors = ErrorList::new(registry, &instance.meta().name, id);
    let mut counts = Counts::default();
    let applied = apply(instance, source, writes, &mut errors, &mut counts);
    let error_file = errors.publish(registry, id);
    let (status, msg) = match applied {
        Ok(()) => (TaskStatus::Success, counts.summary()),
        Err(reason) => (
            TaskStatus::Fail,
            format!("{reason} ({} before it stopped)", counts.summary()),
        ),
    };
    tracing::info!(task = id, instance = %instance.meta().name, status = status.as_str(), %msg, "increase done");
    registry.finish(id, status, msg, error_file);
}

/// Applies every line; `Err` when the meta file (or the error list) cannot be read
/// (written) and the task must stop.
fn apply(
    instance: &Instance,
    source: &MetaSource,
    writes: &LineWrites,
    errors: &mut ErrorList,
    counts: &mut Counts,
) -> std::result::Result<(), Stopped> {
    let file = File::open(&source.file).map_err(Stopped::Open)?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut number = 0u64;
    let mut pending = Pending::default();
    loop {
        number += 1;
        let read = read_line(&mut reader, &mut buf).map_err(|source| Stopped::Read {
            line: number,
            source,
        })?;
        let outcome = match read {
            LineRead::End => {
                return report(pending.flush(instance, source, writes), errors, counts);
            }
            LineRead::TooLong => Err(LineFailed::TooLong),
            LineRead::Line => match std::str::from_utf8(&buf) {
                Err(_) => Err(LineFailed::NotUtf8),
                Ok(text) => {
                    let text = text.trim_start_matches('\u{feff}').trim();
                    if text.is_empty() {
                        continue;
                    }
                    match meta_line::parse_line(text) {
                        Ok(Operation::Add(add)) => {
                            if pending.add(number, add) {
                                report(pending.flush(instance, source, writes), errors, counts)?;
                            }
                            continue;
                        }
                        Ok(Operation::Delete {
                            product_id,
                            pic_name,
                        }) => {
                            // The ADDs before it apply first.
                            report(pending.flush(instance, source, writes), errors, counts)?;
                            let key = writes.key(number);
                            writes
                                .sink
                                .delete(instance, &key, &product_id, pic_name.as_deref())
                                .map(|removed| Done::Deleted(removed.len() as u64))
                                .map_err(LineFailed::from)
                        }
                        Err(e) => Err(e.into()),
                    }
                }
            },
        };
        if pending.settle(number, outcome) {
            report(pending.flush(instance, source, writes), errors, counts)?;
        }
    }
}

/// Counts settled lines and lists the failed ones (in the order given: line order).
fn report(
    settled: Vec<Settled>,
    errors: &mut ErrorList,
    counts: &mut Counts,
) -> std::result::Result<(), Stopped> {
    for (number, outcome) in settled {
        match outcome {
            Ok(Done::Added) => counts.added += 1,
            Ok(Done::Deleted(n)) => counts.deleted += n,
            Err(reason) => {
                counts.failed += 1;
                errors
                    .write(&format!("line {number}"), &reason.to_string())
                    .map_err(Stopped::ErrorList)?;
            }
        }
    }
    Ok(())
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq)]
enum LineRead {
    /// A line, in the buffer, without its end of line.
    Line,
    /// A line over [`MAX_LINE_BYTES`], skipped.
    TooLong,
    /// The end of the file.
    End,
}

/// Reads one line into `buf` without ever holding more than [`MAX_LINE_BYTES`] of it:
/// a file without newlines must not be read whole into memory.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<LineRead> {
    buf.clear();
    let n = reader
        .by_ref()
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(LineRead::End);
    }
    if buf.last() == Some(&b'\n') || buf.len() <= MAX_LINE_BYTES {
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        return Ok(LineRead::Line);
    }
    // Skip the rest of the long line.
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        if let Some(pos) = available.iter().position(|b| *b == b'\n') {
            reader.consume(pos + 1);
            break;
        }
        let len = available.len();
        reader.consume(len);
    }
    Ok(LineRead::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_with_a_bound() {
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let text = format!("a\r\n\n{long}\nb");
        let mut reader = BufReader::with_capacity(1024, text.as_bytes());
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        loop {
            match read_line(&mut reader, &mut buf).unwrap() {
                LineRead::End => break,
                LineRead::TooLong => seen.push("<long>".to_string()),
                LineRead::Line => seen.push(String::from_utf8(buf.clone()).unwrap()),
            }
        }
        assert_eq!(seen, ["a", "", "<long>", "b"]);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_kept() {
        let text = format!("{}\n", "y".repeat(MAX_LINE_BYTES));
        let mut reader = BufReader::new(text.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buf).unwrap(), LineRead::Line);
        assert_eq!(buf.len(), MAX_LINE_BYTES);
        assert_eq!(read_line(&mut reader, &mut buf).unwrap(), LineRead::End);
    }
}
