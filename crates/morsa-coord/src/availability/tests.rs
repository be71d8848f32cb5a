use morsa_api::coord::ShardAvailability;
use morsa_core::{BlsSecretKey, CommitteeMember, Epoch, ShardIndex};

use super::*;

const STALE: Duration = Duration::from_secs(10);

/// Four nodes over 10 shards (f = 3, kp = 4, full margin 6): node `i` holds the shards
/// `[0..3)`, `[3..6)`, `[6..8)`, `[8..10)`.
fn committee() -> Committee {
    let ranges = [0..3u16, 3..6, 6..8, 8..10];
    let members = ranges
        .into_iter()
        .enumerate()
        .map(|(index, shards)| {
            let key = BlsSecretKey::from_seed([u8::try_from(index).unwrap() + 1; 32]).public_key();
            CommitteeMember {
                node_id: NodeId::from_public_key(&key),
                public_key: key,
                address: format!("127.0.0.1:{}", 9000 + index),
                shards: shards.map(ShardIndex).collect(),
            }
        })
        .collect();
    Committee { epoch: Epoch(1), n_shards: 10, members }
}

fn summary(
    committee: &Committee,
    member: usize,
    time_ms: u64,
    lacking: &[(u16, BlobId)],
) -> AvailabilitySummary {
    let shards = committee.members[member]
        .shards
        .iter()
        .map(|shard| {
            let blobs: Vec<BlobId> =
                lacking.iter().filter(|(lacks, _)| *lacks == shard.0).map(|(_, blob)| *blob).collect();
            ShardAvailability { shard: shard.0, missing_blobs: u64::try_from(blobs.len()).unwrap(), blobs }
        })
        .collect();
    AvailabilitySummary { node: committee.members[member].node_id, epoch: Epoch(1), time_ms, shards }
}

#[test]
fn margins_count_the_shards_lacking_a_blob_and_those_of_silent_nodes() {
    let committee = committee();
    let (x, y, z) = (BlobId([1; 32]), BlobId([2; 32]), BlobId([3; 32]));
    let availability = Availability::new(STALE);
    let start = availability.started;
    // Node 0 lacks x in two shards, node 1 lacks x and y in one each; node 2 lacks nothing.
    availability.record(summary(&committee, 0, 1, &[(0, x), (2, x)]), start).unwrap();
    availability.record(summary(&committee, 1, 1, &[(4, x), (4, y)]), start).unwrap();
    availability.record(summary(&committee, 2, 1, &[]), start).unwrap();

    // Node 3 has not reported, but this replica has just started: not counted as lost yet.
    let losses = availability.losses(&committee, start);
    assert_eq!(losses.margin(&x), 6 - 3);
    assert_eq!(losses.margin(&y), 6 - 1);
    assert_eq!(losses.margin(&z), 6);

    // Once the replica has run for `stale_after`, the silent node's two shards are lost for
    // every blob, and the others' summaries have gone stale too: all ten shards are lost.
    let later = start + STALE;
    assert_eq!(availability.losses(&committee, later).margin(&z), 0);
    // Fresh summaries from nodes 0-2 again; node 3 still silent.
    availability.record(summary(&committee, 0, 2, &[(0, x), (2, x)]), later).unwrap();
    availability.record(summary(&committee, 1, 2, &[(4, x), (4, y)]), later).unwrap();
    availability.record(summary(&committee, 2, 2, &[]), later).unwrap();
    let losses = availability.losses(&committee, later);
    assert_eq!(losses.margin(&x), 6 - 3 - 2);
    assert_eq!(losses.margin(&y), 6 - 1 - 2);
    assert_eq!(losses.margin(&z), 6 - 2);

    let view = losses.view(&committee, &[x, y, z]);
    assert_eq!(view.min_margin_shards, Some(1));
    assert_eq!(view.unreachable_shards, [8, 9]);
    let histogram: Vec<(u32, u64)> =
        view.histogram.iter().map(|count| (count.margin_shards, count.blobs)).collect();
    assert_eq!(histogram, [(1, 1), (3, 1), (4, 1)]);
    let at_risk: Vec<(BlobId, u32, Vec<u16>)> = view
        .at_risk
        .iter()
        .map(|blob| (blob.blob_id, blob.margin_shards, blob.lost_shards.clone()))
        .collect();
    assert_eq!(at_risk[0], (x, 1, vec![0, 2, 4, 8, 9]));
    assert_eq!(at_risk[1], (y, 3, vec![4, 8, 9]));
    assert!(view.nodes.iter().filter(|node| node.reporting).count() == 3);
}

#[test]
fn an_older_summary_does_not_replace_a_newer_one() {
    let committee = committee();
    let x = BlobId([1; 32]);
    let availability = Availability::new(STALE);
    let now = availability.started;
    availability.record(summary(&committee, 0, 5, &[]), now).unwrap();
    let replayed = summary(&committee, 0, 4, &[(0, x)]);
    assert_eq!(availability.record(replayed, now), Err(SummaryError::Older(committee.members[0].node_id)));
    assert_eq!(availability.losses(&committee, now).margin(&x), 6);
}

#[test]
fn a_summary_of_another_epoch_counts_as_none() {
    let committee = committee();
    let availability = Availability::new(STALE);
    let now = availability.started + STALE;
    let mut old = summary(&committee, 0, 1, &[]);
    old.epoch = Epoch(0);
    availability.record(old, now).unwrap();
    let losses = availability.losses(&committee, now);
    // Nothing is fresh: every shard is lost, node 0's included.
    assert_eq!(losses.margin(&BlobId([9; 32])), 0);
    assert!(losses.nodes.iter().all(|node| !node.reporting));
}
