//! The gateway's redb database: its tables, and the encoding of its records (postcard).
//! Every write commits with immediate durability: an acknowledged request is on disk.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, Durability, ReadTransaction, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::GatewayError;

/// User name → [`crate::users::User`].
pub(crate) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Access key ID → user name.
pub(crate) const ACCESS_KEYS: TableDefinition<&str, &str> = TableDefinition::new("access_keys");
/// Bucket name → [`crate::namespace::BucketRecord`].
pub(crate) const BUCKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("buckets");
/// (bucket, key) → [`crate::namespace::ObjectRecord`].
pub(crate) const OBJECTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("objects");
/// Bucket name → [`crate::namespace::BucketSettings`] (absent: unversioned, without Object Lock).
pub(crate) const BUCKET_SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("bucket_settings");
/// (bucket, key, order) → [`crate::namespace::VersionRecord`]; a key's newest version has the
/// smallest order. Only buckets whose versioning was ever enabled have versions.
pub(crate) const VERSIONS: TableDefinition<(&str, &str, u64), &[u8]> = TableDefinition::new("versions");
/// Upload ID → the [`crate::namespace::LockState`] its object will have (absent: none).
pub(crate) const UPLOAD_LOCKS: TableDefinition<&str, &[u8]> = TableDefinition::new("upload_locks");
/// Upload ID → [`crate::namespace::UploadRecord`].
pub(crate) const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads");
/// (upload ID, part number) → [`crate::namespace::PartRecord`].
pub(crate) const PARTS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("parts");
/// The gateway's own bookkeeping (not part of a snapshot): the last namespace snapshot.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The page cache the database gives redb (64 MiB: its read cache and write buffer together),
/// so the gateway's memory for its namespace stays at this however many objects it names
/// (redb's own default, 1 GiB, is more than the whole gateway's bound for a 1 GiB PUT).
const CACHE_BYTES: usize = 64 << 20;

/// The open database.
#[derive(Debug)]
pub struct Db {
    db: Database,
    /// Write transactions committed since the database was opened: a snapshot is due only
    /// when it moved (the snapshot's own bookkeeping is not counted). Counted after the commit,
    /// so a snapshot that read the count and then the tables holds every counted write (counted
    /// when begun, a write committing after the snapshot's read would be missed for good).
    writes: AtomicU64,
}

impl Db {
    /// Opens (or creates) the database at `path`, creating its directory and tables.
    pub fn open(path: &Path) -> Result<Self, GatewayError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|error| GatewayError::Config(format!("cannot create {}: {error}", dir.display())))?;
        }
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(GatewayError::database("opening the database"))?;
        let db = Db { db, writes: AtomicU64::new(0) };
        let transaction = db.write("creating the tables")?;
        let create = |transaction: &WriteTransaction| -> Result<(), redb::TableError> {
            transaction.open_table(USERS)?;
            transaction.open_table(ACCESS_KEYS)?;
            transaction.open_table(BUCKETS)?;
            transaction.open_table(OBJECTS)?;
            transaction.open_table(UPLOADS)?;
            transaction.open_table(PARTS)?;
            transaction.open_table(META)?;
            transaction.open_table(BUCKET_SETTINGS)?;
            transaction.open_table(VERSIONS)?;
            transaction.open_table(UPLOAD_LOCKS)?;
            Ok(())
        };
        create(&transaction).map_err(GatewayError::database("creating the tables"))?;
        transaction.commit().map_err(GatewayError::database("creating the tables"))?;
        Ok(db)
    }

    /// A write transaction that commits durably and counts as a change of the namespace once
    /// committed.
    pub(crate) fn write(&self, action: &'static str) -> Result<CountedWrite<'_>, GatewayError> {
        Ok(CountedWrite { transaction: self.write_uncounted(action)?, writes: &self.writes })
    }

    /// A durable write transaction that does not count as a change of the namespace.
    pub(crate) fn write_uncounted(&self, action: &'static str) -> Result<WriteTransaction, GatewayError> {
        let mut transaction = self.db.begin_write().map_err(GatewayError::database(action))?;
        transaction.set_durability(Durability::Immediate).map_err(GatewayError::database(action))?;
        Ok(transaction)
    }

    /// Write transactions committed since the database was opened.
    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// A read transaction.
    pub(crate) fn read(&self, action: &'static str) -> Result<ReadTransaction, GatewayError> {
        use redb::ReadableDatabase as _;
        self.db.begin_read().map_err(GatewayError::database(action))
    }
}

/// A write transaction of [`Db::write`]: counted as a change once its commit is durable.
pub(crate) struct CountedWrite<'a> {
    transaction: WriteTransaction,
    writes: &'a AtomicU64,
}

impl std::ops::Deref for CountedWrite<'_> {
    type Target = WriteTransaction;

    fn deref(&self) -> &WriteTransaction {
        &self.transaction
    }
}

impl CountedWrite<'_> {
    /// Commits, then counts the change.
    pub(crate) fn commit(self) -> Result<(), redb::CommitError> {
        self.transaction.commit()?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A record's stored bytes.
pub(crate) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    postcard::to_allocvec(record).expect("records serialize")
}

/// A stored record, or [`GatewayError::CorruptRecord`] naming `what`.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T, GatewayError> {
    postcard::from_bytes(bytes)
        .map_err(|error| GatewayError::CorruptRecord { what: what(), reason: error.to_string() })
}

/// Milliseconds since the Unix epoch, now.
pub(crate) use morsa_plumbing::now_ms;
