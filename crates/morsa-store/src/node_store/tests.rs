use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableTable, WriteTransaction};
use tempfile::TempDir;

use super::tables::{BLOB_INFO, META, METADATA, SHARD_STATS, SLIVER_INDEX, SLIVERS, sliver_key};
use super::{
    DeleteStats, MAX_BLOB_INFO_BYTES, MAX_METADATA_BYTES, MAX_NODE_META_BYTES, MAX_SLIVER_BYTES, NodeStore,
    ShardStats, SliverKind, SliverWrite, StoreStats,
};
use crate::StoreError;

use SliverKind::{Primary, Secondary};

fn new_store() -> (TempDir, PathBuf, NodeStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let store = NodeStore::open(&path).unwrap();
    (dir, path, store)
}

/// A blob ID that is all `fill` but for its last byte: IDs from one `fill` share 31 bytes.
fn blob(fill: u8, last: u8) -> [u8; 32] {
    let mut id = [fill; 32];
    id[31] = last;
    id
}

/// Deterministic sliver content, different for every (blob, shard, kind) and of length `len`.
fn content(blob_id: &[u8; 32], shard: u16, kind: SliverKind, len: usize) -> Vec<u8> {
    let kind = match kind {
        Primary => 1,
        Secondary => 2,
    };
    let [shard_low, shard_high] = shard.to_le_bytes();
    let seed = [blob_id[0], blob_id[31], shard_low, shard_high, kind];
    let position = (0..251_u8).cycle();
    seed.iter().copied().cycle().zip(position).map(|(byte, at)| byte ^ at).take(len).collect()
}

/// Stores one sliver of `len` bytes with [`content`] and returns the bytes.
fn put(store: &NodeStore, blob_id: &[u8; 32], shard: u16, kind: SliverKind, len: usize) -> Vec<u8> {
    let bytes = content(blob_id, shard, kind, len);
    store.put_slivers(&[SliverWrite { blob_id: *blob_id, shard, kind, bytes: &bytes }]).unwrap();
    bytes
}

fn shard(primary_slivers: u64, secondary_slivers: u64, bytes: u64) -> ShardStats {
    ShardStats { primary_slivers, secondary_slivers, bytes }
}

/// Opens the raw redb file behind a (closed) store to damage it the way a bad disk would.
fn tamper(path: &Path, damage: impl FnOnce(&WriteTransaction)) {
    let db = Database::open(path).unwrap();
    let transaction = db.begin_write().unwrap();
    damage(&transaction);
    transaction.commit().unwrap();
}

/// Flips one bit in the middle of a stored value.
fn flip_a_bit(stored: &[u8]) -> Vec<u8> {
    let mut damaged = stored.to_vec();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x04;
    damaged
}

#[test]
fn metadata_round_trips_per_blob_and_overwrites() {
    let (_dir, _path, store) = new_store();
    let (a, b) = (blob(1, 0), blob(1, 1));
    assert_eq!(store.get_metadata(&a).unwrap(), None);
    assert!(!store.has_metadata(&a).unwrap());

    store.put_metadata(&a, b"metadata of a").unwrap();
    store.put_metadata(&b, b"").unwrap();
    assert_eq!(store.get_metadata(&a).unwrap(), Some(b"metadata of a".to_vec()));
    assert_eq!(store.get_metadata(&b).unwrap(), Some(Vec::new()));
    assert!(store.has_metadata(&a).unwrap() && store.has_metadata(&b).unwrap());
    assert!(!store.has_metadata(&blob(1, 2)).unwrap());

    store.put_metadata(&a, b"newer").unwrap();
    assert_eq!(store.get_metadata(&a).unwrap(), Some(b"newer".to_vec()));
    assert_eq!(store.stats().unwrap().blobs, 2);
    // Metadata and blob info are separate values under the same blob ID.
    assert_eq!(store.get_blob_info(&a).unwrap(), None);
}

#[test]
fn blob_info_round_trips_and_is_visited_in_order() {
    let (_dir, _path, store) = new_store();
    for last in [9, 3, 200] {
        store.put_blob_info(&blob(4, last), &[last; 3]).unwrap();
    }
    store.put_blob_info(&blob(4, 3), b"replaced").unwrap();
    assert_eq!(store.get_blob_info(&blob(4, 9)).unwrap(), Some(vec![9; 3]));
    assert_eq!(store.get_blob_info(&blob(4, 4)).unwrap(), None);

    let mut visited = Vec::new();
    store
        .for_each_blob_info(|blob_id, bytes| {
            visited.push((blob_id[31], bytes.to_vec()));
            Ok(())
        })
        .unwrap();
    assert_eq!(visited, vec![(3, b"replaced".to_vec()), (9, vec![9; 3]), (200, vec![200; 3])]);
    // Pages: from a blob on (included), at most `limit`.
    let page = |start: Option<[u8; 32]>, limit| -> Vec<u8> {
        store.blob_infos_from(start.as_ref(), limit).unwrap().iter().map(|(id, _)| id[31]).collect()
    };
    assert_eq!(page(None, 2), [3, 9]);
    assert_eq!(page(Some(blob(4, 9)), 5), [9, 200]);
    assert_eq!(page(Some(blob(4, 10)), 5), [200]);
    assert_eq!(page(Some(blob(4, 201)), 5), Vec::<u8>::new());
    // Blob info is not metadata: it does not count as a stored blob.
    assert_eq!(store.stats().unwrap().blobs, 0);
}

#[test]
fn for_each_blob_info_stops_at_the_callbacks_error() {
    let (_dir, _path, store) = new_store();
    for last in 0..5 {
        store.put_blob_info(&blob(4, last), b"info").unwrap();
    }
    let mut calls = 0;
    let result = store.for_each_blob_info(|blob_id, _| {
        calls += 1;
        if blob_id[31] == 2 {
            Err(StoreError::Replay { seq: 2, source: "the node refused it".into() })
        } else {
            Ok(())
        }
    });
    assert!(matches!(result, Err(StoreError::Replay { seq: 2, .. })), "{result:?}");
    assert_eq!(calls, 3);
}

#[test]
fn meta_round_trips_and_overwrites() {
    let (_dir, _path, store) = new_store();
    assert_eq!(store.get_meta("event_cursor").unwrap(), None);
    store.put_meta("event_cursor", &41_u64.to_le_bytes()).unwrap();
    store.put_meta("event_cursor", &42_u64.to_le_bytes()).unwrap();
    store.put_meta("", b"empty key").unwrap();
    assert_eq!(store.get_meta("event_cursor").unwrap(), Some(42_u64.to_le_bytes().to_vec()));
    assert_eq!(store.get_meta("").unwrap(), Some(b"empty key".to_vec()));
}

#[test]
fn slivers_round_trip_by_blob_shard_and_kind() {
    let (_dir, _path, store) = new_store();
    let a = blob(2, 0);
    let b = blob(2, 1);
    let keys =
        [(a, 0, Primary), (a, 0, Secondary), (a, 7, Primary), (b, 0, Secondary), (b, u16::MAX, Primary)];
    let contents: Vec<Vec<u8>> = keys
        .iter()
        .enumerate()
        .map(|(at, (blob_id, shard, kind))| content(blob_id, *shard, *kind, 100 + 5000 * at))
        .collect();
    let writes: Vec<SliverWrite<'_>> = keys
        .iter()
        .zip(&contents)
        .map(|(&(blob_id, shard, kind), bytes)| SliverWrite { blob_id, shard, kind, bytes })
        .collect();
    store.put_slivers(&writes).unwrap();

    for ((blob_id, shard, kind), bytes) in keys.iter().zip(&contents) {
        assert_eq!(store.get_sliver(blob_id, *shard, *kind).unwrap().as_ref(), Some(bytes));
        assert!(store.has_sliver(blob_id, *shard, *kind).unwrap());
    }
    assert_eq!(store.get_sliver(&a, 7, Secondary).unwrap(), None);
    assert_eq!(store.get_sliver(&a, 1, Primary).unwrap(), None);
    assert_eq!(store.get_sliver(&blob(2, 2), 0, Primary).unwrap(), None);
    assert!(!store.has_sliver(&b, 0, Primary).unwrap());

    assert_eq!(store.sliver_kinds_held(&a, 0).unwrap(), (true, true));
    assert_eq!(store.sliver_kinds_held(&a, 7).unwrap(), (true, false));
    assert_eq!(store.sliver_kinds_held(&b, 0).unwrap(), (false, true));
    assert_eq!(store.sliver_kinds_held(&b, 1).unwrap(), (false, false));
}

#[test]
fn an_empty_batch_and_empty_slivers_are_fine() {
    let (_dir, _path, store) = new_store();
    store.put_slivers(&[]).unwrap();
    assert_eq!(store.stats().unwrap(), StoreStats::default());
    put(&store, &blob(3, 0), 5, Secondary, 0);
    assert_eq!(store.get_sliver(&blob(3, 0), 5, Secondary).unwrap(), Some(Vec::new()));
    assert_eq!(store.stats().unwrap().shards, BTreeMap::from([(5, shard(0, 1, 0))]));
}

#[test]
fn replacing_a_sliver_counts_it_once() {
    let (_dir, _path, store) = new_store();
    let a = blob(3, 1);
    put(&store, &a, 2, Primary, 1000);
    let newer = put(&store, &a, 2, Primary, 300);
    assert_eq!(store.get_sliver(&a, 2, Primary).unwrap(), Some(newer));
    assert_eq!(store.stats().unwrap().shards, BTreeMap::from([(2, shard(1, 0, 300))]));

    // The same sliver twice in one batch: the later one wins and is counted once.
    let (first, second) = (vec![1; 10], vec![2; 20]);
    store
        .put_slivers(&[
            SliverWrite { blob_id: a, shard: 2, kind: Secondary, bytes: &first },
            SliverWrite { blob_id: a, shard: 2, kind: Secondary, bytes: &second },
        ])
        .unwrap();
    assert_eq!(store.get_sliver(&a, 2, Secondary).unwrap(), Some(second));
    assert_eq!(store.stats().unwrap().shards, BTreeMap::from([(2, shard(1, 1, 320))]));
}

#[test]
fn a_batch_with_one_oversized_sliver_writes_nothing() {
    let (_dir, _path, store) = new_store();
    let a = blob(5, 0);
    let small = content(&a, 0, Primary, 4096);
    let largest = vec![0xAB; MAX_SLIVER_BYTES];
    let too_large = vec![0xCD; MAX_SLIVER_BYTES + 1];
    let batch = [
        SliverWrite { blob_id: a, shard: 0, kind: Primary, bytes: &small },
        SliverWrite { blob_id: a, shard: 1, kind: Primary, bytes: &largest },
        SliverWrite { blob_id: a, shard: 2, kind: Secondary, bytes: &too_large },
    ];
    let error = store.put_slivers(&batch).unwrap_err();
    assert!(
        matches!(error, StoreError::ValueTooLarge { what: "sliver", len, max }
            if len == MAX_SLIVER_BYTES + 1 && max == MAX_SLIVER_BYTES),
        "{error:?}"
    );
    for (shard, kind) in [(0, Primary), (1, Primary), (2, Secondary)] {
        assert!(!store.has_sliver(&a, shard, kind).unwrap());
        assert_eq!(store.get_sliver(&a, shard, kind).unwrap(), None);
    }
    assert_eq!(store.stats().unwrap(), StoreStats::default());

    // Without the oversized one, the batch goes in, the largest sliver allowed included.
    store.put_slivers(&batch[..2]).unwrap();
    assert_eq!(store.get_sliver(&a, 1, Primary).unwrap(), Some(largest));
    let bytes = u64::try_from(MAX_SLIVER_BYTES + small.len()).unwrap();
    assert_eq!(store.stats().unwrap().shards[&0].bytes + store.stats().unwrap().shards[&1].bytes, bytes);
}

#[test]
fn oversized_metadata_blob_info_and_meta_are_refused() {
    let (_dir, _path, store) = new_store();
    let a = blob(5, 1);
    let error = store.put_metadata(&a, &vec![0; MAX_METADATA_BYTES + 1]).unwrap_err();
    assert!(matches!(error, StoreError::ValueTooLarge { what: "metadata", .. }), "{error:?}");
    let error = store.put_blob_info(&a, &vec![0; MAX_BLOB_INFO_BYTES + 1]).unwrap_err();
    assert!(matches!(error, StoreError::ValueTooLarge { what: "blob info", .. }), "{error:?}");
    let error = store.put_meta("cursor", &vec![0; MAX_NODE_META_BYTES + 1]).unwrap_err();
    assert!(matches!(error, StoreError::ValueTooLarge { what: "meta value", .. }), "{error:?}");
    assert!(error.to_string().contains("larger than the limit"), "{error}");
    assert!(!store.has_metadata(&a).unwrap());
    assert_eq!(store.get_blob_info(&a).unwrap(), None);
    assert_eq!(store.get_meta("cursor").unwrap(), None);

    let largest = vec![7; MAX_METADATA_BYTES];
    store.put_metadata(&a, &largest).unwrap();
    assert_eq!(store.get_metadata(&a).unwrap(), Some(largest));
}

#[test]
fn delete_slivers_removes_one_sliver() {
    let (_dir, _path, store) = new_store();
    let a = blob(6, 0);
    put(&store, &a, 3, Primary, 100);
    let secondary = put(&store, &a, 3, Secondary, 50);
    assert!(store.delete_slivers(&a, 3, Primary).unwrap());
    assert!(!store.delete_slivers(&a, 3, Primary).unwrap(), "already gone");
    assert!(!store.delete_slivers(&a, 4, Primary).unwrap(), "never stored");
    assert_eq!(store.get_sliver(&a, 3, Primary).unwrap(), None);
    assert_eq!(store.sliver_kinds_held(&a, 3).unwrap(), (false, true));
    assert_eq!(store.get_sliver(&a, 3, Secondary).unwrap(), Some(secondary));
    assert_eq!(store.stats().unwrap().shards, BTreeMap::from([(3, shard(0, 1, 50))]));

    assert!(store.delete_slivers(&a, 3, Secondary).unwrap());
    assert_eq!(store.stats().unwrap().shards, BTreeMap::new(), "an empty shard leaves the stats");
}

#[test]
fn delete_blob_removes_exactly_one_blob() {
    let (_dir, _path, store) = new_store();
    // Neighbours: IDs that share 31 bytes with the target, two of them right next to it in key
    // order (the target's shard 65535 sits just before 0x09's shard 0), and one that shares the
    // last byte only.
    let target = blob(7, 0x08);
    let neighbours = [blob(7, 0x07), blob(7, 0x09), blob(7, 0x00), blob(7, 0xFF), blob(8, 0x08)];
    let shards = [(0, Primary), (0, Secondary), (1, Primary), (u16::MAX, Secondary)];
    let mut expected = BTreeMap::new();
    for blob_id in std::iter::once(&target).chain(&neighbours) {
        for (at, &(shard, kind)) in shards.iter().enumerate() {
            expected.insert((*blob_id, shard, kind), put(&store, blob_id, shard, kind, 10 + at * 100));
        }
        store.put_metadata(blob_id, &blob_id[..]).unwrap();
        store.put_blob_info(blob_id, b"info").unwrap();
    }

    let deleted = store.delete_blob(&target).unwrap();
    assert_eq!(deleted, DeleteStats { slivers: 4, bytes: 10 + 110 + 210 + 310 });
    for (shard, kind) in shards {
        assert_eq!(store.get_sliver(&target, shard, kind).unwrap(), None);
        assert!(!store.has_sliver(&target, shard, kind).unwrap());
    }
    assert!(!store.has_metadata(&target).unwrap());
    assert_eq!(store.get_blob_info(&target).unwrap(), None);

    for ((blob_id, shard, kind), bytes) in &expected {
        if *blob_id != target {
            assert_eq!(store.get_sliver(blob_id, *shard, *kind).unwrap().as_ref(), Some(bytes));
        }
    }
    for blob_id in &neighbours {
        assert_eq!(store.get_metadata(blob_id).unwrap(), Some(blob_id.to_vec()));
        assert_eq!(store.get_blob_info(blob_id).unwrap(), Some(b"info".to_vec()));
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.blobs, 5);
    assert_eq!(stats.shards[&0], shard(5, 5, 5 * (10 + 110)));
    assert_eq!(stats.shards[&u16::MAX], shard(0, 5, 5 * 310));

    assert_eq!(store.delete_blob(&target).unwrap(), DeleteStats::default(), "nothing left to delete");
    // Metadata alone is deleted too, and reported as no slivers.
    store.put_metadata(&target, b"back").unwrap();
    assert_eq!(store.delete_blob(&target).unwrap(), DeleteStats::default());
    assert!(!store.has_metadata(&target).unwrap());
}

#[test]
fn stats_follow_puts_and_deletes() {
    let (_dir, _path, store) = new_store();
    let (a, b) = (blob(9, 1), blob(9, 2));
    assert_eq!(store.stats().unwrap(), StoreStats::default());
    for (blob_id, shard, kind, len) in [
        (a, 1, Primary, 100),
        (a, 1, Secondary, 40),
        (a, 2, Primary, 7),
        (b, 1, Primary, 1000),
        (b, 2, Secondary, 3),
    ] {
        put(&store, &blob_id, shard, kind, len);
    }
    store.put_metadata(&a, b"a").unwrap();
    store.put_metadata(&b, b"b").unwrap();
    assert_eq!(
        store.stats().unwrap(),
        StoreStats { shards: BTreeMap::from([(1, shard(2, 1, 1140)), (2, shard(1, 1, 10))]), blobs: 2 }
    );

    store.delete_slivers(&b, 1, Primary).unwrap();
    assert_eq!(store.stats().unwrap().shards, BTreeMap::from([(1, shard(1, 1, 140)), (2, shard(1, 1, 10))]));
    store.delete_blob(&a).unwrap();
    assert_eq!(
        store.stats().unwrap(),
        StoreStats { shards: BTreeMap::from([(2, shard(0, 1, 3))]), blobs: 1 }
    );
}

#[test]
fn reopening_keeps_everything() {
    let (_dir, path, store) = new_store();
    let a = blob(10, 0);
    let bytes = put(&store, &a, 4, Secondary, 20_000);
    store.put_metadata(&a, b"metadata").unwrap();
    store.put_blob_info(&a, b"info").unwrap();
    store.put_meta("cursor", b"17").unwrap();
    let stats = store.stats().unwrap();
    drop(store);

    let store = NodeStore::open(&path).unwrap();
    assert_eq!(store.get_sliver(&a, 4, Secondary).unwrap(), Some(bytes));
    assert_eq!(store.get_metadata(&a).unwrap(), Some(b"metadata".to_vec()));
    assert_eq!(store.get_blob_info(&a).unwrap(), Some(b"info".to_vec()));
    assert_eq!(store.get_meta("cursor").unwrap(), Some(b"17".to_vec()));
    assert_eq!(store.stats().unwrap(), stats);
}

#[test]
fn a_damaged_sliver_is_reported_and_can_be_deleted_and_replaced() {
    let (_dir, path, store) = new_store();
    let a = blob(11, 0);
    put(&store, &a, 1, Primary, 9000);
    let untouched = put(&store, &a, 1, Secondary, 500);
    drop(store);
    let key = sliver_key(&a, 1, Primary);
    tamper(&path, |transaction| {
        let mut slivers = transaction.open_table(SLIVERS).unwrap();
        let damaged = flip_a_bit(slivers.get(&key).unwrap().unwrap().value());
        slivers.insert(&key, damaged.as_slice()).unwrap();
    });

    let store = NodeStore::open(&path).unwrap();
    let error = store.get_sliver(&a, 1, Primary).unwrap_err();
    assert!(
        matches!(error, StoreError::CorruptSliver { blob_id, shard: 1, kind: Primary } if blob_id == a),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("primary sliver of shard 1") && message.contains("0b0b0b"), "{message}");
    assert_eq!(store.get_sliver(&a, 1, Secondary).unwrap(), Some(untouched));
    // The scrubber's way out: delete it, counters follow, then store the recovered one.
    assert!(store.has_sliver(&a, 1, Primary).unwrap(), "existence reads the index, which is intact");
    assert!(store.delete_slivers(&a, 1, Primary).unwrap());
    assert_eq!(store.stats().unwrap().shards, BTreeMap::from([(1, shard(0, 1, 500))]));
    let recovered = put(&store, &a, 1, Primary, 9000);
    assert_eq!(store.get_sliver(&a, 1, Primary).unwrap(), Some(recovered));
}

#[test]
fn a_sliver_under_another_key_or_truncated_is_corrupt() {
    let (_dir, path, store) = new_store();
    let a = blob(11, 1);
    put(&store, &a, 1, Primary, 300);
    put(&store, &a, 2, Primary, 300);
    put(&store, &a, 3, Primary, 300);
    drop(store);
    tamper(&path, |transaction| {
        let mut slivers = transaction.open_table(SLIVERS).unwrap();
        let moved = slivers.get(&sliver_key(&a, 1, Primary)).unwrap().unwrap().value().to_vec();
        slivers.insert(&sliver_key(&a, 2, Primary), moved.as_slice()).unwrap();
        slivers.insert(&sliver_key(&a, 3, Primary), &[1_u8, 2][..]).unwrap();
    });
    let store = NodeStore::open(&path).unwrap();
    assert!(store.get_sliver(&a, 1, Primary).unwrap().is_some());
    for shard in [2, 3] {
        let error = store.get_sliver(&a, shard, Primary).unwrap_err();
        assert!(matches!(error, StoreError::CorruptSliver { shard: s, .. } if s == shard), "{error:?}");
    }
}

#[test]
fn a_damaged_index_entry_is_reported_and_can_be_replaced() {
    let (_dir, path, store) = new_store();
    let a = blob(12, 0);
    put(&store, &a, 6, Secondary, 700);
    drop(store);
    let key = sliver_key(&a, 6, Secondary);
    tamper(&path, |transaction| {
        let mut index = transaction.open_table(SLIVER_INDEX).unwrap();
        let damaged = flip_a_bit(index.get(&key).unwrap().unwrap().value());
        index.insert(&key, damaged.as_slice()).unwrap();
    });

    let store = NodeStore::open(&path).unwrap();
    let error = store.has_sliver(&a, 6, Secondary).unwrap_err();
    assert!(matches!(error, StoreError::CorruptSliver { shard: 6, kind: Secondary, .. }), "{error:?}");
    let error = store.sliver_kinds_held(&a, 6).unwrap_err();
    assert!(matches!(error, StoreError::CorruptSliver { shard: 6, kind: Secondary, .. }), "{error:?}");
    // Putting it again replaces it, and the counters still count one sliver.
    let bytes = put(&store, &a, 6, Secondary, 200);
    assert!(store.has_sliver(&a, 6, Secondary).unwrap());
    assert_eq!(store.get_sliver(&a, 6, Secondary).unwrap(), Some(bytes));
    assert_eq!(store.stats().unwrap().shards, BTreeMap::from([(6, shard(0, 1, 200))]));
}

#[test]
fn damaged_blob_values_meta_and_counters_are_reported() {
    let (_dir, path, store) = new_store();
    let (a, b) = (blob(13, 0), blob(13, 1));
    store.put_metadata(&a, b"metadata of a").unwrap();
    store.put_blob_info(&a, b"info of a").unwrap();
    store.put_metadata(&b, b"metadata of b").unwrap();
    store.put_blob_info(&b, b"info of b").unwrap();
    store.put_meta("cursor", b"12345").unwrap();
    put(&store, &a, 8, Primary, 10);
    drop(store);
    tamper(&path, |transaction| {
        let mut metadata = transaction.open_table(METADATA).unwrap();
        let damaged = flip_a_bit(metadata.get(&a).unwrap().unwrap().value());
        metadata.insert(&a, damaged.as_slice()).unwrap();
        // b's metadata, sealed for its own table, moved into the blob info table.
        let moved = metadata.get(&b).unwrap().unwrap().value().to_vec();
        transaction.open_table(BLOB_INFO).unwrap().insert(&b, moved.as_slice()).unwrap();
        let mut meta = transaction.open_table(META).unwrap();
        let damaged = flip_a_bit(meta.get("cursor").unwrap().unwrap().value());
        meta.insert("cursor", damaged.as_slice()).unwrap();
        let mut counters = transaction.open_table(SHARD_STATS).unwrap();
        let damaged = flip_a_bit(counters.get(8).unwrap().unwrap().value());
        counters.insert(8, damaged.as_slice()).unwrap();
    });

    let store = NodeStore::open(&path).unwrap();
    let error = store.get_metadata(&a).unwrap_err();
    assert!(
        matches!(error, StoreError::CorruptBlobValue { table: "metadata", blob_id } if blob_id == a),
        "{error:?}"
    );
    assert!(store.has_metadata(&a).unwrap(), "existence does not read the value");
    assert_eq!(store.get_blob_info(&a).unwrap(), Some(b"info of a".to_vec()));
    assert_eq!(store.get_metadata(&b).unwrap(), Some(b"metadata of b".to_vec()));
    let error = store.get_blob_info(&b).unwrap_err();
    assert!(matches!(error, StoreError::CorruptBlobValue { table: "blob info", .. }), "{error:?}");
    let error = store.for_each_blob_info(|_, _| Ok(())).unwrap_err();
    assert!(matches!(error, StoreError::CorruptBlobValue { table: "blob info", .. }), "{error:?}");
    let error = store.get_meta("cursor").unwrap_err();
    assert!(matches!(error, StoreError::CorruptMeta { ref key } if key == "cursor"), "{error:?}");
    let error = store.stats().unwrap_err();
    assert!(matches!(error, StoreError::CorruptShardStats { shard: 8 }), "{error:?}");
    // A write to the damaged shard is refused rather than counted wrong; other shards are fine.
    let bytes = content(&a, 8, Secondary, 5);
    let error = store.put_slivers(&[SliverWrite { blob_id: a, shard: 8, kind: Secondary, bytes: &bytes }]);
    assert!(matches!(error, Err(StoreError::CorruptShardStats { shard: 8 })), "{error:?}");
    assert!(!store.has_sliver(&a, 8, Secondary).unwrap());
    put(&store, &a, 9, Secondary, 5);
}

#[test]
fn a_store_open_elsewhere_is_locked_and_other_files_are_refused() {
    let (dir, path, store) = new_store();
    let error = NodeStore::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Locked { .. }), "{error:?}");
    drop(store);

    let other = dir.path().join("notes.txt");
    std::fs::write(&other, b"not a database").unwrap();
    let error = NodeStore::open(&other).unwrap_err();
    assert!(matches!(error, StoreError::NotADatabase { .. }), "{error:?}");
    assert_eq!(std::fs::read(&other).unwrap(), b"not a database");
}

#[test]
fn concurrent_batches_are_all_stored_and_counted() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<NodeStore>();

    let (_dir, _path, store) = new_store();
    let store = Arc::new(store);
    let writers: Vec<_> = (0..4_u8)
        .map(|writer| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for batch in 0..10_u8 {
                    let blob_id = blob(writer, batch);
                    let contents: Vec<_> =
                        (0..3).map(|shard| content(&blob_id, shard, Primary, 64)).collect();
                    let writes: Vec<_> = (0..3)
                        .zip(&contents)
                        .map(|(shard, bytes)| SliverWrite { blob_id, shard, kind: Primary, bytes })
                        .collect();
                    store.put_slivers(&writes).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.shards, (0..3).map(|shard| (shard, self::shard(40, 0, 40 * 64))).collect());
    assert_eq!(
        store.get_sliver(&blob(3, 9), 2, Primary).unwrap(),
        Some(content(&blob(3, 9), 2, Primary, 64))
    );
}

#[test]
fn debug_output_does_not_dump_sliver_bytes() {
    let bytes = vec![0x55; 10_000];
    let write = SliverWrite { blob_id: [0; 32], shard: 1, kind: Primary, bytes: &bytes };
    let debug = format!("{write:?}");
    assert!(debug.contains("len: 10000") && debug.len() < 300, "{debug}");
}

#[test]
fn only_a_sliver_still_damaged_as_found_is_deleted_and_only_once() {
    let (_dir, path, store) = new_store();
    let a = blob(13, 0);
    let wrong = put(&store, &a, 2, Primary, 800);
    let good = put(&store, &a, 3, Primary, 800);
    put(&store, &a, 4, Primary, 800);
    drop(store);
    let key = sliver_key(&a, 4, Primary);
    tamper(&path, |transaction| {
        let mut slivers = transaction.open_table(SLIVERS).unwrap();
        let damaged = flip_a_bit(slivers.get(&key).unwrap().unwrap().value());
        slivers.insert(&key, damaged.as_slice()).unwrap();
    });
    let store = NodeStore::open(&path).unwrap();

    // Failing its checksum: deleted, once; a second reader of it deletes nothing.
    assert!(store.delete_damaged_sliver(&a, 4, Primary, None).unwrap());
    assert!(!store.delete_damaged_sliver(&a, 4, Primary, None).unwrap());
    assert!(!store.has_sliver(&a, 4, Primary).unwrap());
    // Intact but found wrong (another sliver's bytes): deleted while it still holds them.
    assert!(!store.delete_damaged_sliver(&a, 2, Primary, Some(b"other bytes")).unwrap());
    assert!(store.delete_damaged_sliver(&a, 2, Primary, Some(&wrong)).unwrap());
    // Intact, and a reader found it failing its checksum before it was stored again: kept.
    assert!(!store.delete_damaged_sliver(&a, 3, Primary, None).unwrap());
    assert_eq!(store.get_sliver(&a, 3, Primary).unwrap(), Some(good));
    assert_eq!(store.stats().unwrap().shards, BTreeMap::from([(3, shard(1, 0, 800))]));
}
