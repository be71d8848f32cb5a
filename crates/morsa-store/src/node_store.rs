//! The storage node's durable engine: per blob, its metadata, the sliver pairs of the shards the
//! node owns and the node's own state of the blob; plus a few named values such as the event
//! cursor. One redb file.
//!
//! What [`NodeStore`] promises:
//!
//! - **Durable before acknowledged.** Every write commits with [`Durability::Immediate`] (redb
//!   fsyncs the file) before it returns. A crash loses nothing acknowledged; a write in flight is
//!   wholly there or wholly absent. `tests/node_store_crash.rs` checks this with real `SIGKILL`s.
//!   An error means "not acknowledged", not "absent": if a commit's fsync failed, the write may
//!   still be there after a restart.
//! - **One fsync per batch.** [`NodeStore::put_slivers`] writes all its slivers in one
//!   transaction: the slivers that arrive together cost one commit, which is what makes ingest
//!   fast, and the batch is all or nothing.
//! - **Checksummed.** Every value is stored behind `crc32c(table ‖ 0 ‖ key ‖ value)` and checked
//!   on every read; a mismatch is an error ([`StoreError::CorruptSliver`],
//!   [`StoreError::CorruptBlobValue`], ...), never the bytes. redb verifies its own page
//!   checksums only when it repairs a file after a crash, not on ordinary reads. Unlike the
//!   command log, opening does not verify the whole file: a node's file holds terabytes, and a
//!   sliver read is checked anyway.
//! - **Bounded.** A sliver is at most [`MAX_SLIVER_BYTES`], metadata at most
//!   [`MAX_METADATA_BYTES`], blob info at most [`MAX_BLOB_INFO_BYTES`], a meta value at most
//!   [`MAX_NODE_META_BYTES`]; larger ones are refused with [`StoreError::ValueTooLarge`] before
//!   anything is written.
//!
//! Layout (see `node_store/tables.rs`): slivers are keyed `blob_id ‖ shard ‖ kind`, so one blob's
//! slivers are one contiguous range and [`NodeStore::delete_blob`] is a range delete. A small
//! index holds every sliver's length under the same key, written in the same transactions;
//! existence checks, deletes and the per-shard counters read it, because a lookup in the sliver
//! table reads the redb page holding the value, up to 64 MiB. The counters behind [`NodeStore::stats`]
//! are kept per shard in the same transactions too (`node_store/shard_stats.rs`), so `stats`
//! reads one row per shard rather than scanning the slivers.
//!
//! What it does not own: the meaning of the bytes. Metadata, blob info and meta values are
//! opaque; slivers are checked against the metadata by the node before they get here.

use std::fmt;
use std::path::{Path, PathBuf};

use redb::{
    Database, DatabaseError, Durability, ReadTransaction, ReadableDatabase, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};

use self::tables::{
    BLOB_INFO, BLOB_INFO_TABLE, META, META_TABLE, METADATA, METADATA_TABLE, SHARD_STATS, SLIVER_INDEX,
    SLIVERS, open_sealed, sealed_len, write_sealed,
};
use crate::command_log::check_magic;
use crate::error::{StoreError, database};

mod shard_stats;
mod slivers;
mod tables;
mod types;

pub use self::types::{DeleteStats, ShardStats, SliverKind, SliverWrite, StoreStats};

/// A blob ID and its blob info, as [`NodeStore::blob_infos_from`] lists them.
pub type BlobInfoRecord = ([u8; 32], Vec<u8>);

/// The largest sliver [`NodeStore::put_slivers`] accepts (64 MiB).
pub const MAX_SLIVER_BYTES: usize = 64 << 20;
/// The largest metadata [`NodeStore::put_metadata`] accepts (8 MiB).
pub const MAX_METADATA_BYTES: usize = 8 << 20;
/// The largest blob info [`NodeStore::put_blob_info`] accepts (1 MiB).
pub const MAX_BLOB_INFO_BYTES: usize = 1 << 20;
/// The largest value [`NodeStore::put_meta`] accepts (1 MiB).
pub const MAX_NODE_META_BYTES: usize = 1 << 20;
/// The page cache [`NodeStore::open`] gives redb (128 MiB): its read cache and write buffer
/// together, so the node's memory for the store stays at this whatever it holds on disk
/// (redb's own default, 1 GiB, grew every node by about that much as it took in slivers, and
/// kept it). Reads that miss it go to the file, through the operating system's page cache. A
/// commit's pages beyond half of it are written to the file before the commit, which still
/// makes them durable; a full ingest group (64 MiB) fits that half.
pub const DEFAULT_NODE_CACHE_BYTES: usize = 128 << 20;

const CREATING_TABLES: &str = "creating the tables of a new node store";
const WRITING_METADATA: &str = "writing blob metadata";
const READING_METADATA: &str = "reading blob metadata";
const WRITING_BLOB_INFO: &str = "writing blob info";
const READING_BLOB_INFO: &str = "reading blob info";
const WRITING_META: &str = "writing a node meta value";
const READING_META: &str = "reading a node meta value";
const READING_STATS: &str = "reading the node store's statistics";

/// The storage node's durable store: one redb database file.
///
/// All methods take `&self`; the store can be shared between threads (`Arc<NodeStore>`). Writers
/// are serialised by redb; readers see the last committed state and never block writers.
///
/// ```
/// use morsa_store::{DeleteStats, NodeStore, SliverKind, SliverWrite, StoreError};
///
/// # fn main() -> Result<(), StoreError> {
/// # let dir = tempfile::tempdir().expect("a temporary directory");
/// let store = NodeStore::open(&dir.path().join("node.redb"))?;
/// let blob_id = [7; 32];
/// store.put_metadata(&blob_id, b"BCS metadata")?;
/// // The sliver pair of shard 3 arrives together: one transaction, one fsync.
/// store.put_slivers(&[
///     SliverWrite { blob_id, shard: 3, kind: SliverKind::Primary, bytes: b"primary" },
///     SliverWrite { blob_id, shard: 3, kind: SliverKind::Secondary, bytes: b"secondary" },
/// ])?;
/// assert_eq!(store.sliver_kinds_held(&blob_id, 3)?, (true, true));
/// assert_eq!(store.get_sliver(&blob_id, 3, SliverKind::Primary)?, Some(b"primary".to_vec()));
/// assert_eq!(store.stats()?.shards[&3].bytes, 16);
///
/// assert_eq!(store.delete_blob(&blob_id)?, DeleteStats { slivers: 2, bytes: 16 });
/// assert!(!store.has_metadata(&blob_id)?);
/// # Ok(())
/// # }
/// ```
pub struct NodeStore {
    db: Database,
    path: PathBuf,
}

impl fmt::Debug for NodeStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("NodeStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl NodeStore {
    /// Opens the store at `path`, creating the file if it is missing (its directory must exist).
    /// After a crash redb repairs the file on open, rolling back to the last durable commit.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotADatabase`] if the file holds something else (it is left untouched),
    /// [`StoreError::Locked`] if another process or handle has it open, [`StoreError::Open`] for
    /// I/O errors and damage redb cannot repair, [`StoreError::Database`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_NODE_CACHE_BYTES)
    }

    /// [`NodeStore::open`] with a page cache of `cache_bytes` (see [`DEFAULT_NODE_CACHE_BYTES`]):
    /// the memory the store keeps of what it read and wrote. Sliver reads that miss it go to the
    /// file (the operating system's page cache).
    ///
    /// # Errors
    ///
    /// As [`NodeStore::open`].
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        check_magic(path)?;
        let db =
            Database::builder().set_cache_size(cache_bytes).create(path).map_err(|source| match source {
                DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { path: path.to_path_buf() },
                source => StoreError::Open { path: path.to_path_buf(), source },
            })?;
        let store = Self { db, path: path.to_path_buf() };

        // Create every table up front, so a reader never meets a missing table.
        let transaction = store.begin_write(CREATING_TABLES)?;
        create_tables(&transaction).map_err(database(CREATING_TABLES))?;
        transaction.commit().map_err(database(CREATING_TABLES))?;
        Ok(store)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores the metadata of `blob_id` (replacing any), durably before returning.
    ///
    /// # Errors
    ///
    /// [`StoreError::ValueTooLarge`] over [`MAX_METADATA_BYTES`], [`StoreError::Database`].
    pub fn put_metadata(&self, blob_id: &[u8; 32], bytes: &[u8]) -> Result<(), StoreError> {
        let value = BlobValue::METADATA;
        check_size(value.what, bytes.len(), MAX_METADATA_BYTES)?;
        self.put_blob_value(value, blob_id, bytes)
    }

    /// The metadata of `blob_id`, if stored.
    ///
    /// # Errors
    ///
    /// [`StoreError::CorruptBlobValue`] if it fails its checksum, [`StoreError::Database`].
    pub fn get_metadata(&self, blob_id: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_blob_value(BlobValue::METADATA, blob_id)
    }

    /// Whether metadata of `blob_id` is stored. Does not read it, so does not verify it either:
    /// [`NodeStore::get_metadata`] does.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub fn has_metadata(&self, blob_id: &[u8; 32]) -> Result<bool, StoreError> {
        let transaction = self.begin_read(READING_METADATA)?;
        let table = transaction.open_table(METADATA).map_err(database(READING_METADATA))?;
        Ok(table.get(blob_id).map_err(database(READING_METADATA))?.is_some())
    }

    /// Stores the node's state of `blob_id` (replacing any), durably before returning.
    ///
    /// # Errors
    ///
    /// [`StoreError::ValueTooLarge`] over [`MAX_BLOB_INFO_BYTES`], [`StoreError::Database`].
    pub fn put_blob_info(&self, blob_id: &[u8; 32], bytes: &[u8]) -> Result<(), StoreError> {
        let value = BlobValue::BLOB_INFO;
        check_size(value.what, bytes.len(), MAX_BLOB_INFO_BYTES)?;
        self.put_blob_value(value, blob_id, bytes)
    }

    /// The node's state of `blob_id`, if stored.
    ///
    /// # Errors
    ///
    /// [`StoreError::CorruptBlobValue`] if it fails its checksum, [`StoreError::Database`].
    pub fn get_blob_info(&self, blob_id: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_blob_value(BlobValue::BLOB_INFO, blob_id)
    }

    /// Calls `f` on the blob info of every blob, in blob ID order, as the store was when the call
    /// began (writes meanwhile, even by `f`, are not seen). Holds one value in memory at a time.
    /// Stops at the first error, from the store or from `f`.
    ///
    /// # Errors
    ///
    /// [`StoreError::CorruptBlobValue`], [`StoreError::Database`], or whatever `f` returned.
    pub fn for_each_blob_info(
        &self,
        mut f: impl FnMut(&[u8; 32], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let value = BlobValue::BLOB_INFO;
        let transaction = self.begin_read(READING_BLOB_INFO)?;
        let table = transaction.open_table(value.table).map_err(database(READING_BLOB_INFO))?;
        for entry in table.range::<&[u8; 32]>(..).map_err(database(READING_BLOB_INFO))? {
            let (blob_id, stored) = entry.map_err(database(READING_BLOB_INFO))?;
            let blob_id = *blob_id.value();
            f(&blob_id, value.open(&blob_id, stored.value())?)?;
        }
        Ok(())
    }

    /// The blob info of at most `limit` blobs, in blob ID order, from `start` on (`start`
    /// included; from the first blob if `None`): the pages in which a shard moves to its new
    /// owner.
    ///
    /// # Errors
    ///
    /// [`StoreError::CorruptBlobValue`], [`StoreError::Database`].
    pub fn blob_infos_from(
        &self,
        start: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<BlobInfoRecord>, StoreError> {
        let value = BlobValue::BLOB_INFO;
        let transaction = self.begin_read(READING_BLOB_INFO)?;
        let table = transaction.open_table(value.table).map_err(database(READING_BLOB_INFO))?;
        let range = match start {
            Some(start) => table.range::<&[u8; 32]>(start..),
            None => table.range::<&[u8; 32]>(..),
        };
        let mut found = Vec::new();
        for entry in range.map_err(database(READING_BLOB_INFO))?.take(limit) {
            let (blob_id, stored) = entry.map_err(database(READING_BLOB_INFO))?;
            let blob_id = *blob_id.value();
            found.push((blob_id, value.open(&blob_id, stored.value())?.to_vec()));
        }
        Ok(found)
    }

    /// Sets the named value `key` (replacing any), durably before returning.
    ///
    /// # Errors
    ///
    /// [`StoreError::ValueTooLarge`] over [`MAX_NODE_META_BYTES`], [`StoreError::Database`].
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        check_size("meta value", value.len(), MAX_NODE_META_BYTES)?;
        let transaction = self.begin_write(WRITING_META)?;
        {
            let mut meta = transaction.open_table(META).map_err(database(WRITING_META))?;
            let mut slot =
                meta.insert_reserve(key, sealed_len(value.len())).map_err(database(WRITING_META))?;
            write_sealed(slot.as_mut(), META_TABLE, key.as_bytes(), value);
        }
        transaction.commit().map_err(database(WRITING_META))
    }

    /// The named value `key`, if set.
    ///
    /// # Errors
    ///
    /// [`StoreError::CorruptMeta`] if it fails its checksum, [`StoreError::Database`].
    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let transaction = self.begin_read(READING_META)?;
        let meta = transaction.open_table(META).map_err(database(READING_META))?;
        let Some(stored) = meta.get(key).map_err(database(READING_META))? else {
            return Ok(None);
        };
        let value = open_sealed(stored.value(), META_TABLE, key.as_bytes())
            .ok_or_else(|| StoreError::CorruptMeta { key: key.to_owned() })?;
        Ok(Some(value.to_vec()))
    }

    /// Slivers and bytes stored per shard, and the number of blobs with metadata. Reads one row
    /// per shard (the counters are kept with every write), not the slivers.
    ///
    /// # Errors
    ///
    /// [`StoreError::CorruptShardStats`], [`StoreError::Database`].
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let transaction = self.begin_read(READING_STATS)?;
        let counters = transaction.open_table(SHARD_STATS).map_err(database(READING_STATS))?;
        let metadata = transaction.open_table(METADATA).map_err(database(READING_STATS))?;
        Ok(StoreStats {
            shards: shard_stats::read_all(&counters, READING_STATS)?,
            blobs: metadata.len().map_err(database(READING_STATS))?,
        })
    }

    /// A write transaction that fsyncs when it commits.
    fn begin_write(&self, action: &'static str) -> Result<WriteTransaction, StoreError> {
        let mut transaction = self.db.begin_write().map_err(database(action))?;
        transaction.set_durability(Durability::Immediate).map_err(database(action))?;
        Ok(transaction)
    }

    fn begin_read(&self, action: &'static str) -> Result<ReadTransaction, StoreError> {
        self.db.begin_read().map_err(database(action))
    }

    fn put_blob_value(&self, value: BlobValue, blob_id: &[u8; 32], bytes: &[u8]) -> Result<(), StoreError> {
        let transaction = self.begin_write(value.writing)?;
        {
            let mut table = transaction.open_table(value.table).map_err(database(value.writing))?;
            let mut slot =
                table.insert_reserve(blob_id, sealed_len(bytes.len())).map_err(database(value.writing))?;
            write_sealed(slot.as_mut(), value.name, blob_id, bytes);
        }
        transaction.commit().map_err(database(value.writing))
    }

    fn get_blob_value(&self, value: BlobValue, blob_id: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let transaction = self.begin_read(value.reading)?;
        let table = transaction.open_table(value.table).map_err(database(value.reading))?;
        let Some(stored) = table.get(blob_id).map_err(database(value.reading))? else {
            return Ok(None);
        };
        Ok(Some(value.open(blob_id, stored.value())?.to_vec()))
    }
}

/// One of the two tables of opaque per-blob values, with what to call it in errors.
#[derive(Clone, Copy)]
struct BlobValue {
    table: TableDefinition<'static, &'static [u8; 32], &'static [u8]>,
    name: &'static str,
    what: &'static str,
    writing: &'static str,
    reading: &'static str,
}

impl BlobValue {
    const METADATA: Self = Self {
        table: METADATA,
        name: METADATA_TABLE,
        what: "metadata",
        writing: WRITING_METADATA,
        reading: READING_METADATA,
    };
    const BLOB_INFO: Self = Self {
        table: BLOB_INFO,
        name: BLOB_INFO_TABLE,
        what: "blob info",
        writing: WRITING_BLOB_INFO,
        reading: READING_BLOB_INFO,
    };

    /// The value in `stored` if its checksum matches, or [`StoreError::CorruptBlobValue`].
    fn open<'a>(&self, blob_id: &[u8; 32], stored: &'a [u8]) -> Result<&'a [u8], StoreError> {
        open_sealed(stored, self.name, blob_id)
            .ok_or(StoreError::CorruptBlobValue { table: self.what, blob_id: *blob_id })
    }
}

/// Opens (so creates, in a new file) every table of the store.
fn create_tables(transaction: &WriteTransaction) -> Result<(), redb::TableError> {
    transaction.open_table(METADATA)?;
    transaction.open_table(BLOB_INFO)?;
    transaction.open_table(SLIVERS)?;
    transaction.open_table(SLIVER_INDEX)?;
    transaction.open_table(SHARD_STATS)?;
    transaction.open_table(META)?;
    Ok(())
}

/// Refuses a value of `len` bytes over `max`, as [`StoreError::ValueTooLarge`].
fn check_size(what: &'static str, len: usize, max: usize) -> Result<(), StoreError> {
    if len > max { Err(StoreError::ValueTooLarge { what, len, max }) } else { Ok(()) }
}

#[cfg(test)]
mod tests;
