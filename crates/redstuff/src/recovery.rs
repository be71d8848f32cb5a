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

/// A recovery symbol's source and bytes, borrowed: what a rebuild without proofs needs of it,
/// whether it came alone ([`RecoverySymbol::cell`]) or in a [`SymbolBlock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolRef<'a> {
    /// Index of the sliver the symbol comes from.
    pub source_index: u16,
    /// The cell's bytes.
    pub symbol: &'a [u8],
}

impl RecoverySymbol {
    /// Its source and bytes, without the proof.
    pub fn cell(&self) -> SymbolRef<'_> {
        SymbolRef { source_index: self.source_index, symbol: &self.symbol }
    }
}

/// Recovery symbols towards one target, without proofs, as one block: the symbol from source
/// `source_indices[i]` is `symbols[i * s..(i + 1) * s]`, `s` the blob's symbol size. What a
/// node sends a rebuilder that asked without proofs: one allocation and one length prefix per
/// target, not one per symbol (a target takes hundreds of symbols of a few bytes each).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolBlock {
    /// Index of the sliver each symbol comes from, in order.
    pub source_indices: Vec<u16>,
    /// The symbols, one after another.
    #[serde(with = "serde_bytes")]
    pub symbols: Vec<u8>,
}

impl std::fmt::Debug for SymbolBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymbolBlock")
            .field("sources", &self.source_indices.len())
            .field("bytes", &self.symbols.len())
            .finish()
    }
}

impl SymbolBlock {
    /// An empty block with room for `sources` symbols of `symbol_size` bytes.
    pub fn with_capacity(sources: usize, symbol_size: usize) -> Self {
        Self {
            source_indices: Vec::with_capacity(sources),
            symbols: Vec::with_capacity(sources * symbol_size),
        }
    }

    /// Appends the symbol of `source_index`.
    pub fn push(&mut self, source_index: u16, symbol: &[u8]) {
        self.source_indices.push(source_index);
        self.symbols.extend_from_slice(symbol);
    }

    /// Symbols in the block.
    pub fn len(&self) -> usize {
        self.source_indices.len()
    }

    /// Whether it holds no symbol.
    pub fn is_empty(&self) -> bool {
        self.source_indices.is_empty()
    }

    /// Keeps the first `most` symbols (of `symbol_size` bytes).
    pub fn truncate(&mut self, most: usize, symbol_size: usize) {
        self.source_indices.truncate(most);
        self.symbols.truncate(self.source_indices.len() * symbol_size);
    }

    /// Its symbols in order, if they are `symbol_size` bytes each, as the blob's must be
    /// (`None` otherwise: the block was not cut for this blob).
    pub fn symbols(&self, symbol_size: usize) -> Option<impl ExactSizeIterator<Item = SymbolRef<'_>> + '_> {
        let whole = symbol_size > 0 && self.symbols.len() == self.source_indices.len() * symbol_size;
        whole.then(|| {
            self.source_indices
                .iter()
                .zip(self.symbols.chunks_exact(symbol_size))
                .map(|(source_index, symbol)| SymbolRef { source_index: *source_index, symbol })
        })
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
        let jobs: Vec<(rs::Sources<'_>, &mut [u8])> = answers
            .iter_mut()
            .filter_map(|answer| answer.as_mut().ok())
            .map(|expansion| {
                let (sources, recovery) = expansion.cells.split_at_mut(k * s);
                (rs::Sources::Consecutive(sources), recovery)
            })
            .collect();
        if !jobs.is_empty() {
            rs::encode_many_into_slots(k, n, s, jobs, s);
        }
        answers
    }

    /// The unproven recovery symbols of `slivers` (of `kind`, of one blob) towards each of
    /// `targets` (sliver indices of the other kind), appended to `blocks` (one per target, in
    /// the order of `targets`): for every well-shaped sliver in order, the symbol that
    /// [`SliverExpansion::unproven_many`] and [`SliverExpansion::recovery_symbol`] would give,
    /// without laying out the cells no target asks for. Answers each sliver's shape check, in
    /// order: a sliver of the wrong shape sends nothing and leaves the others alone.
    ///
    /// # Panics
    /// If a target is not below `n`, or `blocks` is not one per target.
    pub fn append_unproven_blocks(
        metadata: &VerifiedMetadata,
        kind: SliverType,
        slivers: &[&Sliver],
        targets: &[usize],
        blocks: &mut [SymbolBlock],
    ) -> Vec<Result<(), RecoveryError>> {
        assert_eq!(blocks.len(), targets.len(), "one block per target");
        let config = metadata.config();
        let (k, n, s) =
            (source_symbols(config, kind), config.n_shards(), usize::from(metadata.symbol_size()));
        let (shapes, sources) = metadata.well_shaped(kind, slivers);
        let codewords: Vec<&[u8]> = sources.iter().map(|sliver| sliver.symbols.as_slice()).collect();
        let picked = rs::encode_many_picked(k, n, s, &codewords, targets);
        for (sliver, symbols) in sources.iter().zip(&picked) {
            for (block, symbol) in blocks.iter_mut().zip(symbols.chunks_exact(s)) {
                block.push(sliver.index, symbol);
            }
        }
        shapes.into_iter().map(|shape| Ok(shape?)).collect()
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
