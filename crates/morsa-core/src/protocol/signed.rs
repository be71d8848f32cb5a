//! What a storage node signs for clients: storage confirmations and invalid-blob attestations,
//! over the exact Walrus message bytes of [`crate::messages`].

use redstuff::BlobId;
use serde::{Deserialize, Serialize};

use crate::bls::{BlsPublicKey, BlsSecretKey, BlsSignature};
use crate::committee::NodeId;
use crate::index::Epoch;
use crate::messages::{PersistenceType, invalid_blob_message, storage_confirmation_message};
use crate::signature::SignatureError;

/// Why a signed answer from a node is not the one asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedMessageError {
    /// It is about another blob, persistence, epoch or node than expected.
    #[error("the node signed for a different {0} than asked")]
    Mismatch(&'static str),
    /// The signature does not verify under the node's key.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// A node's confirmation that it stores all its slivers of `blob_id` in `epoch`: its BLS
/// signature over [`storage_confirmation_message`]. A quorum of them makes a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedConfirmation {
    /// The epoch the node confirms in.
    pub epoch: Epoch,
    /// The blob.
    pub blob_id: BlobId,
    /// Permanent, or deletable with its blob object.
    pub persistence: PersistenceType,
    /// Signature over [`SignedConfirmation::message`].
    pub signature: BlsSignature,
    /// The signing node.
    pub node: NodeId,
}

impl SignedConfirmation {
    /// Signs a confirmation with the node's `key`.
    pub fn sign(key: &BlsSecretKey, epoch: Epoch, blob_id: BlobId, persistence: PersistenceType) -> Self {
        let signature = key.sign(&storage_confirmation_message(epoch, &blob_id, &persistence));
        Self { epoch, blob_id, persistence, signature, node: NodeId::from_public_key(&key.public_key()) }
    }

    /// The bytes signed.
    pub fn message(&self) -> Vec<u8> {
        storage_confirmation_message(self.epoch, &self.blob_id, &self.persistence)
    }

    /// Checks that this confirms `blob_id` with `persistence` in `epoch`, by the node whose
    /// key is `public_key`.
    pub fn verify(
        &self,
        blob_id: &BlobId,
        persistence: &PersistenceType,
        epoch: Epoch,
        public_key: &BlsPublicKey,
    ) -> Result<(), SignedMessageError> {
        check_fields(&self.blob_id, blob_id, self.epoch, epoch, &self.node, public_key)?;
        if self.persistence != *persistence {
            return Err(SignedMessageError::Mismatch("persistence type"));
        }
        Ok(public_key.verify(&self.message(), &self.signature)?)
    }
}

/// A node's attestation that `blob_id` is inconsistently encoded, made after it verified an
/// inconsistency proof: its BLS signature over [`invalid_blob_message`]. Attestations of
/// shards with `3w ≥ n + 1` invalidate the blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidBlobAttestation {
    /// The epoch the node attests in.
    pub epoch: Epoch,
    /// The blob.
    pub blob_id: BlobId,
    /// Signature over [`InvalidBlobAttestation::message`].
    pub signature: BlsSignature,
    /// The signing node.
    pub node: NodeId,
}

impl InvalidBlobAttestation {
    /// Signs an attestation with the node's `key`.
    pub fn sign(key: &BlsSecretKey, epoch: Epoch, blob_id: BlobId) -> Self {
        let signature = key.sign(&invalid_blob_message(epoch, &blob_id));
        Self { epoch, blob_id, signature, node: NodeId::from_public_key(&key.public_key()) }
    }

    /// The bytes signed.
    pub fn message(&self) -> Vec<u8> {
        invalid_blob_message(self.epoch, &self.blob_id)
    }

    /// Checks that this attests `blob_id` in `epoch`, by the node whose key is `public_key`.
    pub fn verify(
        &self,
        blob_id: &BlobId,
        epoch: Epoch,
        public_key: &BlsPublicKey,
    ) -> Result<(), SignedMessageError> {
        check_fields(&self.blob_id, blob_id, self.epoch, epoch, &self.node, public_key)?;
        Ok(public_key.verify(&self.message(), &self.signature)?)
    }
}

fn check_fields(
    blob_id: &BlobId,
    expected_blob_id: &BlobId,
    epoch: Epoch,
    expected_epoch: Epoch,
    node: &NodeId,
    public_key: &BlsPublicKey,
) -> Result<(), SignedMessageError> {
    if blob_id != expected_blob_id {
        return Err(SignedMessageError::Mismatch("blob ID"));
    }
    if epoch != expected_epoch {
        return Err(SignedMessageError::Mismatch("epoch"));
    }
    if *node != NodeId::from_public_key(public_key) {
        return Err(SignedMessageError::Mismatch("node"));
    }
    Ok(())
}
