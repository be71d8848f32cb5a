//! RedStuff: the two-dimensional Reed–Solomon code of Walrus, byte-compatible with its RS2
//! encoding, so blob IDs computed here equal those `walrus blob-id` prints.
//!
//! A blob is laid out as a `kp × ks` matrix of symbols and expanded to `n × n`: rows become
//! *primary slivers*, columns *secondary slivers*, and shard `p` stores the pair (primary
//! `p`, secondary `n − 1 − p`). Any `kp` primary slivers decode the blob; a lost sliver is
//! rebuilt from one small *recovery symbol* per peer.
//!
//! ```
//! use redstuff::{EncodingConfig, SliverType};
//!
//! let config = EncodingConfig::new(10).unwrap();
//! let blob = b"walrus blob id v1 regression test";
//! let encoded = redstuff::encode(config, blob).unwrap();
//! let metadata = &encoded.metadata;
//! assert_eq!(metadata.blob_id().to_string(), "RcU82Mwf-CFkv1LaI_2qcpANwpGUuG3TMwnVzZxD2kY");
//!
//! // Any kp = 4 verified primary slivers give the blob back.
//! let slivers: Vec<_> = encoded.pairs[6..].iter().map(|pair| pair.primary.clone()).collect();
//! for sliver in &slivers {
//!     metadata.verify_sliver(SliverType::Primary, sliver).unwrap();
//! }
//! assert_eq!(metadata.decode(&slivers).unwrap(), blob);
//! ```
//!
//! This crate is pure: no I/O, no async. Heavy work runs on rayon's pool; call it from a
//! blocking thread, never an async worker.

pub mod baseline;
mod blob_id;
mod config;
mod decode;
mod encode;
mod erasure;
mod error;
pub mod hash;
mod inconsistency;
pub mod merkle;
mod metadata;
mod range;
mod rebuild;
mod recovery;
mod rs;
mod sliver;
mod verify;
pub mod wire;

pub use blob_id::{BlobId, BlobIdParseError, Placement};
pub use config::{ENCODING_TYPE_RS2, EncodingConfig, MAX_SYMBOL_SIZE, MIN_SHARDS};
pub use encode::{EncodedBlob, compute_metadata, encode, metadata_for_pairs};
pub use error::{
    ConfigError, DecodeError, EncodeError, MetadataError, RangeError, RecoveryError, SliverVerificationError,
    WireError,
};
pub use inconsistency::{InconsistencyProof, InconsistencyProofError};
pub use metadata::{BlobMetadata, MetadataWithId, SliverPairMetadata, VerifiedMetadata};
pub use range::SymbolSpan;
pub use recovery::{Proofs, RecoverySymbol, SliverExpansion, SymbolBlock, SymbolRef};
pub use sliver::{Sliver, SliverPair, SliverType, secondary_index_of_pair};

#[cfg(test)]
mod tests {
    use super::*;

    /// `metadata_for_pairs` computes every root from the slivers themselves (one expansion and
    /// tree per sliver), so it checks the encoder's streamed trees: shard counts below, at and
    /// above one block of leaves (64), padding rows and columns, and several batches.
    #[test]
    fn metadata_for_genuine_pairs_equals_the_encoders() {
        for (n, len) in [(7, 1000), (64, 5000), (65, 1), (130, 0), (130, 100_000), (1000, 3000)] {
            let config = EncodingConfig::new(n).unwrap();
            let blob: Vec<u8> = (0..len).map(|i: u32| u8::try_from(i % 251).unwrap()).collect();
            let encoded = encode(config, &blob).unwrap();
            let again = metadata_for_pairs(config, u64::from(len), &encoded.pairs).unwrap();
            assert_eq!(again, encoded.metadata, "n = {n}, {len} bytes");
            assert_eq!(compute_metadata(config, &blob).unwrap(), encoded.metadata, "n = {n}, {len} bytes");
        }
    }
}
