//! The bytes a node signs for the challenge reports it sends the coordinator. Morsa's own
//! intents, with types unused by Walrus and by Morsa's other messages.

use redstuff::BlobId;

use crate::committee::NodeId;
use crate::hash::Digest;
use crate::index::Epoch;
use crate::messages::{INTENT_APP_ID_STORAGE, INTENT_VERSION};

/// Intent of an audit report: an auditor's results for one challenged node in one round.
pub const CHALLENGE_AUDIT_INTENT: [u8; 3] = [7, INTENT_VERSION, INTENT_APP_ID_STORAGE];
/// Intent of a dispute: a challenged node's answers to challenges it was reported failing.
pub const CHALLENGE_DISPUTE_INTENT: [u8; 3] = [9, INTENT_VERSION, INTENT_APP_ID_STORAGE];
/// Intent of a loss declaration: blobs a node says it lost before a round.
pub const LOSS_DECLARATION_INTENT: [u8; 3] = [10, INTENT_VERSION, INTENT_APP_ID_STORAGE];
/// Intent of an answer commitment: a challenged node's digests of the answers it serves.
pub const CHALLENGE_COMMIT_INTENT: [u8; 3] = [11, INTENT_VERSION, INTENT_APP_ID_STORAGE];

fn message(intent: [u8; 3], epoch: Epoch, body: &impl serde::Serialize) -> Vec<u8> {
    let mut message = intent.to_vec();
    message.extend_from_slice(&epoch.0.to_le_bytes());
    message.extend(bcs::to_bytes(body).expect("report bodies serialize"));
    message
}

/// What an auditor signs over its results for `target` in round `round` of `epoch`:
/// `[7, 0, 3] ‖ epoch (u32 LE) ‖ BCS(round, target, results)`, one result per challenge of
/// the target, in derivation order (`true` = answered and verified in time).
pub fn challenge_audit_message(epoch: Epoch, round: u32, target: &NodeId, results: &[bool]) -> Vec<u8> {
    message(CHALLENGE_AUDIT_INTENT, epoch, &(round, target, results))
}

/// What a challenged node signs over a dispute in round `round` of `epoch`:
/// `[9, 0, 3] ‖ epoch (u32 LE) ‖ BCS(round, node, answers)`, where `answers` is the BCS of the
/// disputed answers (so the signature covers them all).
pub fn challenge_dispute_message(epoch: Epoch, round: u32, node: &NodeId, answers: &[u8]) -> Vec<u8> {
    message(CHALLENGE_DISPUTE_INTENT, epoch, &(round, node, answers))
}

/// What a challenged node signs over its answer commitment in round `round` of `epoch`:
/// `[11, 0, 3] ‖ epoch (u32 LE) ‖ BCS(round, node, digests)`, one digest per challenge of the
/// node in derivation order ([`super::answer_digest`], or [`super::NO_ANSWER`]).
pub fn challenge_commit_message(epoch: Epoch, round: u32, node: &NodeId, digests: &[Digest]) -> Vec<u8> {
    message(CHALLENGE_COMMIT_INTENT, epoch, &(round, node, digests))
}

/// Most blob IDs one loss declaration may carry, and one node may declare lost in an epoch (the
/// coordinator refuses a declaration that would go past either).
pub const MAX_DECLARED_BLOBS: usize = 4096;

/// What a node signs to declare it lost its slivers of `blob_ids` in `epoch`:
/// `[10, 0, 3] ‖ epoch (u32 LE) ‖ BCS(node, blob_ids)`.
pub fn loss_declaration_message(epoch: Epoch, node: &NodeId, blob_ids: &[BlobId]) -> Vec<u8> {
    message(LOSS_DECLARATION_INTENT, epoch, &(node, blob_ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signature over one kind of message must never pass for another: the challenge intents
    /// differ from each other and from every other intent a node key signs.
    #[test]
    fn challenge_intents_are_distinct_from_every_other_intent() {
        use crate::messages::{
            AVAILABILITY_SUMMARY_INTENT, BLOB_CERTIFICATION_INTENT, EPOCH_SYNC_DONE_INTENT,
            INVALID_BLOB_INTENT, NODE_UNRESPONSIVE_INTENT, SHARD_PAGE_INTENT,
        };
        let intents = [
            BLOB_CERTIFICATION_INTENT,
            INVALID_BLOB_INTENT,
            EPOCH_SYNC_DONE_INTENT,
            AVAILABILITY_SUMMARY_INTENT,
            SHARD_PAGE_INTENT,
            NODE_UNRESPONSIVE_INTENT,
            CHALLENGE_AUDIT_INTENT,
            CHALLENGE_DISPUTE_INTENT,
            LOSS_DECLARATION_INTENT,
            CHALLENGE_COMMIT_INTENT,
        ];
        let distinct: std::collections::BTreeSet<[u8; 3]> = intents.iter().copied().collect();
        assert_eq!(distinct.len(), intents.len(), "{intents:?}");
    }

    #[test]
    fn layouts_start_with_the_intent_and_epoch_and_differ_by_field() {
        let target = NodeId([3; 32]);
        let audit = challenge_audit_message(Epoch(0x0102_0304), 2, &target, &[true, false]);
        assert_eq!(audit[..7], [7, 0, 3, 0x04, 0x03, 0x02, 0x01]);
        assert_eq!(audit[7..11], 2u32.to_le_bytes());
        assert_eq!(audit[11..43], [3; 32]);
        assert_eq!(audit[43..], [2, 1, 0]);
        assert_ne!(audit, challenge_audit_message(Epoch(0x0102_0304), 2, &target, &[true, true]));
        assert_ne!(audit, challenge_audit_message(Epoch(0x0102_0304), 3, &target, &[true, false]));
        let dispute = challenge_dispute_message(Epoch(1), 0, &target, b"answers");
        assert_eq!(dispute[..3], CHALLENGE_DISPUTE_INTENT);
        let loss = loss_declaration_message(Epoch(1), &target, &[BlobId([9; 32])]);
        assert_eq!(loss[..3], LOSS_DECLARATION_INTENT);
        assert_eq!(loss.len(), 7 + 32 + 1 + 32);
        let commit = challenge_commit_message(Epoch(1), 0, &target, &[[5; 32]]);
        assert_eq!(commit[..3], CHALLENGE_COMMIT_INTENT);
        assert_eq!(commit.len(), 7 + 4 + 32 + 1 + 32);
        assert_ne!(commit, challenge_commit_message(Epoch(1), 0, &target, &[[6; 32]]));
    }
}
