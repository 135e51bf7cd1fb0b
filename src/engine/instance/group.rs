//! Group commit of concurrent adds: writers that arrive while another commits share the
//! next batch, so N concurrent AddImages cost one row sync and one store sync, not N.
//!
//! Each writer queues its prepared picture. When no writer leads, it becomes the leader:
//! it takes the write lock, then every queued picture (its own and those that arrived
//! meanwhile), commits them as one batch (`batch.rs`) and hands each waiting writer its
//! own outcome. The others sleep on a condition variable until their outcome is there,
//! or until the leader is gone and their picture is still queued: then one of them
//! leads the next batch. A writer answers only once its picture is durable.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::batch::{PreparedPicture, Stored};
use super::Instance;
use crate::engine::{EngineError, Result};

/// The queue of pictures waiting for a commit and the outcomes waiting for their writers.
#[derive(Default)]
pub(super) struct CommitGroup {
    state: Mutex<GroupState>,
    /// Woken when a batch is done (outcomes are in, and a new leader may be needed).
    done: Condvar,
}

#[derive(Default)]
struct GroupState {
    /// Pictures no leader has taken yet, with their tickets.
    queue: Vec<(u64, PreparedPicture)>,
    /// A writer is committing (or about to).
    leading: bool,
    /// Outcomes of committed tickets whose writers have not collected them.
    outcomes: HashMap<u64, Result<Stored>>,
    next_ticket: u64,
}

impl Instance {
    /// Commits one prepared picture, sharing the batch with concurrent writers; returns
    /// once the picture is durable (or failed).
    pub fn commit(&self, picture: PreparedPicture) -> Result<Stored> {
        let group = &self.group;
        let mut state = group.state.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push((ticket, picture));
        loop {
            if let Some(outcome) = state.outcomes.remove(&ticket) {
                return outcome;
            }
            if !state.leading {
                // Nobody leads and the picture has no outcome, so it is still queued.
                state.leading = true;
                drop(state);
                let mut outcomes = self.lead();
                let mine = outcomes.remove(&ticket);
                let mut state = group.state.lock();
                state.leading = false;
                state.outcomes.extend(outcomes);
                group.done.notify_all();
                return mine.unwrap_or(Err(EngineError::WriterGone));
            }
            group.done.wait(&mut state);
        }
    }

    /// Takes the write lock, then every queued picture, and commits them as one batch;
    /// the outcome of each ticket taken.
    fn lead(&self) -> HashMap<u64, Result<Stored>> {
        let started = std::time::Instant::now();
        self.compaction.wait_for_handoff();
        let writer = self.write_lock();
        let lock_wait = started.elapsed();
        // Taken only once the lock is held: pictures queued while it was awaited join.
        let taken = std::mem::take(&mut self.group.state.lock().queue);
        let (tickets, pictures): (Vec<u64>, Vec<PreparedPicture>) = taken.into_iter().unzip();
        let committed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut writer = writer?;
            self.commit_locked(&mut writer, pictures, None)
        }));
        super::batch::note_lock_wait(&self.meta.name, started.elapsed(), lock_wait);
        match committed {
            Ok(Ok(outcomes)) => tickets.into_iter().zip(outcomes).collect(),
            Ok(Err(e)) => fan_out(e, tickets),
            Err(panic) => {
                // The waiting writers learn that their batch is lost; the panic goes on.
                let mut state = self.group.state.lock();
                state.leading = false;
                state.outcomes.extend(
                    tickets
                        .into_iter()
                        .map(|t| (t, Err(EngineError::WriterGone))),
                );
                self.group.done.notify_all();
                drop(state);
                std::panic::resume_unwind(panic)
            }
        }
    }
}

/// The failure of a whole batch as each of its writers sees it: a batch of one keeps the
/// error itself, so a lone AddImage answers as it always did.
fn fan_out(error: EngineError, tickets: Vec<u64>) -> HashMap<u64, Result<Stored>> {
    if let [ticket] = tickets[..] {
        return HashMap::from([(ticket, Err(error))]);
    }
    let shared = Arc::new(error);
    let each = |_| match &*shared {
        EngineError::InstanceNotFound(name) => EngineError::InstanceNotFound(name.clone()),
        _ => EngineError::BatchFailed(shared.clone()),
    };
    tickets.into_iter().map(|t| (t, Err(each(t)))).collect()
}
