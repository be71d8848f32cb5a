//! Protocol types shared by every Morsa service. Pure: no I/O, no async.
//!
//! What this crate owns:
//! - indices and epochs ([`ShardIndex`], [`SliverPairIndex`], [`Epoch`]) and the quorum
//!   arithmetic of shard weights ([`quorum`]);
//! - account keys: ed25519 ([`AccountKey`], [`AccountId`], [`AccountSignature`]);
//! - node keys: BLS12-381 `min_pk` ([`BlsSecretKey`], [`BlsPublicKey`], [`BlsSignature`],
//!   [`verify_aggregate`]), with proofs of possession;
//! - the exact bytes nodes sign, laid out as in Walrus ([`storage_confirmation_message`],
//!   [`invalid_blob_message`], [`epoch_sync_done_message`]);
//! - committees ([`Committee`], [`NodeId`]) and the certificates they issue ([`Certificate`],
//!   verified against a [`Threshold`]);
//! - named integer conversions ([`convert`]) for values that saturate when they do not fit;
//! - storage [`challenge`]s: round seeds, which symbols are challenged, answers and their
//!   verification, and the bytes of challenge reports;
//! - the coordinator's [`protocol`]: log entries, signed transactions and node reports,
//!   hash-chained events, and the confirmations and attestations nodes sign for clients.
//!
//! What it does not own: the codec and blob IDs (`redstuff`, re-exported as [`BlobId`]), how
//! the coordinator applies its log (`morsa-coord`), storage (`morsa-store`), HTTP routes and
//! clients (`morsa-api`).
//!
//! Keys, signatures and IDs read as lowercase hex in text and JSON, and as raw bytes with no
//! length prefix in BCS.
//!
//! ```
//! use morsa_core::{BlsSecretKey, Certificate, Committee, CommitteeMember, Epoch, NodeId};
//! use morsa_core::{ShardIndex, Threshold, quorum};
//! let n = 10;
//! assert!(quorum::is_quorum(7, n));      // 3·7 ≥ 2·10 + 1
//! assert!(!quorum::is_quorum(6, n));
//! assert!(quorum::is_validity(4, n));    // at least one honest shard: 3·4 ≥ 10 + 1
//!
//! // Two nodes holding 3 and 1 of 4 shards; the first alone is a quorum.
//! let keys = [BlsSecretKey::from_seed([1; 32]), BlsSecretKey::from_seed([2; 32])];
//! let members = keys.iter().zip([vec![0, 1, 2], vec![3]]).map(|(key, shards)| CommitteeMember {
//!     node_id: NodeId::from_public_key(&key.public_key()),
//!     public_key: key.public_key(),
//!     address: "127.0.0.1:9000".into(),
//!     shards: shards.into_iter().map(ShardIndex).collect(),
//! });
//! let committee = Committee { epoch: Epoch(1), n_shards: 4, members: members.collect() };
//! committee.validate()?;
//! let certificate = Certificate::aggregate(&[(0, keys[0].sign(b"message"))])?;
//! assert_eq!(committee.verify_certificate(&certificate, b"message", Threshold::Quorum)?, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod account;
pub mod bls;
pub mod challenge;
pub mod committee;
pub mod convert;
pub mod hash;
mod hex_bytes;
mod index;
pub mod messages;
pub mod protocol;
pub mod quorum;
pub mod signature;

pub use account::{AccountId, AccountKey, AccountSignature};
pub use bls::{BLS_DST, BLS_POP_DST, BlsPublicKey, BlsSecretKey, BlsSignature, verify_aggregate};
pub use committee::{
    Certificate, CertificateError, Committee, CommitteeError, CommitteeMember, NodeId, Threshold,
};
pub use hex_bytes::ParseHexError;
pub use index::{Epoch, ShardIndex, SliverPairIndex};
pub use messages::{
    ObjectId, PersistenceType, availability_summary_message, epoch_sync_done_message, invalid_blob_message,
    node_unresponsive_message, shard_page_message, storage_confirmation_message,
};
pub use redstuff::BlobId;
pub use signature::SignatureError;
