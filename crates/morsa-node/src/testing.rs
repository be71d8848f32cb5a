//! Internals that integration tests reach for and nothing else needs: not part of the API.

use redstuff::{BlobId, InconsistencyProof};

pub use crate::heal::invalid::{Invalidation, InvalidationError};
pub use crate::node::inbox::CertifiedInbox;

use crate::http::Served;

/// Attests `proof` on `served`'s node and collects its committee's attestations into a
/// certificate of the blob's invalidity (what a node does once it proved a blob inconsistent).
pub async fn collect_certificate(
    served: &Served,
    blob_id: BlobId,
    proof: &InconsistencyProof,
) -> Result<Invalidation, InvalidationError> {
    let repairer = served.repair();
    crate::heal::invalid::collect_certificate(&repairer.node, &repairer.peers, blob_id, proof).await
}

/// Stores the uploads `served` holds whose blobs are registered now. Blocks.
pub fn store_ready_uploads(served: &Served) {
    crate::pending::store_ready(served.node(), served.pending());
}

/// Sets the open challenge round `served`'s node knows of, as a fetch from the coordinator
/// would (`None`: no round is open).
pub fn set_open_round(served: &Served, open: Option<morsa_api::coord::OpenChallengeRound>) {
    served.rounds().set(open);
}

/// Which positions of `answers` prove the challenges of `items` they name: what an auditor
/// counts as passed.
pub fn passed_positions(
    items: &[morsa_core::challenge::ChallengeItem],
    n_shards: u16,
    answers: Vec<morsa_api::node::ChallengeReply>,
) -> Vec<usize> {
    crate::challenge::passed_positions(items, n_shards, answers)
}
