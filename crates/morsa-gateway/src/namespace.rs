//! The durable namespace: buckets, objects (bucket → key → layout) and multipart uploads.
//! An object's record is written only after every chunk blob it names is certified, so no
//! object is ever visible before its data is stored.
//!
//! Records are postcard; objects and parts written before chunks could be sealed (format 1)
//! or packed (format 2) still decode ([`record_format`]).

pub mod lock;
pub mod record_format;

use std::collections::BTreeMap;

use redb::ReadableTable as _;
use redstuff::BlobId;
use serde::{Deserialize, Serialize};

use crate::GatewayError;
use crate::checksum::StoredChecksum;
use crate::db::{BUCKETS, Db, OBJECTS, PARTS, UPLOADS, decode, encode, now_ms};
use crate::listing::{self, ListQuery, Listing};

/// A bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    /// The user who created it.
    pub owner: String,
    /// When (ms since the Unix epoch).
    pub created_ms: u64,
}

/// How a chunk's bytes are stored in its blob.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sealing {
    /// As they are (objects stored before encryption, or with `encrypt = false`).
    #[default]
    Plain,
    /// As one age file to an X25519 recipient of the gateway's keyring.
    Age,
}

/// One chunk of an object, in order: a whole blob, or a piece of a blob shared with other
/// small objects ([`crate::packer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRef {
    /// The certified blob.
    pub blob_id: BlobId,
    /// The size of its plaintext (of its stored bytes when plain).
    pub size: u64,
    /// How its stored bytes hold it (a sealed piece is an age file of its own).
    pub sealing: Sealing,
    /// Where in the blob its stored bytes are, if it is one piece of a packed blob; `None`:
    /// it is the whole blob.
    pub packed: Option<Packed>,
}

/// Where a packed chunk's stored bytes are in their blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packed {
    /// The first byte.
    pub offset: u64,
    /// How many bytes (sealed, they are more than the chunk's plaintext size).
    pub stored: u64,
}

impl Packed {
    /// The blob's bytes that hold the chunk.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.offset..self.offset.saturating_add(self.stored)
    }
}

/// What an object is made of and what clients see of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "record_format::StoredObject", try_from = "record_format::StoredObject")]
pub struct ObjectRecord {
    /// The chunk blobs, in order; their sizes add up to `size`. Empty for an empty object.
    pub chunks: Vec<ChunkRef>,
    /// Size in bytes.
    pub size: u64,
    /// The ETag without quotes: hex MD5, or hex MD5 of the parts' MD5s and `-N`.
    pub etag: String,
    /// Content-Type given at upload.
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-*`).
    pub metadata: BTreeMap<String, String>,
    /// Last modified (ms since the Unix epoch).
    pub modified_ms: u64,
    /// The checksum the client gave and the gateway verified (single uploads only).
    pub checksum: Option<StoredChecksum>,
    /// Parts it was uploaded in (0 for a single PUT).
    pub parts: u32,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// The bucket.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// Content-Type given at creation.
    pub content_type: Option<String>,
    /// User metadata given at creation.
    pub metadata: BTreeMap<String, String>,
    /// When it was created (ms since the Unix epoch).
    pub created_ms: u64,
}

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "record_format::StoredPart", try_from = "record_format::StoredPart")]
pub struct PartRecord {
    /// Its chunk blobs.
    pub chunks: Vec<ChunkRef>,
    /// Its size.
    pub size: u64,
    /// Hex MD5 of its bytes.
    pub md5_hex: String,
    /// The checksum the client gave and the gateway verified.
    pub checksum: Option<StoredChecksum>,
    /// When it was uploaded (ms since the Unix epoch).
    pub modified_ms: u64,
}

/// S3's smallest part other than the last.
pub const MIN_PART_SIZE: u64 = 5 << 20;

/// S3's largest single PUT or part: 5 GiB.
pub const MAX_BODY_SIZE: u64 = 5 << 30;

/// S3's largest object: 5 TiB. With [`MAX_BODY_SIZE`] and at most 10,000 parts, a layout
/// holds at most 10,000 + 5 TiB / chunk size chunks.
pub const MAX_OBJECT_SIZE: u64 = 5 << 40;

macro_rules! table {
    ($transaction:expr, $table:expr, $action:expr) => {
        $transaction.open_table($table).map_err(GatewayError::database($action))?
    };
}

mod references;
mod upload_list;
mod upload_locks;
mod version_reads;
mod versions;

pub use lock::{DefaultRetention, LockState, Retention, RetentionMode};
pub use version_reads::ListedVersion;
pub use versions::{BucketSettings, FoundVersion, NULL_VERSION, Removal, VersionRecord, Versioning};

impl Db {
    /// Creates `bucket` for `owner`.
    pub fn create_bucket(&self, bucket: &str, owner: &str) -> Result<(), GatewayError> {
        self.create_bucket_with(bucket, owner, &BucketSettings::default())
    }

    /// Creates `bucket` for `owner` with `settings` (Object Lock and versioning on, for a
    /// bucket created with `x-amz-bucket-object-lock-enabled: true`).
    pub fn create_bucket_with(
        &self,
        bucket: &str,
        owner: &str,
        settings: &BucketSettings,
    ) -> Result<(), GatewayError> {
        const ACTION: &str = "creating a bucket";
        let transaction = self.write(ACTION)?;
        {
            let mut buckets = table!(transaction, BUCKETS, ACTION);
            if let Some(bytes) = buckets.get(bucket).map_err(GatewayError::database(ACTION))? {
                let existing: BucketRecord = decode(bytes.value(), || format!("bucket {bucket}"))?;
                return Err(match existing.owner == owner {
                    true => GatewayError::BucketAlreadyOwnedByYou(bucket.into()),
                    false => GatewayError::BucketAlreadyExists(bucket.into()),
                });
            }
            let record = BucketRecord { owner: owner.into(), created_ms: now_ms() };
            buckets.insert(bucket, encode(&record).as_slice()).map_err(GatewayError::database(ACTION))?;
            versions::store_settings(&transaction, bucket, Some(settings))?;
        }
        transaction.commit().map_err(GatewayError::database(ACTION))
    }

    /// `bucket`'s record, if `owner` owns it: [`GatewayError::NoSuchBucket`] or
    /// [`GatewayError::AccessDenied`] otherwise.
    pub fn owned_bucket(&self, bucket: &str, owner: &str) -> Result<BucketRecord, GatewayError> {
        const ACTION: &str = "reading a bucket";
        let transaction = self.read(ACTION)?;
        let buckets = table!(transaction, BUCKETS, ACTION);
        check_owner(&buckets, bucket, owner, ACTION)
    }

    /// The buckets `owner` owns, by name.
    pub fn list_buckets(&self, owner: &str) -> Result<Vec<(String, BucketRecord)>, GatewayError> {
        const ACTION: &str = "listing buckets";
        let transaction = self.read(ACTION)?;
        let buckets = table!(transaction, BUCKETS, ACTION);
        let mut list = Vec::new();
        for entry in buckets.iter().map_err(GatewayError::database(ACTION))? {
            let (name, bytes) = entry.map_err(GatewayError::database(ACTION))?;
            let record: BucketRecord = decode(bytes.value(), || format!("bucket {}", name.value()))?;
            if record.owner == owner {
                list.push((name.value().to_string(), record));
            }
        }
        Ok(list)
    }

    /// Deletes `bucket` if `owner` owns it and it holds no objects, versions and uploads.
    pub fn delete_bucket(&self, bucket: &str, owner: &str) -> Result<(), GatewayError> {
        const ACTION: &str = "deleting a bucket";
        let transaction = self.write(ACTION)?;
        {
            let mut buckets = table!(transaction, BUCKETS, ACTION);
            check_owner(&buckets, bucket, owner, ACTION)?;
            let objects = table!(transaction, OBJECTS, ACTION);
            let mut range = objects.range((bucket, "")..).map_err(GatewayError::database(ACTION))?;
            let has_object = match range.next() {
                Some(entry) => entry.map_err(GatewayError::database(ACTION))?.0.value().0 == bucket,
                None => false,
            };
            let uploads = table!(transaction, UPLOADS, ACTION);
            let mut has_upload = false;
            for entry in uploads.iter().map_err(GatewayError::database(ACTION))? {
                let (id, bytes) = entry.map_err(GatewayError::database(ACTION))?;
                let upload: UploadRecord = decode(bytes.value(), || format!("upload {}", id.value()))?;
                has_upload |= upload.bucket == bucket;
            }
            if has_object || has_upload || versions::has_versions(&transaction, bucket)? {
                return Err(GatewayError::BucketNotEmpty(bucket.into()));
            }
            buckets.remove(bucket).map_err(GatewayError::database(ACTION))?;
            versions::store_settings(&transaction, bucket, None)?;
        }
        transaction.commit().map_err(GatewayError::database(ACTION))
    }

    /// Makes `record` the object `bucket`/`key` (a new version in a versioned bucket), if
    /// `owner` owns the bucket ([`Db::write_object`] without a lock).
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        owner: &str,
        record: &ObjectRecord,
    ) -> Result<(), GatewayError> {
        self.write_object(bucket, key, owner, record, LockState::default()).map(drop)
    }

    /// The object `bucket`/`key`, if `owner` owns the bucket.
    pub fn get_object(&self, bucket: &str, key: &str, owner: &str) -> Result<ObjectRecord, GatewayError> {
        const ACTION: &str = "reading an object";
        let transaction = self.read(ACTION)?;
        let buckets = table!(transaction, BUCKETS, ACTION);
        check_owner(&buckets, bucket, owner, ACTION)?;
        let objects = table!(transaction, OBJECTS, ACTION);
        let bytes = objects
            .get((bucket, key))
            .map_err(GatewayError::database(ACTION))?
            .ok_or_else(|| GatewayError::NoSuchKey { bucket: bucket.into(), key: key.into() })?;
        record_format::decode_object(bytes.value(), || format!("object {bucket}/{key}"))
    }

    /// Lists `bucket`'s objects as `query` asks, if `owner` owns it.
    pub fn list_objects(
        &self,
        bucket: &str,
        owner: &str,
        query: &ListQuery<'_>,
    ) -> Result<Listing<ObjectRecord>, GatewayError> {
        const ACTION: &str = "listing objects";
        let transaction = self.read(ACTION)?;
        let buckets = table!(transaction, BUCKETS, ACTION);
        check_owner(&buckets, bucket, owner, ACTION)?;
        let objects = table!(transaction, OBJECTS, ACTION);
        let start = query.start();
        let range = objects.range((bucket, start)..).map_err(GatewayError::database(ACTION))?;
        let mut failure = None;
        let keys = range
            .map_while(|entry| match entry {
                Ok((key, value)) => {
                    let (in_bucket, key) = key.value();
                    (in_bucket == bucket).then(|| (key.to_string(), value.value().to_vec()))
                }
                Err(error) => {
                    failure = Some(error);
                    None
                }
            })
            .take_while(|(key, _)| key.starts_with(query.prefix));
        let listing = listing::list(keys, query);
        if let Some(error) = failure {
            return Err(GatewayError::database(ACTION)(error));
        }
        listing
            .try_map(|key, bytes| record_format::decode_object(&bytes, || format!("object {bucket}/{key}")))
    }

    /// Starts a multipart upload, if `owner` owns the bucket; answers its ID.
    pub fn create_upload(&self, owner: &str, record: &UploadRecord) -> Result<String, GatewayError> {
        self.create_locked_upload(owner, record, LockState::default())
    }

    /// Starts a multipart upload whose object will be locked by `lock` (kept beside the
    /// upload's record until it ends), if `owner` owns the bucket; answers its ID.
    pub fn create_locked_upload(
        &self,
        owner: &str,
        record: &UploadRecord,
        lock: LockState,
    ) -> Result<String, GatewayError> {
        const ACTION: &str = "creating a multipart upload";
        let id = hex::encode(rand::random::<[u8; 16]>());
        let transaction = self.write(ACTION)?;
        {
            let buckets = table!(transaction, BUCKETS, ACTION);
            check_owner(&buckets, &record.bucket, owner, ACTION)?;
            let mut uploads = table!(transaction, UPLOADS, ACTION);
            uploads.insert(id.as_str(), encode(record).as_slice()).map_err(GatewayError::database(ACTION))?;
            upload_locks::store_upload_lock(&transaction, &id, Some(lock))?;
        }
        transaction.commit().map_err(GatewayError::database(ACTION))?;
        Ok(id)
    }

    /// The upload `id` of `bucket`/`key`, if `owner` owns the bucket.
    pub fn get_upload(
        &self,
        id: &str,
        bucket: &str,
        key: &str,
        owner: &str,
    ) -> Result<UploadRecord, GatewayError> {
        const ACTION: &str = "reading a multipart upload";
        let transaction = self.read(ACTION)?;
        let buckets = table!(transaction, BUCKETS, ACTION);
        check_owner(&buckets, bucket, owner, ACTION)?;
        let uploads = table!(transaction, UPLOADS, ACTION);
        find_upload(&uploads, id, bucket, key, ACTION)
    }

    /// Records part `number` of upload `id` (replacing an earlier upload of that part).
    pub fn put_part(
        &self,
        id: &str,
        number: u32,
        bucket: &str,
        key: &str,
        owner: &str,
        part: &PartRecord,
    ) -> Result<(), GatewayError> {
        const ACTION: &str = "writing a part";
        let transaction = self.write(ACTION)?;
        {
            let buckets = table!(transaction, BUCKETS, ACTION);
            check_owner(&buckets, bucket, owner, ACTION)?;
            let uploads = table!(transaction, UPLOADS, ACTION);
            find_upload(&uploads, id, bucket, key, ACTION)?;
            let mut parts = table!(transaction, PARTS, ACTION);
            parts.insert((id, number), encode(part).as_slice()).map_err(GatewayError::database(ACTION))?;
        }
        transaction.commit().map_err(GatewayError::database(ACTION))
    }

    /// The parts of upload `id`, by number.
    pub fn list_parts(
        &self,
        id: &str,
        bucket: &str,
        key: &str,
        owner: &str,
    ) -> Result<Vec<(u32, PartRecord)>, GatewayError> {
        const ACTION: &str = "listing parts";
        let transaction = self.read(ACTION)?;
        let buckets = table!(transaction, BUCKETS, ACTION);
        check_owner(&buckets, bucket, owner, ACTION)?;
        let uploads = table!(transaction, UPLOADS, ACTION);
        find_upload(&uploads, id, bucket, key, ACTION)?;
        let parts = table!(transaction, PARTS, ACTION);
        let mut list = Vec::new();
        for entry in parts.range((id, 0)..=(id, u32::MAX)).map_err(GatewayError::database(ACTION))? {
            let (number, bytes) = entry.map_err(GatewayError::database(ACTION))?;
            let number = number.value().1;
            let what = || format!("part {number} of upload {id}");
            list.push((number, record_format::decode_part(bytes.value(), what)?));
        }
        Ok(list)
    }

    /// Ends upload `id`: removes it and its parts and, if `object` is given, makes it the
    /// object (a new version in a versioned bucket, locked as the upload asked),
    /// all in one transaction (a completion either happens whole or not at all); answers the
    /// new version's ID.
    pub fn finish_upload(
        &self,
        id: &str,
        bucket: &str,
        key: &str,
        owner: &str,
        object: Option<&ObjectRecord>,
    ) -> Result<Option<String>, GatewayError> {
        const ACTION: &str = "ending a multipart upload";
        let transaction = self.write(ACTION)?;
        let version = {
            let buckets = table!(transaction, BUCKETS, ACTION);
            check_owner(&buckets, bucket, owner, ACTION)?;
            let mut uploads = table!(transaction, UPLOADS, ACTION);
            find_upload(&uploads, id, bucket, key, ACTION)?;
            uploads.remove(id).map_err(GatewayError::database(ACTION))?;
            let mut parts = table!(transaction, PARTS, ACTION);
            parts
                .retain_in((id, 0)..=(id, u32::MAX), |_, _| false)
                .map_err(GatewayError::database(ACTION))?;
            drop((buckets, uploads, parts));
            let lock = upload_locks::upload_lock_in(&transaction, id)?;
            upload_locks::store_upload_lock(&transaction, id, None)?;
            match object {
                Some(object) => {
                    let settings = versions::settings_in(&transaction, bucket)?;
                    versions::add_version(&transaction, bucket, key, &settings, Some(object), lock, false)?
                }
                None => None,
            }
        };
        transaction.commit().map_err(GatewayError::database(ACTION))?;
        Ok(version)
    }
}

fn check_owner(
    buckets: &impl redb::ReadableTable<&'static str, &'static [u8]>,
    bucket: &str,
    owner: &str,
    action: &'static str,
) -> Result<BucketRecord, GatewayError> {
    let bytes = buckets
        .get(bucket)
        .map_err(GatewayError::database(action))?
        .ok_or_else(|| GatewayError::NoSuchBucket(bucket.into()))?;
    let record: BucketRecord = decode(bytes.value(), || format!("bucket {bucket}"))?;
    if record.owner != owner {
        return Err(GatewayError::AccessDenied(bucket.into()));
    }
    Ok(record)
}

fn find_upload(
    uploads: &impl redb::ReadableTable<&'static str, &'static [u8]>,
    id: &str,
    bucket: &str,
    key: &str,
    action: &'static str,
) -> Result<UploadRecord, GatewayError> {
    let bytes = uploads
        .get(id)
        .map_err(GatewayError::database(action))?
        .ok_or_else(|| GatewayError::NoSuchUpload(id.into()))?;
    let upload: UploadRecord = decode(bytes.value(), || format!("upload {id}"))?;
    if upload.bucket != bucket || upload.key != key {
        return Err(GatewayError::NoSuchUpload(id.into()));
    }
    Ok(upload)
}
