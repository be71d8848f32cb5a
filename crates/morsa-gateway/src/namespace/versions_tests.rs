//! The namespace's versions against a model of S3's: every write and delete of a versioned
//! bucket is a version, the current object follows the newest, and locks refuse deletes.

use std::collections::BTreeMap;

use redstuff::BlobId;

use super::*;
use crate::listing::VersionQuery;
use crate::namespace::{Retention, RetentionMode};

fn object(etag: &str) -> ObjectRecord {
    ObjectRecord {
        chunks: vec![],
        size: 0,
        etag: etag.into(),
        content_type: None,
        metadata: BTreeMap::new(),
        modified_ms: 1,
        checksum: None,
        parts: 0,
    }
}

fn db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("gateway.redb")).unwrap();
    db.create_bucket("b", "alice").unwrap();
    (dir, db)
}

fn listed(db: &Db) -> Vec<(String, String, Option<String>, bool)> {
    let query = VersionQuery {
        prefix: "",
        delimiter: None,
        key_marker: None,
        version_id_marker: None,
        max_keys: 100,
    };
    let listing = db.list_versions("b", "alice", &query).unwrap();
    listing
        .versions
        .into_iter()
        .map(|(key, version)| {
            (key, version.version_id, version.object.map(|object| object.etag), version.is_latest)
        })
        .collect()
}

#[test]
fn versioning_keeps_every_write_and_a_delete_is_a_marker() {
    let (_dir, db) = db();
    db.put_object("b", "k", "alice", &object("before")).unwrap();
    db.update_bucket_settings("b", "alice", |settings| {
        settings.versioning = Versioning::Enabled;
        Ok(())
    })
    .unwrap();
    let second =
        db.write_object("b", "k", "alice", &object("second"), LockState::default()).unwrap().unwrap();
    assert_eq!(db.get_object("b", "k", "alice").unwrap().etag, "second");
    let marker = db.remove_object("b", "k", "alice", None, false).unwrap();
    assert!(marker.delete_marker);
    let marker_id = marker.version_id.unwrap();
    assert!(matches!(db.get_object("b", "k", "alice"), Err(GatewayError::NoSuchKey { .. })));
    assert_eq!(
        listed(&db),
        [
            ("k".into(), marker_id.clone(), None, true),
            ("k".into(), second.clone(), Some("second".into()), false),
            ("k".into(), NULL_VERSION.into(), Some("before".into()), false),
        ]
    );
    assert_eq!(db.find_object("b", "k", "alice", Some(NULL_VERSION)).unwrap().object.etag, "before");
    assert!(matches!(
        db.find_object("b", "k", "alice", Some(&marker_id)),
        Err(GatewayError::DeleteMarker { .. })
    ));
    // Removing the marker brings the newest object back.
    db.remove_object("b", "k", "alice", Some(&marker_id), false).unwrap();
    assert_eq!(db.get_object("b", "k", "alice").unwrap().etag, "second");
    db.remove_object("b", "k", "alice", Some(&second), false).unwrap();
    assert_eq!(db.get_object("b", "k", "alice").unwrap().etag, "before");
    assert!(matches!(db.delete_bucket("b", "alice"), Err(GatewayError::BucketNotEmpty(_))));
}

#[test]
fn a_locked_version_is_not_deleted_and_its_blobs_are_retained() {
    let (_dir, db) = db();
    let settings =
        BucketSettings { versioning: Versioning::Enabled, object_lock: true, default_retention: None };
    db.create_bucket_with("locked", "alice", &settings).unwrap();
    let until_ms = now_ms() + 3_600_000;
    let mut locked = object("locked");
    locked.chunks = vec![super::super::ChunkRef {
        blob_id: BlobId::from_root(1, &[7; 32]),
        size: 1,
        sealing: super::super::Sealing::Plain,
        packed: None,
    }];
    let retention = Some(Retention { mode: RetentionMode::Compliance, until_ms });
    let id = db
        .write_object("locked", "k", "alice", &locked, LockState { retention, legal_hold: false })
        .unwrap()
        .unwrap();
    let refused = db.remove_object("locked", "k", "alice", Some(&id), true).unwrap_err();
    assert_eq!(refused.s3_code(), s3s::S3ErrorCode::AccessDenied, "{refused}");
    // A delete without a version only adds a marker: the locked version stays.
    assert!(db.remove_object("locked", "k", "alice", None, false).unwrap().delete_marker);
    assert_eq!(db.find_object("locked", "k", "alice", Some(&id)).unwrap().object.etag, "locked");
    assert_eq!(
        db.retained_blobs(now_ms()).unwrap(),
        BTreeMap::from([(BlobId::from_root(1, &[7; 32]), until_ms)])
    );
    assert!(db.retained_blobs(until_ms).unwrap().is_empty(), "nothing is retained after the date");
    // A lock needs a bucket with Object Lock; Object Lock keeps versioning on.
    let lock = LockState { retention, legal_hold: false };
    assert!(matches!(
        db.write_object("b", "k", "alice", &locked, lock),
        Err(GatewayError::InvalidRequest(_))
    ));
    let suspend = db.update_bucket_settings("locked", "alice", |settings| {
        settings.versioning = Versioning::Suspended;
        Ok(())
    });
    assert!(matches!(suspend, Err(GatewayError::InvalidBucketState(_))));
}
