//! Removing the index folders of deleted instances, durably.
//!
//! An instance's deletion commits in the store first ([`crate::store::Store::delete_instance`]);
//! its folder under `instances/` goes afterwards. A crash in between (or halfway through
//! the removal) leaves a folder that no stored instance names: [`remove_orphan_folders`]
//! removes those when the engine opens, so no half-deleted instance survives a restart.

use std::collections::HashSet;
use std::path::Path;

use super::{EngineError, Result};
use crate::index::{IndexError, MANIFEST_FILE};

/// Removes an index folder and syncs its parent so the removal itself is durable; a
/// folder already gone is fine.
pub(super) fn remove_folder(dir: &Path) -> Result<()> {
    let io = |source: std::io::Error| {
        EngineError::Index(IndexError::Io {
            path: dir.display().to_string(),
            source,
        })
    };
    // The manifest first: a folder without one is plainly not an index any more.
    match std::fs::remove_file(dir.join(MANIFEST_FILE)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    crate::fault::point("instance_delete.folder_half_removed");
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    if let Some(parent) = dir.parent() {
        std::fs::File::open(parent)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

/// Removes every folder under `instances_dir` that no stored instance names (what a
/// deletion cut short by a crash leaves); returns how many. Only folders whose name
/// `is_instance_name` accepts are considered, so nothing else an operator put there goes.
pub(super) fn remove_orphan_folders<'a>(
    instances_dir: &Path,
    stored: impl Iterator<Item = &'a str>,
    is_instance_name: impl Fn(&str) -> bool,
) -> Result<usize> {
    let stored: HashSet<&str> = stored.collect();
    let entries = match std::fs::read_dir(instances_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(EngineError::Index(IndexError::Io {
                path: instances_dir.display().to_string(),
                source,
            }))
        }
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || stored.contains(name.as_str()) || !is_instance_name(&name) {
            continue;
        }
        tracing::warn!(instance = %name, "removing the index folder of a deleted instance");
        remove_folder(&entry.path())?;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, InstanceSpec, INSTANCES_DIR};
    use crate::store::Record;

    fn record(product: &str) -> Record {
        Record {
            product_id: product.into(),
            pic_name: "1.jpg".into(),
            ..Record::default()
        }
    }

    fn unit(dim: usize, hot: usize) -> Vec<f32> {
        let mut v = vec![0.0; dim];
        v[hot % dim] = 1.0;
        v
    }

    #[test]
    fn a_deleted_instance_refuses_writes_and_is_gone_after_reopening() {
        crate::index::kernels::init();
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        assert!(
            engine.instances().is_empty(),
            "open does not seed demoinstance"
        );
        let a = engine.create_instance(&InstanceSpec::product("a")).unwrap();
        let b = engine.create_instance(&InstanceSpec::product("b")).unwrap();
        let dim = a.meta().dimension as usize;
        for i in 0..3 {
            a.add_vector(&record(&format!("p{i}")), &unit(dim, i))
                .unwrap();
            b.add_vector(&record(&format!("p{i}")), &unit(dim, i))
                .unwrap();
        }
        engine.delete_instance("a").unwrap();
        assert!(!dir.path().join(INSTANCES_DIR).join("a").exists());
        // A writer still holding the instance (it looked it up before the deletion).
        let late = a.add_vector(&record("late"), &unit(dim, 5));
        assert!(
            matches!(late, Err(EngineError::InstanceNotFound(_))),
            "{late:?}"
        );
        assert!(matches!(
            a.delete("p1", None),
            Err(EngineError::InstanceNotFound(_))
        ));
        assert!(matches!(a.rebuild(), Err(EngineError::InstanceNotFound(_))));
        assert!(matches!(
            engine.instance("a"),
            Err(EngineError::InstanceNotFound(_))
        ));
        assert!(matches!(
            engine.delete_instance("a"),
            Err(EngineError::InstanceNotFound(_))
        ));
        // The neighbour is whole and keeps taking writes.
        b.add_vector(&record("p9"), &unit(dim, 9)).unwrap();
        assert_eq!(b.info().total_count, 4);
        drop((a, b, engine));

        let engine = Engine::open(dir.path()).unwrap();
        let names: Vec<String> = engine
            .instances()
            .iter()
            .map(|i| i.meta().name.clone())
            .collect();
        assert_eq!(names, vec!["b".to_string()]);
        assert_eq!(engine.instance("b").unwrap().info().total_count, 4);
        let again = engine.create_instance(&InstanceSpec::product("a")).unwrap();
        assert_eq!(
            again.info().total_count,
            0,
            "a new instance of the old name starts empty"
        );
        assert_eq!(again.snapshot().rows(), 0);
        engine.ensure_default_instance().unwrap();
        assert!(
            engine.instance(crate::engine::DEFAULT_INSTANCE).is_err(),
            "only seeded when empty"
        );
    }

    #[test]
    fn a_folder_left_by_a_crash_after_the_commit_goes_at_open() {
        crate::index::kernels::init();
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join(INSTANCES_DIR).join("gone");
        {
            let engine = Engine::open(dir.path()).unwrap();
            let gone = engine
                .create_instance(&InstanceSpec::product("gone"))
                .unwrap();
            let dim = gone.meta().dimension as usize;
            gone.add_vector(&record("p"), &unit(dim, 0)).unwrap();
            // The commit alone, as a crash right after it leaves things.
            gone.delete_from_store().unwrap();
        }
        assert!(folder.join(MANIFEST_FILE).exists());
        let engine = Engine::open(dir.path()).unwrap();
        assert!(engine.instances().is_empty());
        assert!(!folder.exists(), "the orphan folder was removed");
        engine.ensure_default_instance().unwrap();
        assert_eq!(
            engine.instances().len(),
            1,
            "an empty directory is seeded on request"
        );
    }

    #[test]
    fn only_folders_of_unknown_instances_go() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in ["kept", "gone", "also-gone"] {
            std::fs::create_dir_all(root.join(name)).unwrap();
            std::fs::write(root.join(name).join(MANIFEST_FILE), "1").unwrap();
        }
        std::fs::create_dir_all(root.join("not an instance")).unwrap();
        std::fs::write(root.join("file"), "x").unwrap();
        let shaped = |name: &str| !name.contains(' ');
        let removed = remove_orphan_folders(root, ["kept"].into_iter(), shaped).unwrap();
        assert_eq!(removed, 2);
        assert!(root.join("kept").join(MANIFEST_FILE).exists());
        assert!(!root.join("gone").exists() && !root.join("also-gone").exists());
        assert!(root.join("not an instance").exists() && root.join("file").exists());
        assert_eq!(
            remove_orphan_folders(&root.join("missing"), [].into_iter(), shaped).unwrap(),
            0
        );
        remove_folder(&root.join("gone")).unwrap();
    }
}
