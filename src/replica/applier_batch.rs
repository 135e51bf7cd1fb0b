//! Catch-up batching of the applier: consecutive AddImage entries that the consumer
//! already holds (a node restarted behind the log, a burst of writes) are applied in
//! ONE synced batch whose progress mark is the last entry's sequence, instead of one
//! synced batch each. The batch is the engine's `commit_batch`, so a crash stores all
//! of it (mark included) or none of it: exactly-once holds as for a single entry. Each
//! waiting request still gets its own entry's outcome.

use std::sync::Arc;

use async_nats::jetstream::Message;
use futures_util::{FutureExt, Stream, StreamExt};

use super::{Applier, Outcome, APPLIED_SOURCE};
use crate::replica::entry::{self, Change};
use crate::replica::{ReplicaError, Result};
use crate::store::ProgressMark;

/// Most entries applied in one synced batch.
pub(super) const BATCH_ENTRIES: usize = 512;

/// An add entry waiting in a batch: its sequence, when it was logged, the change.
pub(super) type Pending = (u64, time::OffsetDateTime, Change);

/// Takes, without waiting, the add entries that follow `batch`'s last one in order and
/// are already received, up to [`BATCH_ENTRIES`]. The first message that is not such an
/// entry (another kind, a repeat, a gap, an unreadable one) is returned for the caller
/// to handle as usual; a consumer error is returned after the batch is applied.
pub(super) fn take_following<S, E>(
    messages: &mut S,
    batch: &mut Vec<Pending>,
) -> (Option<Message>, Option<E>)
where
    S: Stream<Item = std::result::Result<Message, E>> + Unpin,
{
    while batch.len() < BATCH_ENTRIES {
        let message = match messages.next().now_or_never() {
            Some(Some(Ok(message))) => message,
            Some(Some(Err(e))) => return (None, Some(e)),
            Some(None) | None => break,
        };
        let expected = batch.last().map_or(0, |(s, _, _)| s + 1);
        let Ok(info) = message.info() else {
            return (Some(message), None);
        };
        let (sequence, published) = (info.stream_sequence, info.published);
        if sequence != expected {
            return (Some(message), None);
        }
        match entry::open(&message.payload) {
            Ok(change @ Change::Add { .. }) => batch.push((sequence, published, change)),
            _ => return (Some(message), None),
        }
    }
    (None, None)
}

impl Applier {
    /// Applies `batch` (consecutive adds) in one synced batch marked with its last
    /// sequence and notes each entry's outcome. `Err` (nothing stored) stops the applier.
    pub(super) async fn apply_batch(self: &Arc<Self>, batch: Vec<Pending>) -> Result<()> {
        let (Some(&(first, _, _)), Some(&(last, _, _))) = (batch.first(), batch.last()) else {
            return Ok(());
        };
        let logged: Vec<(u64, time::OffsetDateTime)> =
            batch.iter().map(|(s, p, _)| (*s, *p)).collect();
        let this = self.clone();
        let changes = batch.into_iter().map(|(_, _, c)| c).collect();
        let outcomes = tokio::task::spawn_blocking(move || this.apply_adds(last, changes))
            .await
            .map_err(|e| ReplicaError::Log(format!("the apply task failed: {e}")))
            .and_then(|r| r)
            .map_err(|e| ReplicaError::Entry(format!("entries {first}-{last} (add): {e}")))?;
        metrics::histogram!("imgsearch_replica_batch_entries", "instance" => self.name.clone())
            .record(logged.len() as f64);
        let now = time::OffsetDateTime::now_utc();
        for ((sequence, published), outcome) in logged.into_iter().zip(outcomes) {
            self.applied(sequence, outcome);
            metrics::histogram!("imgsearch_replica_apply_delay_seconds", "instance" => self.name.clone())
                .record((now - published).as_seconds_f64().max(0.0));
        }
        Ok(())
    }

    /// Commits `changes` (adds only) with `last` as the mark; one outcome per change.
    fn apply_adds(&self, last: u64, changes: Vec<Change>) -> Result<Vec<Outcome>> {
        let instance = &self.instance;
        let mut pictures = Vec::with_capacity(changes.len());
        for change in changes {
            let Change::Add {
                record,
                vector,
                thumbnail,
                local_features,
            } = change
            else {
                return Err(ReplicaError::Entry("a batch holds adds only".into()));
            };
            pictures.push(instance.prepare_vector(record, vector, thumbnail, local_features)?);
        }
        let count = pictures.len();
        let mark = ProgressMark {
            inst: instance.meta().id,
            source: APPLIED_SOURCE.to_string(),
            value: last.to_be_bytes().to_vec(),
        };
        let outcomes = instance.commit_batch(pictures, Some(mark))?;
        let mut outcomes: Vec<Outcome> = outcomes
            .into_iter()
            .map(|o| o.map(|_| Vec::new()))
            .collect();
        outcomes.resize_with(count, || Ok(Vec::new()));
        Ok(outcomes)
    }
}
