//! The replicated catalog: instance creations and deletions as entries of one stream
//! (`IMGSEARCH-CATALOG`, subject `imgsearch.catalog`), applied by every node in order
//! before it applies any instance's own stream, so every node holds the same instances.
//!
//! Entry layout: the store's envelope with magic `0xFF "RLC"`, format version
//! [`entry::VERSION`] and a CRC-32; the body is a [`CatalogEntry`] in bincode 2. A
//! creation carries the extractor as the taking node resolved it (name, model settings,
//! dimension), so every node rebuilds the same one (an ONNX model must be at the same
//! path with the same SHA-256 on every node).
//!
//! The applied position is a node progress mark committed after each entry. Applying is
//! idempotent (creating an instance that exists or deleting one that does not changes
//! nothing and is that request's answer), so the one entry a crash can leave unmarked is
//! safely applied again. Deleting an instance also deletes its stream, by whichever node
//! applies the entry first; a stream made after the deletion was logged (the same name
//! created again) is left alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::applier::Position;
use super::entry;
use super::{stream_name, Replica, ReplicaError, Result, WRITE_TIMEOUT};
use crate::engine::{
    Engine, EngineError, ExtractorChoice, Instance, InstanceSpec, RecordedExtractor, ServiceType,
};
use crate::store::StoreError;

/// Stream of the catalog (`-` keeps it apart from every `IMGSEARCH_<instance>`).
pub const CATALOG_STREAM: &str = "IMGSEARCH-CATALOG";
/// Subject of the catalog.
pub const CATALOG_SUBJECT: &str = "imgsearch.catalog";
/// Magic of a catalog entry.
pub const MAGIC: [u8; 4] = [0xFF, b'R', b'L', b'C'];
/// Node progress-mark source of the catalog's applied sequence.
pub const CATALOG_SOURCE: &str = "replica/catalog";

/// Pause before the consumer is made again after an error (NATS leader change).
const RETRY_AFTER: Duration = Duration::from_millis(300);

/// Longest a request naming an unknown instance waits for the catalog (a NATS leader
/// election takes 5-8 s).
const SETTLE_WITHIN: Duration = Duration::from_secs(10);

/// How long such a request lets the follower reach the catalog's end before it reads
/// the missing entries itself.
const FOLLOWER_GRACE: Duration = Duration::from_millis(500);

/// Whether the catalog's follower goes on after an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Applied (or already applied): on to the next one.
    Next,
    /// This node stopped following the catalog.
    Stop,
}

/// Outcomes kept for waiting requests.
const KEPT_OUTCOMES: u64 = 1_000;

/// One change of the set of instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CatalogEntry {
    /// Create an instance.
    Create {
        /// Instance name.
        name: String,
        /// Service type code ([`ServiceType::code`]).
        service_type: u8,
        /// Searches per second allowed (per node); 0 = unlimited.
        qps: u32,
        /// Pictures it may hold.
        capacity: u64,
        /// Keep local features.
        local_features: bool,
        /// The extractor as the taking node resolved it.
        extractor: RecordedExtractor,
    },
    /// Delete an instance, its pictures and its stream.
    Delete {
        /// Instance name.
        name: String,
    },
}

impl CatalogEntry {
    /// How many kinds this build reads (variant indexes `0..KINDS`).
    pub const KINDS: u32 = 2;

    /// The instance it is about.
    pub fn name(&self) -> &str {
        match self {
            CatalogEntry::Create { name, .. } | CatalogEntry::Delete { name } => name,
        }
    }
}

/// What the request that logged an entry is answered.
type Outcome = std::result::Result<(), EngineError>;

/// The entry's bytes.
pub fn seal(entry: &CatalogEntry) -> Result<Vec<u8>> {
    entry::seal_as(MAGIC, entry)
}

/// The entry bytes hold; refuses damage, an unknown version or trailing bytes.
pub fn open(bytes: &[u8]) -> Result<CatalogEntry> {
    entry::open_as(MAGIC, "catalog entry", CatalogEntry::KINDS, bytes)
}

/// Applies one entry to the engine. `Ok(Err(_))`: the entry changed nothing (the name
/// was taken, or already gone), which is its request's answer; `Err`: this node cannot
/// follow the catalog (a model file missing here, a store failure) and must stop.
pub fn apply(engine: &Engine, entry: &CatalogEntry) -> Result<Outcome> {
    let result = match entry {
        CatalogEntry::Create {
            name,
            service_type,
            qps,
            capacity,
            local_features,
            extractor,
        } => {
            let service_type = ServiceType::from_code(*service_type).ok_or_else(|| {
                ReplicaError::Entry(format!("instance {name}: service type {service_type}"))
            })?;
            let spec = InstanceSpec {
                name: name.clone(),
                service_type,
                qps: *qps,
                capacity: *capacity,
                local_features: *local_features,
            };
            engine
                .create_instance_recorded(&spec, extractor)
                .map(|_| ())
        }
        CatalogEntry::Delete { name } => engine.delete_instance(name),
    };
    match result {
        Ok(()) => Ok(Ok(())),
        Err(e @ EngineError::Store(StoreError::InstanceExists(_)))
        | Err(e @ EngineError::InstanceNotFound(_)) => Ok(Err(e)),
        Err(e) => Err(e.into()),
    }
}

/// This node's reading of the catalog.
#[derive(Default)]
pub(super) struct Catalog {
    position: watch::Sender<Position>,
    /// Held while an entry is applied: by the follower or by a request reading ahead.
    applying: tokio::sync::Mutex<()>,
    outcomes: parking_lot::Mutex<BTreeMap<u64, Outcome>>,
}

impl Catalog {
    /// Starts at the applied sequence stored in the engine.
    pub(super) fn load(engine: &Engine) -> Result<Catalog> {
        let applied = match engine.node_progress(CATALOG_SOURCE)? {
            None => 0,
            Some(bytes) => u64::from_be_bytes(bytes.as_slice().try_into().map_err(|_| {
                ReplicaError::Entry(format!("catalog position of {} bytes", bytes.len()))
            })?),
        };
        let catalog = Catalog::default();
        catalog.position.send_modify(|p| p.applied = applied);
        Ok(catalog)
    }

    /// Last sequence applied here.
    pub(super) fn applied(&self) -> u64 {
        self.position.borrow().applied
    }

    /// Why this node stopped following the catalog, if it did.
    pub(super) fn stopped(&self) -> Option<String> {
        self.position.borrow().stopped.clone()
    }

    /// Waits until this node applied `sequence`, then takes its outcome.
    pub(super) async fn wait(&self, sequence: u64, timeout: Duration) -> Result<Outcome> {
        self.reach(sequence, timeout).await?;
        Ok(self.outcomes.lock().remove(&sequence).unwrap_or(Ok(())))
    }

    /// Waits until this node applied `sequence`.
    pub(super) async fn reach(&self, sequence: u64, timeout: Duration) -> Result<()> {
        let mut position = self.position.subscribe();
        let reached = tokio::time::timeout(
            timeout,
            position.wait_for(|p| p.applied >= sequence || p.stopped.is_some()),
        )
        .await;
        match reached {
            Ok(Ok(p)) if p.applied >= sequence => {}
            Ok(Ok(p)) => {
                let reason = p.stopped.clone().unwrap_or_default();
                return Err(ReplicaError::Stopped("(catalog)".into(), reason));
            }
            Ok(Err(_)) => {
                return Err(ReplicaError::Stopped(
                    "(catalog)".into(),
                    "the applier ended".into(),
                ))
            }
            Err(_) => {
                return Err(ReplicaError::NotApplied {
                    sequence,
                    waited: timeout,
                })
            }
        }
        Ok(())
    }

    /// Waits until no catalog entry is being applied; holding the answer keeps the next
    /// one from starting.
    pub(super) async fn between_entries(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.applying.lock().await
    }

    fn stop(&self, reason: String) {
        tracing::error!(%reason, "this node stopped following the instance catalog and reports not ready");
        self.position.send_modify(|p| p.stopped = Some(reason));
    }

    fn done(&self, sequence: u64, outcome: Outcome) {
        {
            let mut outcomes = self.outcomes.lock();
            outcomes.insert(sequence, outcome);
            *outcomes = outcomes.split_off(&sequence.saturating_sub(KEPT_OUTCOMES));
        }
        self.position.send_modify(|p| p.applied = sequence);
    }
}

impl Replica {
    /// Follows the catalog until this node stops.
    pub(super) async fn follow_catalog(self: Arc<Self>, engine: Arc<Engine>) {
        while self.catalog.stopped().is_none() {
            if let Err(e) = self.consume_catalog(&engine).await {
                tracing::warn!(error = %e, "reading the instance catalog failed; reading again");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }

    /// Brings this node's catalog to the end of the log (within [`SETTLE_WITHIN`]): a
    /// request naming an instance unknown here may name one just created through
    /// another node. The follower gets [`FOLLOWER_GRACE`] to get there; a follower that
    /// lags (its consumer made again after a NATS leader change) is overtaken by reading
    /// the missing entries directly. Returns whether the catalog reached the end.
    pub async fn settle_catalog(self: &Arc<Self>, engine: &Arc<Engine>) -> bool {
        let settled = tokio::time::timeout(SETTLE_WITHIN, async {
            let end = self.catalog_end().await?;
            if self.catalog.reach(end, FOLLOWER_GRACE).await.is_ok() {
                return Ok(());
            }
            self.read_catalog_to(engine, end).await?;
            // Short of the end only when the catalog stopped on the way (an entry it could
            // not apply): "no such instance" from it may be false.
            if self.catalog.applied() < end {
                let reason = self.catalog.stopped().unwrap_or_default();
                return Err(ReplicaError::Stopped("(catalog)".into(), reason));
            }
            Ok(())
        })
        .await;
        match settled {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => tracing::warn!(error = %e, "catalog not settled"),
            Err(_) => tracing::warn!("catalog not settled within {SETTLE_WITHIN:?}"),
        }
        false
    }

    /// The catalog's last sequence, for catching up at start.
    pub(super) async fn catalog_end(&self) -> Result<u64> {
        let stream = self.stream_of(CATALOG_STREAM, CATALOG_SUBJECT).await?;
        let info = stream
            .get_info()
            .await
            .map_err(|e| ReplicaError::Log(format!("catalog: {e}")))?;
        Ok(info.state.last_sequence)
    }

    async fn consume_catalog(self: &Arc<Self>, engine: &Arc<Engine>) -> Result<()> {
        let log = |e: &dyn std::fmt::Display| ReplicaError::Log(format!("catalog: {e}"));
        let stream = self.stream_of(CATALOG_STREAM, CATALOG_SUBJECT).await?;
        let mut messages = super::entries_from(&stream, self.catalog.applied() + 1).await?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| log(&e))?;
            let info = message.info().map_err(|e| log(&e))?;
            let (sequence, published) = (info.stream_sequence, info.published);
            if self
                .apply_catalog_entry(engine, sequence, published, &message.payload)
                .await?
                == Step::Stop
            {
                return Ok(());
            }
        }
        Err(ReplicaError::Log("the catalog consumer ended".into()))
    }

    /// Applies catalog entry `sequence` unless it already was (by the follower, or by
    /// a request reading it directly: one at a time, in order).
    async fn apply_catalog_entry(
        self: &Arc<Self>,
        engine: &Arc<Engine>,
        sequence: u64,
        published: time::OffsetDateTime,
        payload: &[u8],
    ) -> Result<Step> {
        let _one_at_a_time = self.catalog.applying.lock().await;
        if self.catalog.stopped().is_some() {
            return Ok(Step::Stop);
        }
        let applied = self.catalog.applied();
        if sequence <= applied {
            return Ok(Step::Next);
        }
        if sequence != applied + 1 {
            self.catalog.stop(format!(
                "the catalog skips from sequence {applied} to {sequence}"
            ));
            return Ok(Step::Stop);
        }
        let entry = match open(payload) {
            Ok(entry) => entry,
            Err(e) => {
                self.catalog.stop(format!("catalog entry {sequence}: {e}"));
                return Ok(Step::Stop);
            }
        };
        if let CatalogEntry::Delete { name } = &entry {
            // Its applier must not make the stream again once it is deleted.
            self.appliers.write().remove(name);
        }
        let (engine2, entry2) = (engine.clone(), entry.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            let outcome = apply(&engine2, &entry2)?;
            engine2.commit_node_progress(CATALOG_SOURCE, sequence.to_be_bytes().to_vec())?;
            Ok::<_, ReplicaError>(outcome)
        })
        .await;
        let outcome = match outcome {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => {
                self.catalog.stop(format!("catalog entry {sequence}: {e}"));
                return Ok(Step::Stop);
            }
            Err(e) => {
                self.catalog
                    .stop(format!("catalog entry {sequence}: the task failed: {e}"));
                return Ok(Step::Stop);
            }
        };
        if let CatalogEntry::Delete { name } = &entry {
            self.delete_stream_logged_before(name, published).await?;
        }
        self.follow_instances(engine)?;
        tracing::info!(sequence, instance = %entry.name(), ok = outcome.is_ok(), "catalog entry applied");
        self.catalog.done(sequence, outcome);
        Ok(Step::Next)
    }

    /// Reads and applies the catalog's entries after this node's position up to `end`,
    /// one by one by sequence (asked of the stream's leader), whatever the follower's
    /// consumer is doing.
    async fn read_catalog_to(self: &Arc<Self>, engine: &Arc<Engine>, end: u64) -> Result<()> {
        let stream = self.stream_of(CATALOG_STREAM, CATALOG_SUBJECT).await?;
        while self.catalog.applied() < end {
            let sequence = self.catalog.applied() + 1;
            let message = stream
                .get_raw_message(sequence)
                .await
                .map_err(|e| ReplicaError::Log(format!("catalog entry {sequence}: {e}")))?;
            let step = self
                .apply_catalog_entry(engine, sequence, message.time, &message.payload)
                .await?;
            if step == Step::Stop {
                break;
            }
        }
        Ok(())
    }

    /// Deletes an instance's stream if it was made before `logged` (not by a later
    /// creation of the same name); a stream already gone is fine.
    async fn delete_stream_logged_before(
        &self,
        instance: &str,
        logged: time::OffsetDateTime,
    ) -> Result<()> {
        let name = stream_name(instance);
        let created = match self.jetstream.get_stream(&name).await {
            Ok(stream) => match stream.get_info().await {
                Ok(info) => info.created,
                // Another node applying the same deletion removed it in between: gone
                // is what this deletion wants (an error here would apply the entry
                // again and answer the deleting client that the instance is unknown).
                Err(e) if e.to_string().contains("not found") => return Ok(()),
                Err(e) => return Err(ReplicaError::Log(format!("stream {name}: {e}"))),
            },
            Err(e) if e.to_string().contains("not found") => return Ok(()),
            Err(e) => return Err(ReplicaError::Log(format!("stream {name}: {e}"))),
        };
        if created > logged {
            return Ok(());
        }
        match self.jetstream.delete_stream(&name).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("not found") => Ok(()),
            Err(e) => Err(ReplicaError::Log(format!("delete stream {name}: {e}"))),
        }
    }

    /// Creates an instance on every node through the catalog: the extractor is resolved
    /// here (a model loaded and checked), the entry logged, and the answer given once
    /// this node applied it.
    pub async fn create_instance(
        &self,
        engine: &Arc<Engine>,
        spec: InstanceSpec,
        choice: ExtractorChoice,
    ) -> Result<Arc<Instance>> {
        let resolver = engine.clone();
        let name = spec.name.clone();
        let extractor =
            tokio::task::spawn_blocking(move || resolver.record_extractor(&name, &choice))
                .await
                .map_err(|e| ReplicaError::Log(format!("the model check failed: {e}")))??;
        let entry = CatalogEntry::Create {
            name: spec.name.clone(),
            service_type: spec.service_type.code(),
            qps: spec.qps,
            capacity: spec.capacity,
            local_features: spec.local_features,
            extractor,
        };
        self.catalog_write(&entry).await?;
        Ok(engine.instance(&spec.name)?)
    }

    /// Deletes an instance on every node through the catalog.
    pub async fn delete_instance(&self, engine: &Engine, name: &str) -> Result<()> {
        engine.instance(name)?;
        self.catalog_write(&CatalogEntry::Delete {
            name: name.to_string(),
        })
        .await
    }

    async fn catalog_write(&self, entry: &CatalogEntry) -> Result<()> {
        let started = std::time::Instant::now();
        let id = uuid::Uuid::new_v4().to_string();
        let sequence = self.publish(CATALOG_SUBJECT, &id, seal(entry)?).await?;
        let waited = WRITE_TIMEOUT.saturating_sub(started.elapsed());
        Ok(self.catalog.wait(sequence, waited).await??)
    }
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
