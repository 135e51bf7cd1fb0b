//! The on-disk vector file of one generation.
//!
//! ```text
//! offset  size  field (little-endian)
//! 0       8     magic "IMGSVEC\0"
//! 8       4     format version (1)
//! 12      4     element type (0 = f32)
//! 16      4     dimension
//! 20      4     row bytes (8 + 4 * dimension)
//! 24      8     generation
//! 32      8     row count
//! 40      4     CRC-32 of the row bytes [0, row count)
//! 44      4     CRC-32 of header bytes 0..44
//! 48..4096      zero (rows start on a page boundary)
//! 4096 + i * row bytes: row i = doc id u64, then dimension f32
//! ```
//!
//! Appending writes the row past the last one, then the header with the new count and
//! running CRC, then `fdatasync`s once. After a crash the header says how many rows are
//! whole; bytes past them are cut off when the file opens, and a header whose CRC of the
//! rows does not match makes the file unusable (it is then rebuilt from the store).

use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapOptions};

use super::{IndexError, Result};

/// Bytes before the first row.
pub const HEADER_BYTES: usize = 4096;
const MAGIC: [u8; 8] = *b"IMGSVEC\0";
const FORMAT_VERSION: u32 = 1;
const ELEMENT_F32: u32 = 0;
/// Bytes of the header that hold fields (the rest of the first page is zero).
pub(super) const HEADER_FIELDS: usize = 48;

/// The decoded header of a vector file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Vector dimension.
    pub dimension: u32,
    /// Generation this file belongs to.
    pub generation: u64,
    /// Number of whole, synced rows.
    pub rows: u64,
    /// CRC-32 of the bytes of those rows.
    pub rows_crc: u32,
}

impl Header {
    /// Bytes per row: the doc id and the vector.
    pub fn row_bytes(&self) -> usize {
        8 + 4 * self.dimension as usize
    }

    pub(super) fn encode(&self) -> [u8; HEADER_FIELDS] {
        let mut b = [0u8; HEADER_FIELDS];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&ELEMENT_F32.to_le_bytes());
        b[16..20].copy_from_slice(&self.dimension.to_le_bytes());
        b[20..24].copy_from_slice(&(self.row_bytes() as u32).to_le_bytes());
        b[24..32].copy_from_slice(&self.generation.to_le_bytes());
        b[32..40].copy_from_slice(&self.rows.to_le_bytes());
        b[40..44].copy_from_slice(&self.rows_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[0..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks header bytes read from `path` (magic, checksum, format).
    pub(super) fn decode(b: &[u8], path: &Path) -> Result<Header> {
        let field = |at: usize| -> u32 {
            u32::from_le_bytes(
                b.get(at..at + 4)
                    .and_then(|s| s.try_into().ok())
                    .unwrap_or([0; 4]),
            )
        };
        let field64 = |at: usize| -> u64 {
            u64::from_le_bytes(
                b.get(at..at + 8)
                    .and_then(|s| s.try_into().ok())
                    .unwrap_or([0; 8]),
            )
        };
        if b.len() < HEADER_FIELDS || b[0..8] != MAGIC {
            return Err(IndexError::corrupt(path, "not a vector file (bad magic)"));
        }
        if crc32fast::hash(&b[0..44]) != field(44) {
            return Err(IndexError::corrupt(path, "header checksum mismatch"));
        }
        if field(8) != FORMAT_VERSION || field(12) != ELEMENT_F32 {
            return Err(IndexError::corrupt(
                path,
                format!(
                    "format {} element {} not supported by this build",
                    field(8),
                    field(12)
                ),
            ));
        }
        let header = Header {
            dimension: field(16),
            generation: field64(24),
            rows: field64(32),
            rows_crc: field(40),
        };
        if header.dimension == 0 || field(20) as usize != header.row_bytes() {
            return Err(IndexError::corrupt(
                path,
                "row size does not match dimension",
            ));
        }
        Ok(header)
    }
}

/// An open vector file: the writer's handle (readers use a map of it).
pub struct VectorFile {
    file: File,
    path: PathBuf,
    header: Header,
}

impl VectorFile {
    /// Creates an empty file of a generation (fails if it exists).
    pub fn create(path: &Path, dimension: u32, generation: u64) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| IndexError::io(path, e))?;
        let header = Header {
            dimension,
            generation,
            rows: 0,
            rows_crc: 0,
        };
        let mut page = vec![0u8; HEADER_BYTES];
        page[..HEADER_FIELDS].copy_from_slice(&header.encode());
        file.write_all_at(&page, 0)
            .map_err(|e| IndexError::io(path, e))?;
        file.sync_all().map_err(|e| IndexError::io(path, e))?;
        Ok(VectorFile {
            file,
            path: path.to_path_buf(),
            header,
        })
    }

    /// Opens a file, checks its header and cuts off bytes past the last whole row.
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| IndexError::io(path, e))?;
        let mut b = [0u8; HEADER_FIELDS];
        file.read_exact_at(&mut b, 0)
            .map_err(|_| IndexError::corrupt(path, "header is truncated"))?;
        let header = Header::decode(&b, path)?;
        let vf = VectorFile {
            file,
            path: path.to_path_buf(),
            header,
        };
        let want = vf.end_offset(header.rows);
        let len = vf
            .file
            .metadata()
            .map_err(|e| IndexError::io(path, e))?
            .len();
        if len < want {
            return Err(IndexError::corrupt(
                path,
                format!("{len} bytes, header needs {want}"),
            ));
        }
        if len > want {
            vf.file.set_len(want).map_err(|e| IndexError::io(path, e))?;
            vf.file.sync_all().map_err(|e| IndexError::io(path, e))?;
        }
        Ok(vf)
    }

    /// The current header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn end_offset(&self, rows: u64) -> u64 {
        HEADER_BYTES as u64 + rows * self.header.row_bytes() as u64
    }

    /// Encodes rows (doc, vector) into bytes, checking dimension and order.
    fn encode_rows<'a>(
        &self,
        rows: impl IntoIterator<Item = (u64, &'a [f32])>,
        last: Option<u64>,
    ) -> Result<Vec<u8>> {
        let dim = self.header.dimension as usize;
        let mut last = last;
        let mut bytes = Vec::new();
        for (doc, vector) in rows {
            if vector.len() != dim {
                return Err(IndexError::Dimension {
                    expected: dim,
                    got: vector.len(),
                });
            }
            if let Some(prev) = last {
                if doc <= prev {
                    return Err(IndexError::OutOfOrder { doc, last: prev });
                }
            }
            last = Some(doc);
            bytes.extend_from_slice(&doc.to_le_bytes());
            for v in vector {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        Ok(bytes)
    }

    /// Appends rows after the last one and syncs; returns the new header.
    /// `last_doc` is the doc of the current last row, used to keep ids increasing.
    pub fn append<'a>(
        &mut self,
        rows: impl IntoIterator<Item = (u64, &'a [f32])>,
        last_doc: Option<u64>,
    ) -> Result<Header> {
        let before = self.header;
        let written = self.append_unsealed(rows, last_doc)?;
        if written.is_empty() {
            return Ok(self.header);
        }
        let sealed = self.seal();
        if sealed.is_err() {
            self.header = before;
        }
        sealed
    }

    /// Writes rows after the last one without syncing them or writing the header (the
    /// header kept in memory counts them); returns the byte range written. For a file no
    /// manifest names yet: [`Self::seal`] makes the rows durable, once, at the end.
    pub fn append_unsealed<'a>(
        &mut self,
        rows: impl IntoIterator<Item = (u64, &'a [f32])>,
        last_doc: Option<u64>,
    ) -> Result<Range<u64>> {
        let bytes = self.encode_rows(rows, last_doc)?;
        let offset = self.end_offset(self.header.rows);
        if bytes.is_empty() {
            return Ok(offset..offset);
        }
        let added = (bytes.len() / self.header.row_bytes()) as u64;
        self.file
            .write_all_at(&bytes, offset)
            .map_err(|e| IndexError::io(&self.path, e))?;
        crate::fault::point("index.after_row_write");
        let mut hasher = crc32fast::Hasher::new_with_initial(self.header.rows_crc);
        hasher.update(&bytes);
        self.header = Header {
            rows: self.header.rows + added,
            rows_crc: hasher.finalize(),
            ..self.header
        };
        Ok(offset..offset + bytes.len() as u64)
    }

    /// Writes the header kept in memory and syncs the file; returns the header.
    pub fn seal(&mut self) -> Result<Header> {
        self.write_header(self.header)?;
        crate::fault::point("index.after_header_write");
        self.file
            .sync_data()
            .map_err(|e| IndexError::io(&self.path, e))?;
        Ok(self.header)
    }

    /// Starts writing `bytes` of the file to the disk without waiting (a hint: the
    /// final [`Self::seal`] is what makes them durable).
    pub fn start_writeback(&self, bytes: Range<u64>) {
        self.sync_range(bytes, libc::SYNC_FILE_RANGE_WRITE);
    }

    /// Waits until `bytes` of the file are on the disk (started by
    /// [`Self::start_writeback`]), so that dirty pages do not pile up behind a writer.
    pub fn await_writeback(&self, bytes: Range<u64>) {
        self.sync_range(
            bytes,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        );
    }

    fn sync_range(&self, bytes: Range<u64>, flags: libc::c_uint) {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (
            libc::off64_t::try_from(bytes.start),
            libc::off64_t::try_from(bytes.end - bytes.start),
        ) else {
            return;
        };
        // SAFETY: the descriptor is open for as long as `self.file` lives; the call reads
        // no memory of ours.
        let done = unsafe { libc::sync_file_range(self.file.as_raw_fd(), offset, len, flags) };
        if done != 0 {
            // Only pacing is lost: `seal` syncs the whole file and reports errors.
            tracing::debug!(file = %self.path.display(), error = %std::io::Error::last_os_error(), "sync_file_range failed");
        }
    }

    /// Goes back to an earlier header (undoing appends whose store batch failed).
    pub fn roll_back(&mut self, to: Header) -> Result<()> {
        self.write_header(to)?;
        self.file
            .set_len(self.end_offset(to.rows))
            .map_err(|e| IndexError::io(&self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| IndexError::io(&self.path, e))?;
        self.header = to;
        Ok(())
    }

    /// Keeps only the first `rows` rows (recomputing their CRC) and syncs.
    pub fn truncate(&mut self, rows: u64) -> Result<()> {
        if rows >= self.header.rows {
            return Ok(());
        }
        let len = (rows as usize) * self.header.row_bytes();
        let mut bytes = vec![0u8; len];
        self.file
            .read_exact_at(&mut bytes, HEADER_BYTES as u64)
            .map_err(|e| IndexError::io(&self.path, e))?;
        let header = Header {
            rows,
            rows_crc: crc32fast::hash(&bytes),
            ..self.header
        };
        self.roll_back(header)
    }

    fn write_header(&self, header: Header) -> Result<()> {
        self.file
            .write_all_at(&header.encode(), 0)
            .map_err(|e| IndexError::io(&self.path, e))
    }

    /// Maps the file read-only with room for `capacity_rows` rows, so that rows appended
    /// later are visible through the same map without remapping.
    pub fn map(&self, capacity_rows: u64) -> Result<Mmap> {
        let len = self.end_offset(capacity_rows.max(self.header.rows)) as usize;
        // SAFETY: the file is only ever appended to (or cut while no map exists, at open),
        // and readers touch only rows below a published row count, which are written.
        unsafe { MmapOptions::new().len(len).map(&self.file) }
            .map_err(|e| IndexError::io(&self.path, e))
    }

    /// Checks the CRC of all rows against the header.
    pub fn verify(&self, map: &Mmap) -> Result<()> {
        self.rows_check().run(map)
    }

    /// What [`VectorFile::verify`] checks, detached from the file so that it can run on
    /// another thread while the file is used (appended rows do not change it).
    pub fn rows_check(&self) -> RowsCheck {
        RowsCheck {
            path: self.path.clone(),
            end: self.end_offset(self.header.rows) as usize,
            crc: self.header.rows_crc,
        }
    }
}

/// The checksum of a file's rows as its header states them at open.
#[derive(Debug, Clone)]
pub struct RowsCheck {
    path: PathBuf,
    end: usize,
    crc: u32,
}

impl RowsCheck {
    /// Checks the rows in `map` (a map of the file) against the stated checksum.
    pub fn run(&self, map: &Mmap) -> Result<()> {
        let rows = map
            .get(HEADER_BYTES..self.end)
            .ok_or_else(|| IndexError::corrupt(&self.path, "map too short"))?;
        if parallel_crc(rows) != self.crc {
            return Err(IndexError::corrupt(&self.path, "row checksum mismatch"));
        }
        Ok(())
    }
}

/// Bytes per CRC task: large enough that combining costs nothing.
const CRC_CHUNK: usize = 8 << 20;

/// `crc32fast::hash(bytes)`, computed on all cores: chunk CRCs combined in order, so
/// checking a 1 GB file at open costs half as long on two cores.
fn parallel_crc(bytes: &[u8]) -> u32 {
    use rayon::prelude::*;
    bytes
        .par_chunks(CRC_CHUNK)
        .map(|chunk| {
            let mut h = crc32fast::Hasher::new();
            h.update(chunk);
            h
        })
        .reduce(crc32fast::Hasher::new, |mut a, b| {
            a.combine(&b);
            a
        })
        .finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_crc_equals_serial() {
        let bytes: Vec<u8> = (0..3 * CRC_CHUNK + 12_345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        for len in [0, 1, CRC_CHUNK, CRC_CHUNK + 1, bytes.len()] {
            assert_eq!(parallel_crc(&bytes[..len]), crc32fast::hash(&bytes[..len]));
        }
    }

    #[test]
    fn append_reopen_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.vec");
        let mut f = VectorFile::create(&path, 2, 1).unwrap();
        f.append([(0, &[1.0f32, 0.0][..]), (5, &[0.0, 1.0][..])], None)
            .unwrap();
        assert!(matches!(
            f.append([(5, &[1.0f32, 1.0][..])], Some(5)),
            Err(IndexError::OutOfOrder { .. })
        ));
        assert!(matches!(
            f.append([(6, &[1.0f32][..])], Some(5)),
            Err(IndexError::Dimension { .. })
        ));
        drop(f);
        let f = VectorFile::open(&path).unwrap();
        assert_eq!(f.header().rows, 2);
        let map = f.map(10).unwrap();
        f.verify(&map).unwrap();
    }

    #[test]
    fn torn_tail_is_cut_and_bad_rows_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.vec");
        let mut f = VectorFile::create(&path, 2, 1).unwrap();
        f.append([(0, &[1.0f32, 0.0][..])], None).unwrap();
        // A row written after the last synced header: not counted, cut at open.
        f.file.write_all_at(&[7u8; 13], f.end_offset(1)).unwrap();
        drop(f);
        let mut f = VectorFile::open(&path).unwrap();
        assert_eq!(f.header().rows, 1);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), f.end_offset(1));
        // Flip a byte of a row: the checksum no longer matches.
        f.file
            .write_all_at(&[9u8], HEADER_BYTES as u64 + 9)
            .unwrap();
        let map = f.map(1).unwrap();
        assert!(f.verify(&map).is_err());
        f.truncate(0).unwrap();
        assert_eq!(f.header().rows, 0);
    }

    #[test]
    fn garbage_header_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.vec");
        std::fs::write(&path, vec![1u8; 5000]).unwrap();
        assert!(matches!(
            VectorFile::open(&path),
            Err(IndexError::Corrupt { .. })
        ));
        std::fs::write(&path, b"short").unwrap();
        assert!(VectorFile::open(&path).is_err());
    }
}
