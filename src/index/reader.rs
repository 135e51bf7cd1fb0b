//! Reading a vector file without ever writing to it: offline checks beside a running
//! server.
//!
//! [`super::VectorFile::open`] is the writer's: it cuts bytes past the last whole row,
//! which must never happen while a server appends to the same file. The reader opens the
//! file read-only and leaves anything past the header's row count alone (a server may be
//! writing it at that moment).
//!
//! Rows are read with positioned reads rather than through a map: should the server roll
//! back an append (its store batch failed) while we read, a map of bytes the file no
//! longer has would fault the process, whereas a read only comes back short.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::vector_file::{Header, HEADER_BYTES, HEADER_FIELDS};
use super::{IndexError, Result};

/// Bytes read per call when scanning rows.
const READ_CHUNK_BYTES: usize = 4 << 20;
/// Header reads tried before a bad header counts as damage: a header being rewritten by
/// the server at the very moment it is read can look torn.
const HEADER_ATTEMPTS: u32 = 3;

/// What a full pass over a file's rows found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowCheck {
    /// Rows read (the header's count).
    pub rows: u64,
    /// Whether the CRC of the rows matches the header's.
    pub crc_matches: bool,
    /// The first row whose doc id is not above the previous row's, if any.
    pub first_out_of_order: Option<u64>,
}

/// A vector file opened for reading only.
pub struct VectorFileReader {
    file: File,
    path: PathBuf,
    header: Header,
    len: u64,
}

impl VectorFileReader {
    /// Opens a file read-only and checks its header (magic, format, header CRC) and that
    /// it holds every row the header counts.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| IndexError::io(path, e))?;
        let mut attempt = 1;
        let header = loop {
            let mut b = [0u8; HEADER_FIELDS];
            let decoded = file
                .read_exact_at(&mut b, 0)
                .map_err(|_| IndexError::corrupt(path, "header is truncated"))
                .and_then(|()| Header::decode(&b, path));
            match decoded {
                Ok(header) => break header,
                Err(e) if attempt >= HEADER_ATTEMPTS => return Err(e),
                Err(_) => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        let len = file.metadata().map_err(|e| IndexError::io(path, e))?.len();
        let reader = VectorFileReader {
            file,
            path: path.to_path_buf(),
            header,
            len,
        };
        let want = reader.end_offset();
        if len < want {
            return Err(IndexError::corrupt(
                path,
                format!("{len} bytes, the header's {} rows need {want}", header.rows),
            ));
        }
        Ok(reader)
    }

    /// The header as read at open.
    pub fn header(&self) -> Header {
        self.header
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes past the last row the header counts, when opened: a row being appended, or
    /// the torn tail of a crash (the writer cuts it at its next open).
    pub fn trailing_bytes(&self) -> u64 {
        self.len.saturating_sub(self.end_offset())
    }

    fn end_offset(&self) -> u64 {
        HEADER_BYTES as u64 + self.header.rows * self.header.row_bytes() as u64
    }

    /// Reads every row the header counts, calling `visit(row, doc, vector_bytes)` with
    /// the vector as stored (f32 little-endian), and checks the rows' CRC and doc order.
    /// Damage is reported in the [`RowCheck`]; `Err` only when the file cannot be read.
    pub fn scan(&self, mut visit: impl FnMut(u64, u64, &[u8])) -> Result<RowCheck> {
        let row_bytes = self.header.row_bytes();
        let rows_per_chunk = (READ_CHUNK_BYTES / row_bytes).max(1) as u64;
        let mut buf = Vec::new();
        let mut hasher = crc32fast::Hasher::new();
        let mut last_doc: Option<u64> = None;
        let mut first_out_of_order = None;
        let mut row = 0u64;
        while row < self.header.rows {
            let n = rows_per_chunk.min(self.header.rows - row);
            buf.resize(n as usize * row_bytes, 0);
            let offset = HEADER_BYTES as u64 + row * row_bytes as u64;
            self.file.read_exact_at(&mut buf, offset).map_err(|e| {
                IndexError::io(
                    &self.path,
                    std::io::Error::new(e.kind(), format!("rows from {row}: {e}")),
                )
            })?;
            hasher.update(&buf);
            for bytes in buf.chunks_exact(row_bytes) {
                let (doc, vector) = bytes.split_at(8);
                let doc = u64::from_le_bytes(doc.try_into().unwrap_or([0xff; 8]));
                if first_out_of_order.is_none() && last_doc.is_some_and(|last| doc <= last) {
                    first_out_of_order = Some(row);
                }
                last_doc = Some(doc);
                visit(row, doc, vector);
                row += 1;
            }
        }
        Ok(RowCheck {
            rows: self.header.rows,
            crc_matches: hasher.finalize() == self.header.rows_crc,
            first_out_of_order,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::VectorFile;

    fn file_with_rows(path: &Path, docs: &[u64]) {
        let mut f = VectorFile::create(path, 2, 1).unwrap();
        let rows: Vec<(u64, [f32; 2])> = docs.iter().map(|d| (*d, [*d as f32, 1.0])).collect();
        f.append(rows.iter().map(|(d, v)| (*d, &v[..])), None)
            .unwrap();
    }

    #[test]
    fn rows_are_read_and_checked_without_touching_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.vec");
        file_with_rows(&path, &[1, 4, 9]);
        // A row being appended: past the header's count, left alone.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, &[7u8; 5]).unwrap();
        drop(f);
        let before = std::fs::read(&path).unwrap();
        let reader = VectorFileReader::open(&path).unwrap();
        assert_eq!(reader.trailing_bytes(), 5);
        let mut seen = Vec::new();
        let check = reader
            .scan(|row, doc, v| {
                let first = f32::from_le_bytes(v[0..4].try_into().unwrap());
                seen.push((row, doc, first));
            })
            .unwrap();
        assert_eq!(seen, [(0, 1, 1.0), (1, 4, 4.0), (2, 9, 9.0)]);
        assert_eq!(
            check,
            RowCheck {
                rows: 3,
                crc_matches: true,
                first_out_of_order: None
            }
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_flipped_byte_fails_the_crc() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.vec");
        file_with_rows(&path, &[1, 2]);
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0x55], HEADER_BYTES as u64 + 10).unwrap();
        drop(f);
        let check = VectorFileReader::open(&path)
            .unwrap()
            .scan(|_, _, _| {})
            .unwrap();
        assert!(!check.crc_matches);
    }

    #[test]
    fn damaged_headers_and_short_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.vec");
        std::fs::write(&path, vec![3u8; 5000]).unwrap();
        assert!(matches!(
            VectorFileReader::open(&path),
            Err(IndexError::Corrupt { .. })
        ));
        file_with_rows(&path.with_extension("b"), &[1, 2]);
        let short = path.with_extension("b");
        let len = std::fs::metadata(&short).unwrap().len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&short)
            .unwrap();
        f.set_len(len - 1).unwrap();
        let e = VectorFileReader::open(&short).err().unwrap().to_string();
        assert!(e.contains("need"), "{e}");
    }
}
