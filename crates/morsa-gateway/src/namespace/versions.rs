//! Versions: a bucket's versioning and Object Lock settings, and every version of its keys
//! (objects and delete markers) with their locks.
//!
//! The objects table always holds each key's current object, so reads without a version ID
//! and ListObjects read only it. In a bucket whose versioning was ever turned on, every object
//! is also a version in the versions table, newest first (objects written before are moved
//! there as version `null` when versioning is first turned on); the objects table follows the
//! newest version and holds nothing for a key whose newest version is a delete marker.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::lock::{DefaultRetention, LockState};
use super::{ObjectRecord, check_owner};
use crate::GatewayError;
use crate::db::{BUCKET_SETTINGS, BUCKETS, Db, OBJECTS, VERSIONS, decode, encode, now_ms};

/// The version ID of an object written while versioning was off or suspended.
pub const NULL_VERSION: &str = "null";

/// A bucket's versioning state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    /// Never turned on: a PUT replaces the object, a DELETE removes it.
    #[default]
    Unversioned,
    /// Every PUT adds a version, every DELETE without a version ID a delete marker.
    Enabled,
    /// Turned on, then suspended: writes replace the `null` version; older versions stay.
    Suspended,
}

/// A bucket's settings beside its record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketSettings {
    /// Its versioning.
    pub versioning: Versioning,
    /// Whether Object Lock is on (it keeps versioning on).
    pub object_lock: bool,
    /// The retention of new versions that name none.
    pub default_retention: Option<DefaultRetention>,
}

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Its ID (`null` or 16 hex digits).
    pub version_id: String,
    /// The object, or `None` for a delete marker.
    pub object: Option<ObjectRecord>,
    /// When it was written (ms since the Unix epoch).
    pub modified_ms: u64,
    /// What locks it.
    pub lock: LockState,
}

/// An object as a read finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundVersion {
    /// Its version ID (`None` in a bucket never versioned).
    pub version_id: Option<String>,
    /// The object.
    pub object: ObjectRecord,
    /// What locks it.
    pub lock: LockState,
    /// Whether its bucket has Object Lock.
    pub object_lock: bool,
}

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removal {
    /// The version removed or the delete marker added.
    pub version_id: Option<String>,
    /// Whether that version is a delete marker.
    pub delete_marker: bool,
}

pub(super) type VersionKey = (&'static str, &'static str, u64);

/// A new version's ID from its order.
fn version_id(order: u64) -> String {
    format!("{order:016x}")
}

/// The order a version ID names, if it is one the gateway gives.
fn order_of(version_id: &str) -> Option<u64> {
    (version_id.len() == 16).then(|| u64::from_str_radix(version_id, 16).ok()).flatten()
}

/// The order of a version written at `ms`: newer versions sort first.
fn order_at(ms: u64) -> u64 {
    u64::MAX - ms.saturating_mul(1000)
}

pub(super) fn settings_of(
    settings: &impl ReadableTable<&'static str, &'static [u8]>,
    bucket: &str,
    action: &'static str,
) -> Result<BucketSettings, GatewayError> {
    match settings.get(bucket).map_err(GatewayError::database(action))? {
        Some(bytes) => decode(bytes.value(), || format!("settings of bucket {bucket}")),
        None => Ok(BucketSettings::default()),
    }
}

/// The versions of `bucket`/`key`, newest first.
pub(super) fn versions_of(
    versions: &impl ReadableTable<VersionKey, &'static [u8]>,
    bucket: &str,
    key: &str,
    action: &'static str,
) -> Result<Vec<(u64, VersionRecord)>, GatewayError> {
    let mut found = Vec::new();
    let range =
        versions.range((bucket, key, 0)..=(bucket, key, u64::MAX)).map_err(GatewayError::database(action))?;
    for entry in range {
        let (order, bytes) = entry.map_err(GatewayError::database(action))?;
        let record = decode(bytes.value(), || format!("version of {bucket}/{key}"))?;
        found.push((order.value().2, record));
    }
    Ok(found)
}

/// The version `id` among `versions`.
fn find(versions: Vec<(u64, VersionRecord)>, id: &str) -> Option<(u64, VersionRecord)> {
    let order = order_of(id);
    versions
        .into_iter()
        .find(|(at, record)| record.version_id == id && (order.is_none() || order == Some(*at)))
}

/// Adds a version of `bucket`/`key` as `settings` say (or replaces the object in a bucket
/// never versioned): `object`, or a delete marker; answers its version ID.
pub(super) fn add_version(
    transaction: &WriteTransaction,
    bucket: &str,
    key: &str,
    settings: &BucketSettings,
    object: Option<&ObjectRecord>,
    lock: LockState,
    bypass_governance: bool,
) -> Result<Option<String>, GatewayError> {
    const ACTION: &str = "writing a version";
    let now = now_ms();
    let mut objects = transaction.open_table(OBJECTS).map_err(GatewayError::database(ACTION))?;
    match object {
        Some(object) => objects.insert((bucket, key), encode(object).as_slice()).map(drop),
        None => objects.remove((bucket, key)).map(drop),
    }
    .map_err(GatewayError::database(ACTION))?;
    if settings.versioning == Versioning::Unversioned {
        return Ok(None);
    }
    let mut versions = transaction.open_table(VERSIONS).map_err(GatewayError::database(ACTION))?;
    let existing = versions_of(&versions, bucket, key, ACTION)?;
    let newest = existing.first().map(|(order, _)| *order);
    let version_id = match settings.versioning {
        Versioning::Suspended => {
            if let Some((order, null)) = find(existing, NULL_VERSION) {
                if let Some(reason) = null.lock.refusal(now, bypass_governance) {
                    return Err(GatewayError::Locked { key: key.into(), reason });
                }
                versions.remove((bucket, key, order)).map_err(GatewayError::database(ACTION))?;
            }
            None
        }
        _ => Some(()),
    };
    let order = newest.map_or(order_at(now), |newest| order_at(now).min(newest.saturating_sub(1)));
    let version_id = version_id.map_or_else(|| NULL_VERSION.to_string(), |()| self::version_id(order));
    let record =
        VersionRecord { version_id: version_id.clone(), object: object.cloned(), modified_ms: now, lock };
    versions
        .insert((bucket, key, order), encode(&record).as_slice())
        .map_err(GatewayError::database(ACTION))?;
    Ok(Some(version_id))
}

/// Makes the objects table follow the newest version of `bucket`/`key`.
fn follow_newest(transaction: &WriteTransaction, bucket: &str, key: &str) -> Result<(), GatewayError> {
    const ACTION: &str = "updating the current version";
    let versions = transaction.open_table(VERSIONS).map_err(GatewayError::database(ACTION))?;
    let newest = versions_of(&versions, bucket, key, ACTION)?.into_iter().next();
    let mut objects = transaction.open_table(OBJECTS).map_err(GatewayError::database(ACTION))?;
    match newest.and_then(|(_, version)| version.object) {
        Some(object) => objects.insert((bucket, key), encode(&object).as_slice()).map(drop),
        None => objects.remove((bucket, key)).map(drop),
    }
    .map_err(GatewayError::database(ACTION))
}

impl Db {
    /// `bucket`'s settings, if `owner` owns it.
    pub fn bucket_settings(&self, bucket: &str, owner: &str) -> Result<BucketSettings, GatewayError> {
        const ACTION: &str = "reading a bucket's settings";
        let transaction = self.read(ACTION)?;
        let buckets = transaction.open_table(BUCKETS).map_err(GatewayError::database(ACTION))?;
        check_owner(&buckets, bucket, owner, ACTION)?;
        let settings = transaction.open_table(BUCKET_SETTINGS).map_err(GatewayError::database(ACTION))?;
        settings_of(&settings, bucket, ACTION)
    }

    /// Changes `bucket`'s settings with `change`, if `owner` owns it. Turning versioning on
    /// (or suspended) the first time makes every object of the bucket its key's `null`
    /// version; Object Lock keeps versioning on.
    pub fn update_bucket_settings(
        &self,
        bucket: &str,
        owner: &str,
        change: impl FnOnce(&mut BucketSettings) -> Result<(), GatewayError>,
    ) -> Result<BucketSettings, GatewayError> {
        const ACTION: &str = "changing a bucket's settings";
        let transaction = self.write(ACTION)?;
        let settings = {
            let buckets = transaction.open_table(BUCKETS).map_err(GatewayError::database(ACTION))?;
            check_owner(&buckets, bucket, owner, ACTION)?;
            let mut table =
                transaction.open_table(BUCKET_SETTINGS).map_err(GatewayError::database(ACTION))?;
            let old = settings_of(&table, bucket, ACTION)?;
            let mut new = old;
            change(&mut new)?;
            if new.object_lock && new.versioning != Versioning::Enabled {
                return Err(GatewayError::InvalidBucketState(format!(
                    "bucket {bucket:?} has Object Lock: its versioning stays enabled"
                )));
            }
            if old.versioning == Versioning::Unversioned && new.versioning != Versioning::Unversioned {
                version_every_object(&transaction, bucket)?;
            }
            table.insert(bucket, encode(&new).as_slice()).map_err(GatewayError::database(ACTION))?;
            new
        };
        transaction.commit().map_err(GatewayError::database(ACTION))?;
        Ok(settings)
    }

    /// Writes `object` as the new current version of `bucket`/`key` (a new version in a
    /// versioned bucket), locked by `lock`; answers its version ID. A lock needs a bucket
    /// with Object Lock; in a suspended bucket a locked `null` version is not replaced.
    pub fn write_object(
        &self,
        bucket: &str,
        key: &str,
        owner: &str,
        object: &ObjectRecord,
        lock: LockState,
    ) -> Result<Option<String>, GatewayError> {
        const ACTION: &str = "writing an object";
        let transaction = self.write(ACTION)?;
        let version = {
            let buckets = transaction.open_table(BUCKETS).map_err(GatewayError::database(ACTION))?;
            check_owner(&buckets, bucket, owner, ACTION)?;
            let settings = transaction.open_table(BUCKET_SETTINGS).map_err(GatewayError::database(ACTION))?;
            let settings = settings_of(&settings, bucket, ACTION)?;
            if lock != LockState::default() && !settings.object_lock {
                return Err(GatewayError::InvalidRequest(format!(
                    "bucket {bucket:?} is missing an Object Lock configuration"
                )));
            }
            add_version(&transaction, bucket, key, &settings, Some(object), lock, false)?
        };
        transaction.commit().map_err(GatewayError::database(ACTION))?;
        Ok(version)
    }

    /// The object `bucket`/`key`: its version `version_id`, or its current one.
    pub fn find_object(
        &self,
        bucket: &str,
        key: &str,
        owner: &str,
        version_id: Option<&str>,
    ) -> Result<FoundVersion, GatewayError> {
        const ACTION: &str = "reading a version";
        let transaction = self.read(ACTION)?;
        let buckets = transaction.open_table(BUCKETS).map_err(GatewayError::database(ACTION))?;
        check_owner(&buckets, bucket, owner, ACTION)?;
        let settings = transaction.open_table(BUCKET_SETTINGS).map_err(GatewayError::database(ACTION))?;
        let no_key = || GatewayError::NoSuchKey { bucket: bucket.into(), key: key.into() };
        let no_version = |id: &str| GatewayError::NoSuchVersion { key: key.into(), version: id.into() };
        let bucket_settings = settings_of(&settings, bucket, ACTION)?;
        let object_lock = bucket_settings.object_lock;
        if bucket_settings.versioning == Versioning::Unversioned {
            if let Some(id) = version_id.filter(|id| *id != NULL_VERSION) {
                return Err(no_version(id));
            }
            drop((buckets, settings, transaction));
            let object = self.get_object(bucket, key, owner)?;
            return Ok(FoundVersion { version_id: None, object, lock: LockState::default(), object_lock });
        }
        let versions = transaction.open_table(VERSIONS).map_err(GatewayError::database(ACTION))?;
        let all = versions_of(&versions, bucket, key, ACTION)?;
        let (_, version) = match version_id {
            None => all.into_iter().next().ok_or_else(no_key)?,
            Some(id) => find(all, id).ok_or_else(|| no_version(id))?,
        };
        match version.object {
            Some(object) => Ok(FoundVersion {
                version_id: Some(version.version_id),
                object,
                lock: version.lock,
                object_lock,
            }),
            None if version_id.is_none() => Err(no_key()),
            None => Err(GatewayError::DeleteMarker { key: key.into(), version: version.version_id }),
        }
    }

    /// Deletes `bucket`/`key`: its version `version_id`, or (without one) the object of a
    /// bucket never versioned, or else by adding a delete marker. A locked version is refused
    /// ([`LockState::refusal`]). Deleting what does not exist succeeds (S3 deletes are idempotent).
    pub fn remove_object(
        &self,
        bucket: &str,
        key: &str,
        owner: &str,
        version_id: Option<&str>,
        bypass_governance: bool,
    ) -> Result<Removal, GatewayError> {
        const ACTION: &str = "deleting an object";
        let transaction = self.write(ACTION)?;
        let removal = {
            let buckets = transaction.open_table(BUCKETS).map_err(GatewayError::database(ACTION))?;
            check_owner(&buckets, bucket, owner, ACTION)?;
            let settings = transaction.open_table(BUCKET_SETTINGS).map_err(GatewayError::database(ACTION))?;
            let settings = settings_of(&settings, bucket, ACTION)?;
            match (settings.versioning, version_id) {
                (Versioning::Unversioned, Some(id)) if id != NULL_VERSION => Removal::default(),
                (Versioning::Unversioned, _) => {
                    let mut objects =
                        transaction.open_table(OBJECTS).map_err(GatewayError::database(ACTION))?;
                    objects.remove((bucket, key)).map_err(GatewayError::database(ACTION))?;
                    Removal::default()
                }
                (_, None) => {
                    let id = add_version(
                        &transaction,
                        bucket,
                        key,
                        &settings,
                        None,
                        LockState::default(),
                        bypass_governance,
                    )?;
                    Removal { version_id: id, delete_marker: true }
                }
                (_, Some(id)) => {
                    let mut versions =
                        transaction.open_table(VERSIONS).map_err(GatewayError::database(ACTION))?;
                    match find(versions_of(&versions, bucket, key, ACTION)?, id) {
                        None => Removal::default(),
                        Some((order, version)) => {
                            if let Some(reason) = version.lock.refusal(now_ms(), bypass_governance) {
                                return Err(GatewayError::Locked { key: key.into(), reason });
                            }
                            versions.remove((bucket, key, order)).map_err(GatewayError::database(ACTION))?;
                            drop(versions);
                            follow_newest(&transaction, bucket, key)?;
                            Removal {
                                version_id: Some(version.version_id),
                                delete_marker: version.object.is_none(),
                            }
                        }
                    }
                }
            }
        };
        transaction.commit().map_err(GatewayError::database(ACTION))?;
        Ok(removal)
    }

    /// Changes the lock of `bucket`/`key`'s version `version_id` (or its current one) with
    /// `change`, which sees the lock as it is; the bucket must have Object Lock.
    pub fn update_lock(
        &self,
        bucket: &str,
        key: &str,
        owner: &str,
        version_id: Option<&str>,
        change: impl FnOnce(&mut LockState) -> Result<(), GatewayError>,
    ) -> Result<LockState, GatewayError> {
        const ACTION: &str = "changing a version's lock";
        let transaction = self.write(ACTION)?;
        let lock = {
            let buckets = transaction.open_table(BUCKETS).map_err(GatewayError::database(ACTION))?;
            check_owner(&buckets, bucket, owner, ACTION)?;
            let settings = transaction.open_table(BUCKET_SETTINGS).map_err(GatewayError::database(ACTION))?;
            if !settings_of(&settings, bucket, ACTION)?.object_lock {
                return Err(GatewayError::InvalidRequest(format!(
                    "bucket {bucket:?} is missing an Object Lock configuration"
                )));
            }
            let mut versions = transaction.open_table(VERSIONS).map_err(GatewayError::database(ACTION))?;
            let all = versions_of(&versions, bucket, key, ACTION)?;
            let found = match version_id {
                None => all.into_iter().next(),
                Some(id) => find(all, id),
            };
            let (order, mut version) = found.ok_or_else(|| match version_id {
                Some(id) => GatewayError::NoSuchVersion { key: key.into(), version: id.into() },
                None => GatewayError::NoSuchKey { bucket: bucket.into(), key: key.into() },
            })?;
            if version.object.is_none() {
                return Err(GatewayError::DeleteMarker { key: key.into(), version: version.version_id });
            }
            change(&mut version.lock)?;
            versions
                .insert((bucket, key, order), encode(&version).as_slice())
                .map_err(GatewayError::database(ACTION))?;
            version.lock
        };
        transaction.commit().map_err(GatewayError::database(ACTION))?;
        Ok(lock)
    }
}

/// Makes every object of `bucket` its key's `null` version.
fn version_every_object(transaction: &WriteTransaction, bucket: &str) -> Result<(), GatewayError> {
    const ACTION: &str = "versioning a bucket's objects";
    let objects = transaction.open_table(OBJECTS).map_err(GatewayError::database(ACTION))?;
    let mut versions = transaction.open_table(VERSIONS).map_err(GatewayError::database(ACTION))?;
    for entry in objects.range((bucket, "")..).map_err(GatewayError::database(ACTION))? {
        let (name, bytes) = entry.map_err(GatewayError::database(ACTION))?;
        let (in_bucket, key) = name.value();
        if in_bucket != bucket {
            break;
        }
        let object = super::record_format::decode_object(bytes.value(), || format!("object {bucket}/{key}"))?;
        let record = VersionRecord {
            version_id: NULL_VERSION.into(),
            modified_ms: object.modified_ms,
            object: Some(object),
            lock: LockState::default(),
        };
        let order = order_at(record.modified_ms);
        versions
            .insert((bucket, key, order), encode(&record).as_slice())
            .map_err(GatewayError::database(ACTION))?;
    }
    Ok(())
}

/// Whether `bucket` has versions (old ones or delete markers count: S3 keeps such a bucket).
pub(super) fn has_versions(transaction: &WriteTransaction, bucket: &str) -> Result<bool, GatewayError> {
    const ACTION: &str = "reading a bucket's versions";
    let versions = transaction.open_table(VERSIONS).map_err(GatewayError::database(ACTION))?;
    let mut range = versions.range((bucket, "", 0)..).map_err(GatewayError::database(ACTION))?;
    Ok(match range.next() {
        Some(entry) => entry.map_err(GatewayError::database(ACTION))?.0.value().0 == bucket,
        None => false,
    })
}

/// Writes `settings` for the new `bucket` (nothing for the default) and forgets them with it.
pub(super) fn store_settings(
    transaction: &WriteTransaction,
    bucket: &str,
    settings: Option<&BucketSettings>,
) -> Result<(), GatewayError> {
    const ACTION: &str = "writing a bucket's settings";
    let mut table = transaction.open_table(BUCKET_SETTINGS).map_err(GatewayError::database(ACTION))?;
    match settings.filter(|settings| **settings != BucketSettings::default()) {
        Some(settings) => table.insert(bucket, encode(settings).as_slice()).map(drop),
        None => table.remove(bucket).map(drop),
    }
    .map_err(GatewayError::database(ACTION))
}

/// The settings of `bucket` in a write transaction.
pub(super) fn settings_in(
    transaction: &WriteTransaction,
    bucket: &str,
) -> Result<BucketSettings, GatewayError> {
    const ACTION: &str = "reading a bucket's settings";
    let table = transaction.open_table(BUCKET_SETTINGS).map_err(GatewayError::database(ACTION))?;
    settings_of(&table, bucket, ACTION)
}

#[cfg(test)]
#[path = "versions_tests.rs"]
mod tests;
