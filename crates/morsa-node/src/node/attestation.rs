//! The node's attestation that a blob is invalid, signed once it has checked a peer's
//! inconsistency proof against the stored metadata.

use morsa_api::node::{InvalidBlobAttestation, inconsistency_proof_limit};
use redstuff::wire::from_bcs;
use redstuff::{BlobId, InconsistencyProof, SliverType};

use crate::error::NodeError;
use crate::node::Node;

impl Node {
    /// Checks an inconsistency proof (BCS) whose target is a `kind` sliver of `blob_id` against
    /// the stored metadata and, if it holds, signs the attestation that the blob is invalid in
    /// the current epoch. A proof that does not hold is a bad request, with the reason.
    ///
    /// The blob's status is not checked: only its metadata is needed, and attesting a blob that
    /// is already invalid or expired is harmless.
    pub(crate) fn attest_inconsistency(
        &self,
        blob_id: &BlobId,
        kind: SliverType,
        proof_bytes: &[u8],
    ) -> Result<InvalidBlobAttestation, NodeError> {
        let metadata = self.verified_metadata(blob_id)?;
        let limit = inconsistency_proof_limit(self.config(), metadata.symbol_size());
        let proof: InconsistencyProof = from_bcs(proof_bytes, limit).map_err(NodeError::Malformed)?;
        if proof.target_kind != kind {
            return Err(NodeError::ProofForOtherKind { proven: proof.target_kind, sent: kind });
        }
        proof.verify(&metadata).map_err(NodeError::ProofDoesNotHold)?;
        let epoch = self.view().epoch();
        tracing::warn!(
            blob_id = %blob_id,
            target_kind = %kind,
            target_index = proof.target_index,
            "verified an inconsistency proof; attesting the blob is invalid"
        );
        Ok(InvalidBlobAttestation::sign(self.key(), epoch, *blob_id))
    }
}
