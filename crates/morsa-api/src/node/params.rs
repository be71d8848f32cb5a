//! Path and query parameters of the node's routes, and the text form of [`SliverType`] they
//! use (`primary` / `secondary`; redstuff's own serde form is `Primary` / `Secondary`).

use morsa_core::ObjectId;
use redstuff::{BlobId, SliverType};
use serde::{Deserialize, Serialize};

/// Reads `primary` or `secondary`.
pub fn parse_sliver_type(text: &str) -> Option<SliverType> {
    match text {
        "primary" => Some(SliverType::Primary),
        "secondary" => Some(SliverType::Secondary),
        _ => None,
    }
}

/// Serde of a [`SliverType`] field as `"primary"` / `"secondary"` in text formats (JSON,
/// paths, query strings), and as redstuff's own form in binary formats (BCS: the variant
/// index, 0 or 1). Use with `#[serde(with = "sliver_type_text")]`.
pub mod sliver_type_text {
    use redstuff::SliverType;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes `kind`.
    pub fn serialize<S: Serializer>(kind: &SliverType, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(kind.as_str())
        } else {
            kind.serialize(serializer)
        }
    }

    /// Reads a sliver type.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SliverType, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            super::parse_sliver_type(&text).ok_or_else(|| {
                let shown: String = text.chars().take(32).collect();
                D::Error::custom(format!("{shown:?} is not a sliver type: expected primary or secondary"))
            })
        } else {
            SliverType::deserialize(deserializer)
        }
    }
}

/// Path parameters of the routes with only `{blob_id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobIdPath {
    /// The blob.
    pub blob_id: BlobId,
}

/// Path parameters of [`super::routes::SLIVER`] and [`super::routes::SLIVER_STATUS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliverPath {
    /// The blob.
    pub blob_id: BlobId,
    /// The sliver pair `p`: primary sliver `p`, secondary sliver `n − 1 − p`.
    pub sliver_pair_index: u16,
    /// Which sliver of the pair.
    #[serde(with = "sliver_type_text")]
    pub sliver_type: SliverType,
}

/// Path parameters of [`super::routes::DELETABLE_CONFIRMATION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletablePath {
    /// The blob.
    pub blob_id: BlobId,
    /// The deletable blob object the confirmation names.
    pub object_id: ObjectId,
}

/// Path parameters of [`super::routes::INCONSISTENCY_PROOF`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InconsistencyProofPath {
    /// The blob.
    pub blob_id: BlobId,
    /// The type of the sliver the proof's symbols rebuild (must equal the proof's).
    #[serde(with = "sliver_type_text")]
    pub sliver_type: SliverType,
}

/// Query of a sliver `PUT`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutSliverQuery {
    /// Whether the node may keep the sliver before it has seen the blob registered (it drops
    /// it if no registration follows soon). Absent means `false`.
    #[serde(default)]
    pub pending: bool,
}

/// Query of [`super::routes::RECOVERY_SYMBOLS_BATCH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryBatchQuery {
    /// Whether each symbol carries its Merkle proof. Absent means `true`. A node rebuilding
    /// slivers optimistically asks without proofs (less traffic), checks the rebuilt sliver
    /// against the metadata, and asks again with proofs only if it does not match.
    #[serde(default = "yes")]
    pub proofs: bool,
    /// Without proofs, whether each item's symbols come as one block
    /// ([`super::RecoveryOutcome::Block`]) instead of a list. Absent means `false`; ignored
    /// with proofs. A node that does not know it answers with lists, so askers take both.
    #[serde(default)]
    pub blocks: bool,
    /// Whether a read waits for the answer (an on-demand rebuild): the node answers at its
    /// normal CPU priority, not as background work. Absent means `false`; a node that does not
    /// know it answers as background work.
    #[serde(default)]
    pub waiting: bool,
}

impl Default for RecoveryBatchQuery {
    fn default() -> Self {
        Self { proofs: true, blocks: false, waiting: false }
    }
}

impl RecoveryBatchQuery {
    /// The query string, without the `?`.
    pub fn to_query_string(&self) -> String {
        format!("proofs={}&blocks={}&waiting={}", self.proofs, self.blocks, self.waiting)
    }
}

fn yes() -> bool {
    true
}

/// Query of [`super::routes::PROBE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeQuery {
    /// Bytes of filler asked for; the node sends at most [`super::MAX_PROBE_BYTES`].
    pub bytes: u64,
}

impl ProbeQuery {
    /// The query string, without the `?`.
    pub fn to_query_string(&self) -> String {
        format!("bytes={}", self.bytes)
    }
}

/// Query of [`super::routes::RECOVERY_SYMBOLS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoverySymbolsQuery {
    /// Index of the sliver to rebuild (not a pair index).
    pub target_sliver: u16,
    /// Type of the sliver to rebuild; symbols come from the node's slivers of the other type.
    #[serde(with = "sliver_type_text")]
    pub target_type: SliverType,
}

impl RecoverySymbolsQuery {
    /// The query string, without the `?`.
    pub fn to_query_string(&self) -> String {
        format!("target_sliver={}&target_type={}", self.target_sliver, self.target_type.as_str())
    }
}
