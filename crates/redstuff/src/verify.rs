//! Checking a sliver against the metadata: its shape, then the Merkle root of its expansion.

use std::cell::RefCell;
use std::collections::HashMap;

use rayon::prelude::*;

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

/// Symbol size from which [`expansion_roots`] checks each sliver on its own: below it, many
/// slivers share one transform; from it on, batching only moves cells out of cache (a 256 MiB
/// decode's check was ~11% slower batched).
const SHARED_TRANSFORM_BELOW: usize = 1024;

/// Bytes of recovery symbols [`expansion_roots`] holds at once.
const ROOTS_BATCH_BYTES: usize = 16 << 20;

/// Leaf hashes of the `n` symbols a sliver of `kind` expands to. The recovery symbols are
/// encoded into this thread's slots ([`RECOVERY_SLOTS`]) and hashed where they lie.
pub(crate) fn expansion_leaves(
    config: EncodingConfig,
    kind: SliverType,
    symbol_size: usize,
    symbols: &[u8],
) -> Vec<Digest> {
    let n = config.n_shards();
    let k = source_symbols(config, kind);
    let stride = symbol_size + 1;
    RECOVERY_SLOTS.with_borrow_mut(|slots| {
        slots.resize((n - k) * stride, 0);
        rs::encode_into_slots(k, n, symbol_size, symbols, slots, stride);
        let leaves = leaves_of(n, symbol_size, symbols, slots);
        if slots.capacity() > RETAINED_SLOTS_BYTES {
            *slots = Vec::new();
        }
        leaves
    })
}

/// Bytes of [`RECOVERY_SLOTS`] a thread keeps between checks, at most (a 1 GiB blob's
/// primary slivers at n = 1000 need ~1.6 MB, its secondary ones ~3.2 MB).
const RETAINED_SLOTS_BYTES: usize = 8 << 20;

thread_local! {
    /// Slots for one sliver's recovery symbols, each after a byte for its leaf prefix: reused
    /// by every check on this thread, so that a large sliver's check neither zeroes nor maps
    /// fresh pages for them.
    static RECOVERY_SLOTS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Leaf hashes of a sliver's source symbols followed by its recovery symbols (`n` in all),
/// the recovery symbols in `symbol_size + 1`-byte slots after a byte for their leaf prefix
/// (hashed where they lie, [`merkle::leaf_hashes_in_slots`]).
fn leaves_of(n: usize, symbol_size: usize, symbols: &[u8], recovery_slots: &mut [u8]) -> Vec<Digest> {
    let mut leaves = vec![EMPTY_NODE; n];
    let (source_leaves, recovery_leaves) = leaves.split_at_mut(symbols.len() / symbol_size);
    merkle::leaf_hashes_into(symbols, symbol_size, source_leaves);
    merkle::leaf_hashes_in_slots(recovery_slots, symbol_size + 1, recovery_leaves);
    leaves
}

/// [`expansion_root`] of each of several `kind` slivers' symbols, in order. Their recovery
/// symbols are encoded side by side ([`rs::encode_many_into_slots`]: small symbols packed
/// densely, one transform for many slivers) in groups of at most 16 MiB, each into a slot
/// after a byte for its leaf prefix, then hashed where they lie on all cores: checking the
/// many small slivers of a batch upload, a rebuild round or a decode costs a fraction of
/// checking them one by one. Symbols of 1 KiB and more are each encoded and hashed alone, on
/// all cores.
pub(crate) fn expansion_roots(
    config: EncodingConfig,
    kind: SliverType,
    symbol_size: usize,
    slivers: &[&[u8]],
) -> Vec<Digest> {
    if symbol_size >= SHARED_TRANSFORM_BELOW {
        // Large symbols gain nothing from a shared transform (they are encoded alone anyway):
        // each sliver is encoded and hashed while its cells are in cache.
        return slivers
            .par_iter()
            .map(|symbols| expansion_root(config, kind, symbol_size, symbols))
            .collect();
    }
    let n = config.n_shards();
    let k = source_symbols(config, kind);
    let stride = symbol_size + 1;
    let recovery_len = (n - k) * stride;
    let group = (ROOTS_BATCH_BYTES / recovery_len.max(1)).max(1);
    let mut roots = Vec::with_capacity(slivers.len());
    for slivers in slivers.chunks(group) {
        let nonzero: Vec<&[u8]> =
            slivers.iter().copied().filter(|symbols| symbols.iter().any(|byte| *byte != 0)).collect();
        let mut recovery = vec![0; nonzero.len() * recovery_len];
        let jobs: Vec<(rs::Sources<'_>, &mut [u8])> = nonzero
            .iter()
            .map(|symbols| rs::Sources::Consecutive(symbols))
            .zip(recovery.chunks_exact_mut(recovery_len.max(1)))
            .collect();
        if !jobs.is_empty() {
            rs::encode_many_into_slots(k, n, symbol_size, jobs, stride);
        }
        let mut nonzero_roots: Vec<Digest> = nonzero
            .par_iter()
            .zip(recovery.par_chunks_exact_mut(recovery_len.max(1)))
            .map(|(symbols, recovery)| {
                merkle::root_from_leaf_hashes(&leaves_of(n, symbol_size, symbols, recovery))
            })
            .collect::<Vec<_>>();
        nonzero_roots.reverse();
        for symbols in slivers {
            roots.push(match symbols.iter().any(|byte| *byte != 0) {
                true => nonzero_roots.pop().expect("one root per non-zero sliver"),
                false => zero_expansion_root(n, symbol_size),
            });
        }
    }
    roots
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

    /// Each sliver's shape check ([`VerifiedMetadata::check_sliver_shape`]), in order, and the
    /// slivers that passed it, in order.
    pub(crate) fn well_shaped<'s>(
        &self,
        kind: SliverType,
        slivers: &[&'s Sliver],
    ) -> (Vec<Result<(), SliverVerificationError>>, Vec<&'s Sliver>) {
        let shapes: Vec<Result<(), SliverVerificationError>> =
            slivers.iter().map(|sliver| self.check_sliver_shape(kind, sliver)).collect();
        let shaped = slivers
            .iter()
            .zip(&shapes)
            .filter(|(_, shape)| shape.is_ok())
            .map(|(sliver, _)| *sliver)
            .collect();
        (shapes, shaped)
    }

    /// [`VerifiedMetadata::verify_sliver`] for several slivers of `kind` of this blob, one
    /// answer each, in order; their expansions are computed together (see `expansion_roots`),
    /// which for small slivers costs a fraction of checking them one by one.
    pub fn verify_slivers(
        &self,
        kind: SliverType,
        slivers: &[&Sliver],
    ) -> Vec<Result<(), SliverVerificationError>> {
        let (mut answers, shaped) = self.well_shaped(kind, slivers);
        let symbols: Vec<&[u8]> = shaped.iter().map(|sliver| sliver.symbols.as_slice()).collect();
        let mut roots =
            expansion_roots(self.config(), kind, usize::from(self.symbol_size()), &symbols).into_iter();
        for (answer, sliver) in answers.iter_mut().zip(slivers) {
            if answer.is_ok() {
                let root = roots.next().expect("one root per well-shaped sliver");
                if Some(&root) != self.sliver_hash(kind, sliver.index()) {
                    *answer = Err(SliverVerificationError::HashMismatch { kind, index: sliver.index });
                }
            }
        }
        answers
    }
}
