//! The namespace as a stream of rows, so that a snapshot of any size is taken and restored
//! with bounded memory. [`cut`] reads every table in one read transaction (a consistent view,
//! as of one commit) and hands the rows over in parts of about `part_size` bytes (each row
//! postcard-encoded, carrying its record's stored bytes, so a snapshot restores exactly what
//! was stored); [`Restoring`] writes parts back into a new database, one transaction each.

use std::path::{Path, PathBuf};

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::GatewayError;
use crate::db::{
    ACCESS_KEYS, BUCKET_SETTINGS, BUCKETS, Db, META, OBJECTS, PARTS, UPLOAD_LOCKS, UPLOADS, USERS, VERSIONS,
};
use crate::snapshot::SnapshotRecord;

/// One row of one table of the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Row {
    /// A user (name, record).
    User(String, Vec<u8>),
    /// An access key (key id, user name).
    AccessKey(String, String),
    /// A bucket (name, record).
    Bucket(String, Vec<u8>),
    /// An object's current version (bucket, key, record).
    Object(String, String, Vec<u8>),
    /// A multipart upload in progress (id, record).
    Upload(String, Vec<u8>),
    /// A part of one (upload id, part number, record).
    Part(String, u32, Vec<u8>),
    /// A bucket's settings (name, record).
    BucketSettings(String, Vec<u8>),
    /// A kept version (bucket, key, order, record).
    Version(String, String, u64, Vec<u8>),
    /// An upload's lock settings (id, record).
    UploadLock(String, Vec<u8>),
}

/// How much a snapshot holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCounts {
    /// Users.
    pub users: usize,
    /// Buckets.
    pub buckets: usize,
    /// Objects.
    pub objects: usize,
    /// Multipart uploads in progress.
    pub uploads: usize,
}

/// The key of the gateway's record of its last snapshot in the `meta` table.
pub(crate) const LAST_SNAPSHOT: &str = "last_snapshot";

const ACTION_READ: &str = "reading the namespace for a snapshot";
const ACTION_WRITE: &str = "restoring the namespace";

/// Reads the namespace in one read transaction and hands its rows to `part` in parts of at
/// least `part_size` bytes (the last one smaller; a part passes `part_size` by less than one
/// row), so no more than a part is held at a time; answers the SHA-256 of all the parts'
/// bytes in order and what the namespace holds.
pub fn cut(
    db: &Db,
    part_size: usize,
    mut part: impl FnMut(Vec<u8>) -> Result<(), GatewayError>,
) -> Result<([u8; 32], TableCounts), GatewayError> {
    let transaction = db.read(ACTION_READ)?;
    let mut hasher = Sha256::new();
    let mut buffer = Vec::new();
    let mut add = |row: Row| {
        let at = buffer.len();
        buffer = postcard::to_extend(&row, std::mem::take(&mut buffer))
            .map_err(|error| GatewayError::Snapshot(format!("encoding a row: {error}")))?;
        hasher.update(&buffer[at..]);
        if buffer.len() >= part_size {
            part(std::mem::take(&mut buffer))?;
        }
        Ok(())
    };
    let users = each(&transaction, USERS, |name, user| Row::User(name.into(), user.into()), &mut add)?;
    each(&transaction, ACCESS_KEYS, |key, name| Row::AccessKey(key.into(), name.into()), &mut add)?;
    let buckets =
        each(&transaction, BUCKETS, |name, bucket| Row::Bucket(name.into(), bucket.into()), &mut add)?;
    let objects = each(
        &transaction,
        OBJECTS,
        |(bucket, key), object| Row::Object(bucket.into(), key.into(), object.into()),
        &mut add,
    )?;
    let uploads = each(&transaction, UPLOADS, |id, upload| Row::Upload(id.into(), upload.into()), &mut add)?;
    each(&transaction, PARTS, |(id, number), part| Row::Part(id.into(), number, part.into()), &mut add)?;
    each(
        &transaction,
        BUCKET_SETTINGS,
        |name, settings| Row::BucketSettings(name.into(), settings.into()),
        &mut add,
    )?;
    each(
        &transaction,
        VERSIONS,
        |(bucket, key, order), version| Row::Version(bucket.into(), key.into(), order, version.into()),
        &mut add,
    )?;
    each(&transaction, UPLOAD_LOCKS, |id, lock| Row::UploadLock(id.into(), lock.into()), &mut add)?;
    if !buffer.is_empty() {
        part(buffer)?;
    }
    Ok((hasher.finalize().into(), TableCounts { users, buckets, objects, uploads }))
}

/// Hands every row of `table` to `add` as `row` makes it; answers how many there were.
fn each<K, V>(
    transaction: &redb::ReadTransaction,
    table: TableDefinition<K, V>,
    row: impl for<'a> Fn(K::SelfType<'a>, V::SelfType<'a>) -> Row,
    add: &mut impl FnMut(Row) -> Result<(), GatewayError>,
) -> Result<usize, GatewayError>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    let table = transaction.open_table(table).map_err(GatewayError::database(ACTION_READ))?;
    let mut count = 0;
    for entry in table.iter().map_err(GatewayError::database(ACTION_READ))? {
        let (key, value) = entry.map_err(GatewayError::database(ACTION_READ))?;
        add(row(key.value(), value.value()))?;
        count += 1;
    }
    Ok(count)
}

/// The rows of one part's bytes.
pub fn decode_part(bytes: &[u8]) -> Result<Vec<Row>, GatewayError> {
    let mut rows = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (row, after) = postcard::take_from_bytes::<Row>(rest)
            .map_err(|error| GatewayError::Snapshot(format!("a snapshot part does not decode: {error}")))?;
        rows.push(row);
        rest = after;
    }
    Ok(rows)
}

/// A database being rebuilt from a snapshot: written at `PATH.restoring`, one transaction per
/// part, and renamed into place by [`Restoring::finish`], so a failed restore leaves no
/// database behind.
pub struct Restoring {
    db: Db,
    partial: PathBuf,
    path: PathBuf,
}

impl Restoring {
    /// Starts rebuilding the database at `path`, which must not exist.
    pub fn start(path: &Path) -> Result<Self, GatewayError> {
        if path.exists() {
            return Err(GatewayError::Snapshot(format!(
                "{} exists: restore-namespace rebuilds a lost database; move it away first",
                path.display()
            )));
        }
        let partial = path.with_extension("redb.restoring");
        if partial.exists() {
            std::fs::remove_file(&partial).map_err(|error| io_error(&partial, &error))?;
        }
        Ok(Self { db: Db::open(&partial)?, partial, path: path.to_path_buf() })
    }

    /// Writes `rows` in one transaction.
    pub fn write(&self, rows: impl IntoIterator<Item = Row>) -> Result<(), GatewayError> {
        let transaction = self.db.write(ACTION_WRITE)?;
        insert(&transaction, rows)?;
        transaction.commit().map_err(GatewayError::database(ACTION_WRITE))
    }

    /// Records `record` as the database's last snapshot and moves the database into place.
    pub fn finish(self, record: &SnapshotRecord) -> Result<(), GatewayError> {
        let Self { db, partial, path } = self;
        let transaction = db.write(ACTION_WRITE)?;
        {
            let mut meta = transaction.open_table(META).map_err(GatewayError::database(ACTION_WRITE))?;
            meta.insert(LAST_SNAPSHOT, crate::db::encode(record).as_slice())
                .map_err(GatewayError::database(ACTION_WRITE))?;
        }
        transaction.commit().map_err(GatewayError::database(ACTION_WRITE))?;
        drop(db);
        std::fs::rename(&partial, &path).map_err(|error| io_error(&partial, &error))?;
        morsa_plumbing::file::sync_parent(&path).map_err(|error| GatewayError::Snapshot(error.to_string()))
    }
}

fn io_error(path: &Path, error: &std::io::Error) -> GatewayError {
    GatewayError::Snapshot(format!("{}: {error}", path.display()))
}

/// Inserts `rows` with `transaction`.
fn insert(transaction: &WriteTransaction, rows: impl IntoIterator<Item = Row>) -> Result<(), GatewayError> {
    let failed = || GatewayError::database(ACTION_WRITE);
    let mut users = transaction.open_table(USERS).map_err(failed())?;
    let mut keys = transaction.open_table(ACCESS_KEYS).map_err(failed())?;
    let mut buckets = transaction.open_table(BUCKETS).map_err(failed())?;
    let mut objects = transaction.open_table(OBJECTS).map_err(failed())?;
    let mut uploads = transaction.open_table(UPLOADS).map_err(failed())?;
    let mut parts = transaction.open_table(PARTS).map_err(failed())?;
    let mut settings = transaction.open_table(BUCKET_SETTINGS).map_err(failed())?;
    let mut versions = transaction.open_table(VERSIONS).map_err(failed())?;
    let mut locks = transaction.open_table(UPLOAD_LOCKS).map_err(failed())?;
    for row in rows {
        let inserted = match &row {
            Row::User(name, user) => users.insert(name.as_str(), user.as_slice()).map(drop),
            Row::AccessKey(key, name) => keys.insert(key.as_str(), name.as_str()).map(drop),
            Row::Bucket(name, bucket) => buckets.insert(name.as_str(), bucket.as_slice()).map(drop),
            Row::Object(bucket, key, object) => {
                objects.insert((bucket.as_str(), key.as_str()), object.as_slice()).map(drop)
            }
            Row::Upload(id, upload) => uploads.insert(id.as_str(), upload.as_slice()).map(drop),
            Row::Part(id, number, part) => parts.insert((id.as_str(), *number), part.as_slice()).map(drop),
            Row::BucketSettings(name, value) => settings.insert(name.as_str(), value.as_slice()).map(drop),
            Row::Version(bucket, key, order, value) => {
                versions.insert((bucket.as_str(), key.as_str(), *order), value.as_slice()).map(drop)
            }
            Row::UploadLock(id, value) => locks.insert(id.as_str(), value.as_slice()).map(drop),
        };
        inserted.map_err(GatewayError::database(ACTION_WRITE))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
