//! Backups: every tree of the store, record by record, in one file.
//!
//! # Format (version 1)
//! ```text
//! "HOOKHOST-BACKUP1"                                  16 bytes
//! record*: 0x01, name len (u16), tree name,
//!          key len (u32), key, value len (u32), value
//! end:     0x00, records (u64), next id (u64),
//!          sha256 of every byte before it             32 bytes
//! ```
//! Integers are big-endian. "next id" is the database's id generator, which
//! kv versions come from: a restore moves its generator past it, so versions
//! stay unique and increasing.
//!
//! # Consistency
//! [`SledStore::backup`] holds the write gate alone while it reads: every
//! transaction is either wholly in the file or not at all, and the file is
//! the store as it was at one moment. Writers wait meanwhile (ingest's
//! acknowledgements are delayed, not refused); readers do not.

use super::{SledStore, StoreError, open_db};
use sha2::{Digest, Sha256};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 16] = b"HOOKHOST-BACKUP1";
const RECORD: u8 = 1;
const END: u8 = 0;
/// The longest key or value a backup may hold: larger than any the store
/// writes (event bodies are bounded by the body limits, records by their
/// bounds). A length past it is damage, refused before any memory is taken.
const MAX_PART_BYTES: usize = 1 << 30;

/// What a backup wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    pub records: u64,
    pub bytes: u64,
    /// How long writes waited for the snapshot, in ms.
    pub paused_ms: u64,
}

/// What a restore wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreSummary {
    pub records: u64,
    pub trees: usize,
}

fn bad(message: impl Into<String>) -> StoreError {
    StoreError::Backup(message.into())
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Backup(e.to_string())
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl SledStore {
    /// Writes a consistent snapshot of every tree to `out`.
    pub fn backup(&self, out: impl Write) -> Result<BackupSummary, StoreError> {
        let mut w = Hashing {
            inner: BufWriter::with_capacity(1 << 20, out),
            hash: Sha256::new(),
            bytes: 0,
        };
        w.write_all(MAGIC).map_err(io)?;
        let live = self.live()?;
        let gate = match self.gate.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let started = std::time::Instant::now();
        let mut records = 0u64;
        for name in live.db.tree_names() {
            let tree = live.db.open_tree(&name)?;
            let name_len = u16::try_from(name.len()).map_err(|_| bad("tree name too long"))?;
            for item in tree.iter() {
                let (k, v) = item?;
                w.write_all(&[RECORD]).map_err(io)?;
                w.write_all(&name_len.to_be_bytes()).map_err(io)?;
                w.write_all(&name).map_err(io)?;
                for part in [&k, &v] {
                    let len = u32::try_from(part.len()).map_err(|_| bad("record too long"))?;
                    w.write_all(&len.to_be_bytes()).map_err(io)?;
                    w.write_all(part).map_err(io)?;
                }
                records += 1;
            }
        }
        let next_id = live.db.generate_id()?;
        drop(gate);
        let paused_ms = started.elapsed().as_millis() as u64;
        w.write_all(&[END]).map_err(io)?;
        w.write_all(&records.to_be_bytes()).map_err(io)?;
        w.write_all(&next_id.to_be_bytes()).map_err(io)?;
        let digest = w.hash.clone().finalize();
        w.inner.write_all(&digest).map_err(io)?;
        w.inner.flush().map_err(io)?;
        Ok(BackupSummary {
            records,
            bytes: w.bytes + 32,
            paused_ms,
        })
    }
}

/// One item read from a backup.
enum Item {
    Record {
        tree: Vec<u8>,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    End {
        records: u64,
        next_id: u64,
    },
}

/// Reads a backup front to back, hashing as it goes.
struct Reader<R> {
    inner: BufReader<R>,
    hash: Sha256,
}

impl<R: Read> Reader<R> {
    fn open(inner: R) -> Result<Self, StoreError> {
        let mut r = Self {
            inner: BufReader::with_capacity(1 << 20, inner),
            hash: Sha256::new(),
        };
        let magic = r.bytes(MAGIC.len())?;
        if magic != MAGIC {
            return Err(bad("not a hookhost backup (bad magic)"));
        }
        Ok(r)
    }

    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, StoreError> {
        if n > MAX_PART_BYTES {
            return Err(bad(format!(
                "a record of {n} bytes is larger than any the store writes: the backup is damaged"
            )));
        }
        // Grown as the bytes arrive, not reserved from the length: a length
        // the file does not hold costs nothing but the error.
        let mut buf = Vec::new();
        (&mut self.inner)
            .take(n as u64)
            .read_to_end(&mut buf)
            .map_err(io)?;
        if buf.len() < n {
            return Err(bad("the file ends early: the backup is truncated"));
        }
        self.hash.update(&buf);
        Ok(buf)
    }

    fn u32(&mut self) -> Result<usize, StoreError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let b = self.bytes(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_be_bytes(a))
    }

    fn next(&mut self) -> Result<Item, StoreError> {
        match self.bytes(1)?[0] {
            RECORD => {
                let b = self.bytes(2)?;
                let name_len = u16::from_be_bytes([b[0], b[1]]) as usize;
                let tree = self.bytes(name_len)?;
                let key_len = self.u32()?;
                let key = self.bytes(key_len)?;
                let value_len = self.u32()?;
                let value = self.bytes(value_len)?;
                Ok(Item::Record { tree, key, value })
            }
            END => {
                let records = self.u64()?;
                let next_id = self.u64()?;
                let expected = self.hash.clone().finalize();
                let mut digest = [0u8; 32];
                self.inner
                    .read_exact(&mut digest)
                    .map_err(|_| bad("the file ends early: the backup is truncated"))?;
                if digest[..] != expected[..] {
                    return Err(bad("checksum mismatch: the backup is damaged"));
                }
                if self.inner.read(&mut [0u8; 1]).map_err(io)? != 0 {
                    return Err(bad("bytes after the end of the backup"));
                }
                Ok(Item::End { records, next_id })
            }
            other => Err(bad(format!(
                "unknown item tag {other}: the backup is damaged"
            ))),
        }
    }
}

/// Reads a whole backup and checks its checksum and record count; returns
/// the number of records.
pub fn verify_backup(path: &Path) -> Result<u64, StoreError> {
    let file = std::fs::File::open(path).map_err(io)?;
    let mut r = Reader::open(file)?;
    let mut seen = 0u64;
    loop {
        match r.next()? {
            Item::Record { .. } => seen += 1,
            Item::End { records, .. } => {
                if records != seen {
                    return Err(bad(format!(
                        "the backup says {records} records but holds {seen}"
                    )));
                }
                return Ok(seen);
            }
        }
    }
}

/// Restores a backup into `dir`, which must be empty or absent. The file is
/// verified whole before anything is written; if writing fails, what was
/// written is removed.
pub fn restore(path: &Path, dir: &Path) -> Result<RestoreSummary, StoreError> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io)?;
        if entries.next().is_some() {
            return Err(bad(format!(
                "{} is not empty: restore only into an empty or new directory",
                dir.display()
            )));
        }
    }
    verify_backup(path)?;
    let result = write_restore(path, dir);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn write_restore(path: &Path, dir: &Path) -> Result<RestoreSummary, StoreError> {
    std::fs::create_dir_all(dir).map_err(io)?;
    let db = open_db(dir, super::DEFAULT_CACHE_BYTES)?;
    let file = std::fs::File::open(path).map_err(io)?;
    let mut r = Reader::open(file)?;
    let mut trees: std::collections::BTreeMap<Vec<u8>, (sled::Tree, sled::Batch, usize)> =
        Default::default();
    let mut records = 0u64;
    loop {
        match r.next()? {
            Item::Record { tree, key, value } => {
                if !trees.contains_key(&tree) {
                    let t = db.open_tree(&tree)?;
                    trees.insert(tree.clone(), (t, sled::Batch::default(), 0));
                }
                if let Some((t, batch, n)) = trees.get_mut(&tree) {
                    batch.insert(key, value);
                    *n += 1;
                    if *n == 10_000 {
                        t.apply_batch(std::mem::take(batch))?;
                        *n = 0;
                    }
                }
                records += 1;
            }
            Item::End { next_id, .. } => {
                for (t, batch, _) in trees.values_mut() {
                    t.apply_batch(std::mem::take(batch))?;
                }
                // kv versions come from this generator: move it past every
                // version the backup holds.
                while db.generate_id()? < next_id {}
                db.flush()?;
                return Ok(RestoreSummary {
                    records,
                    trees: trees.len(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MAGIC, RECORD, verify_backup};

    /// A backup whose first record claims a key of `key_len` bytes and holds
    /// three.
    fn lying(key_len: u32) -> tempfile::NamedTempFile {
        let mut bytes = MAGIC.to_vec();
        bytes.push(RECORD);
        bytes.extend_from_slice(&6u16.to_be_bytes());
        bytes.extend_from_slice(b"events");
        bytes.extend_from_slice(&key_len.to_be_bytes());
        bytes.extend_from_slice(b"abc");
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), bytes).expect("write");
        file
    }

    #[test]
    fn a_length_past_any_record_is_refused_before_it_is_read() {
        let err = verify_backup(lying(u32::MAX).path()).expect_err("refused");
        assert!(
            err.to_string().contains("larger than any the store writes"),
            "{err}"
        );
    }

    #[test]
    fn a_length_the_file_does_not_hold_is_a_truncated_backup() {
        let err = verify_backup(lying(1000).path()).expect_err("refused");
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
