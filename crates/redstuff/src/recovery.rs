//! Recovery symbols: the cells of the expanded matrix one node sends another so it can
//! rebuild a lost sliver, each with a Merkle proof. Checking them and rebuilding from them is
//! `rebuild.rs`.
//!
//! Cell `M[i][j]` lies in primary sliver `i` and secondary sliver `j`. A node holding
//! primary sliver `i` expands it to row `i` and can send cell `j` towards secondary sliver
//! `j`, proven in row `i`'s tree at leaf `j`; and symmetrically for secondary slivers.

use serde::{Deserialize, Serialize};

use crate::error::RecoveryError;
use crate::merkle::{self, MerkleProof, MerkleTree};
use crate::metadata::VerifiedMetadata;
use crate::rs;
use crate::sliver::{Sliver, SliverType};
use crate::verify::source_symbols;

/// One cell of the expanded matrix, sent from a source sliver towards a target sliver of the
/// other kind, with its proof in the source sliver's tree (leaf index = target index).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoverySymbol {
    /// Index of the sliver the symbol comes from (its kind is the target's orthogonal).
    pub source_index: u16,
    /// The cell's bytes.
    #[serde(with = "serde_bytes")]
    pub symbol: Vec<u8>,
    /// Path from the cell to the source sliver's root.
    pub proof: MerkleProof,
}

impl std::fmt::Debug for RecoverySymbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoverySymbol")
            .field("source_index", &self.source_index)
            .field("bytes", &self.symbol.len())
            .field("proof_len", &self.proof.path.len())
            .finish()
    }
}

/// Whether a rebuild checks each symbol's proof first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proofs {
    /// Check every proof; a mismatching result is then an inconsistency proof.
    Check,
    /// Skip the proofs (the optimistic path); a mismatching result must be retried with
    /// proofs to find the peer that lied.
    Skip,
}

/// A sliver expanded to all `n` cells of its row or column, with its Merkle tree: what a
/// node computes once to answer many recovery requests for the same sliver.
#[derive(Debug, Clone)]
pub struct SliverExpansion {
    kind: SliverType,
    index: u16,
    symbol_size: usize,
    cells: Vec<u8>,
    tree: MerkleTree,
}

impl SliverExpansion {
    /// Expands a sliver of `kind` that has passed [`VerifiedMetadata::check_sliver_shape`].
    pub fn new(
        metadata: &VerifiedMetadata,
        kind: SliverType,
        sliver: &Sliver,
    ) -> Result<Self, RecoveryError> {
        metadata.check_sliver_shape(kind, sliver)?;
        let config = metadata.config();
        let n = config.n_shards();
        let s = usize::from(sliver.symbol_size);
        let cells = rs::expand(source_symbols(config, kind), n, s, &sliver.symbols);
        let mut leaves = vec![merkle::EMPTY_NODE; n];
        merkle::leaf_hashes_into(&cells, s, &mut leaves);
        Ok(Self {
            kind,
            index: sliver.index,
            symbol_size: s,
            cells,
            tree: MerkleTree::from_leaf_hashes(leaves),
        })
    }

    /// The root of the expansion; equals the metadata hash when the sliver is genuine.
    pub fn root(&self) -> merkle::Digest {
        self.tree.root()
    }

    /// The symbol for target sliver `target_index` (of the other kind), or `None` if the
    /// index is not below `n`.
    pub fn recovery_symbol(&self, target_index: usize) -> Option<RecoverySymbol> {
        let s = self.symbol_size;
        let symbol = self.cells.get(target_index * s..(target_index + 1) * s)?.to_vec();
        Some(RecoverySymbol { source_index: self.index, symbol, proof: self.tree.proof(target_index)? })
    }

    /// The kind of the expanded sliver.
    pub fn kind(&self) -> SliverType {
        self.kind
    }
}
