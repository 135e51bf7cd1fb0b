//! The write requests of a cluster node: extract here, publish to the instance's log,
//! wait for the log's acknowledgement and for this node to apply the entry, then answer
//! what applying it did, as a single node would.

use std::sync::Arc;
use std::time::Instant;

use async_nats::jetstream::context::Publish;

use super::applier::{Applier, Outcome};
use super::entry::{self, Change};
use super::{subject, Replica, ReplicaError, Result, WRITE_TIMEOUT};
use crate::engine::{AddPicture, Attributes, Instance, Subject};

/// Publishes of one [`Replica::write_all`] sent before their acknowledgements are awaited.
const IN_FLIGHT: usize = 256;

/// Pause between publish attempts while the log elects a leader.
const PUBLISH_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

impl Replica {
    /// AddImage: extracts the picture on this node, then logs it.
    pub async fn add(
        &self,
        instance: Arc<Instance>,
        add: AddPicture,
        request: Option<&str>,
    ) -> Result<Subject> {
        let applier = self.applier(&instance.meta().name).await?;
        let (picture, subject) = tokio::task::spawn_blocking(move || instance.prepare(add))
            .await
            .map_err(|e| ReplicaError::Log(format!("the extraction task failed: {e}")))??;
        let parts = picture.into_parts();
        let change = Change::Add {
            record: parts.record,
            vector: parts.vector,
            thumbnail: parts.thumbnail,
            local_features: parts.local_features,
        };
        self.write(&applier, &change, request).await?;
        Ok(subject)
    }

    /// UpdateImage.
    pub async fn update(
        &self,
        instance: &Instance,
        product_id: String,
        pic_name: String,
        attributes: Attributes,
        request: Option<&str>,
    ) -> Result<()> {
        let applier = self.applier(&instance.meta().name).await?;
        let change = Change::update(product_id, pic_name, attributes);
        self.write(&applier, &change, request).await.map(|_| ())
    }

    /// DeleteImage of a picture, or of a product when `pic_name` is `None`; the
    /// PicNames removed.
    pub async fn delete(
        &self,
        instance: &Instance,
        product_id: String,
        pic_name: Option<String>,
        request: Option<&str>,
    ) -> Result<Vec<String>> {
        let applier = self.applier(&instance.meta().name).await?;
        let change = Change::Delete {
            product_id,
            pic_name,
        };
        self.write(&applier, &change, request).await
    }

    /// DeleteImage by filter (text already validated); the PicNames removed.
    pub async fn delete_by_filter(
        &self,
        instance: &Instance,
        filter: String,
        request: Option<&str>,
    ) -> Result<Vec<String>> {
        let applier = self.applier(&instance.meta().name).await?;
        self.write(&applier, &Change::DeleteByFilter { filter }, request)
            .await
    }

    /// Logs `change`, waits until this node applied it, and returns its outcome. With
    /// the request's nonce the entry's id is (instance, kind, nonce), so a resent copy
    /// of the request, through any node within the log's duplicate window (2 min), is
    /// logged once; without one, the id is made here.
    async fn write(
        &self,
        applier: &Applier,
        change: &Change,
        request: Option<&str>,
    ) -> Result<Vec<String>> {
        let started = Instant::now();
        let id = match request {
            Some(nonce) => format!("{}/{}/{nonce}", applier.name, change.kind()),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let kind = change.kind();
        let mut outcomes = self.write_all(applier, vec![(id, change.clone())]).await?;
        metrics::histogram!("imgsearch_replica_write_seconds", "kind" => kind)
            .record(started.elapsed().as_secs_f64());
        Ok(outcomes.pop().unwrap_or(Ok(Vec::new()))?)
    }

    /// Logs `changes` (each with its `Nats-Msg-Id`) in order, up to [`IN_FLIGHT`]
    /// publishes sent before their acknowledgements are awaited, then waits until this
    /// node applied each one; their outcomes, in order. A publish whose acknowledgement
    /// fails is sent again with the same id (stored once, at its first place if the
    /// first copy got in).
    pub(super) async fn write_all(
        &self,
        applier: &Applier,
        changes: Vec<(String, Change)>,
    ) -> Result<Vec<Outcome>> {
        let started = Instant::now();
        let subject = subject(&applier.name);
        let mut sequences = Vec::with_capacity(changes.len());
        for chunk in changes.chunks(IN_FLIGHT) {
            let mut sent = Vec::with_capacity(chunk.len());
            for (id, change) in chunk {
                let bytes = entry::seal(change)?;
                let publish = Publish::build()
                    .payload(bytes.clone().into())
                    .message_id(id);
                let ack = self.jetstream.send_publish(subject.clone(), publish).await;
                sent.push((id, bytes, ack));
            }
            for (id, bytes, ack) in sent {
                let acked = match ack {
                    Ok(ack) => ack.await.map(|a| a.sequence).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let sequence = match acked {
                    Ok(sequence) => sequence,
                    Err(e) => {
                        tracing::warn!(subject, error = %e, "publishing to the write log failed; retrying");
                        self.publish(&subject, id, bytes).await?
                    }
                };
                applier.saw(sequence);
                sequences.push(sequence);
            }
        }
        let mut outcomes = Vec::with_capacity(sequences.len());
        // The first wait has what the publishes left of the timeout, each next one the
        // whole timeout again: a long batch is fine while this node keeps applying it.
        let mut since = started;
        for sequence in sequences {
            let waited = WRITE_TIMEOUT.saturating_sub(since.elapsed());
            outcomes.push(applier.wait(sequence, waited).await?);
            since = Instant::now();
        }
        Ok(outcomes)
    }

    /// Publishes an entry with `id` as its `Nats-Msg-Id`, again and again until the log
    /// acknowledges it: a retry of an entry the log already stored is acknowledged with
    /// the first copy's sequence and not stored twice.
    pub(super) async fn publish(&self, subject: &str, id: &str, bytes: Vec<u8>) -> Result<u64> {
        let deadline = Instant::now() + WRITE_TIMEOUT;
        loop {
            let attempt = async {
                let publish = Publish::build()
                    .payload(bytes.clone().into())
                    .message_id(id);
                let ack = self
                    .jetstream
                    .send_publish(subject.to_string(), publish)
                    .await
                    .map_err(|e| e.to_string())?;
                ack.await.map_err(|e| e.to_string())
            }
            .await;
            match attempt {
                Ok(ack) => return Ok(ack.sequence),
                Err(e) if Instant::now() < deadline => {
                    tracing::warn!(subject, error = %e, "publishing to the write log failed; retrying");
                    tokio::time::sleep(PUBLISH_RETRY).await;
                }
                Err(e) => return Err(ReplicaError::Log(format!("publish: {e}"))),
            }
        }
    }
}
