//! The offline import's ADDs: pictures are read and prepared (decoded, extracted) on the
//! worker pool while one committer stores what is ready, up to [`MAX_BATCH`] pictures
//! per commit, through [`Instance::commit_batch`]: one row sync and one store sync per
//! batch instead of two per picture, and the syncs overlap the extraction of the next
//! pictures.
//!
//! A run's names are distinct ([`super::order`]), so the commit order inside it does not
//! matter; the run ends when its last picture is committed, before the next step starts.

use std::sync::mpsc::{sync_channel, Receiver};

use rayon::prelude::*;

use super::progress::Progress;
use super::read_picture_counted;
use super::summary::{reason_of, Tally};
use crate::engine::{AddPicture, EngineError, Instance, PreparedPicture, Stored};
use crate::offline::sources::{Action, Entry};

/// Pictures one commit takes at most.
pub(super) const MAX_BATCH: usize = 256;

/// A prepared picture with the entry it came from.
type Ready<'a> = (usize, &'a Entry, PreparedPicture);

/// Prepares the run's pictures on `pool` and commits them in batches, counting each
/// entry's outcome and moving the progress bar as entries are settled.
pub(super) fn add_run(
    instance: &Instance,
    run: &[(usize, &Entry)],
    pool: &rayon::ThreadPool,
    tally: &Tally,
    progress: &Progress,
) {
    // Bounded: workers wait rather than pile up prepared pictures past two batches.
    let (sender, receiver) = sync_channel::<Ready<'_>>(2 * MAX_BATCH);
    std::thread::scope(|scope| {
        let committer = std::thread::Builder::new()
            .name("import-commit".into())
            .spawn_scoped(scope, || commit_ready(instance, receiver, tally, progress))
            .expect("cannot start the import's commit thread");
        pool.install(|| {
            run.par_iter().for_each_with(sender, |sender, (i, entry)| {
                match prepare_entry(instance, *i, entry, tally) {
                    // The committer only stops once every sender is gone.
                    Some(picture) => sender.send((*i, entry, picture)).unwrap_or(()),
                    None => progress.inc(),
                }
            })
        });
        committer
            .join()
            .expect("the import's commit thread panicked");
    });
}

/// Commits prepared pictures until every worker is done: each commit takes what is
/// ready when the previous one ends.
fn commit_ready(
    instance: &Instance,
    ready: Receiver<Ready<'_>>,
    tally: &Tally,
    progress: &Progress,
) {
    while let Ok(first) = ready.recv() {
        let mut batch = vec![first];
        batch.extend(ready.try_iter().take(MAX_BATCH - 1));
        let (places, pictures): (Vec<(usize, &Entry)>, Vec<PreparedPicture>) =
            batch.into_iter().map(|(i, e, p)| ((i, e), p)).unzip();
        match instance.commit_batch(pictures, None) {
            Ok(outcomes) => {
                for ((i, entry), outcome) in places.into_iter().zip(outcomes) {
                    count(tally, i, entry, outcome);
                    progress.inc();
                }
            }
            Err(e) => {
                for (i, entry) in places {
                    tally.failed(i, &entry.location, reason_of(&e), &e.to_string());
                    progress.inc();
                }
            }
        }
    }
}

/// Counts one committed (or refused) picture.
fn count(tally: &Tally, index: usize, entry: &Entry, outcome: Result<Stored, EngineError>) {
    match outcome {
        Ok(stored) => tally.added(stored == Stored::Replaced),
        Err(e) => tally.failed(index, &entry.location, reason_of(&e), &e.to_string()),
    }
}

/// Reads and analyses one entry's picture; `None` with the failure counted.
fn prepare_entry(
    instance: &Instance,
    index: usize,
    entry: &Entry,
    tally: &Tally,
) -> Option<PreparedPicture> {
    let Action::Add { file, line } = &entry.action else {
        return None;
    };
    let picture = read_picture_counted(file, index, entry, tally)?;
    let prepared = instance.prepare(AddPicture {
        product_id: line.product_id.clone(),
        pic_name: line.pic_name.clone(),
        picture,
        category_id: line.category_id,
        crop: line.crop,
        region: line.region,
        attributes: line.attributes.clone(),
    });
    match prepared {
        Ok((picture, _)) => Some(picture),
        Err(e) => {
            tally.failed(index, &entry.location, reason_of(&e), &e.to_string());
            None
        }
    }
}
