//! A replica's Raft log: entries by index, contiguous from the first kept one to the last,
//! plus a small table of metadata (the vote, the committed position, the last purged entry),
//! in one redb file. It stores opaque bytes: what an entry or a vote is belongs to the
//! coordinator.
//!
//! Every write commits with [`Durability::Immediate`] before it returns, so an entry or a vote
//! that Raft counts on is on disk. Values carry the same checksums as the command log's
//! (`crc32c(index ‖ bytes)`, `crc32c(key ‖ value)`); a read that finds a mismatch returns
//! [`StoreError::Corrupt`]. Appending at an index that leaves a hole is refused with
//! [`StoreError::Gap`].

use std::fmt;
use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::command_log::{
    CHECKSUM_BYTES, check_size, meta_checksum, open_record, record_checksum, seal, unseal,
};
use crate::error::{StoreError, database};

/// Entries by index; each value is a checksum followed by the entry.
const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");

/// Metadata by key; each value is a checksum followed by the value.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

const APPENDING: &str = "appending to the raft log";
const READING: &str = "reading the raft log";
const REMOVING: &str = "removing raft log entries";
const WRITING_META: &str = "writing a raft metadata value";
const READING_META: &str = "reading a raft metadata value";

/// The Raft log of one replica: one redb database file. Methods take `&self`; redb serialises
/// writers.
pub struct RaftLog {
    db: Database,
    path: PathBuf,
}

impl fmt::Debug for RaftLog {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("RaftLog").field("path", &self.path).finish_non_exhaustive()
    }
}

impl RaftLog {
    /// Opens the log at `path`, creating it if it is missing (its directory must exist).
    ///
    /// # Errors
    ///
    /// As [`crate::CommandLog::open`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = crate::command_log::open_checked(path)?;
        let mut transaction = db.begin_write().map_err(database(WRITING_META))?;
        transaction.set_durability(Durability::Immediate).map_err(database(WRITING_META))?;
        transaction.open_table(ENTRIES).map_err(database(WRITING_META))?;
        transaction.open_table(META).map_err(database(WRITING_META))?;
        transaction.commit().map_err(database(WRITING_META))?;
        Ok(Self { db, path: path.to_path_buf() })
    }

    /// Writes `entries` (index, bytes), which must follow each other and the last entry kept
    /// (or start anywhere if the log is empty), durably before returning. An entry at an index
    /// that exists replaces it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Gap`] if they would leave a hole, [`StoreError::RecordTooLarge`],
    /// [`StoreError::Database`]; on any error nothing is written.
    pub fn append(&self, entries: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        for (_, bytes) in entries {
            check_size(bytes.len())?;
        }
        let mut transaction = self.db.begin_write().map_err(database(APPENDING))?;
        transaction.set_durability(Durability::Immediate).map_err(database(APPENDING))?;
        {
            let mut table = transaction.open_table(ENTRIES).map_err(database(APPENDING))?;
            let mut expected =
                table.last().map_err(database(APPENDING))?.map(|(key, _)| key.value().saturating_add(1));
            for (index, bytes) in entries {
                if let Some(expected) = expected
                    && *index > expected
                {
                    return Err(StoreError::Gap { expected, found: *index });
                }
                let mut slot = table
                    .insert_reserve(*index, CHECKSUM_BYTES + bytes.len())
                    .map_err(database(APPENDING))?;
                seal(record_checksum(*index, bytes), bytes, slot.as_mut());
                expected = Some(index.saturating_add(1));
            }
        }
        transaction.commit().map_err(database(APPENDING))
    }

    /// Removes every entry at `index` or after it, durably.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn truncate_from(&self, index: u64) -> Result<(), StoreError> {
        self.remove(index..)
    }

    /// Removes every entry up to and including `index`, durably.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn purge_through(&self, index: u64) -> Result<(), StoreError> {
        self.remove(..=index)
    }

    fn remove(&self, range: impl std::ops::RangeBounds<u64>) -> Result<(), StoreError> {
        let mut transaction = self.db.begin_write().map_err(database(REMOVING))?;
        transaction.set_durability(Durability::Immediate).map_err(database(REMOVING))?;
        {
            let mut table = transaction.open_table(ENTRIES).map_err(database(REMOVING))?;
            table.retain_in(range, |_, _| false).map_err(database(REMOVING))?;
        }
        transaction.commit().map_err(database(REMOVING))
    }

    /// The entries with an index in `from..to`, in order, at most `limit` of them.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if an entry fails its checksum, [`StoreError::Database`].
    pub fn read(&self, from: u64, to: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let transaction = self.db.begin_read().map_err(database(READING))?;
        let table = transaction.open_table(ENTRIES).map_err(database(READING))?;
        let mut page = Vec::new();
        if from >= to {
            return Ok(page);
        }
        for entry in table.range(from..to).map_err(database(READING))? {
            if page.len() == limit {
                break;
            }
            let (key, value) = entry.map_err(database(READING))?;
            let index = key.value();
            page.push((index, open_record(index, value.value())?.to_vec()));
        }
        Ok(page)
    }

    /// The last entry, if any.
    ///
    /// # Errors
    ///
    /// As [`RaftLog::read`].
    pub fn last(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let transaction = self.db.begin_read().map_err(database(READING))?;
        let table = transaction.open_table(ENTRIES).map_err(database(READING))?;
        let Some((key, value)) = table.last().map_err(database(READING))? else {
            return Ok(None);
        };
        let index = key.value();
        Ok(Some((index, open_record(index, value.value())?.to_vec())))
    }

    /// Sets the metadata value under `key`, durably before returning.
    ///
    /// # Errors
    ///
    /// [`StoreError::RecordTooLarge`], [`StoreError::Database`].
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
    /// [`StoreError::CorruptMeta`], [`StoreError::Database`].
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entries(range: std::ops::Range<u64>) -> Vec<(u64, Vec<u8>)> {
        range.map(|index| (index, index.to_le_bytes().to_vec())).collect()
    }

    #[test]
    fn appends_truncates_purges_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.redb");
        let log = RaftLog::open(&path).unwrap();
        log.append(&entries(1..10)).unwrap();
        assert!(matches!(log.append(&entries(11..12)), Err(StoreError::Gap { expected: 10, found: 11 })));
        log.truncate_from(7).unwrap();
        log.purge_through(2).unwrap();
        log.put_meta("vote", b"v").unwrap();
        drop(log);
        let log = RaftLog::open(&path).unwrap();
        assert_eq!(log.read(0, 100, 100).unwrap(), entries(3..7));
        assert_eq!(log.read(4, 6, 1).unwrap(), entries(4..5));
        assert_eq!(log.last().unwrap(), Some((6, 6_u64.to_le_bytes().to_vec())));
        assert_eq!(log.get_meta("vote").unwrap().as_deref(), Some(&b"v"[..]));
        log.append(&entries(5..8)).unwrap();
        assert_eq!(log.read(0, 100, 100).unwrap(), entries(3..8));
    }
}
