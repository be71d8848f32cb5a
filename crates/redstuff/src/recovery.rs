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
///
/// Built [`SliverExpansion::unproven`], it has no tree: its symbols carry empty proofs, for a
/// rebuilder that asked without proofs (it checks the rebuilt sliver against the metadata
/// instead), and it skips the `2n` hashes that are most of an expansion's cost.
#[derive(Debug, Clone)]
pub struct SliverExpansion {
    kind: SliverType,
    index: u16,
    symbol_size: usize,
    cells: Vec<u8>,
    tree: Option<MerkleTree>,
}

impl SliverExpansion {
    /// Expands a sliver of `kind` that has passed [`VerifiedMetadata::check_sliver_shape`],
    /// with its Merkle tree.
    pub fn new(
        metadata: &VerifiedMetadata,
        kind: SliverType,
        sliver: &Sliver,
    ) -> Result<Self, RecoveryError> {
        let mut expansion = Self::unproven(metadata, kind, sliver)?;
        expansion.prove();
        Ok(expansion)
    }

    /// Builds the Merkle tree of an expansion made without it (nothing if it has one), so its
    /// symbols carry proofs and [`SliverExpansion::root`] answers.
    pub fn prove(&mut self) {
        if self.tree.is_some() {
            return;
        }
        let mut leaves = vec![merkle::EMPTY_NODE; self.cells.len() / self.symbol_size];
        merkle::leaf_hashes_into(&self.cells, self.symbol_size, &mut leaves);
        self.tree = Some(MerkleTree::from_leaf_hashes(leaves));
    }

    /// Expands a sliver of `kind` as [`SliverExpansion::new`] does, without the Merkle tree.
    pub fn unproven(
        metadata: &VerifiedMetadata,
        kind: SliverType,
        sliver: &Sliver,
    ) -> Result<Self, RecoveryError> {
        metadata.check_sliver_shape(kind, sliver)?;
        let config = metadata.config();
        let s = usize::from(sliver.symbol_size);
        let cells = rs::expand(source_symbols(config, kind), config.n_shards(), s, &sliver.symbols);
        Ok(Self { kind, index: sliver.index, symbol_size: s, cells, tree: None })
    }

    /// Expands several slivers of `kind` of one blob as [`SliverExpansion::unproven`] does one
    /// by one, encoding them side by side (symbols under 64 bytes packed densely), so slivers
    /// of small blobs do not each pay for a whole transform. One answer per sliver, in order; a
    /// sliver of the wrong shape gets its error and leaves the others alone.
    ///
    /// Its memory is the `n` cells of every sliver given: callers bound how many they pass.
    pub fn unproven_many(
        metadata: &VerifiedMetadata,
        kind: SliverType,
        slivers: &[&Sliver],
    ) -> Vec<Result<Self, RecoveryError>> {
        let config = metadata.config();
        let (k, n) = (source_symbols(config, kind), config.n_shards());
        let mut answers: Vec<Result<Self, RecoveryError>> = slivers
            .iter()
            .map(|sliver| {
                metadata.check_sliver_shape(kind, sliver)?;
                let s = usize::from(sliver.symbol_size);
                let mut cells = vec![0; n * s];
                cells[..k * s].copy_from_slice(&sliver.symbols);
                Ok(Self { kind, index: sliver.index, symbol_size: s, cells, tree: None })
            })
            .collect();
        let s = usize::from(metadata.symbol_size());
        let jobs: Vec<(&[u8], &mut [u8])> = answers
            .iter_mut()
            .filter_map(|answer| answer.as_mut().ok())
            .map(|expansion| {
                let (sources, recovery) = expansion.cells.split_at_mut(k * s);
                (&*sources, recovery)
            })
            .collect();
        if !jobs.is_empty() {
            rs::encode_many_into_slots(k, n, s, jobs, s);
        }
        answers
    }

    /// For each of `slivers` (of `kind`, of one blob), its unproven recovery symbols towards
    /// each of `targets` (sliver indices of the other kind), in the order of `targets`: what
    /// [`SliverExpansion::unproven_many`] and [`SliverExpansion::recovery_symbol`] give, without
    /// laying out the cells no target asks for. One answer per sliver, in order; a sliver of
    /// the wrong shape gets its error and leaves the others alone.
    ///
    /// # Panics
    /// If a target is not below `n`.
    pub fn unproven_symbols_many(
        metadata: &VerifiedMetadata,
        kind: SliverType,
        slivers: &[&Sliver],
        targets: &[usize],
    ) -> Vec<Result<Vec<RecoverySymbol>, RecoveryError>> {
        let config = metadata.config();
        let (k, n, s) =
            (source_symbols(config, kind), config.n_shards(), usize::from(metadata.symbol_size()));
        let shapes: Vec<Result<(), RecoveryError>> =
            slivers.iter().map(|sliver| Ok(metadata.check_sliver_shape(kind, sliver)?)).collect();
        let codewords: Vec<&[u8]> = slivers
            .iter()
            .zip(&shapes)
            .filter(|(_, shape)| shape.is_ok())
            .map(|(sliver, _)| sliver.symbols.as_slice())
            .collect();
        let mut picked = rs::encode_many_picked(k, n, s, &codewords, targets).into_iter();
        slivers
            .iter()
            .zip(shapes)
            .map(|(sliver, shape)| {
                shape?;
                let symbols = picked.next().expect("one pick per well-shaped sliver");
                Ok(symbols
                    .chunks_exact(s)
                    .map(|symbol| RecoverySymbol {
                        source_index: sliver.index,
                        symbol: symbol.to_vec(),
                        proof: MerkleProof { path: Vec::new() },
                    })
                    .collect())
            })
            .collect()
    }

    /// The root of the expansion (equal to the metadata hash when the sliver is genuine), or
    /// `None` if it was built without its tree.
    pub fn root(&self) -> Option<merkle::Digest> {
        self.tree.as_ref().map(MerkleTree::root)
    }

    /// The symbol for target sliver `target_index` (of the other kind), or `None` if the
    /// index is not below `n`. Its proof is empty if the expansion has no tree.
    pub fn recovery_symbol(&self, target_index: usize) -> Option<RecoverySymbol> {
        let s = self.symbol_size;
        let symbol = self.cells.get(target_index * s..(target_index + 1) * s)?.to_vec();
        let proof = match &self.tree {
            Some(tree) => tree.proof(target_index)?,
            None => MerkleProof { path: Vec::new() },
        };
        Some(RecoverySymbol { source_index: self.index, symbol, proof })
    }

    /// The kind of the expanded sliver.
    pub fn kind(&self) -> SliverType {
        self.kind
    }
}
