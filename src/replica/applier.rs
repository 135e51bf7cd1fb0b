//! The applier of one instance's log on this node: reads the stream in order from the
//! entry after the applied sequence and applies each entry with its sequence as the
//! progress mark of the same synced batch, so the stored position and the stored data
//! never disagree, whatever the crash. Consecutive adds already received go in one
//! synced batch (`applier_batch.rs`).
//!
//! An entry it cannot apply safely (an entry it cannot read, a store failure) stops it
//! for good and makes the node not ready: guessing would let this node drift from the
//! others for ever. A sequence gap (the stream cut after a snapshot) re-bootstraps the
//! instance from the latest snapshot when a snapshot store is configured
//! (`rebootstrap.rs`), else stops it too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use super::entry::{self, Change};
use super::{Replica, ReplicaError, Result};
use crate::engine::{Attributes, EngineError, Instance};
use crate::store::ProgressMark;

/// Progress-mark source of the applied sequence.
pub const APPLIED_SOURCE: &str = "replica/applied";

/// Outcomes kept for requests waiting on this node; older ones are dropped (their
/// requests timed out long before).
const KEPT_OUTCOMES: u64 = 10_000;

/// How often the stream's last sequence is read for the lag.
const LAST_EVERY: Duration = Duration::from_millis(500);

/// Pause before the consumer is made again after an error (NATS leader change).
const RETRY_AFTER: Duration = Duration::from_millis(300);

/// What the request that wrote an entry is answered: the pictures removed, or the
/// write's own failure (over quota, no such picture), as on a single node.
pub(super) type Outcome = std::result::Result<Vec<String>, EngineError>;

/// Where an applier stands, watched by waiting requests.
#[derive(Debug, Clone, Default)]
pub(super) struct Position {
    pub(super) applied: u64,
    pub(super) stopped: Option<String>,
}

/// Applied sequence and lag of one instance, for /metrics and /readyz.
#[derive(Debug, Clone)]
pub struct InstanceLag {
    /// Instance name.
    pub instance: String,
    /// Last sequence applied here.
    pub applied: u64,
    /// Entries in the log not applied here; `None` until the log's end is known.
    pub lag: Option<u64>,
    /// Why the applier stopped, if it did.
    pub stopped: Option<String>,
}

/// One instance's applier.
pub(super) struct Applier {
    pub(super) name: String,
    instance: Arc<Instance>,
    position: watch::Sender<Position>,
    /// The log's last sequence as last seen (0 until seen).
    last: parking_lot::Mutex<Option<u64>>,
    outcomes: parking_lot::Mutex<BTreeMap<u64, Outcome>>,
}

impl Applier {
    /// Reads the applied sequence from the store and starts applying after it.
    pub(super) fn start(replica: &Arc<Replica>, instance: Arc<Instance>) -> Result<Arc<Applier>> {
        let name = instance.meta().name.clone();
        let applied = match instance.progress(APPLIED_SOURCE)? {
            None => 0,
            Some(bytes) => u64::from_be_bytes(bytes.as_slice().try_into().map_err(|_| {
                ReplicaError::Entry(format!(
                    "instance {name}: applied sequence of {} bytes",
                    bytes.len()
                ))
            })?),
        };
        let applier = Arc::new(Applier {
            name,
            instance,
            position: watch::Sender::new(Position {
                applied,
                stopped: None,
            }),
            last: parking_lot::Mutex::new(None),
            outcomes: Default::default(),
        });
        tokio::spawn(applier.clone().run(replica.clone()));
        tokio::spawn(applier.clone().watch_last(replica.clone()));
        Ok(applier)
    }

    /// Applied sequence and lag.
    pub(super) fn lag(&self) -> InstanceLag {
        let position = self.position.borrow().clone();
        let last = *self.last.lock();
        InstanceLag {
            instance: self.name.clone(),
            applied: position.applied,
            lag: last.map(|l| l.saturating_sub(position.applied)),
            stopped: position.stopped,
        }
    }

    /// Notes that the log reached `sequence` (a publish acknowledged it).
    pub(super) fn saw(&self, sequence: u64) {
        let mut last = self.last.lock();
        *last = Some(last.unwrap_or(0).max(sequence));
    }

    /// Waits until this node applied `sequence`, then takes its outcome.
    pub(super) async fn wait(&self, sequence: u64, timeout: Duration) -> Result<Outcome> {
        let mut position = self.position.subscribe();
        let reached = tokio::time::timeout(
            timeout,
            position.wait_for(|p| p.applied >= sequence || p.stopped.is_some()),
        )
        .await;
        let stopped = match reached {
            Ok(Ok(p)) if p.applied >= sequence => None,
            Ok(Ok(p)) => p.stopped.clone(),
            Ok(Err(_)) => Some("the applier ended".to_string()),
            Err(_) => {
                return Err(ReplicaError::NotApplied {
                    sequence,
                    waited: timeout,
                })
            }
        };
        if let Some(reason) = stopped {
            return Err(ReplicaError::Stopped(self.name.clone(), reason));
        }
        // No outcome: a retried write the log had already (its first copy's outcome
        // went to the first request).
        Ok(self
            .outcomes
            .lock()
            .remove(&sequence)
            .unwrap_or(Ok(Vec::new())))
    }

    /// Stops applying for now, with the reason (a re-bootstrap under way).
    pub(super) fn hold(&self, reason: String) {
        self.position.send_modify(|p| p.stopped = Some(reason));
    }

    pub(super) fn stop(&self, reason: String) {
        tracing::error!(instance = %self.name, %reason, "replication stopped on this node: it will not apply this instance's log any more and reports not ready; give it a fresh copy of the instance");
        self.position.send_modify(|p| p.stopped = Some(reason));
    }

    /// Whether this applier applies the log to `instance` (the same one, not a later
    /// instance of the same name).
    pub(super) fn applies(&self, instance: &Arc<Instance>) -> bool {
        Arc::ptr_eq(&self.instance, instance)
    }

    async fn run(self: Arc<Self>, replica: Arc<Replica>) {
        while self.position.borrow().stopped.is_none() && replica.is_current(&self) {
            if let Err(e) = self.consume(&replica).await {
                tracing::warn!(instance = %self.name, error = %e, "reading the write log failed; reading again");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }

    /// Applies entries until the consumer fails or an entry stops the applier.
    async fn consume(self: &Arc<Self>, replica: &Arc<Replica>) -> Result<()> {
        let log = |e: &dyn std::fmt::Display| ReplicaError::Log(e.to_string());
        let stream = replica.stream(&self.name).await?;
        let start = self.position.borrow().applied + 1;
        let mut messages = super::entries_from(&stream, start).await?;
        // A message read ahead while batching, handled first.
        let mut held = None;
        loop {
            let message = match held.take() {
                Some(message) => message,
                None => match messages.next().await {
                    Some(message) => message.map_err(|e| log(&e))?,
                    None => break,
                },
            };
            let info = message.info().map_err(|e| log(&e))?;
            let (sequence, published) = (info.stream_sequence, info.published);
            if !replica.is_current(self) {
                return Ok(());
            }
            let applied = self.position.borrow().applied;
            if sequence <= applied {
                continue;
            }
            if sequence != applied + 1 {
                replica.on_gap(self, applied, sequence);
                return Ok(());
            }
            let change = match entry::open(&message.payload) {
                Ok(change) => change,
                Err(e) => {
                    self.stop(format!("entry {sequence}: {e}"));
                    return Ok(());
                }
            };
            if let Change::Add { .. } = change {
                let mut adds = vec![(sequence, published, change)];
                let (next, failed) = batch::take_following(&mut messages, &mut adds);
                if let Err(e) = self.apply_batch(adds).await {
                    self.stop(e.to_string());
                    return Ok(());
                }
                if let Some(e) = failed {
                    return Err(log(&e));
                }
                held = next;
                continue;
            }
            let kind = change.kind();
            let this = self.clone();
            let applied = tokio::task::spawn_blocking(move || this.apply(sequence, change)).await;
            match applied {
                Ok(Ok(outcome)) => {
                    self.applied(sequence, outcome);
                    // Replication lag as a client sees it: logged until applied here.
                    let delay = time::OffsetDateTime::now_utc() - published;
                    metrics::histogram!("imgsearch_replica_apply_delay_seconds", "instance" => self.name.clone())
                        .record(delay.as_seconds_f64().max(0.0));
                }
                Ok(Err(e)) => {
                    self.stop(format!("entry {sequence} ({kind}): {e}"));
                    return Ok(());
                }
                Err(e) => {
                    self.stop(format!(
                        "entry {sequence} ({kind}): the apply task failed: {e}"
                    ));
                    return Ok(());
                }
            }
        }
        Err(ReplicaError::Log("the consumer ended".into()))
    }

    fn applied(&self, sequence: u64, outcome: Outcome) {
        {
            let mut outcomes = self.outcomes.lock();
            outcomes.insert(sequence, outcome);
            let keep_from = sequence.saturating_sub(KEPT_OUTCOMES);
            *outcomes = outcomes.split_off(&keep_from);
        }
        self.saw(sequence);
        self.position.send_modify(|p| p.applied = sequence);
    }

    /// Applies one entry with its sequence as the mark. `Err` only when the mark could
    /// not be committed with it (the applier must stop); a write that fails as it would
    /// on a single node commits the mark and is the request's outcome.
    fn apply(&self, sequence: u64, change: Change) -> Result<Outcome> {
        let mark = ProgressMark {
            inst: self.instance.meta().id,
            source: APPLIED_SOURCE.to_string(),
            value: sequence.to_be_bytes().to_vec(),
        };
        let instance = &self.instance;
        Ok(match change {
            Change::Add {
                record,
                vector,
                thumbnail,
                local_features,
            } => {
                let picture = instance.prepare_vector(record, vector, thumbnail, local_features)?;
                let mut outcomes = instance.commit_batch(vec![picture], Some(mark))?;
                match outcomes.pop() {
                    Some(outcome) => outcome.map(|_| Vec::new()),
                    None => Ok(Vec::new()),
                }
            }
            Change::Update {
                product_id,
                pic_name,
                custom_content,
                int_attrs,
                str_attrs,
            } => {
                let attributes = Attributes {
                    custom_content,
                    int_attrs,
                    str_attrs,
                };
                match instance.update_marked(&product_id, &pic_name, attributes, Some(&mark)) {
                    Ok(()) => Ok(Vec::new()),
                    Err(e @ EngineError::PictureNotFound { .. }) => Err(e),
                    Err(e) => return Err(e.into()),
                }
            }
            Change::Delete {
                product_id,
                pic_name,
            } => Ok(instance.delete_marked(&product_id, pic_name.as_deref(), Some(&mark))?),
            Change::DeleteByFilter { filter } => {
                let expr = crate::filter::parse(&filter, usize::MAX)
                    .map_err(|e| ReplicaError::Entry(format!("filter {filter:?}: {e}")))?;
                Ok(instance.delete_by_filter_marked(&expr, Some(&mark))?)
            }
        })
    }

    /// Keeps the log's last sequence known, for the lag.
    async fn watch_last(self: Arc<Self>, replica: Arc<Replica>) {
        let mut stream = None;
        while replica.is_current(&self) {
            if stream.is_none() {
                stream = replica.stream(&self.name).await.ok();
            }
            if let Some(s) = &stream {
                match s.get_info().await {
                    Ok(info) => self.saw(info.state.last_sequence),
                    Err(e) => tracing::debug!(instance = %self.name, error = %e, "stream info"),
                }
            }
            tokio::time::sleep(LAST_EVERY).await;
        }
    }
}

#[path = "applier_batch.rs"]
mod batch;

#[cfg(test)]
#[path = "applier_tests.rs"]
mod tests;
