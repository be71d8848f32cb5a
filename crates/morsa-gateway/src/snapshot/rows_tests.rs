use std::collections::BTreeMap;

use super::*;
use crate::namespace::{ChunkRef, ObjectRecord, Sealing};
use crate::snapshot::format::{self, Piece, SnapshotKey};

fn object(size: u64) -> ObjectRecord {
    ObjectRecord {
        chunks: vec![ChunkRef {
            blob_id: redstuff::BlobId::from_root(1, &[3; 32]),
            size,
            sealing: Sealing::Age,
            packed: None,
        }],
        size,
        etag: "abc".into(),
        content_type: None,
        metadata: BTreeMap::new(),
        modified_ms: 5,
        checksum: None,
        parts: 0,
    }
}

fn record() -> SnapshotRecord {
    SnapshotRecord {
        sequence: 3,
        blob_id: redstuff::BlobId::from_root(1, &[9; 32]),
        created_ms: 7,
        tables_sha256: [1; 32],
        end_epoch: 12,
        parts: vec![redstuff::BlobId::from_root(1, &[8; 32])],
    }
}

#[test]
fn a_namespace_of_many_keys_goes_through_small_parts_and_comes_back_the_same() {
    const KEYS: usize = 20_000;
    const PART: usize = 16 << 10;
    let dir = tempfile::tempdir().unwrap();
    // A namespace of many keys, written in one transaction, and a few written the usual way.
    let source_path = dir.path().join("source").join("gateway.redb");
    let bulk = Restoring::start(&source_path).unwrap();
    let stored = crate::db::encode(&object(10));
    bulk.write(
        (0..KEYS).map(|index| {
            Row::Object("big".into(), format!("dir{}/file-{index:06}", index % 7), stored.clone())
        }),
    )
    .unwrap();
    bulk.finish(&record()).unwrap();
    let source = Db::open(&source_path).unwrap();
    source.create_user("alice").unwrap();
    source.create_bucket("big", "alice").unwrap();
    source.put_object("big", "last", "alice", &object(20)).unwrap();

    // Cut into parts and sealed as a snapshot's; no part passes the size by more than a row.
    let key = SnapshotKey::derive(&morsa_core::AccountKey::from_seed([7; 32]));
    let mut blobs = Vec::new();
    let (sha256, counts) = cut(&source, PART, |part| {
        assert!(part.len() < PART + 256, "a part of {} bytes", part.len());
        let number = u32::try_from(blobs.len() + 1).unwrap();
        blobs.push(format::seal(&key, 3, 7, Piece::Part(number), &part));
        Ok(())
    })
    .unwrap();
    assert_eq!(counts, TableCounts { users: 1, buckets: 1, objects: KEYS + 1, uploads: 0 });
    assert!(blobs.len() > 50, "{} parts", blobs.len());
    let (again, _) = cut(&source, PART, |_| Ok(())).unwrap();
    assert_eq!(again, sha256, "an unchanged namespace hashes the same");

    // Opened and written back a part at a time: the same namespace.
    let restored_path = dir.path().join("restored").join("gateway.redb");
    let restoring = Restoring::start(&restored_path).unwrap();
    let mut hasher = Sha256::new();
    for (number, blob) in (1u32..).zip(&blobs) {
        let (header, bytes) = format::open(&key, blob).unwrap();
        assert_eq!(header.piece, Piece::Part(number));
        hasher.update(&bytes);
        restoring.write(decode_part(&bytes).unwrap()).unwrap();
    }
    assert_eq!(<[u8; 32]>::from(hasher.finalize()), sha256);
    assert!(!restored_path.exists(), "the database is moved into place only once complete");
    restoring.finish(&record()).unwrap();
    let restored = Db::open(&restored_path).unwrap();
    assert_eq!(restored.snapshot_tables().unwrap(), source.snapshot_tables().unwrap());
    assert_eq!(restored.last_snapshot().unwrap(), Some(record()));
    assert_eq!(restored.get_object("big", "dir3/file-000010", "alice").unwrap(), object(10));
    let (restored_sha256, _) = cut(&restored, PART, |_| Ok(())).unwrap();
    assert_eq!(restored_sha256, sha256);
    drop(restored);
    let refused = Restoring::start(&restored_path).err().unwrap();
    assert!(refused.to_string().contains("move it away"), "{refused}");
}

#[test]
fn a_part_cut_short_or_altered_does_not_decode() {
    let rows = [Row::Bucket("b".into(), vec![1, 2]), Row::Part("u".into(), 2, vec![3])];
    let mut bytes = Vec::new();
    for row in &rows {
        bytes = postcard::to_extend(row, bytes).unwrap();
    }
    assert_eq!(decode_part(&bytes).unwrap(), rows);
    assert!(decode_part(&bytes[..bytes.len() - 1]).is_err());
    assert!(decode_part(&[200]).is_err());
}
