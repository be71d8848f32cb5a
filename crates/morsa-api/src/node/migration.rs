//! Shard migration: a shard's new owner pulls it from its previous owner in pages, in blob-ID
//! order, with requests it signs with its BLS key (see `docs/NODE.md`, "Shard migration").

use morsa_core::{BlsSignature, Epoch, NodeId, ShardIndex};
use redstuff::{BlobId, EncodingConfig, SliverType};
use serde::{Deserialize, Serialize};

use super::limits::{metadata_limit, sliver_limit};

/// Most blobs one page may hold.
pub const MAX_SHARD_PAGE_BLOBS: u32 = 256;
/// Sliver bytes after which the previous owner closes a page (it always holds one blob).
pub const SHARD_PAGE_TARGET_BYTES: usize = 8 << 20;

/// `POST` [`super::routes::SHARD_PAGE`] (JSON): one page of a shard, asked by its owner in
/// `epoch` of the node that owned it in the epoch before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPageRequest {
    /// The epoch in which `requester` owns `shard`.
    pub epoch: Epoch,
    /// The shard.
    pub shard: ShardIndex,
    /// The node asking: the shard's owner in `epoch`.
    pub requester: NodeId,
    /// The first blob ID of the page (included); `None` from the first blob.
    pub from: Option<BlobId>,
    /// Most blobs in the page, at most [`MAX_SHARD_PAGE_BLOBS`].
    pub max_blobs: u32,
    /// `requester`'s BLS signature over [`ShardPageRequest::message`].
    pub signature: BlsSignature,
}

impl ShardPageRequest {
    /// The bytes the requester signs ([`morsa_core::shard_page_message`]).
    pub fn message(&self) -> Vec<u8> {
        morsa_core::shard_page_message(
            self.epoch,
            &self.requester,
            self.shard.0,
            self.from.as_ref(),
            self.max_blobs,
        )
    }

    /// A request signed with `key` (the key of `requester`).
    pub fn signed(
        key: &morsa_core::BlsSecretKey,
        epoch: Epoch,
        shard: ShardIndex,
        from: Option<BlobId>,
        max_blobs: u32,
    ) -> Self {
        let requester = NodeId::from_public_key(&key.public_key());
        let message = morsa_core::shard_page_message(epoch, &requester, shard.0, from.as_ref(), max_blobs);
        Self { epoch, shard, requester, from, max_blobs, signature: key.sign(&message) }
    }
}

/// The answer (BCS): the certified blobs of the shard from the asked blob on, in blob-ID
/// order, and where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPage {
    /// The blobs, in increasing blob-ID order, none before the asked `from`.
    pub items: Vec<ShardPageItem>,
    /// The first blob ID of the next page; `None` when the shard has no more blobs.
    pub next: Option<BlobId>,
}

impl redstuff::wire::WireValue for ShardPage {
    const WHAT: &'static str = "shard page";

    fn check(&self) -> Result<(), &'static str> {
        if self.items.len() > usize::try_from(MAX_SHARD_PAGE_BLOBS).unwrap_or(usize::MAX) {
            return Err("it has more blobs than a page may hold");
        }
        Ok(())
    }
}

/// One blob of a [`ShardPage`]: its metadata and the shard's two slivers, as the previous
/// owner stores them (BCS `MetadataWithId` and `Sliver`). A piece the previous owner lacks is
/// `None`: the new owner rebuilds it from recovery symbols instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPageItem {
    /// The blob.
    pub blob_id: BlobId,
    /// BCS `MetadataWithId`.
    pub metadata: Option<Vec<u8>>,
    /// BCS primary sliver of the shard's pair.
    pub primary: Option<Vec<u8>>,
    /// BCS secondary sliver of the shard's pair.
    pub secondary: Option<Vec<u8>>,
}

impl ShardPageItem {
    /// The BCS sliver of `kind`, if held.
    pub fn sliver(&self, kind: SliverType) -> Option<&[u8]> {
        match kind {
            SliverType::Primary => self.primary.as_deref(),
            SliverType::Secondary => self.secondary.as_deref(),
        }
    }
}

/// The largest [`ShardPage`] answer a client accepts: the target size plus one blob of the
/// largest shape (a page closes after the blob that crosses the target).
pub fn shard_page_limit(config: EncodingConfig) -> usize {
    let largest_blob = metadata_limit(config)
        + sliver_limit(config, SliverType::Primary, redstuff::MAX_SYMBOL_SIZE)
        + sliver_limit(config, SliverType::Secondary, redstuff::MAX_SYMBOL_SIZE)
        + 128;
    SHARD_PAGE_TARGET_BYTES + largest_blob
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_request_verifies_under_its_key_and_not_once_changed() {
        let key = morsa_core::BlsSecretKey::from_seed([5; 32]);
        let request = ShardPageRequest::signed(&key, Epoch(3), ShardIndex(7), Some(BlobId([1; 32])), 16);
        assert_eq!(request.requester, NodeId::from_public_key(&key.public_key()));
        assert!(key.public_key().verify(&request.message(), &request.signature).is_ok());
        let moved = ShardPageRequest { from: Some(BlobId([2; 32])), ..request.clone() };
        assert!(key.public_key().verify(&moved.message(), &moved.signature).is_err());
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<ShardPageRequest>(&json).unwrap(), request);
    }
}
