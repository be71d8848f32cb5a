//! Batched recovery symbols: one request for the symbols of many target slivers, so a node
//! rebuilding a shard does not make one round trip per blob.

use redstuff::wire::WireValue;
use redstuff::{BlobId, RecoverySymbol, SliverType, SymbolBlock};
use serde::{Deserialize, Serialize};

use super::MAX_RECOVERY_BATCH;
use super::params::sliver_type_text;
use crate::ErrorBody;

/// `POST` [`super::routes::RECOVERY_SYMBOLS_BATCH`], JSON: at most [`MAX_RECOVERY_BATCH`]
/// items (more are refused with `too_large`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryBatchRequest {
    /// What to send symbols for, answered in this order.
    pub items: Vec<RecoveryItem>,
}

/// One target sliver whose recovery symbols are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecoveryItem {
    /// The blob.
    pub blob_id: BlobId,
    /// Index of the sliver to rebuild (not a pair index).
    pub target_sliver: u16,
    /// Type of the sliver to rebuild.
    #[serde(with = "sliver_type_text")]
    pub target_type: SliverType,
    /// Send at most this many symbols (the asker needs no more from this node); all the
    /// node can give if absent.
    #[serde(default)]
    pub max_symbols: Option<u16>,
}

/// The BCS answer to a [`RecoveryBatchRequest`]: one item per request item, same order.
/// Its encoded size is at most [`super::MAX_RECOVERY_BATCH_RESPONSE_BYTES`]; items that did
/// not fit carry the error `over_budget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryBatchResponse {
    /// The answers.
    pub items: Vec<RecoveryBatchItem>,
}

/// The answer for one [`RecoveryItem`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryBatchItem {
    /// The blob, as asked.
    pub blob_id: BlobId,
    /// The target sliver, as asked.
    pub target_sliver: u16,
    /// The target type, as asked.
    #[serde(with = "sliver_type_text")]
    pub target_type: SliverType,
    /// The symbols, or why there are none.
    pub outcome: RecoveryOutcome,
}

/// Symbols for one target, or the error the single-target route would have answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecoveryOutcome {
    /// One symbol from each sliver of the other type the node holds (unverified: check each
    /// against the metadata before use).
    Symbols(Vec<RecoverySymbol>),
    /// Why not: `code` is a [`super::NodeErrorCode`] text form.
    Error(ErrorBody),
    /// The symbols [`RecoveryOutcome::Symbols`] would carry, without proofs, as one block (sent
    /// when the request asked `proofs=false&blocks=true`; unverified: check each symbol's
    /// length and source, and the rebuilt sliver against the metadata).
    Block(SymbolBlock),
}

impl RecoveryBatchItem {
    /// Whether this answers `item`.
    pub fn answers(&self, item: &RecoveryItem) -> bool {
        self.blob_id == item.blob_id
            && self.target_sliver == item.target_sliver
            && self.target_type == item.target_type
    }
}

impl RecoveryBatchResponse {
    /// Whether the answer lists exactly the request's items, in order.
    pub fn answers(&self, request: &RecoveryBatchRequest) -> bool {
        self.items.len() == request.items.len()
            && self.items.iter().zip(&request.items).all(|(answer, item)| answer.answers(item))
    }

    /// Bytes of its BCS form.
    pub fn encoded_len(&self) -> usize {
        bcs::serialized_size(self).expect("recovery batches have no maps and short sequences")
    }
}

impl WireValue for RecoveryBatchResponse {
    const WHAT: &'static str = "recovery batch response";

    fn check(&self) -> Result<(), &'static str> {
        if self.items.len() > MAX_RECOVERY_BATCH {
            return Err("it has more items than a batch may ask for");
        }
        self.items.iter().try_for_each(|item| match &item.outcome {
            RecoveryOutcome::Symbols(symbols) => symbols.check(),
            RecoveryOutcome::Block(block) => block.check(),
            RecoveryOutcome::Error(_) => Ok(()),
        })
    }
}
