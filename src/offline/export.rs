//! `imgsearch export`: an instance's records as `increment.meta` ADD lines, the format
//! DumpMeta writes (the same line writer), beside a running server.
//!
//! The store is opened read-only: the export is the instance as of that moment. The
//! lines name each picture by its PicName; `imgsearch import` of the file re-adds them
//! when the pictures sit at those paths beside it. To a file, the lines go to
//! `FILE.tmp`, synced, then renamed: a file with the final name is always whole.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::{find_instance, open_store_read_only, OfflineError, Result};
use crate::engine::meta_line::to_line;
use crate::store::StoreError;

/// Writes the records of instance `name` to `output` (standard output when `None`);
/// returns how many were written.
pub fn export(data_dir: &Path, name: &str, output: Option<&Path>) -> Result<u64> {
    match output {
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let count = export_to(data_dir, name, &mut out)?;
            out.flush()
                .map_err(|e| OfflineError::io(Path::new("<stdout>"), e))?;
            Ok(count)
        }
        Some(path) => {
            let mut tmp_name = path.as_os_str().to_owned();
            tmp_name.push(".tmp");
            let tmp = Path::new(&tmp_name);
            let io = |e| OfflineError::io(path, e);
            let mut out = BufWriter::new(File::create(tmp).map_err(|e| OfflineError::io(tmp, e))?);
            let written = export_to(data_dir, name, &mut out).and_then(|count| {
                let file = out.into_inner().map_err(|e| io(e.into_error()))?;
                file.sync_all().map_err(io)?;
                std::fs::rename(tmp, path).map_err(io)?;
                Ok(count)
            });
            if written.is_err() {
                // Best effort: the error being reported matters more than the leftover.
                let _ = std::fs::remove_file(tmp);
            }
            written
        }
    }
}

/// Writes the records of instance `name`, one line each, to `out`.
pub fn export_to(data_dir: &Path, name: &str, out: &mut impl Write) -> Result<u64> {
    let store = open_store_read_only(data_dir)?;
    let meta = find_instance(&store, data_dir, name)?;
    let mut count = 0u64;
    let mut failed = None;
    let walked = store.for_each_record(meta.id, |_, record| {
        let line = to_line(&record);
        out.write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| {
                // The store's walk stops only on its own error: keep the cause aside.
                let stop = StoreError::Corrupt(e.to_string());
                failed = Some(e);
                stop
            })?;
        count += 1;
        Ok(())
    });
    match (walked, failed) {
        (_, Some(e)) => Err(OfflineError::io(Path::new("<output>"), e)),
        (Err(e), None) => Err(e.into()),
        (Ok(()), None) => Ok(count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, InstanceSpec};

    #[test]
    fn an_empty_instance_exports_nothing_and_unknown_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        {
            let engine = Engine::open(dir.path()).unwrap();
            engine
                .create_instance(&InstanceSpec::product("shop"))
                .unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(export_to(dir.path(), "shop", &mut out).unwrap(), 0);
        assert!(out.is_empty());
        let e = export_to(dir.path(), "nope", &mut out).unwrap_err();
        assert!(matches!(e, OfflineError::InstanceNotFound { .. }), "{e}");
        let file = dir.path().join("out.meta");
        assert_eq!(export(dir.path(), "shop", Some(&file)).unwrap(), 0);
        assert!(file.exists() && !dir.path().join("out.meta.tmp").exists());
    }

    #[test]
    fn a_missing_data_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = export_to(&dir.path().join("none"), "x", &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        // A directory that exists but holds no store is named as such.
        let e = export_to(dir.path(), "x", &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("no imgsearch data directory"), "{e}");
    }
}
