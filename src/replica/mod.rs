//! Replication: with `serve --cluster`, every write goes through a NATS JetStream log and
//! every node applies that log, in order, into its own store and vector files.
//!
//! Layers: `api -> replica -> engine` for writes (the API hands a validated write to
//! [`Replica`], which extracts it with the engine, publishes it, and answers once this
//! node applied it), `api -> engine` for reads. Nothing below imports this module.
//!
//! One stream per instance (`IMGSEARCH_<instance>`, subject `imgsearch.log.<instance>`,
//! file storage, up to 3 replicas). A node's position in a stream is the applied
//! sequence, committed as a progress mark ([`crate::store::ProgressMark`]) in the same
//! synced batch as the change it applied: a node that crashes resumes after the last
//! change it stored, never applying one twice nor skipping one. Each write carries its
//! own id as `Nats-Msg-Id`, so a publish retried after a lost ack (a NATS leader change)
//! is stored once.

mod applier;
pub mod bootstrap;
mod catalog;
pub mod current;
pub mod entry;
pub mod object_store;
mod rebootstrap;
pub mod snapshots;
mod task_writes;
mod writes;

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use thiserror::Error;

pub use applier::{InstanceLag, APPLIED_SOURCE};
pub use catalog::{CatalogEntry, CATALOG_STREAM};
pub use entry::Change;
pub use rebootstrap::{Rebootstrap, Restore};

use crate::engine::{Engine, EngineError};

/// Errors of replication.
#[derive(Debug, Error)]
pub enum ReplicaError {
    /// The write itself failed, as it would on a single node.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The log could not be reached or refused the entry.
    #[error("write log: {0}")]
    Log(String),
    /// An entry that this build cannot read.
    #[error("log entry: {0}")]
    Entry(String),
    /// The write is in the log but this node did not apply it in time.
    #[error("the write was logged (sequence {sequence}) but this node has not applied it within {waited:?}")]
    NotApplied {
        /// Sequence of the write in the instance's stream.
        sequence: u64,
        /// How long the request waited.
        waited: Duration,
    },
    /// This node stopped applying that instance's log.
    #[error("this node stopped applying the log of instance {0}: {1}")]
    Stopped(String, String),
}

/// Result of replication.
pub type Result<T> = std::result::Result<T, ReplicaError>;

/// How a node joins the cluster (`serve --cluster`).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// NATS server URLs.
    pub urls: Vec<String>,
    /// This node's id.
    pub node_id: String,
    /// Entries a node may be behind and still be ready.
    pub max_lag: u64,
    /// Where an instance whose log was cut past this node re-bootstraps from; `None`:
    /// its applier stops.
    pub rebootstrap: Option<Rebootstrap>,
}

/// Longest a write waits for the log (publish retries included) and then for this node
/// to apply it: a NATS leader election takes 5-8 s.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a node looks for instances created or deleted on it.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// This node's side of the cluster: the log connection and one applier per instance.
pub struct Replica {
    jetstream: jetstream::Context,
    config: ClusterConfig,
    appliers: parking_lot::RwLock<BTreeMap<String, Arc<applier::Applier>>>,
    catalog: catalog::Catalog,
    engine: Arc<Engine>,
    /// Held by the one re-bootstrap under way (they share the download folder).
    rebootstrapping: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Name of an instance's stream.
fn stream_name(instance: &str) -> String {
    format!("IMGSEARCH_{instance}")
}

/// Subject of an instance's stream.
fn subject(instance: &str) -> String {
    format!("imgsearch.log.{instance}")
}

/// The entries of `stream` from sequence `start` on, in order (an ordered consumer).
async fn entries_from(
    stream: &jetstream::stream::Stream,
    start: u64,
) -> Result<jetstream::consumer::pull::Ordered> {
    let log = |e: &dyn std::fmt::Display| {
        ReplicaError::Log(format!("{}: {e}", stream.cached_info().config.name))
    };
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| log(&e))?;
    consumer.messages().await.map_err(|e| log(&e))
}

impl Replica {
    /// Connects to the log and starts applying every instance the engine has.
    pub async fn start(engine: Arc<Engine>, config: ClusterConfig) -> Result<Arc<Replica>> {
        let addrs = config
            .urls
            .iter()
            .map(|u| u.parse::<async_nats::ServerAddr>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| ReplicaError::Log(format!("bad --cluster URL: {e}")))?;
        let client = async_nats::ConnectOptions::new()
            .name(format!("imgsearch-{}", config.node_id))
            .retry_on_initial_connect()
            .connect(addrs)
            .await
            .map_err(|e| ReplicaError::Log(format!("cannot connect: {e}")))?;
        let replica = Arc::new(Replica {
            jetstream: jetstream::new(client),
            config,
            appliers: Default::default(),
            catalog: catalog::Catalog::load(&engine)?,
            engine: engine.clone(),
            rebootstrapping: Default::default(),
        });
        replica.catch_up_catalog(&engine).await;
        replica.follow_instances(&engine)?;
        tracing::info!(node = %replica.config.node_id, instances = replica.appliers.read().len(), "applying the write log");
        tokio::spawn(replica.clone().keep_following(engine));
        Ok(replica)
    }

    /// Starts an applier for each instance the engine has and none applies yet, and
    /// drops those of deleted instances (after each catalog entry, and every second for
    /// instances made on this node alone, e.g. the default one).
    fn follow_instances(self: &Arc<Self>, engine: &Engine) -> Result<()> {
        let instances = engine.instances();
        let mut appliers = self.appliers.write();
        appliers.retain(|_, a| instances.iter().any(|i| a.applies(i)));
        for instance in instances {
            if let Entry::Vacant(slot) = appliers.entry(instance.meta().name.clone()) {
                slot.insert(applier::Applier::start(self, instance)?);
            }
        }
        Ok(())
    }

    async fn keep_following(self: Arc<Self>, engine: Arc<Engine>) {
        loop {
            tokio::time::sleep(FOLLOW_EVERY).await;
            // Not while a catalog entry is applied: a deletion drops the instance's
            // applier before the engine drops the instance, and an applier started in
            // between would make its stream again.
            let _between = self.catalog.between_entries().await;
            if let Err(e) = self.follow_instances(&engine) {
                tracing::error!(error = %e, "cannot apply the log of a new instance");
            }
        }
    }

    /// Whether `applier` is still the one of its instance.
    fn is_current(&self, applier: &applier::Applier) -> bool {
        self.appliers
            .read()
            .get(&applier.name)
            .is_some_and(|a| std::ptr::eq(a.as_ref(), applier))
    }

    /// Applies the catalog up to its end before any instance's stream, so instances
    /// created and deleted while this node was down are settled first.
    async fn catch_up_catalog(self: &Arc<Self>, engine: &Arc<Engine>) {
        tokio::spawn(self.clone().follow_catalog(engine.clone()));
        let end = match tokio::time::timeout(WRITE_TIMEOUT, self.catalog_end()).await {
            Ok(Ok(end)) => end,
            Ok(Err(e)) => return tracing::warn!(error = %e, "catalog end unknown; not waiting"),
            Err(_) => return tracing::warn!("catalog end unknown after {WRITE_TIMEOUT:?}"),
        };
        if let Err(e) = self.catalog.reach(end, WRITE_TIMEOUT).await {
            tracing::warn!(error = %e, "catalog not caught up at start");
        }
    }

    /// The stream of `instance`, created when missing (R3 when there are 3 servers).
    async fn stream(&self, instance: &str) -> Result<jetstream::stream::Stream> {
        self.stream_of(&stream_name(instance), &subject(instance))
            .await
    }

    /// A stream, created when missing.
    async fn stream_of(&self, name: &str, subject: &str) -> Result<jetstream::stream::Stream> {
        let config = jetstream::stream::Config {
            name: name.to_string(),
            subjects: vec![subject.to_string()],
            storage: jetstream::stream::StorageType::File,
            num_replicas: self.config.urls.len().clamp(1, 3),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        self.jetstream
            .get_or_create_stream(config)
            .await
            .map_err(|e| ReplicaError::Log(format!("stream {name}: {e}")))
    }

    /// Why this node is not ready (an applier stopped or behind), or `None`.
    pub fn not_ready(&self) -> Option<String> {
        if let Some(reason) = self.catalog.stopped() {
            return Some(format!("instance catalog: stopped: {reason}"));
        }
        self.lags().into_iter().find_map(|lag| {
            if let Some(reason) = lag.stopped {
                return Some(format!("{}: stopped: {reason}", lag.instance));
            }
            match lag.lag {
                None => Some(format!("{}: log position not known yet", lag.instance)),
                Some(n) if n > self.config.max_lag => Some(format!(
                    "{}: {n} entries behind (at most {} allowed)",
                    lag.instance, self.config.max_lag
                )),
                Some(_) => None,
            }
        })
    }

    /// Applied sequence and lag of every instance.
    pub fn lags(&self) -> Vec<InstanceLag> {
        self.appliers.read().values().map(|a| a.lag()).collect()
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }

    /// The applier of `instance`. The engine shows an instance its catalog entry creates
    /// a moment before the entry starts its applier, so a write that found the instance
    /// but no applier waits for the entry being applied before it answers "no such
    /// instance".
    async fn applier(&self, instance: &str) -> Result<Arc<applier::Applier>> {
        let current = || self.appliers.read().get(instance).cloned();
        if let Some(applier) = current() {
            return Ok(applier);
        }
        drop(self.catalog.between_entries().await);
        current().ok_or_else(|| EngineError::InstanceNotFound(instance.to_string()).into())
    }
}
