//! A node store's memory is its page cache, not what it holds: a store opened with a small
//! cache takes in and reads back far more slivers than that cache, and the process's resident
//! memory grows by at most the cache plus a fixed allowance. With redb's own default cache (1
//! GiB) the same writes grew the process by about the bytes written, and kept them. Alone in its
//! binary, so that the process's resident memory is this test's.

use morsa_store::{NodeStore, SliverKind, SliverWrite};

/// The store's page cache.
const CACHE: usize = 16 << 20;
/// Slivers written (and read back), of [`SLIVER`] bytes each, [`GROUP`] per transaction.
const SLIVERS: usize = 320;
const SLIVER: usize = 1 << 20;
const GROUP: usize = 16;
/// What the process may grow by beyond the cache: the sliver read back, allocator slack.
const ALLOWANCE: u64 = 96 << 20;

/// The process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("a VmRSS line");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in kB");
    kib * 1024
}

fn blob_id(index: usize) -> [u8; 32] {
    let mut id = [0; 32];
    id[..8].copy_from_slice(&u64::try_from(index).expect("an index").to_le_bytes());
    id
}

#[test]
fn a_store_holds_in_memory_its_cache_not_the_slivers_it_took_in() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = NodeStore::open_with_cache(&dir.path().join("node.redb"), CACHE).expect("the store opens");
    // Sampled after every commit and every read: what the store keeps between them.
    let baseline = rss();
    let mut peak = baseline;
    // Every sliver different, so no page is shared; one buffer reused for all of them.
    let mut bytes = vec![0u8; SLIVER];
    for group in 0..SLIVERS / GROUP {
        let first = group * GROUP;
        let mut batch = Vec::with_capacity(GROUP);
        for index in first..first + GROUP {
            bytes[..8].copy_from_slice(&blob_id(index)[..8]);
            batch.push(bytes.clone());
        }
        let writes: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(offset, bytes)| SliverWrite {
                blob_id: blob_id(first + offset),
                shard: 0,
                kind: SliverKind::Primary,
                bytes,
            })
            .collect();
        store.put_slivers(&writes).expect("a group is stored");
        drop(writes);
        drop(batch);
        peak = peak.max(rss());
    }
    for index in 0..SLIVERS {
        let read = store.get_sliver(&blob_id(index), 0, SliverKind::Primary).expect("a read").expect("held");
        assert_eq!(read.len(), SLIVER);
        assert_eq!(read[..8], blob_id(index)[..8], "sliver {index} read back");
        peak = peak.max(rss());
    }

    let grown = peak.saturating_sub(baseline);
    let written = SLIVERS * SLIVER;
    let bound = u64::try_from(CACHE).expect("fits") + ALLOWANCE;
    eprintln!("grew by {} MiB for {} MiB written and read", grown >> 20, written >> 20);
    assert!(
        grown <= bound,
        "the process grew by {} MiB writing and reading {} MiB through a store with a {} MiB cache \
         (at most {} MiB allowed)",
        grown >> 20,
        written >> 20,
        CACHE >> 20,
        bound >> 20
    );
}
