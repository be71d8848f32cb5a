//! Blob metadata: the Merkle root of every sliver, and the blob ID derived from them.

use serde::{Deserialize, Serialize};

use crate::BlobId;
use crate::config::{ENCODING_TYPE_RS2, EncodingConfig};
use crate::error::MetadataError;
use crate::merkle::{self, Digest, MerkleNode};
use crate::sliver::{SliverType, secondary_index_of_pair};

/// The hashes of one sliver pair: primary sliver `p` and secondary sliver `n − 1 − p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliverPairMetadata {
    /// Root over the `n` symbols of row `p` of the expanded matrix.
    pub primary: MerkleNode,
    /// Root over the `n` symbols of column `n − 1 − p` of the expanded matrix.
    pub secondary: MerkleNode,
}

/// Metadata of one blob, as committed to by its ID.
///
/// On the wire this is the BCS enum `BlobMetadata::V1 { encoding_type, unencoded_length,
/// hashes }`, exactly as Walrus sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "VersionedMetadata", into = "VersionedMetadata")]
pub struct BlobMetadata {
    /// Encoding type; 1 (RS2) is the only one supported.
    pub encoding_type: u8,
    /// Length of the blob in bytes.
    pub unencoded_length: u64,
    /// One entry per sliver pair, in pair order.
    pub hashes: Vec<SliverPairMetadata>,
}

#[derive(Serialize, Deserialize)]
enum VersionedMetadata {
    V1 { encoding_type: u8, unencoded_length: u64, hashes: Vec<SliverPairMetadata> },
}

impl From<VersionedMetadata> for BlobMetadata {
    fn from(value: VersionedMetadata) -> Self {
        let VersionedMetadata::V1 { encoding_type, unencoded_length, hashes } = value;
        Self { encoding_type, unencoded_length, hashes }
    }
}

impl From<BlobMetadata> for VersionedMetadata {
    fn from(value: BlobMetadata) -> Self {
        Self::V1 {
            encoding_type: value.encoding_type,
            unencoded_length: value.unencoded_length,
            hashes: value.hashes,
        }
    }
}

impl BlobMetadata {
    /// Builds RS2 metadata from the `n` row roots and `n` column roots of the expanded matrix.
    pub(crate) fn from_roots(unencoded_length: u64, rows: &[Digest], columns: &[Digest]) -> Self {
        let n = rows.len();
        let hashes = (0..n)
            .map(|pair| SliverPairMetadata {
                primary: MerkleNode::Digest(rows[pair]),
                secondary: MerkleNode::Digest(columns[secondary_index_of_pair(pair, n)]),
            })
            .collect();
        Self { encoding_type: ENCODING_TYPE_RS2, unencoded_length, hashes }
    }

    /// Merkle root over the pairs: leaf `p` is `H(0x00 ‖ primary ‖ secondary)`.
    pub fn root(&self) -> Digest {
        let mut leaves = vec![merkle::EMPTY_NODE; self.hashes.len()];
        let mut joined = Vec::with_capacity(64 * self.hashes.len());
        for pair in &self.hashes {
            joined.extend_from_slice(pair.primary.bytes());
            joined.extend_from_slice(pair.secondary.bytes());
        }
        merkle::leaf_hashes_into(&joined, 64, &mut leaves);
        merkle::root_from_leaf_hashes(&leaves)
    }

    /// The blob ID these metadata commit to.
    pub fn blob_id(&self) -> BlobId {
        BlobId::from_root(self.unencoded_length, &self.root())
    }

    /// Checks the metadata against `blob_id` and the code for `n_shards`, and returns the
    /// verified form every other operation takes.
    pub fn verify(self, blob_id: &BlobId, config: EncodingConfig) -> Result<VerifiedMetadata, MetadataError> {
        if self.encoding_type != ENCODING_TYPE_RS2 {
            return Err(MetadataError::UnsupportedEncoding(self.encoding_type));
        }
        if self.hashes.len() != config.n_shards() {
            return Err(MetadataError::WrongPairCount {
                expected: config.n_shards(),
                actual: self.hashes.len(),
            });
        }
        let symbol_size = config.symbol_size(self.unencoded_length)?;
        let computed = self.blob_id();
        if computed != *blob_id {
            return Err(MetadataError::BlobIdMismatch { expected: *blob_id, computed });
        }
        if let Some(pair) = self
            .hashes
            .iter()
            .position(|pair| pair.primary == MerkleNode::Empty || pair.secondary == MerkleNode::Empty)
        {
            return Err(MetadataError::EmptyHash(pair));
        }
        Ok(VerifiedMetadata { blob_id: computed, config, symbol_size, metadata: self })
    }
}

/// Metadata checked to hash to its blob ID and to fit the code: what encoding produces and
/// what verification, decoding and recovery take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedMetadata {
    blob_id: BlobId,
    config: EncodingConfig,
    symbol_size: u16,
    metadata: BlobMetadata,
}

impl VerifiedMetadata {
    pub(crate) fn new_unchecked(
        blob_id: BlobId,
        config: EncodingConfig,
        symbol_size: u16,
        metadata: BlobMetadata,
    ) -> Self {
        Self { blob_id, config, symbol_size, metadata }
    }

    /// The blob ID.
    pub fn blob_id(&self) -> &BlobId {
        &self.blob_id
    }

    /// The code.
    pub fn config(&self) -> EncodingConfig {
        self.config
    }

    /// Bytes per symbol for this blob.
    pub fn symbol_size(&self) -> u16 {
        self.symbol_size
    }

    /// Length of the blob in bytes.
    pub fn unencoded_length(&self) -> u64 {
        self.metadata.unencoded_length
    }

    /// The metadata.
    pub fn metadata(&self) -> &BlobMetadata {
        &self.metadata
    }

    /// Gives back the metadata.
    pub fn into_metadata(self) -> BlobMetadata {
        self.metadata
    }

    /// The committed Merkle root of sliver `index` of `kind`, if the index is in range.
    pub fn sliver_hash(&self, kind: SliverType, index: usize) -> Option<&Digest> {
        let n = self.config.n_shards();
        if index >= n {
            return None;
        }
        Some(match kind {
            SliverType::Primary => self.metadata.hashes[index].primary.bytes(),
            SliverType::Secondary => {
                self.metadata.hashes[secondary_index_of_pair(index, n)].secondary.bytes()
            }
        })
    }

    /// Number of symbols in a sliver of `kind`: `ks` for primary, `kp` for secondary.
    pub fn symbols_in(&self, kind: SliverType) -> usize {
        match kind {
            SliverType::Primary => self.config.ks(),
            SliverType::Secondary => self.config.kp(),
        }
    }

    /// Length in bytes of a sliver of `kind`.
    pub fn sliver_len(&self, kind: SliverType) -> usize {
        self.symbols_in(kind) * usize::from(self.symbol_size)
    }
}

/// Metadata together with the blob ID, in Walrus's wire form (the 32 ID bytes, then the
/// metadata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataWithId {
    /// The blob ID the metadata is claimed to hash to.
    pub blob_id: BlobId,
    /// The metadata.
    pub metadata: BlobMetadata,
}
