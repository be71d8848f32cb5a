//! The namespace's tables as one value: what a format-1 snapshot holds (read whole, as a
//! snapshot of format 2 is not: see [`super::rows`]), and the gateway's record of its last
//! snapshot. Records are carried as their stored bytes, so a snapshot restores exactly what was
//! stored.

use std::path::Path;

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::GatewayError;
use crate::db::{
    ACCESS_KEYS, BUCKET_SETTINGS, BUCKETS, Db, META, OBJECTS, PARTS, UPLOAD_LOCKS, UPLOADS, USERS, VERSIONS,
};
use crate::snapshot::SnapshotRecord;
pub use crate::snapshot::rows::TableCounts;
use crate::snapshot::rows::{LAST_SNAPSHOT, Restoring, Row};

/// Every table of the namespace (users and keys included; not the gateway's bookkeeping).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tables {
    users: Vec<(String, Vec<u8>)>,
    access_keys: Vec<(String, String)>,
    buckets: Vec<(String, Vec<u8>)>,
    objects: Vec<((String, String), Vec<u8>)>,
    uploads: Vec<(String, Vec<u8>)>,
    parts: Vec<((String, u32), Vec<u8>)>,
    bucket_settings: Vec<(String, Vec<u8>)>,
    versions: Vec<((String, String, u64), Vec<u8>)>,
    upload_locks: Vec<(String, Vec<u8>)>,
}

/// The tables of a snapshot taken before buckets had settings and versions: [`Tables`]'
/// first fields (postcard writes fields in order, so such a snapshot is their prefix).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TablesBeforeVersions {
    users: Vec<(String, Vec<u8>)>,
    access_keys: Vec<(String, String)>,
    buckets: Vec<(String, Vec<u8>)>,
    objects: Vec<((String, String), Vec<u8>)>,
    uploads: Vec<(String, Vec<u8>)>,
    parts: Vec<((String, u32), Vec<u8>)>,
}

impl Tables {
    /// The encoded tables (postcard).
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::db::encode(self)
    }

    /// Tables from their encoding (of either format: a snapshot taken before versions must
    /// take every byte as the older format).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, GatewayError> {
        let error = match postcard::from_bytes(bytes) {
            Ok(tables) => return Ok(tables),
            Err(error) => error,
        };
        match postcard::take_from_bytes::<TablesBeforeVersions>(bytes) {
            Ok((old, [])) => Ok(Tables {
                users: old.users,
                access_keys: old.access_keys,
                buckets: old.buckets,
                objects: old.objects,
                uploads: old.uploads,
                parts: old.parts,
                bucket_settings: Vec::new(),
                versions: Vec::new(),
                upload_locks: Vec::new(),
            }),
            _ => Err(GatewayError::Snapshot(format!("the snapshot's tables do not decode: {error}"))),
        }
    }

    /// Their rows, table by table.
    pub fn into_rows(self) -> impl Iterator<Item = Row> {
        let Tables {
            users,
            access_keys,
            buckets,
            objects,
            uploads,
            parts,
            bucket_settings,
            versions,
            upload_locks,
        } = self;
        let users = users.into_iter().map(|(name, user)| Row::User(name, user));
        let keys = access_keys.into_iter().map(|(key, name)| Row::AccessKey(key, name));
        let buckets = buckets.into_iter().map(|(name, bucket)| Row::Bucket(name, bucket));
        let objects = objects.into_iter().map(|((bucket, key), object)| Row::Object(bucket, key, object));
        let uploads = uploads.into_iter().map(|(id, upload)| Row::Upload(id, upload));
        let parts = parts.into_iter().map(|((id, number), part)| Row::Part(id, number, part));
        let settings = bucket_settings.into_iter().map(|(name, value)| Row::BucketSettings(name, value));
        let versions =
            versions.into_iter().map(|((bucket, key, order), value)| Row::Version(bucket, key, order, value));
        let locks = upload_locks.into_iter().map(|(id, value)| Row::UploadLock(id, value));
        users
            .chain(keys)
            .chain(buckets)
            .chain(objects)
            .chain(uploads)
            .chain(parts)
            .chain(settings)
            .chain(versions)
            .chain(locks)
    }

    /// How much they hold.
    pub fn counts(&self) -> TableCounts {
        TableCounts {
            users: self.users.len(),
            buckets: self.buckets.len(),
            objects: self.objects.len(),
            uploads: self.uploads.len(),
        }
    }
}

const ACTION_READ: &str = "reading the namespace for a snapshot";

fn dump<K, V, KO, VO>(
    transaction: &redb::ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<Vec<(KO, VO)>, GatewayError>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    KO: for<'a> From<K::SelfType<'a>>,
    VO: for<'a> From<V::SelfType<'a>>,
{
    let table = transaction.open_table(table).map_err(GatewayError::database(ACTION_READ))?;
    let mut rows = Vec::new();
    for entry in table.iter().map_err(GatewayError::database(ACTION_READ))? {
        let (key, value) = entry.map_err(GatewayError::database(ACTION_READ))?;
        rows.push((KO::from(key.value()), VO::from(value.value())));
    }
    Ok(rows)
}

/// A pair key `(a, b)` owned.
struct Pair<A, B>(A, B);

impl<'a> From<(&'a str, &'a str)> for Pair<String, String> {
    fn from((a, b): (&'a str, &'a str)) -> Self {
        Pair(a.to_string(), b.to_string())
    }
}

/// A triple key `(bucket, key, order)` owned.
struct Triple(String, String, u64);

impl<'a> From<(&'a str, &'a str, u64)> for Triple {
    fn from((a, b, c): (&'a str, &'a str, u64)) -> Self {
        Triple(a.to_string(), b.to_string(), c)
    }
}

impl<'a> From<(&'a str, u32)> for Pair<String, u32> {
    fn from((a, b): (&'a str, u32)) -> Self {
        Pair(a.to_string(), b)
    }
}

fn pairs<A, B>(rows: Vec<(Pair<A, B>, Vec<u8>)>) -> Vec<((A, B), Vec<u8>)> {
    rows.into_iter().map(|(Pair(a, b), value)| ((a, b), value)).collect()
}

impl Db {
    /// The namespace as of now, read in one transaction.
    pub fn snapshot_tables(&self) -> Result<Tables, GatewayError> {
        let transaction = self.read(ACTION_READ)?;
        Ok(Tables {
            users: dump(&transaction, USERS)?,
            access_keys: dump(&transaction, ACCESS_KEYS)?,
            buckets: dump(&transaction, BUCKETS)?,
            objects: pairs(dump(&transaction, OBJECTS)?),
            uploads: dump(&transaction, UPLOADS)?,
            parts: pairs(dump(&transaction, PARTS)?),
            bucket_settings: dump(&transaction, BUCKET_SETTINGS)?,
            versions: dump::<(&str, &str, u64), &[u8], Triple, Vec<u8>>(&transaction, VERSIONS)?
                .into_iter()
                .map(|(Triple(bucket, key, order), value)| ((bucket, key, order), value))
                .collect(),
            upload_locks: dump(&transaction, UPLOAD_LOCKS)?,
        })
    }

    /// The last snapshot recorded, if any.
    pub fn last_snapshot(&self) -> Result<Option<SnapshotRecord>, GatewayError> {
        const ACTION: &str = "reading the last snapshot";
        let transaction = self.read(ACTION)?;
        let meta = transaction.open_table(META).map_err(GatewayError::database(ACTION))?;
        let bytes = meta.get(LAST_SNAPSHOT).map_err(GatewayError::database(ACTION))?;
        bytes.map(|bytes| decode_snapshot_record(bytes.value())).transpose()
    }

    /// Records `record` as the last snapshot (not counted as a change of the namespace).
    pub(crate) fn record_snapshot(&self, record: &SnapshotRecord) -> Result<(), GatewayError> {
        const ACTION: &str = "recording a snapshot";
        let transaction = self.write_uncounted(ACTION)?;
        {
            let mut meta = transaction.open_table(META).map_err(GatewayError::database(ACTION))?;
            meta.insert(LAST_SNAPSHOT, crate::db::encode(record).as_slice())
                .map_err(GatewayError::database(ACTION))?;
        }
        transaction.commit().map_err(GatewayError::database(ACTION))
    }
}

/// The record of a snapshot taken before snapshots had parts (format 1): [`SnapshotRecord`]'s
/// first fields.
#[derive(Debug, Deserialize)]
struct SnapshotRecordBeforeParts {
    sequence: u64,
    blob_id: redstuff::BlobId,
    created_ms: u64,
    tables_sha256: [u8; 32],
    end_epoch: u32,
}

fn decode_snapshot_record(bytes: &[u8]) -> Result<SnapshotRecord, GatewayError> {
    let error = match postcard::from_bytes(bytes) {
        Ok(record) => return Ok(record),
        Err(error) => error,
    };
    match postcard::take_from_bytes::<SnapshotRecordBeforeParts>(bytes) {
        Ok((old, [])) => Ok(SnapshotRecord {
            sequence: old.sequence,
            blob_id: old.blob_id,
            created_ms: old.created_ms,
            tables_sha256: old.tables_sha256,
            end_epoch: old.end_epoch,
            parts: Vec::new(),
        }),
        _ => Err(GatewayError::CorruptRecord { what: "the last snapshot".into(), reason: error.to_string() }),
    }
}

/// Creates the database at `path` (which must not exist) holding `tables`, with `record` as
/// its last snapshot, in one transaction: written to `PATH.restoring` and renamed into place,
/// so a failed restore leaves no database behind.
pub fn write_database(path: &Path, tables: &Tables, record: &SnapshotRecord) -> Result<(), GatewayError> {
    let restoring = Restoring::start(path)?;
    restoring.write(tables.clone().into_rows())?;
    restoring.finish(record)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::namespace::{ChunkRef, ObjectRecord, PartRecord, UploadRecord};

    fn object(size: u64) -> ObjectRecord {
        ObjectRecord {
            chunks: vec![ChunkRef {
                blob_id: redstuff::BlobId::from_root(1, &[3; 32]),
                size,
                sealing: crate::namespace::Sealing::Age,
                packed: None,
            }],
            size,
            etag: "abc".into(),
            content_type: Some("text/plain".into()),
            metadata: BTreeMap::from([("colour".into(), "blue".into())]),
            modified_ms: 5,
            checksum: None,
            parts: 0,
        }
    }

    #[test]
    fn a_database_rebuilt_from_its_tables_holds_the_same_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("gateway.redb")).unwrap();
        let alice = db.create_user("alice").unwrap();
        db.create_bucket("photos", "alice").unwrap();
        db.put_object("photos", "a/b.jpg", "alice", &object(10)).unwrap();
        db.put_object("photos", "c.jpg", "alice", &object(20)).unwrap();
        let upload = UploadRecord {
            bucket: "photos".into(),
            key: "big".into(),
            content_type: None,
            metadata: BTreeMap::new(),
            created_ms: 1,
        };
        let id = db.create_upload("alice", &upload).unwrap();
        let part =
            PartRecord { chunks: vec![], size: 0, md5_hex: "00".into(), checksum: None, modified_ms: 2 };
        db.put_part(&id, 1, "photos", "big", "alice", &part).unwrap();

        let tables = db.snapshot_tables().unwrap();
        assert_eq!(tables.counts(), TableCounts { users: 1, buckets: 1, objects: 2, uploads: 1 });
        assert_eq!(Tables::from_bytes(&tables.to_bytes()).unwrap(), tables);
        let record = SnapshotRecord {
            sequence: 4,
            blob_id: redstuff::BlobId::from_root(1, &[9; 32]),
            created_ms: 7,
            tables_sha256: [1; 32],
            end_epoch: 12,
            parts: Vec::new(),
        };
        let writes = db.writes();
        db.record_snapshot(&record).unwrap();
        assert_eq!(db.writes(), writes, "recording a snapshot is not a change of the namespace");
        assert_eq!(db.last_snapshot().unwrap(), Some(record.clone()));
        // A record written before snapshots had parts is its prefix: it reads with none.
        let old = crate::db::encode(&record);
        let old = &old[..old.len() - 1];
        assert_eq!(decode_snapshot_record(old).unwrap(), record);
        assert!(decode_snapshot_record(&old[..old.len() - 1]).is_err());

        let restored_path = dir.path().join("restored").join("gateway.redb");
        std::fs::create_dir_all(restored_path.parent().unwrap()).unwrap();
        write_database(&restored_path, &tables, &record).unwrap();
        assert!(!restored_path.with_extension("redb.restoring").exists());
        let restored = Db::open(&restored_path).unwrap();
        assert_eq!(restored.snapshot_tables().unwrap(), tables);
        assert_eq!(restored.last_snapshot().unwrap(), Some(record.clone()));
        assert_eq!(restored.user_by_key(&alice.access_key_id).unwrap(), Some(alice));
        assert_eq!(restored.get_object("photos", "c.jpg", "alice").unwrap(), object(20));
        assert_eq!(restored.list_parts(&id, "photos", "big", "alice").unwrap(), vec![(1, part)]);
        drop(restored);
        let refused = write_database(&restored_path, &tables, &record).unwrap_err();
        assert!(refused.to_string().contains("move it away"), "{refused}");
    }

    #[test]
    fn a_snapshot_from_before_versions_still_restores_and_versions_are_carried() {
        let old = TablesBeforeVersions {
            buckets: vec![("photos".into(), vec![1, 2])],
            objects: vec![(("photos".into(), "a".into()), vec![3])],
            ..Default::default()
        };
        let read = Tables::from_bytes(&postcard::to_allocvec(&old).unwrap()).unwrap();
        assert_eq!(read.buckets, old.buckets);
        assert_eq!(read.objects, old.objects);
        assert!(read.versions.is_empty() && read.bucket_settings.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("gateway.redb")).unwrap();
        db.create_bucket("photos", "alice").unwrap();
        db.update_bucket_settings("photos", "alice", |settings| {
            settings.versioning = crate::namespace::Versioning::Enabled;
            Ok(())
        })
        .unwrap();
        db.put_object("photos", "a", "alice", &object(1)).unwrap();
        db.put_object("photos", "a", "alice", &object(2)).unwrap();
        let tables = db.snapshot_tables().unwrap();
        assert_eq!((tables.versions.len(), tables.bucket_settings.len()), (2, 1));
        assert_eq!(Tables::from_bytes(&tables.to_bytes()).unwrap(), tables);
    }
}
