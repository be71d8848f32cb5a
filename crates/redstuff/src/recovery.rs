//! Recovery symbols: the cells of the expanded matrix one node sends another so it can
//! rebuild a lost sliver, each with a Merkle proof, and the rebuild itself.
//!
//! Cell `M[i][j]` lies in primary sliver `i` and secondary sliver `j`. A node holding
//! primary sliver `i` expands it to row `i` and can send cell `j` towards secondary sliver
//! `j`, proven in row `i`'s tree at leaf `j`; and symmetrically for secondary slivers.

use serde::{Deserialize, Serialize};

use crate::error::RecoveryError;
use crate::inconsistency::InconsistencyProof;
use crate::merkle::{self, MerkleProof, MerkleTree};
use crate::metadata::VerifiedMetadata;
use crate::rs;
use crate::sliver::{Sliver, SliverType};
use crate::verify::{expansion_root, source_symbols};

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

impl VerifiedMetadata {
    /// Checks that `symbol` is cell `target_index` of its source sliver, which is of the kind
    /// orthogonal to `target_kind`.
    pub fn verify_recovery_symbol(
        &self,
        target_kind: SliverType,
        target_index: usize,
        symbol: &RecoverySymbol,
    ) -> Result<(), RecoveryError> {
        self.check_recovery_symbol_shape(symbol)?;
        let source_kind = target_kind.orthogonal();
        let n = self.config().n_shards();
        let root = self.sliver_hash(source_kind, usize::from(symbol.source_index)).ok_or(
            RecoveryError::Malformed {
                source_index: symbol.source_index,
                reason: "source index is not below the shard count",
            },
        )?;
        let leaf = merkle::leaf_hash(&symbol.symbol);
        if !symbol.proof.verifies(root, &leaf, target_index, n) {
            return Err(RecoveryError::InvalidProof { kind: source_kind, source_index: symbol.source_index });
        }
        Ok(())
    }

    fn check_recovery_symbol_shape(&self, symbol: &RecoverySymbol) -> Result<(), RecoveryError> {
        if symbol.symbol.len() != usize::from(self.symbol_size()) {
            return Err(RecoveryError::Malformed {
                source_index: symbol.source_index,
                reason: "symbol length is not the blob's symbol size",
            });
        }
        if usize::from(symbol.source_index) >= self.config().n_shards() {
            return Err(RecoveryError::Malformed {
                source_index: symbol.source_index,
                reason: "source index is not below the shard count",
            });
        }
        Ok(())
    }

    /// Rebuilds sliver `target_index` of `target_kind` from recovery symbols of distinct
    /// source slivers: `kp` of them for a secondary sliver, `ks` for a primary one (extras
    /// and duplicates are ignored).
    ///
    /// The result is checked against the metadata. If it does not match and the proofs were
    /// checked, the symbols prove the blob was encoded inconsistently and the error carries
    /// an [`InconsistencyProof`]; with [`Proofs::Skip`] it means some peer lied, so retry
    /// with proofs.
    pub fn rebuild_sliver(
        &self,
        target_kind: SliverType,
        target_index: usize,
        symbols: &[RecoverySymbol],
        proofs: Proofs,
    ) -> Result<Sliver, RecoveryError> {
        let index = u16::try_from(target_index)
            .ok()
            .filter(|index| usize::from(*index) < self.config().n_shards())
            .ok_or(RecoveryError::Malformed {
                source_index: 0,
                reason: "target index is not below the shard count",
            })?;
        let chosen = self.choose_symbols(target_kind, target_index, symbols, proofs)?;
        let sliver = self.decode_symbols(target_kind, index, &chosen);
        let s = usize::from(self.symbol_size());
        let root = expansion_root(self.config(), target_kind, s, &sliver.symbols);
        if Some(&root) == self.sliver_hash(target_kind, target_index) {
            return Ok(sliver);
        }
        match proofs {
            Proofs::Check => Err(RecoveryError::Inconsistent {
                kind: target_kind,
                index,
                proof: Box::new(InconsistencyProof {
                    target_kind,
                    target_index: index,
                    symbols: chosen.into_iter().cloned().collect(),
                }),
            }),
            Proofs::Skip => Err(RecoveryError::RebuiltMismatch { kind: target_kind, index }),
        }
    }

    /// The first symbol of each distinct source, `k` of them, with shapes (and proofs if
    /// asked) checked.
    pub(crate) fn choose_symbols<'a>(
        &self,
        target_kind: SliverType,
        target_index: usize,
        symbols: &'a [RecoverySymbol],
        proofs: Proofs,
    ) -> Result<Vec<&'a RecoverySymbol>, RecoveryError> {
        let config = self.config();
        let needed = source_symbols(config, target_kind);
        let mut seen = vec![false; config.n_shards()];
        let mut chosen = Vec::with_capacity(needed);
        for symbol in symbols {
            if chosen.len() == needed {
                break;
            }
            match proofs {
                Proofs::Check => self.verify_recovery_symbol(target_kind, target_index, symbol)?,
                Proofs::Skip => self.check_recovery_symbol_shape(symbol)?,
            }
            let source = usize::from(symbol.source_index);
            if !std::mem::replace(&mut seen[source], true) {
                chosen.push(symbol);
            }
        }
        if chosen.len() < needed {
            return Err(RecoveryError::NotEnoughSymbols { kind: target_kind, got: chosen.len(), needed });
        }
        Ok(chosen)
    }

    /// Decodes the target sliver from `k` symbols of distinct sources.
    pub(crate) fn decode_symbols(
        &self,
        target_kind: SliverType,
        index: u16,
        chosen: &[&RecoverySymbol],
    ) -> Sliver {
        let config = self.config();
        let k = source_symbols(config, target_kind);
        let s = usize::from(self.symbol_size());
        let cells = chosen.iter().map(|symbol| (usize::from(symbol.source_index), symbol.symbol.as_slice()));
        Sliver { symbols: rs::decode(k, config.n_shards(), s, cells), symbol_size: self.symbol_size(), index }
    }
}
