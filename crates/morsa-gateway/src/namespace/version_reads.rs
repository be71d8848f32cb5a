//! Reading versions in bulk: a bucket's version listing (ListObjectVersions) and the chunk
//! blobs every retained version needs kept stored.

use std::collections::BTreeMap;

use redb::ReadableTable as _;
use redstuff::BlobId;

use super::versions::{NULL_VERSION, VersionRecord, Versioning, settings_of};
use super::{ObjectRecord, check_owner};
use crate::GatewayError;
use crate::db::{BUCKET_SETTINGS, BUCKETS, Db, OBJECTS, VERSIONS, decode};

/// One entry of a version listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVersion {
    /// Its version ID.
    pub version_id: String,
    /// Whether it is its key's newest.
    pub is_latest: bool,
    /// When it was written.
    pub modified_ms: u64,
    /// The object, or `None` for a delete marker.
    pub object: Option<ObjectRecord>,
}

impl Db {
    /// `bucket`'s versions as `query` asks (in a bucket never versioned, its objects as
    /// version `null`), if `owner` owns it.
    pub fn list_versions(
        &self,
        bucket: &str,
        owner: &str,
        query: &crate::listing::VersionQuery<'_>,
    ) -> Result<crate::listing::VersionListing<ListedVersion>, GatewayError> {
        const ACTION: &str = "listing versions";
        let transaction = self.read(ACTION)?;
        let buckets = transaction.open_table(BUCKETS).map_err(GatewayError::database(ACTION))?;
        check_owner(&buckets, bucket, owner, ACTION)?;
        let settings = transaction.open_table(BUCKET_SETTINGS).map_err(GatewayError::database(ACTION))?;
        let start = query.start();
        let mut failure = None;
        let listing = if settings_of(&settings, bucket, ACTION)?.versioning == Versioning::Unversioned {
            let objects = transaction.open_table(OBJECTS).map_err(GatewayError::database(ACTION))?;
            let range = objects.range((bucket, start)..).map_err(GatewayError::database(ACTION))?;
            let entries = range.map_while(|entry| match entry {
                Ok((name, bytes)) => {
                    let (in_bucket, key) = name.value();
                    (in_bucket == bucket).then(|| {
                        let object = super::record_format::decode_object(bytes.value(), || {
                            format!("object {bucket}/{key}")
                        });
                        (
                            key.to_string(),
                            NULL_VERSION.to_string(),
                            object.map(|object| ListedVersion {
                                version_id: NULL_VERSION.into(),
                                is_latest: true,
                                modified_ms: object.modified_ms,
                                object: Some(object),
                            }),
                        )
                    })
                }
                Err(error) => {
                    failure = Some(error);
                    None
                }
            });
            crate::listing::list_versions(
                entries.take_while(|(key, _, _)| key.starts_with(query.prefix)),
                query,
            )
        } else {
            let versions = transaction.open_table(VERSIONS).map_err(GatewayError::database(ACTION))?;
            let range = versions.range((bucket, start, 0)..).map_err(GatewayError::database(ACTION))?;
            let mut previous_key: Option<String> = None;
            let entries = range.map_while(|entry| match entry {
                Ok((name, bytes)) => {
                    let (in_bucket, key, _) = name.value();
                    (in_bucket == bucket).then(|| {
                        let is_latest = previous_key.as_deref() != Some(key);
                        previous_key = Some(key.to_string());
                        let version: Result<VersionRecord, _> =
                            decode(bytes.value(), || format!("version of {bucket}/{key}"));
                        let id =
                            version.as_ref().map(|version| version.version_id.clone()).unwrap_or_default();
                        (
                            key.to_string(),
                            id,
                            version.map(|version| ListedVersion {
                                version_id: version.version_id,
                                is_latest,
                                modified_ms: version.modified_ms,
                                object: version.object,
                            }),
                        )
                    })
                }
                Err(error) => {
                    failure = Some(error);
                    None
                }
            });
            crate::listing::list_versions(
                entries.take_while(|(key, _, _)| key.starts_with(query.prefix)),
                query,
            )
        };
        if let Some(error) = failure {
            return Err(GatewayError::database(ACTION)(error));
        }
        listing.try_map(|version| version)
    }

    /// Every chunk blob of a version under a retention still active at `now_ms`, with the
    /// latest date it must stay stored until.
    pub fn retained_blobs(&self, now_ms: u64) -> Result<BTreeMap<BlobId, u64>, GatewayError> {
        const ACTION: &str = "reading retained versions";
        let transaction = self.read(ACTION)?;
        let versions = transaction.open_table(VERSIONS).map_err(GatewayError::database(ACTION))?;
        let mut blobs = BTreeMap::new();
        for entry in versions.iter().map_err(GatewayError::database(ACTION))? {
            let (name, bytes) = entry.map_err(GatewayError::database(ACTION))?;
            let version: VersionRecord = decode(bytes.value(), || format!("version of {:?}", name.value()))?;
            let (Some(retention), Some(object)) = (version.lock.retention, version.object) else {
                continue;
            };
            if retention.active(now_ms) {
                for chunk in object.chunks {
                    let until = blobs.entry(chunk.blob_id).or_insert(0);
                    *until = retention.until_ms.max(*until);
                }
            }
        }
        Ok(blobs)
    }
}
