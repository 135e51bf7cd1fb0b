//! [`Engine::snapshot`]: taking a snapshot beside running writes (the steps are in the
//! module header of `snapshot/mod.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::description::{list_files, Description, InstanceEntry};
use super::{sync_dir, Result, SnapshotError, SnapshotInfo};
use crate::engine::clock::now_ms;
use crate::engine::instance::reconcile::write_generation_from_store;
use crate::engine::{Engine, INSTANCES_DIR, STORE_DIR};
use crate::index::{Manifest, VectorFileReader};
use crate::store::{InstanceMeta, Store, StoreMode};

/// Folder of the data directory that holds snapshots taken without `--output`.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// `<data_dir>/snapshots/<UTC time, e.g. 20261204T203015Z>`: where a snapshot goes by
/// default (never looked at by the engine, which only opens `store/` and the instances
/// the store names under `instances/`).
pub fn default_snapshot_path(data_dir: &Path) -> PathBuf {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let stamp = now
        .format(&format)
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    data_dir.join(SNAPSHOTS_DIR).join(stamp)
}

impl Engine {
    /// Writes a consistent copy of the data directory into the new folder `dest` while
    /// writes go on: every write acknowledged before the call is in it. Writes of an
    /// instance wait only while its vector file is pinned (reported as `writes_held`).
    pub fn snapshot(&self, dest: &Path) -> Result<SnapshotInfo> {
        let started = Instant::now();
        let created_ms = now_ms();
        if dest.exists() {
            return Err(SnapshotError::Exists(dest.to_path_buf()));
        }
        let partial = partial_path(dest)?;
        if let Some(parent) = partial.parent() {
            super::remove_dead_leftovers(parent, ".partial-");
        }
        std::fs::create_dir_all(&partial).map_err(|e| SnapshotError::io(&partial, e))?;
        let taken = self.snapshot_into(&partial, created_ms);
        let (description, writes_held) = match taken {
            Ok(done) => done,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&partial);
                return Err(e);
            }
        };
        crate::fault::point("snapshot.before_rename");
        if let Err(e) = std::fs::rename(&partial, dest) {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(SnapshotError::io(dest, e));
        }
        if let Some(parent) = dest.parent() {
            sync_dir(parent)?;
        }
        let info = SnapshotInfo {
            path: dest.to_path_buf(),
            description,
            writes_held,
            took: started.elapsed(),
        };
        tracing::info!(
            path = %dest.display(),
            instances = info.description.instances.len(),
            files = info.description.files.len(),
            bytes = info.bytes(),
            writes_held_us = writes_held.as_micros() as u64,
            ms = info.took.as_millis() as u64,
            "snapshot written"
        );
        Ok(info)
    }

    /// The steps of [`Engine::snapshot`] inside the partial folder; returns the
    /// description written and the longest hold of an instance's writes.
    fn snapshot_into(&self, dir: &Path, created_ms: i64) -> Result<(Description, Duration)> {
        let before: HashMap<String, u64> = self
            .instances()
            .iter()
            .map(|i| (i.meta().name.clone(), i.snapshot().generation()))
            .collect();
        let store_dir = dir.join(STORE_DIR);
        self.store().checkpoint(&store_dir)?;
        crate::fault::point("snapshot.after_checkpoint");
        let checkpoint = Store::open(&store_dir, StoreMode::ReadOnly)?;
        let mut held = Duration::ZERO;
        let mut instances = Vec::new();
        for meta in checkpoint.instances()? {
            let index_dir = dir.join(INSTANCES_DIR).join(&meta.name);
            let copied = self.copy_generation(&meta, before.get(&meta.name), &index_dir, &mut held);
            if !copied {
                let projection = crate::engine::instance::whitening::stored(&checkpoint, &meta)?;
                write_generation_from_store(&checkpoint, &meta, &index_dir, &projection)?;
            }
            let (generation, rows) = written_generation(&index_dir)?;
            let mut pictures = 0u64;
            checkpoint.for_each_record(meta.id, |_, _| {
                pictures += 1;
                Ok(())
            })?;
            instances.push(InstanceEntry {
                name: meta.name.clone(),
                pictures,
                generation,
                rows,
                copied,
            });
        }
        drop(checkpoint);
        let description = Description {
            created_ms,
            created: rfc3339(created_ms),
            source: std::path::absolute(self.data_dir())
                .unwrap_or_else(|_| self.data_dir().to_path_buf())
                .display()
                .to_string(),
            instances,
            files: list_files(dir)?,
        };
        description.write(dir)?;
        Ok((description, held))
    }

    /// Copies the instance's current vector file into `index_dir` when its generation is
    /// still `generation_before` (the one current before the checkpoint); false when it
    /// cannot be used and the generation must be written from the checkpoint instead.
    fn copy_generation(
        &self,
        meta: &InstanceMeta,
        generation_before: Option<&u64>,
        index_dir: &Path,
        held: &mut Duration,
    ) -> bool {
        let (Ok(instance), Some(&generation)) = (self.instance(&meta.name), generation_before)
        else {
            return false;
        };
        let pinned = match instance.pin_generation() {
            Ok((pinned, wait)) => {
                *held = (*held).max(wait);
                pinned
            }
            Err(e) => {
                tracing::warn!(instance = %meta.name, error = %e, "snapshot: cannot pin the vector file; writing it from the store");
                return false;
            }
        };
        if pinned.header().generation != generation {
            tracing::info!(instance = %meta.name, "snapshot: the generation changed during the checkpoint; writing it from the store");
            return false;
        }
        match pinned.copy_into(index_dir) {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(instance = %meta.name, error = %e, "snapshot: vector file copy failed; writing it from the store");
                let _ = std::fs::remove_dir_all(index_dir);
                false
            }
        }
    }
}

/// Generation and row count of the vector file the `MANIFEST` of `dir` names.
fn written_generation(dir: &Path) -> Result<(u64, u64)> {
    let manifest = Manifest::read(dir)?.ok_or_else(|| SnapshotError::Damaged {
        path: dir.to_path_buf(),
        reason: "no MANIFEST written".into(),
    })?;
    let header = VectorFileReader::open(&manifest.vector_path(dir))?.header();
    Ok((manifest.generation, header.rows))
}

/// A hidden sibling of `dest` to write into, unique to this process and call.
fn partial_path(dest: &Path) -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let name = dest
        .file_name()
        .ok_or_else(|| SnapshotError::Exists(dest.to_path_buf()))?
        .to_string_lossy();
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    Ok(dest.with_file_name(format!(".{name}.partial-{}-{n}", std::process::id())))
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::generic_instance;
    use crate::store::Record;

    fn add(instance: &crate::engine::Instance, i: u32) {
        let record = Record {
            product_id: format!("p{i}"),
            pic_name: format!("{i}.jpg"),
            ..Record::default()
        };
        let mut v = vec![0.0f32; instance.meta().dimension as usize];
        let at = i as usize % v.len();
        v[at] = 1.0;
        instance.add_vector(&record, &v).unwrap();
    }

    #[test]
    fn snapshot_copies_store_and_vector_file() {
        let (data, engine, instance) = generic_instance("shop");
        for i in 0..20 {
            add(&instance, i);
        }
        instance.delete("p3", None).unwrap();
        let dest = data.path().join(SNAPSHOTS_DIR).join("one");
        let info = engine.snapshot(&dest).unwrap();
        assert!(info.writes_held < Duration::from_secs(1));
        let shop = info
            .description
            .instances
            .iter()
            .find(|e| e.name == "shop")
            .unwrap();
        assert_eq!((shop.pictures, shop.rows, shop.copied), (19, 20, true));
        assert_eq!(Description::read(&dest).unwrap(), info.description);
        info.description.check_files(&dest).unwrap();
        assert!(!std::fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains("partial")));
        assert!(matches!(
            engine.snapshot(&dest),
            Err(SnapshotError::Exists(_))
        ));
        // The snapshot folder inside the data directory does not disturb a reopening.
        drop((engine, instance));
        let engine = Engine::open(data.path()).unwrap();
        assert_eq!(engine.instance("shop").unwrap().info().total_count, 19);
    }

    #[test]
    fn a_changed_generation_is_written_from_the_checkpoint() {
        let (data, engine, instance) = generic_instance("shop");
        for i in 0..5 {
            add(&instance, i);
        }
        let mut held = Duration::ZERO;
        let meta = instance.meta().clone();
        let dir = data.path().join("copy");
        // The generation noted before the checkpoint is not the current one.
        let stale = instance.snapshot().generation() + 7;
        assert!(!engine.copy_generation(&meta, Some(&stale), &dir, &mut held));
        assert!(!dir.exists());
        let current = instance.snapshot().generation();
        assert!(engine.copy_generation(&meta, Some(&current), &dir, &mut held));
        assert_eq!(written_generation(&dir).unwrap(), (current, 5));
    }

    #[test]
    fn a_vector_file_that_cannot_be_copied_is_written_from_the_checkpoint() {
        let (data, engine, instance) = generic_instance("shop");
        for i in 0..8 {
            add(&instance, i);
        }
        instance.delete("p2", None).unwrap();
        // The server keeps its map; the file is gone from the folder.
        let index_dir = data.path().join(INSTANCES_DIR).join("shop");
        let generation = instance.snapshot().generation();
        std::fs::remove_file(index_dir.join(Manifest::file_name(generation))).unwrap();
        let dest = data.path().join("snap");
        let info = engine.snapshot(&dest).unwrap();
        let shop = &info.description.instances[0];
        assert_eq!((shop.pictures, shop.rows, shop.copied), (7, 7, false));
        let reports = crate::offline::verify(&dest, None).unwrap();
        assert!(reports.iter().all(|r| r.ok()), "{reports:?}");
    }

    /// Writers replace and add pictures, compacting often, while snapshots are taken:
    /// every picture acknowledged before a snapshot started is in it and each one
    /// passes `verify`, whether its file was copied or written from the checkpoint.
    #[test]
    fn snapshots_under_writes_and_compactions_hold_every_acknowledged_picture() {
        use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
        use std::sync::Arc;
        let (data, engine, instance) = generic_instance("shop");
        instance.set_compaction(crate::engine::CompactionPolicy {
            dead_share: 0.05,
            min_dead_rows: 4,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU32::new(0));
        let writer = {
            let (instance, stop, acked) = (instance.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    add(&instance, i);
                    acked.store(i + 1, Ordering::SeqCst);
                    // Every third write replaces an older picture: dead rows, compactions.
                    if i % 3 == 2 {
                        add(&instance, i / 2);
                    }
                    i += 1;
                }
            })
        };
        let mut copied = 0usize;
        for round in 0..6 {
            std::thread::sleep(Duration::from_millis(30));
            let before = acked.load(Ordering::SeqCst);
            let dest = data.path().join(format!("snap-{round}"));
            let info = engine.snapshot(&dest).unwrap();
            let shop = &info.description.instances[0];
            assert!(shop.pictures >= before as u64, "{shop:?} < {before}");
            copied += usize::from(shop.copied);
            let reports = crate::offline::verify(&dest, None).unwrap();
            assert!(reports.iter().all(|r| r.ok()), "{reports:?}");
            let store = Store::open(&dest.join(STORE_DIR), StoreMode::ReadOnly).unwrap();
            let meta = store.instances().unwrap().remove(0);
            for i in 0..before {
                let doc = store.lookup(meta.id, &format!("p{i}"), &format!("{i}.jpg"));
                assert!(doc.unwrap().is_some(), "p{i} missing from snapshot {round}");
            }
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        // Copied or written from the checkpoint depends on the timing of compactions.
        eprintln!("{copied} of 6 snapshots copied the vector file");
        assert!(instance.snapshot().generation() > 1, "no compaction ran");
    }
}
