//! Storage challenges, the pure part: the seed of a round, which stored symbols each shard is
//! challenged on, what a node answers and how anyone checks the answer, and the bytes nodes
//! sign when they commit to their answers, report audits, dispute a failure or declare a loss.
//!
//! A round's challenges are a function of its seed and of the certified blobs at the round's
//! start, so the coordinator, every challenged node and every auditor derive the same list.
//! An answer carries the challenged symbol of the primary and of the secondary sliver, each
//! with its Merkle path to the sliver's root, and the pair's two roots with their path to the
//! metadata root: it is checked against the blob ID and the blob's length alone, so the
//! coordinator can settle a dispute without the metadata.
//!
//! Not here: when rounds start and what their results cost (`morsa-coord`), fetching and
//! answering (`morsa-node`).
//!
//! ```
//! use morsa_core::challenge::{CandidateBlob, derive_shard_items, round_seed};
//! use morsa_core::{BlobId, Epoch, ShardIndex};
//! let seed = round_seed(Epoch(3), 0, &[7; 32], &[0; 32]);
//! let blobs = [CandidateBlob { blob_id: BlobId([1; 32]), unencoded_length: 1000, encoded_size: 5000 }];
//! let items = derive_shard_items(&seed, 10, ShardIndex(4), &blobs, 6).unwrap();
//! assert_eq!(items.len(), 6);
//! assert!(items.iter().all(|item| item.blob_id == BlobId([1; 32]) && item.shard == ShardIndex(4)));
//! ```

mod answer;
mod commit;
mod message;
mod sample;
mod seed;

pub use answer::{AnswerError, ChallengeAnswer, answer_challenge};
pub use commit::{NO_ANSWER, answer_digest};
pub use message::{
    CHALLENGE_AUDIT_INTENT, CHALLENGE_COMMIT_INTENT, CHALLENGE_DISPUTE_INTENT, LOSS_DECLARATION_INTENT,
    MAX_DECLARED_BLOBS, challenge_audit_message, challenge_commit_message, challenge_dispute_message,
    loss_declaration_message,
};
pub use sample::{CandidateBlob, ChallengeItem, SampleError, derive_shard_items, pick_auditor};
pub use seed::{result_digest, round_jitter_ms, round_seed};
