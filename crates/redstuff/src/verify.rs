//! Checking a sliver against the metadata: its shape, then the Merkle root of its expansion.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::config::EncodingConfig;
use crate::error::SliverVerificationError;
use crate::merkle::{self, Digest, EMPTY_NODE};
use crate::metadata::VerifiedMetadata;
use crate::rs;
use crate::sliver::{Sliver, SliverType};

/// Source symbols of a sliver of `kind`, i.e. the `k` of the code that expands it.
pub(crate) fn source_symbols(config: EncodingConfig, kind: SliverType) -> usize {
    match kind {
        SliverType::Primary => config.ks(),
        SliverType::Secondary => config.kp(),
    }
}

/// Leaf hashes of the `n` symbols a sliver of `kind` expands to.
pub(crate) fn expansion_leaves(
    config: EncodingConfig,
    kind: SliverType,
    symbol_size: usize,
    symbols: &[u8],
) -> Vec<Digest> {
    let n = config.n_shards();
    let k = source_symbols(config, kind);
    let mut leaves = vec![EMPTY_NODE; n];
    let mut recovery = vec![0; (n - k) * symbol_size];
    rs::encode_into(k, n, symbol_size, symbols, &mut recovery);
    let (source_leaves, recovery_leaves) = leaves.split_at_mut(k);
    merkle::leaf_hashes_into(symbols, symbol_size, source_leaves);
    merkle::leaf_hashes_into(&recovery, symbol_size, recovery_leaves);
    leaves
}

/// Merkle root of the expansion of a sliver of `kind` with these symbols.
///
/// An all-zero sliver expands to all-zero cells (the code is linear), so its root depends
/// only on `n` and the symbol size and is computed once per thread: small blobs are mostly
/// zero padding, and this keeps verifying and decoding them cheap.
pub(crate) fn expansion_root(
    config: EncodingConfig,
    kind: SliverType,
    symbol_size: usize,
    symbols: &[u8],
) -> Digest {
    if symbols.iter().all(|byte| *byte == 0) {
        return zero_expansion_root(config.n_shards(), symbol_size);
    }
    merkle::root_from_leaf_hashes(&expansion_leaves(config, kind, symbol_size, symbols))
}

/// Leaf hash of an all-zero symbol of `symbol_size` bytes.
pub(crate) fn zero_leaf(symbol_size: usize) -> Digest {
    merkle::leaf_hash(&vec![0; symbol_size])
}

/// Root over `n` all-zero cells of `symbol_size` bytes, memoised per thread.
pub(crate) fn zero_expansion_root(n: usize, symbol_size: usize) -> Digest {
    thread_local! {
        static ROOTS: RefCell<HashMap<(usize, usize), Digest>> = RefCell::new(HashMap::new());
    }
    ROOTS.with_borrow_mut(|roots| {
        *roots
            .entry((n, symbol_size))
            .or_insert_with(|| merkle::root_from_leaf_hashes(&vec![zero_leaf(symbol_size); n]))
    })
}

impl VerifiedMetadata {
    /// Checks that `sliver` has the index range, symbol size and length of a `kind` sliver of
    /// this blob, without hashing it.
    pub fn check_sliver_shape(
        &self,
        kind: SliverType,
        sliver: &Sliver,
    ) -> Result<(), SliverVerificationError> {
        let n_shards = self.config().n_shards();
        if sliver.index() >= n_shards {
            return Err(SliverVerificationError::IndexOutOfRange { kind, index: sliver.index, n_shards });
        }
        if sliver.symbol_size != self.symbol_size() {
            return Err(SliverVerificationError::SymbolSizeMismatch {
                expected: self.symbol_size(),
                actual: sliver.symbol_size,
            });
        }
        let expected = self.sliver_len(kind);
        if sliver.symbols.len() != expected {
            return Err(SliverVerificationError::LengthMismatch {
                kind,
                expected,
                actual: sliver.symbols.len(),
            });
        }
        Ok(())
    }

    /// Checks `sliver` as sliver `sliver.index` of `kind` of this blob: its shape, then that
    /// the Merkle root of its expansion is the hash in the metadata.
    pub fn verify_sliver(&self, kind: SliverType, sliver: &Sliver) -> Result<(), SliverVerificationError> {
        self.check_sliver_shape(kind, sliver)?;
        let root = expansion_root(self.config(), kind, usize::from(sliver.symbol_size), &sliver.symbols);
        if Some(&root) != self.sliver_hash(kind, sliver.index()) {
            return Err(SliverVerificationError::HashMismatch { kind, index: sliver.index });
        }
        Ok(())
    }
}
