//! Inconsistency proofs: correctly proven recovery symbols that rebuild a sliver whose hash
//! is not the one in the metadata, which shows the writer encoded the blob wrongly.

use serde::{Deserialize, Serialize};

use crate::metadata::VerifiedMetadata;
use crate::recovery::{Proofs, RecoverySymbol};
use crate::sliver::SliverType;
use crate::verify::expansion_root;

/// Evidence that a blob was encoded inconsistently, checkable by anyone holding the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InconsistencyProof {
    /// Kind of the sliver the symbols rebuild.
    pub target_kind: SliverType,
    /// Index of the sliver the symbols rebuild.
    pub target_index: u16,
    /// `kp` (secondary target) or `ks` (primary target) proven symbols of distinct sources.
    pub symbols: Vec<RecoverySymbol>,
}

/// Why an inconsistency proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InconsistencyProofError {
    /// A symbol is malformed, unproven, or there are too few of them.
    #[error("the proof's symbols are not valid: {0}")]
    Symbols(#[from] crate::RecoveryError),
    /// The symbols rebuild a sliver that matches the metadata: no inconsistency.
    #[error("the symbols rebuild a sliver that matches the metadata: nothing is inconsistent")]
    Consistent,
}

impl InconsistencyProof {
    /// Checks the proof against `metadata`: every symbol is proven, there are enough from
    /// distinct sources, and the sliver they decode to does not match its committed hash.
    pub fn verify(&self, metadata: &VerifiedMetadata) -> Result<(), InconsistencyProofError> {
        let target = usize::from(self.target_index);
        if target >= metadata.config().n_shards() {
            return Err(crate::RecoveryError::Malformed {
                source_index: 0,
                reason: "target index is not below the shard count",
            }
            .into());
        }
        let chosen = metadata.choose_symbols(self.target_kind, target, &self.symbols, Proofs::Check)?;
        let sliver = metadata.decode_symbols(self.target_kind, self.target_index, &chosen);
        let s = usize::from(metadata.symbol_size());
        let root = expansion_root(metadata.config(), self.target_kind, s, &sliver.symbols);
        if Some(&root) == metadata.sliver_hash(self.target_kind, target) {
            return Err(InconsistencyProofError::Consistent);
        }
        Ok(())
    }
}
