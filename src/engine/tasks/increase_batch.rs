//! IncreaseInstance's batches: consecutive ADD lines are prepared in parallel (read,
//! decode, extract) and committed together through the task's write sink (on one node
//! [`Instance::commit_batch`]: one row sync and one synced store batch for up to
//! [`BATCH_LINES`] pictures; on a cluster node one logged entry each).
//!
//! A DELETE line, and the end of the file, commit the pending ADDs first, so the lines
//! apply in file order; a name repeated inside a batch keeps its later line, as a
//! line-by-line application would. Outcomes come back in line order, so the list of
//! failed lines stays sorted.

use rayon::prelude::*;

use super::buckets::{resolve_picture, MetaSource};
use super::increase_line::{read_picture, Done, LineFailed};
use super::meta_line::AddLine;
use super::write_sink::{KeyedPicture, LineWrites};
use crate::engine::{AddPicture, Instance, PreparedPicture};

/// ADD lines committed together at most.
pub(super) const BATCH_LINES: usize = 256;

/// One line's outcome, by line number.
pub(super) type Settled = (u64, Result<Done, LineFailed>);

/// Lines read but not yet reported: ADDs waiting for their commit, and lines already
/// settled after the first waiting ADD (held back to keep the report in line order).
#[derive(Default)]
pub(super) struct Pending {
    adds: Vec<(u64, AddLine)>,
    settled: Vec<Settled>,
}

impl Pending {
    /// Queues an ADD line; true when the batch is full and should be flushed.
    pub(super) fn add(&mut self, line: u64, add: AddLine) -> bool {
        self.adds.push((line, add));
        self.adds.len() >= BATCH_LINES
    }

    /// Holds a settled line back; true when so many are held that they should be flushed.
    pub(super) fn settle(&mut self, line: u64, outcome: Result<Done, LineFailed>) -> bool {
        self.settled.push((line, outcome));
        self.settled.len() >= BATCH_LINES
    }

    /// Prepares and commits the pending ADDs as one batch; every pending line's outcome,
    /// in line order.
    pub(super) fn flush(
        &mut self,
        instance: &Instance,
        source: &MetaSource,
        writes: &LineWrites,
    ) -> Vec<Settled> {
        let mut settled = std::mem::take(&mut self.settled);
        let prepared: Vec<(u64, Result<PreparedPicture, LineFailed>)> =
            std::mem::take(&mut self.adds)
                .into_par_iter()
                .map(|(line, add)| (line, prepare(instance, source, add)))
                .collect();
        let mut lines = Vec::new();
        let mut pictures = Vec::new();
        for (line, outcome) in prepared {
            match outcome {
                Ok(picture) => {
                    lines.push(line);
                    let key = writes.key(line);
                    pictures.push(KeyedPicture { key, picture });
                }
                Err(reason) => settled.push((line, Err(reason))),
            }
        }
        if !pictures.is_empty() {
            match writes.sink.add(instance, pictures, None) {
                Ok(outcomes) => settled.extend(
                    lines
                        .into_iter()
                        .zip(outcomes)
                        .map(|(line, o)| (line, o.map(|_| Done::Added).map_err(LineFailed::from))),
                ),
                Err(e) => {
                    let shared = std::sync::Arc::new(e);
                    settled.extend(lines.into_iter().map(|line| {
                        let e = crate::engine::EngineError::BatchFailed(shared.clone());
                        (line, Err(LineFailed::from(e)))
                    }));
                }
            }
        }
        settled.sort_by_key(|(line, _)| *line);
        settled
    }
}

/// Reads and analyses the picture of an ADD line.
fn prepare(
    instance: &Instance,
    source: &MetaSource,
    add: AddLine,
) -> Result<PreparedPicture, LineFailed> {
    let path = resolve_picture(source, &add.pic_name)?;
    let picture = read_picture(&path).map_err(|source| LineFailed::Unreadable {
        pic_name: add.pic_name.clone(),
        source,
    })?;
    let (picture, _) = instance.prepare(AddPicture {
        product_id: add.product_id,
        pic_name: add.pic_name,
        picture,
        category_id: add.category_id,
        crop: add.crop,
        region: add.region,
        attributes: add.attributes,
    })?;
    Ok(picture)
}
