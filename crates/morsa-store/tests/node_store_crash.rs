//! Crash consistency of the node store, with real crashes.
//!
//! A writer child process (see `common/mod.rs`) runs a fixed, numbered sequence of writes on a
//! node store: mostly batches of one to four slivers (some replacing slivers of the previous
//! blob, some spanning many redb pages), and every sixth write a `delete_blob` of an earlier
//! blob. It prints `ack <n>` once write `n` has returned. The parent `SIGKILL`s it after
//! [`ACKS_PER_ROUND`] acknowledgements, reopens the store (redb recovers it) and checks, against
//! a model that replays the same writes in memory:
//!
//! - the store holds exactly the slivers of the acknowledged writes, byte for byte, or of those
//!   plus the one write in flight (committed, but the child died before printing it); a batch is
//!   never recovered in part, and a deleted blob never partly reappears;
//! - the per-shard counters of `stats` agree with those slivers, and the index (`has_sliver`)
//!   with the slivers themselves.
//!
//! Eight rounds continue the same store, so recovery after a crash is itself crash-tested. As
//! for the command log, this is a process crash: it tests redb's commit protocol and our use of
//! it; what a power cut does to unsynced pages rests on `Durability::Immediate`.
//!
//! A store that acknowledged writes before they were durable fails every run. Whether a kill
//! lands inside a batch is a matter of timing, so a store that committed a batch in parts fails
//! only some runs (about half, when tried); that a batch is one transaction is also plain in
//! `put_slivers` and unit-tested.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use morsa_store::{NodeStore, ShardStats, SliverKind, SliverWrite};

use common::{Acknowledger, Writer, crash_after_acks, writer_dir};

mod common;

/// The writer child: the `node_store_crash_writer` test, with the store's directory in this
/// variable.
const WRITER: Writer =
    Writer { test: "node_store_crash_writer", dir_env: "MORSA_STORE_NODE_CRASH_WRITER_DIR" };
/// The number of the first write the writer makes (where the last round's recovery ended).
const FIRST_WRITE_ENV: &str = "MORSA_STORE_NODE_CRASH_FIRST_WRITE";
const STORE_FILE: &str = "node.redb";

const ROUNDS: usize = 8;
/// Acknowledgements the parent waits for before it kills the writer. Not a multiple of 2 or 3, so
/// the write in flight at the kill is of every kind across the rounds: a batch of one to four
/// slivers, a replacement, a delete.
const ACKS_PER_ROUND: usize = 61;
/// Bounds on the writer, should the parent be gone without killing it.
const WRITER_MAX_WRITES: u64 = 100_000;
const WRITER_MAX_TIME: Duration = Duration::from_secs(120);

/// A sliver's identity: blob, shard, kind.
type SliverId = ([u8; 32], u16, SliverKind);

/// One numbered write of the sequence.
enum Write {
    /// `put_slivers` of these slivers.
    Put(Vec<(SliverId, Vec<u8>)>),
    /// `delete_blob` of this blob.
    DeleteBlob([u8; 32]),
}

/// The blob written by write `n`. All share their first 28 bytes, so neighbours in key order
/// belong to other blobs.
fn blob(n: u64) -> [u8; 32] {
    let mut id = [0x5A; 32];
    id[28..].copy_from_slice(&u32::try_from(n).expect("fewer than 2^32 writes").to_be_bytes());
    id
}

/// Write `n` of the sequence. Writes `6k + 4` add to (and may replace slivers of) the blob of
/// `6k + 3`; writes `6k + 5` delete the blob of `6k + 2`. Every sixteenth write has one sliver of
/// 300 KB; the others are 0 to 12 KB.
fn write(n: u64) -> Write {
    if n % 6 == 5 {
        return Write::DeleteBlob(blob(n - 3));
    }
    let blob_id = if n % 6 == 4 { blob(n - 1) } else { blob(n) };
    let slivers = (0..1 + n % 4)
        .map(|item| {
            let shard = u16::try_from((n + 3 * item) % 8).expect("below 8");
            let kind = if (n + item).is_multiple_of(2) { SliverKind::Primary } else { SliverKind::Secondary };
            let len = if n.is_multiple_of(16) && item == 0 {
                300_000
            } else {
                (n.wrapping_mul(2_654_435_761) + item * 40_503) % 12_001
            };
            let len = usize::try_from(len).expect("small");
            let seed = [n.to_le_bytes().as_slice(), &[u8::try_from(item).expect("below 4")]].concat();
            let bytes = seed.iter().copied().cycle().zip((0..=250_u8).cycle()).map(|(a, b)| a ^ b).take(len);
            ((blob_id, shard, kind), bytes.collect())
        })
        .collect();
    Write::Put(slivers)
}

/// The writer child. In a normal test run (no environment variable) it does nothing.
#[test]
fn node_store_crash_writer() {
    let Some(dir) = writer_dir(&WRITER) else {
        return;
    };
    let first: u64 = std::env::var(FIRST_WRITE_ENV)
        .expect("the parent says where to start")
        .parse()
        .expect("a write number");
    let store = NodeStore::open(&dir.join(STORE_FILE)).expect("writer opens the store");
    let started = Instant::now();
    let Some(mut acknowledger) = Acknowledger::start() else {
        return; // The parent is gone.
    };
    for n in first..first + WRITER_MAX_WRITES {
        if started.elapsed() > WRITER_MAX_TIME {
            return;
        }
        match write(n) {
            Write::Put(slivers) => {
                let writes: Vec<SliverWrite<'_>> = slivers
                    .iter()
                    .map(|&((blob_id, shard, kind), ref bytes)| SliverWrite { blob_id, shard, kind, bytes })
                    .collect();
                store.put_slivers(&writes).expect("writer stores a batch");
            }
            Write::DeleteBlob(blob_id) => {
                store.delete_blob(&blob_id).expect("writer deletes a blob");
            }
        }
        if !acknowledger.ack([n]) {
            return; // The parent is gone.
        }
    }
}

/// What the store holds after writes `0..writes`, computed in memory.
fn model(writes: u64) -> BTreeMap<SliverId, Vec<u8>> {
    let mut slivers = BTreeMap::new();
    for n in 0..writes {
        match write(n) {
            Write::Put(batch) => slivers.extend(batch),
            Write::DeleteBlob(blob_id) => slivers.retain(|(id, _, _), _| *id != blob_id),
        }
    }
    slivers
}

/// The per-shard counters `stats` must report for `slivers`.
fn expected_stats(slivers: &BTreeMap<SliverId, Vec<u8>>) -> BTreeMap<u16, ShardStats> {
    let mut shards = BTreeMap::<u16, ShardStats>::new();
    for ((_, shard, kind), bytes) in slivers {
        let stats = shards.entry(*shard).or_default();
        match kind {
            SliverKind::Primary => stats.primary_slivers += 1,
            SliverKind::Secondary => stats.secondary_slivers += 1,
        }
        stats.bytes += u64::try_from(bytes.len()).expect("small");
    }
    shards
}

/// Checks a store reopened after a crash against the acknowledgements of a round that started at
/// write `first`; returns how many writes the store holds (where the next round
/// starts).
fn check_recovered_store(store: &NodeStore, first: u64, acknowledged: &[u64]) -> u64 {
    let expected_acks: Vec<u64> = (first..).take(acknowledged.len()).collect();
    assert_eq!(acknowledged, expected_acks, "the writer acknowledges its writes in order");
    let acknowledged_writes = first + u64::try_from(acknowledged.len()).expect("small");

    // Every sliver any write up to the one in flight touched, as the store has it now.
    let touched: BTreeSet<SliverId> = (0..=acknowledged_writes)
        .filter_map(|n| match write(n) {
            Write::Put(batch) => Some(batch.into_iter().map(|(id, _)| id)),
            Write::DeleteBlob(_) => None,
        })
        .flatten()
        .collect();
    let mut stored = BTreeMap::new();
    for &(blob_id, shard, kind) in &touched {
        let bytes = store.get_sliver(&blob_id, shard, kind).expect("every stored sliver reads back intact");
        let indexed = store.has_sliver(&blob_id, shard, kind).expect("the index reads back");
        assert_eq!(indexed, bytes.is_some(), "the index and the slivers disagree on {kind} sliver {shard}");
        if let Some(bytes) = bytes {
            stored.insert((blob_id, shard, kind), bytes);
        }
    }

    let recovered = if stored == model(acknowledged_writes) {
        acknowledged_writes
    } else if stored == model(acknowledged_writes + 1) {
        acknowledged_writes + 1
    } else {
        let acknowledged_model = model(acknowledged_writes);
        let missing = acknowledged_model.keys().filter(|id| !stored.contains_key(*id)).count();
        let wrong = stored.iter().filter(|(id, bytes)| acknowledged_model.get(*id) != Some(*bytes)).count();
        panic!(
            "after {acknowledged_writes} acknowledged writes the store is neither their result nor \
             that plus the write in flight: {missing} acknowledged slivers missing, {wrong} slivers \
             not as acknowledged"
        );
    };
    let stats = store.stats().expect("stats");
    assert_eq!(stats.shards, expected_stats(&stored), "the counters agree with the slivers");
    assert_eq!(stats.blobs, 0, "the writer stores no metadata");
    recovered
}

#[test]
fn acknowledged_sliver_batches_survive_sigkill() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join(STORE_FILE);
    let mut next = 0;
    for round in 0..ROUNDS {
        let acknowledged =
            crash_after_acks(&WRITER, dir.path(), &[(FIRST_WRITE_ENV, next.to_string())], ACKS_PER_ROUND);
        let store = NodeStore::open(&path).expect("the store reopens after a crash");
        let recovered = check_recovered_store(&store, next, &acknowledged);
        eprintln!(
            "round {round}: writes {next}..{} acknowledged, {recovered} recovered",
            next + u64::try_from(acknowledged.len()).expect("small")
        );
        next = recovered;
    }
    assert!(next >= u64::try_from(ROUNDS * ACKS_PER_ROUND).expect("small"));
}
