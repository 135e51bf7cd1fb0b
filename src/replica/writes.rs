//! The write requests of a cluster node: extract here, publish to the instance's log,
//! wait for the log's acknowledgement and for this node to apply the entry, then answer
//! what applying it did, as a single node would.

use std::sync::Arc;
use std::time::Instant;

use async_nats::jetstream::context::Publish;

use super::applier::Applier;
use super::entry::{self, Change};
use super::{subject, Replica, ReplicaError, Result, WRITE_TIMEOUT};
use crate::engine::{AddPicture, Attributes, Instance, Subject};

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
        let applier = self.applier(&instance.meta().name)?;
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
        let applier = self.applier(&instance.meta().name)?;
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
        let applier = self.applier(&instance.meta().name)?;
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
        let applier = self.applier(&instance.meta().name)?;
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
        let bytes = entry::seal(change)?;
        let id = match request {
            Some(nonce) => format!("{}/{}/{nonce}", applier.name, change.kind()),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let sequence = self.publish(&subject(&applier.name), &id, bytes).await?;
        applier.saw(sequence);
        let waited = WRITE_TIMEOUT.saturating_sub(started.elapsed());
        let outcome = applier.wait(sequence, waited).await?;
        metrics::histogram!("imgsearch_replica_write_seconds", "kind" => change.kind())
            .record(started.elapsed().as_secs_f64());
        Ok(outcome?)
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
