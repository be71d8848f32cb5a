//! Events: what the state machine announces, numbered and hash-chained.

use redstuff::BlobId;
use serde::{Deserialize, Serialize};

use crate::committee::{Committee, NodeId};
use crate::hash::{Digest, domain_hash};
use crate::index::Epoch;
use crate::messages::ObjectId;

/// Something nodes and clients follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A blob object was registered; nodes start accepting its slivers.
    BlobRegistered {
        /// The blob ID.
        blob_id: BlobId,
        /// The blob object.
        object: ObjectId,
        /// Unencoded size.
        size: u64,
        /// Encoded size (what was paid for).
        encoded_size: u64,
        /// First epoch in which the blob is no longer stored.
        end_epoch: Epoch,
        /// Whether the owner may delete it.
        deletable: bool,
        /// Epoch of registration.
        epoch: Epoch,
    },
    /// A blob object was certified: the point of availability.
    BlobCertified {
        /// The blob ID.
        blob_id: BlobId,
        /// The blob object.
        object: ObjectId,
        /// First epoch in which the blob is no longer stored.
        end_epoch: Epoch,
        /// Whether the owner may delete it.
        deletable: bool,
        /// Epoch of certification.
        epoch: Epoch,
    },
    /// A certified blob's lifetime was extended.
    BlobExtended {
        /// The blob ID.
        blob_id: BlobId,
        /// The blob object.
        object: ObjectId,
        /// New end epoch.
        end_epoch: Epoch,
    },
    /// A deletable blob object was deleted by its owner.
    BlobDeleted {
        /// The blob ID.
        blob_id: BlobId,
        /// The blob object.
        object: ObjectId,
        /// Epoch of deletion.
        epoch: Epoch,
    },
    /// A blob ID was proven inconsistently encoded; nodes drop it.
    InvalidBlobId {
        /// The blob ID.
        blob_id: BlobId,
        /// Epoch of invalidation.
        epoch: Epoch,
    },
    /// The committee of the next epoch was selected.
    CommitteeSelected {
        /// The selected committee (its `epoch` field is the epoch it serves).
        committee: Committee,
    },
    /// A new epoch began; its committee's nodes now take over their shards.
    EpochChangeStart {
        /// The new epoch.
        epoch: Epoch,
    },
    /// Nodes holding a quorum of shards hold their shards of the epoch.
    EpochChangeDone {
        /// The epoch.
        epoch: Epoch,
    },
    /// An epoch's reward pool was paid out to node operators by shard weight.
    RewardsPaid {
        /// The epoch whose pool was paid.
        epoch: Epoch,
        /// Total paid (the remainder of the integer split moves to the next pool).
        total: u64,
    },
    /// A storage challenge round began: nodes derive its challenges from the seed.
    ChallengeRoundStarted {
        /// The epoch.
        epoch: Epoch,
        /// The round's number in the epoch, from 0.
        round: u32,
        /// The round's seed.
        seed: Digest,
    },
    /// A node failed challenges or lied as an auditor in an epoch: rewards were withheld,
    /// stake slashed, or it was left out of the next committee selection.
    NodePenalized {
        /// The epoch settled.
        epoch: Epoch,
        /// The node.
        node: NodeId,
        /// Its failed fraction `φ`, in parts per million.
        phi_ppm: u64,
        /// Rewards withheld.
        withheld: u64,
        /// Stake slashed.
        slashed: u64,
        /// Whether it is left out of the next committee selection.
        removed: bool,
    },
}

/// An event with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Sequence number, from 0 with no gaps.
    pub seq: u64,
    /// Time of the log entry that caused it.
    pub time_ms: u64,
    /// The event.
    pub event: Event,
    /// Hash of the previous record (zeros for the first).
    pub prev_hash: Digest,
    /// `H("morsa/event" ‖ prev_hash ‖ BCS(seq, time_ms, event))`.
    pub hash: Digest,
}

impl EventRecord {
    /// Builds the record that follows `prev_hash`.
    pub fn new(seq: u64, time_ms: u64, event: Event, prev_hash: Digest) -> Self {
        let hash = Self::compute_hash(seq, time_ms, &event, &prev_hash);
        Self { seq, time_ms, event, prev_hash, hash }
    }

    fn compute_hash(seq: u64, time_ms: u64, event: &Event, prev_hash: &Digest) -> Digest {
        let body = bcs::to_bytes(&(seq, time_ms, event)).expect("events serialize");
        domain_hash(b"morsa/event", &[prev_hash, &body])
    }

    /// Whether the record's hash is right and it follows `prev_hash`.
    pub fn verifies_after(&self, prev_hash: &Digest) -> bool {
        self.prev_hash == *prev_hash
            && self.hash == Self::compute_hash(self.seq, self.time_ms, &self.event, &self.prev_hash)
    }
}
