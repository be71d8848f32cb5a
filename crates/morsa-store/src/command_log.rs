//! The coordinator's command log: an append-only, dense, checksummed sequence of records in one
//! redb file, plus a small table of metadata.
//!
//! The coordinator is a deterministic state machine and this log is its source of truth: state
//! is rebuilt on start by replaying the log with [`CommandLog::for_each`]. So the log promises:
//!
//! - **Durable before acknowledged.** [`CommandLog::append`], [`CommandLog::append_batch`] and
//!   [`CommandLog::put_meta`] commit with [`Durability::Immediate`] (redb fsyncs the file) before
//!   they return. A crash loses nothing that was acknowledged; a write that was in flight is
//!   either wholly there or wholly absent (a batch too). `tests/crash_consistency.rs` checks this
//!   with real `SIGKILL`s.
//! - **Dense.** Sequence numbers are `0, 1, 2, ...` with no gaps: the next one is always the
//!   current length, taken inside the write transaction, and redb serialises writers. Every open,
//!   length and read re-checks it and reports [`StoreError::Gap`] otherwise.
//! - **Checksummed.** Each value is `crc32c(seq ‖ record)` (4 bytes, little-endian) followed by
//!   the record; a read that finds a mismatch returns [`StoreError::Corrupt`], never the bytes.
//!   redb's own page checksums are verified only when it repairs a file after a crash, or when a
//!   whole-file check is asked for, not on ordinary reads, hence this one (see
//!   `checksum.rs`). Opening does ask for that whole-file check
//!   ([`redb::Builder::set_check_integrity_on_open`]): the coordinator reads the whole log on
//!   start anyway, and a damaged file then fails to open with an error instead of being trusted.
//! - **Bounded.** A record is at most [`MAX_RECORD_BYTES`]; a page read returns at most `limit`
//!   records; a replay holds one record at a time.

use std::fmt;
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};

use redb::{Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::checksum::Crc32c;
use crate::error::{StoreError, database};

/// The largest record [`CommandLog::append`] accepts (16 MiB); larger ones are refused with
/// [`StoreError::RecordTooLarge`]. The same limit applies to a metadata value.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// Records by sequence number; each value is a checksum followed by the record.
const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("command_log");

/// Metadata by key; each value is a checksum followed by the value.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Bytes of the checksum in front of every stored value.
pub(crate) const CHECKSUM_BYTES: usize = 4;

/// The first bytes of every redb file (its header, inspired by PNG's).
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

const APPENDING: &str = "appending to the command log";
const READING: &str = "reading the command log";
const WRITING_META: &str = "writing a metadata value";
const READING_META: &str = "reading a metadata value";
const CREATING_TABLES: &str = "creating the tables of a new command log";

/// The command log of the coordinator: one redb database file.
///
/// All methods take `&self`; the log can be shared between threads (`Arc<CommandLog>`). Writers
/// are serialised by redb; readers see the last committed state and never block writers.
pub struct CommandLog {
    db: Database,
    path: PathBuf,
}

impl fmt::Debug for CommandLog {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("CommandLog").field("path", &self.path).finish_non_exhaustive()
    }
}

impl CommandLog {
    /// Opens the log at `path`, creating the file if it is missing (its directory must exist).
    ///
    /// After a crash redb repairs the file on open (rolling back to the last durable commit);
    /// then the whole file's page checksums are verified and the log's density is checked.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotADatabase`] if the file holds something else (it is left untouched),
    /// [`StoreError::Locked`] if another process or handle has it open, [`StoreError::Open`] for
    /// I/O errors and damage redb cannot repair, [`StoreError::Gap`] if records are missing.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = open_checked(path)?;

        // Create both tables up front, so a reader never meets a missing table.
        let mut transaction = db.begin_write().map_err(database(CREATING_TABLES))?;
        transaction.set_durability(Durability::Immediate).map_err(database(CREATING_TABLES))?;
        {
            let records = transaction.open_table(RECORDS).map_err(database(CREATING_TABLES))?;
            dense_len(&records)?;
            transaction.open_table(META).map_err(database(CREATING_TABLES))?;
        }
        transaction.commit().map_err(database(CREATING_TABLES))?;

        Ok(Self { db, path: path.to_path_buf() })
    }

    /// The file this log lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and returns its sequence number, once it is durable.
    ///
    /// # Errors
    ///
    /// [`StoreError::RecordTooLarge`] (nothing written) or [`StoreError::Database`]. An error
    /// means "not acknowledged", not "absent": if the commit's fsync failed, the record may still
    /// be there after a restart (redb then refuses further writes through this handle).
    pub fn append(&self, record: &[u8]) -> Result<u64, StoreError> {
        let range = self.append_records(&[record])?;
        Ok(range.start)
    }

    /// Appends all `records` in one transaction (one fsync) and returns their sequence numbers.
    /// Either all of them are in the log or none is. An empty batch writes nothing and returns
    /// the empty range at the current length.
    ///
    /// # Errors
    ///
    /// As [`CommandLog::append`]; if any record is too large, none is written.
    pub fn append_batch(&self, records: &[Vec<u8>]) -> Result<Range<u64>, StoreError> {
        if records.is_empty() {
            let len = self.len()?;
            return Ok(len..len);
        }
        self.append_records(records)
    }

    /// Appends `records` and sets the metadata values `meta`, all in one transaction (one
    /// fsync): a replica records the entries it applied together with how far it applied, so
    /// that a crash never separates the two. `records` may be empty.
    ///
    /// # Errors
    ///
    /// As [`CommandLog::append_batch`]; if any record or value is too large, nothing is written.
    pub fn append_with_meta(
        &self,
        records: &[Vec<u8>],
        meta: &[(&str, Vec<u8>)],
    ) -> Result<Range<u64>, StoreError> {
        self.write_records(records, meta, false)
    }

    /// Replaces every record with `records` (numbered from 0 again) and sets `meta`, in one
    /// transaction: a replica that installs a snapshot takes its history whole.
    ///
    /// # Errors
    ///
    /// As [`CommandLog::append_with_meta`].
    pub fn replace_all(
        &self,
        records: &[Vec<u8>],
        meta: &[(&str, Vec<u8>)],
    ) -> Result<Range<u64>, StoreError> {
        self.write_records(records, meta, true)
    }

    /// The number of records, which is also the sequence number the next append gets.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`], or [`StoreError::Gap`] if the log is not dense.
    pub fn len(&self) -> Result<u64, StoreError> {
        let transaction = self.db.begin_read().map_err(database(READING))?;
        let records = transaction.open_table(RECORDS).map_err(database(READING))?;
        dense_len(&records)
    }

    /// Whether the log has no records.
    ///
    /// # Errors
    ///
    /// As [`CommandLog::len`].
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Reads up to `limit` records starting at sequence number `from`, in order. Returns fewer
    /// (or none) when the log ends first. The page is at most `limit` records, each at most
    /// [`MAX_RECORD_BYTES`]: choose `limit` with that in mind.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if a record fails its checksum, [`StoreError::Gap`],
    /// [`StoreError::Database`].
    pub fn read(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut page = Vec::with_capacity(limit.min(1024));
        if limit == 0 {
            return Ok(page);
        }
        let transaction = self.db.begin_read().map_err(database(READING))?;
        let records = transaction.open_table(RECORDS).map_err(database(READING))?;
        let mut expected = from;
        for entry in records.range(from..).map_err(database(READING))? {
            let (key, value) = entry.map_err(database(READING))?;
            let seq = check_next(key.value(), expected)?;
            page.push((seq, open_record(seq, value.value())?.to_vec()));
            if page.len() == limit {
                break;
            }
            expected = next(seq);
        }
        Ok(page)
    }

    /// Calls `f` on every record, in order, from sequence number 0. Holds one record in memory
    /// at a time and sees the log as it was when the call began (records appended meanwhile,
    /// even by `f`, are not visited). Stops at the first error, from the log or from `f`; `f`
    /// may report its own failures as [`StoreError::Replay`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`], [`StoreError::Gap`], [`StoreError::Database`], or whatever `f`
    /// returned.
    pub fn for_each(
        &self,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let transaction = self.db.begin_read().map_err(database(READING))?;
        let records = transaction.open_table(RECORDS).map_err(database(READING))?;
        let mut expected = 0;
        for entry in records.range(0..).map_err(database(READING))? {
            let (key, value) = entry.map_err(database(READING))?;
            let seq = check_next(key.value(), expected)?;
            f(seq, open_record(seq, value.value())?)?;
            expected = next(seq);
        }
        Ok(())
    }

    /// Sets the metadata value under `key` (replacing any), durably before returning.
    ///
    /// # Errors
    ///
    /// [`StoreError::RecordTooLarge`] if `value` is over [`MAX_RECORD_BYTES`],
    /// [`StoreError::Database`].
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        check_size(value.len())?;
        let mut transaction = self.db.begin_write().map_err(database(WRITING_META))?;
        transaction.set_durability(Durability::Immediate).map_err(database(WRITING_META))?;
        {
            let mut meta = transaction.open_table(META).map_err(database(WRITING_META))?;
            let mut slot =
                meta.insert_reserve(key, CHECKSUM_BYTES + value.len()).map_err(database(WRITING_META))?;
            seal(meta_checksum(key, value), value, slot.as_mut());
        }
        transaction.commit().map_err(database(WRITING_META))
    }

    /// The metadata value under `key`, if one was put.
    ///
    /// # Errors
    ///
    /// [`StoreError::CorruptMeta`] if the value fails its checksum, [`StoreError::Database`].
    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let transaction = self.db.begin_read().map_err(database(READING_META))?;
        let meta = transaction.open_table(META).map_err(database(READING_META))?;
        let Some(stored) = meta.get(key).map_err(database(READING_META))? else {
            return Ok(None);
        };
        let value = unseal(stored.value(), |value| meta_checksum(key, value))
            .ok_or_else(|| StoreError::CorruptMeta { key: key.to_owned() })?;
        Ok(Some(value.to_vec()))
    }

    /// Writes `records` in one durable transaction at the end of the log.
    fn append_records<R: AsRef<[u8]>>(&self, records: &[R]) -> Result<Range<u64>, StoreError> {
        self.write_records(records, &[], false)
    }

    /// Writes `records` (after the existing ones, or instead of them with `replace`) and the
    /// metadata values `meta` in one durable transaction.
    fn write_records<R: AsRef<[u8]>>(
        &self,
        records: &[R],
        meta: &[(&str, Vec<u8>)],
        replace: bool,
    ) -> Result<Range<u64>, StoreError> {
        for record in records {
            check_size(record.as_ref().len())?;
        }
        for (_, value) in meta {
            check_size(value.len())?;
        }
        let mut transaction = self.db.begin_write().map_err(database(APPENDING))?;
        transaction.set_durability(Durability::Immediate).map_err(database(APPENDING))?;
        if replace {
            transaction.delete_table(RECORDS).map_err(database(APPENDING))?;
        }
        {
            let mut table = transaction.open_table(META).map_err(database(WRITING_META))?;
            for (key, value) in meta {
                let mut slot = table
                    .insert_reserve(*key, CHECKSUM_BYTES + value.len())
                    .map_err(database(WRITING_META))?;
                seal(meta_checksum(key, value), value, slot.as_mut());
            }
        }
        let range = {
            let mut table = transaction.open_table(RECORDS).map_err(database(APPENDING))?;
            // Inside the write transaction: no other writer can take the same numbers.
            let start = dense_len(&table)?;
            let mut seq = start;
            for record in records {
                let record = record.as_ref();
                let mut slot =
                    table.insert_reserve(seq, CHECKSUM_BYTES + record.len()).map_err(database(APPENDING))?;
                seal(record_checksum(seq, record), record, slot.as_mut());
                seq = next(seq);
            }
            start..seq
        };
        transaction.commit().map_err(database(APPENDING))?;
        Ok(range)
    }
}

/// Refuses a file that exists, is not empty and is not a redb file, before redb touches it.
pub(crate) fn check_magic(path: &Path) -> Result<(), StoreError> {
    let io_error = |source: io::Error| StoreError::Open { path: path.to_path_buf(), source: source.into() };
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error(error)),
    };
    let mut start = [0_u8; REDB_MAGIC.len()];
    let mut filled = 0;
    while filled < start.len() {
        match file.read(&mut start[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(io_error(error)),
        }
    }
    // redb initialises an empty file (or one it was creating when it crashed); anything else
    // must start with the magic number.
    if REDB_MAGIC.starts_with(&start[..filled]) {
        Ok(())
    } else {
        Err(StoreError::NotADatabase { path: path.to_path_buf() })
    }
}

/// The length of the log, after checking it is dense: its keys are exactly `0..len`. Since keys
/// are unique, `last == len - 1` proves it in O(log n).
fn dense_len(records: &impl ReadableTable<u64, &'static [u8]>) -> Result<u64, StoreError> {
    let len = records.len().map_err(database(READING))?;
    let last = records.last().map_err(database(READING))?.map(|(key, _)| key.value());
    match last {
        None if len == 0 => Ok(0),
        Some(last) if last.checked_add(1) == Some(len) => Ok(len),
        _ => Err(first_gap(records, len)),
    }
}

/// Finds the first missing sequence number, for the error of a log known not to be dense.
fn first_gap(records: &impl ReadableTable<u64, &'static [u8]>, len: u64) -> StoreError {
    let mut expected = 0;
    let iterator = match records.range(0..) {
        Ok(iterator) => iterator,
        Err(source) => return database(READING)(source),
    };
    for entry in iterator {
        match entry {
            Ok((key, _)) if key.value() == expected => expected = next(expected),
            Ok((key, _)) => {
                return StoreError::Gap { expected, found: key.value() };
            }
            Err(source) => return database(READING)(source),
        }
    }
    StoreError::Gap { expected, found: len }
}

/// Checks that a scan met `expected` next, not a later key.
fn check_next(seq: u64, expected: u64) -> Result<u64, StoreError> {
    if seq == expected { Ok(seq) } else { Err(StoreError::Gap { expected, found: seq }) }
}

/// The sequence number after `seq`.
fn next(seq: u64) -> u64 {
    seq.checked_add(1).expect("2^64 records cannot be written: the log would outgrow any disk first")
}

pub(crate) fn check_size(len: usize) -> Result<(), StoreError> {
    if len > MAX_RECORD_BYTES {
        Err(StoreError::RecordTooLarge { len, max: MAX_RECORD_BYTES })
    } else {
        Ok(())
    }
}

/// The checksum of a record binds it to its sequence number, so a record under the wrong key
/// fails too.
pub(crate) fn record_checksum(seq: u64, record: &[u8]) -> u32 {
    Crc32c::new().update(&seq.to_le_bytes()).update(record).finish()
}

/// The checksum of a metadata value binds it to its key.
pub(crate) fn meta_checksum(key: &str, value: &[u8]) -> u32 {
    Crc32c::new().update(key.as_bytes()).update(value).finish()
}

/// Writes `checksum ‖ bytes` into `slot`, which is exactly `CHECKSUM_BYTES + bytes.len()` long.
pub(crate) fn seal(checksum: u32, bytes: &[u8], slot: &mut [u8]) {
    let (head, body) = slot.split_at_mut(CHECKSUM_BYTES);
    head.copy_from_slice(&checksum.to_le_bytes());
    body.copy_from_slice(bytes);
}

/// The bytes of a stored value whose checksum matches, or `None`.
pub(crate) fn unseal(stored: &[u8], checksum: impl FnOnce(&[u8]) -> u32) -> Option<&[u8]> {
    let (head, body) = stored.split_first_chunk::<CHECKSUM_BYTES>()?;
    (u32::from_le_bytes(*head) == checksum(body)).then_some(body)
}

/// The record `seq` from its stored value, or [`StoreError::Corrupt`].
pub(crate) fn open_record(seq: u64, stored: &[u8]) -> Result<&[u8], StoreError> {
    unseal(stored, |record| record_checksum(seq, record)).ok_or(StoreError::Corrupt { seq })
}

#[cfg(test)]
mod tests;

/// The page cache every log of this crate gives redb (32 MiB: its read cache and write buffer
/// together). redb's own default (1 GiB) let a coordinator grow by up to that much as its log
/// grew; appends are read back rarely (replay on start, followers catching up), from the file.
pub const LOG_CACHE_BYTES: usize = 32 << 20;

/// Opens (or creates) the redb file at `path` with its whole-file integrity check and a page
/// cache of [`LOG_CACHE_BYTES`], after checking that an existing file is a redb database: what
/// every log of this crate opens with.
pub(crate) fn open_checked(path: &Path) -> Result<Database, StoreError> {
    check_magic(path)?;
    let mut builder = Database::builder();
    builder.set_check_integrity_on_open(true).set_cache_size(LOG_CACHE_BYTES);
    builder.create(path).map_err(|source| match source {
        DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { path: path.to_path_buf() },
        source => StoreError::Open { path: path.to_path_buf(), source },
    })
}
