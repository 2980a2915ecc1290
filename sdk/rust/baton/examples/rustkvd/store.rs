//! rustkvd's state: a map rebuilt from an append-only log,
//! `<data-dir>/kv.log`. It knows nothing about baton or HTTP.
//!
//! A record is a header (magic, key length, value length, revision, CRC-32
//! of the rest) then the key and the value, little-endian. Revisions count
//! 1, 2, 3, ... with no gap. The fingerprint is a running FNV-1a over every
//! record in order, so two processes that replayed the same log agree on it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

const MAGIC: u32 = 0x6b76_6431; // "kvd1"
const HEADER: usize = 4 + 4 + 4 + 8 + 4;
/// The longest key.
pub const MAX_KEY: usize = 1 << 10;
/// The longest value.
pub const MAX_VALUE: usize = 1 << 20;
const FNV_OFFSET: u64 = 14695981039346656037;
const FNV_PRIME: u64 = 1099511628211;

struct Mem {
    kv: HashMap<String, Vec<u8>>,
    revision: u64, // of the last record applied
    hash: u64,     // the fingerprint's state
    applied: u64,  // log bytes applied
}

impl Mem {
    fn new() -> Mem {
        Mem { kv: HashMap::new(), revision: 0, hash: FNV_OFFSET, applied: 0 }
    }

    fn apply(&mut self, rec: &[u8]) {
        let klen = u32_at(rec, 4) as usize;
        let key = String::from_utf8_lossy(&rec[HEADER..HEADER + klen]).into_owned();
        self.kv.insert(key, rec[HEADER + klen..].to_vec());
        self.revision = u64_at(rec, 12);
        for &b in rec {
            self.hash = (self.hash ^ b as u64).wrapping_mul(FNV_PRIME);
        }
        self.applied += rec.len() as u64;
    }
}

#[derive(Default)]
struct Writer {
    file: Option<File>,     // None when closed
    failed: Option<String>, // a write or fsync failed: no more writes
}

/// The key-value store over the log.
pub struct Store {
    path: PathBuf,
    mem: RwLock<Mem>,
    writer: Mutex<Writer>, // taken before mem
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// CRC-32 (IEEE) of the parts, one after the other.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for part in parts {
        for &b in *part {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
            }
        }
    }
    !crc
}

fn encode(key: &str, value: &[u8], revision: u64) -> Vec<u8> {
    let mut rec = Vec::with_capacity(HEADER + key.len() + value.len());
    rec.extend_from_slice(&MAGIC.to_le_bytes());
    rec.extend_from_slice(&(key.len() as u32).to_le_bytes());
    rec.extend_from_slice(&(value.len() as u32).to_le_bytes());
    rec.extend_from_slice(&revision.to_le_bytes());
    rec.extend_from_slice(&crc32(&[&rec[..20], key.as_bytes(), value]).to_le_bytes());
    rec.extend_from_slice(key.as_bytes());
    rec.extend_from_slice(value);
    rec
}

enum Next<'a> {
    Record(&'a [u8]),
    Torn,    // cut short, the log's last bytes: a write that never finished
    Damaged, // bad bytes before the end
}

fn next_record(data: &[u8]) -> Next<'_> {
    if data.len() < HEADER {
        return Next::Torn;
    }
    let (klen, vlen) = (u32_at(data, 4) as usize, u32_at(data, 8) as usize);
    if u32_at(data, 0) != MAGIC || klen > MAX_KEY || vlen > MAX_VALUE {
        return Next::Damaged;
    }
    if data.len() < HEADER + klen + vlen {
        return Next::Torn;
    }
    let rec = &data[..HEADER + klen + vlen];
    if crc32(&[&rec[..20], &rec[HEADER..]]) == u32_at(rec, 20) {
        Next::Record(rec)
    } else if rec.len() == data.len() {
        Next::Torn
    } else {
        Next::Damaged
    }
}

impl Store {
    /// The store of `data_dir`; nothing read yet.
    pub fn new(data_dir: &Path) -> Store {
        Store { path: data_dir.join("kv.log"), mem: RwLock::new(Mem::new()), writer: Mutex::default() }
    }

    /// Applies the records after those applied. `read_only`: another
    /// process may be appending, so stop at a bad or half-written record;
    /// otherwise we own the log: cut a torn tail.
    pub fn replay(&self, read_only: bool) -> io::Result<()> {
        let mut mem = self.mem.write().unwrap();
        let mut f = match File::open(&self.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            r => r?,
        };
        f.seek(SeekFrom::Start(mem.applied))?;
        let mut data = Vec::new();
        f.read_to_end(&mut data)?;
        let mut rest = &data[..];
        while !rest.is_empty() {
            match next_record(rest) {
                Next::Record(rec) if u64_at(rec, 12) != mem.revision + 1 => {
                    let msg = format!("{} at offset {}: revision {} after {}", self.path.display(), mem.applied,
                                      u64_at(rec, 12), mem.revision);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
                }
                Next::Record(rec) => {
                    mem.apply(rec);
                    rest = &rest[rec.len()..];
                }
                _ if read_only => return Ok(()), // the writer is in the middle of it
                Next::Damaged => {
                    let msg = format!("{}: damaged record at offset {}", self.path.display(), mem.applied);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
                }
                Next::Torn => {
                    // The writer died mid-record: nothing from it on was acknowledged.
                    OpenOptions::new().write(true).open(&self.path)?.set_len(mem.applied)?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Forgets memory and replays the whole log (another process wrote it).
    pub fn reload(&self) -> io::Result<()> {
        *self.mem.write().unwrap() = Mem::new();
        self.replay(false)
    }

    /// Opens the writer: puts are accepted from now on.
    pub fn open_writer(&self) -> io::Result<()> {
        let mut w = self.writer.lock().unwrap();
        w.file = Some(OpenOptions::new().append(true).create(true).open(&self.path)?);
        w.failed = None;
        Ok(())
    }

    /// Fsyncs and closes the writer; nothing is written after.
    pub fn close_writer(&self) -> io::Result<()> {
        let mut w = self.writer.lock().unwrap();
        if let Some(f) = w.file.take() {
            f.sync_all().map_err(|e| io::Error::new(e.kind(), format!("close {}: {}", self.path.display(), e)))?;
        }
        match &w.failed {
            Some(e) => Err(io::Error::new(io::ErrorKind::Other, e.clone())),
            None => Ok(()),
        }
    }

    /// Appends a record and fsyncs it; the value is visible (and may be
    /// acknowledged) once put returns its revision.
    pub fn put(&self, key: &str, value: &[u8]) -> io::Result<u64> {
        let mut w = self.writer.lock().unwrap();
        if w.failed.is_some() || w.file.is_none() {
            return Err(io::Error::new(io::ErrorKind::Other, "not writable"));
        }
        // Only the writer changes the revision, and we are the writer.
        let rec = encode(key, value, self.mem.read().unwrap().revision + 1);
        let file = w.file.as_mut().unwrap();
        if let Err(e) = file.write_all(&rec).and_then(|_| file.sync_data()) {
            w.failed = Some(e.to_string());
            return Err(e);
        }
        let mut mem = self.mem.write().unwrap();
        mem.apply(&rec);
        Ok(mem.revision)
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.mem.read().unwrap().kv.get(key).cloned()
    }

    /// The revision and the fingerprint (16 hex digits) at it.
    pub fn state(&self) -> (u64, String) {
        let mem = self.mem.read().unwrap();
        (mem.revision, format!("{:016x}", mem.hash))
    }
}
