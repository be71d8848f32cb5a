//! Encoding a blob into sliver pairs, metadata and blob ID.
//!
//! The expanded `n × n` matrix is never held: rows of the message matrix are encoded in
//! batches and scattered into the secondary slivers, then every column is encoded from its
//! secondary sliver, filling the non-systematic primary slivers. Each cell is hashed once,
//! right after it is produced, and its leaf hash serves both its row tree and its column
//! tree. Nor are the `n × n` leaf hashes held (32 MB at n = 1000, whatever the blob's size):
//! a row's leaves are kept only while its batch is encoded, and every column (and, in the
//! column pass, every non-systematic row) takes its leaves in order into a
//! [`StreamingRoot`], which keeps the leaves of its blocks not raised yet and the roots of the
//! blocks before them. After each batch the whole blocks of 64 trees at a time are raised
//! together, one batch hash call per level for all of them (the roots likewise), instead of six
//! small calls per block.
//!
//! [`compute_metadata`] keeps no slivers: its column pass reads each column's sources where
//! they lie (the blob's columns in the blob, the others in the rows' recovery symbols) instead
//! of copies gathered into slivers.

use std::borrow::Cow;

use rayon::prelude::*;

use crate::config::EncodingConfig;
use crate::error::EncodeError;
use crate::merkle::{self, Digest, EMPTY_NODE, StreamingRoot};
use crate::metadata::{BlobMetadata, VerifiedMetadata};
use crate::rs;
use crate::sliver::{Sliver, SliverPair, secondary_index_of_pair};

/// A blob encoded for storage: its metadata (with ID) and one sliver pair per shard.
#[derive(Debug, Clone)]
pub struct EncodedBlob {
    /// The metadata, with the blob ID.
    pub metadata: VerifiedMetadata,
    /// Sliver pair `p` at position `p`.
    pub pairs: Vec<SliverPair>,
}

/// Bytes of recovery symbols produced per batch before they are scattered into slivers.
const BATCH_BYTES: usize = 8 << 20;
/// Bytes of leaf hashes a batch keeps until it is done.
const LEAF_BATCH_BYTES: usize = 2 << 20;
/// How many streamed trees are raised together (one batch hash call per level for all).
const TREES_PER_RAISE: usize = 64;

/// Encodes `blob` into `n` sliver pairs, metadata and blob ID, on every core rayon has.
///
/// ```
/// let config = redstuff::EncodingConfig::new(10).unwrap();
/// let encoded = redstuff::encode(config, b"walrus blob id v1 regression test").unwrap();
/// assert_eq!(
///     encoded.metadata.blob_id().to_string(),
///     "RcU82Mwf-CFkv1LaI_2qcpANwpGUuG3TMwnVzZxD2kY"
/// );
/// assert_eq!(encoded.pairs.len(), 10);
/// ```
pub fn encode(config: EncodingConfig, blob: &[u8]) -> Result<EncodedBlob, EncodeError> {
    let matrix = Matrix::new(config, blob)?;
    let (metadata, secondary, repair_rows) = matrix.run(true);
    let systematic_rows: Vec<Vec<u8>> =
        (0..matrix.kp).into_par_iter().map(|row| matrix.source_row(row).into_owned()).collect();
    let primary = systematic_rows.into_iter().chain(repair_rows);
    let mut secondary: Vec<Option<Vec<u8>>> = secondary.into_iter().map(Some).collect();
    let symbol_size = metadata.symbol_size();
    let pairs = primary
        .enumerate()
        .map(|(pair, symbols)| {
            let column = secondary_index_of_pair(pair, matrix.n);
            SliverPair {
                primary: Sliver { symbols, symbol_size, index: to_u16(pair) },
                secondary: Sliver {
                    symbols: secondary[column].take().expect("each column is taken once"),
                    symbol_size,
                    index: to_u16(column),
                },
            }
        })
        .collect();
    Ok(EncodedBlob { metadata, pairs })
}

/// Computes only the metadata and blob ID of `blob`, without keeping the slivers: what
/// `walrus blob-id` computes, in less memory than [`encode`].
pub fn compute_metadata(config: EncodingConfig, blob: &[u8]) -> Result<VerifiedMetadata, EncodeError> {
    let matrix = Matrix::new(config, blob)?;
    Ok(matrix.run(false).0)
}

struct Matrix<'a> {
    config: EncodingConfig,
    blob: &'a [u8],
    symbol_size: u16,
    s: usize,
    n: usize,
    kp: usize,
    ks: usize,
}

impl<'a> Matrix<'a> {
    fn new(config: EncodingConfig, blob: &'a [u8]) -> Result<Self, EncodeError> {
        let blob_len = crate::config::to_u64(blob.len());
        let symbol_size = config.symbol_size(blob_len)?;
        Ok(Self {
            config,
            blob,
            symbol_size,
            s: usize::from(symbol_size),
            n: config.n_shards(),
            kp: config.kp(),
            ks: config.ks(),
        })
    }

    /// Row `row` of the message matrix (`ks` symbols), zero-padded past the end of the blob.
    fn source_row(&self, row: usize) -> Cow<'a, [u8]> {
        let row_len = self.ks * self.s;
        rs::copy_padded(self.blob, row * row_len, row_len)
    }

    /// How many rows or columns to encode per batch, producing `recovery_symbols` each and
    /// keeping `leaves` leaf hashes each until the batch is done.
    fn batch_len(&self, recovery_symbols: usize, leaves: usize, total: usize) -> usize {
        let per_item = (recovery_symbols * self.s).max(1);
        let threads = rayon::current_num_threads();
        let by_leaves = LEAF_BATCH_BYTES / (leaves * std::mem::size_of::<Digest>()).max(1);
        (BATCH_BYTES / per_item).min(by_leaves).max(2 * threads).min(total).max(1)
    }

    /// Column `column < ks` of the message matrix (`kp` symbols), where it lies in the blob.
    fn source_column(&self, column: usize) -> rs::Sources<'a> {
        rs::Sources::Strided { data: self.blob, first: column * self.s, step: self.ks * self.s }
    }

    /// Encodes the matrix. Returns the metadata and, when `keep_slivers`, the `n` secondary
    /// slivers and the `n − kp` non-systematic primary slivers (otherwise no slivers: the
    /// column pass reads its sources where they lie, columns `< ks` in the blob and the
    /// others in the rows' recovery symbols, all kept for it).
    ///
    /// Slivers are filled by appending (rows and columns are processed in index order), so
    /// their memory is written once and never zeroed first; the batch buffers are reused.
    fn run(&self, keep_slivers: bool) -> (VerifiedMetadata, Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let Self { n, kp, ks, s, .. } = *self;
        let capacity = if keep_slivers { kp * s } else { 0 };
        let mut secondary: Vec<Vec<u8>> = (0..n).map(|_| Vec::with_capacity(capacity)).collect();
        let mut row_roots = vec![EMPTY_NODE; n];
        let mut column_trees = vec![StreamingRoot::default(); n];
        let padding_rows = self.blob.len().div_ceil(ks * s)..kp;
        let padding_root = crate::verify::zero_expansion_root(n, s);

        // Rows: encode each source row, hash its n cells, build its root, hand the leaves on
        // to the column trees and append the row to the columns.
        let stride = s + 1; // recovery symbols sit in slots `0x00 ‖ symbol`, hashed in place
        let row_recovery_len = (n - ks) * stride;
        let batch = self.batch_len(n - ks, n, kp);
        let zero_leaf = crate::verify::zero_leaf(s);
        // Without slivers to fill, every row's recovery symbols are kept (as many bytes as the
        // secondary slivers `ks..n` would take) for the column pass to read where they lie.
        let kept_rows = if keep_slivers { batch } else { kp };
        let mut recovery = vec![0; kept_rows * row_recovery_len];
        let mut row_leaves = vec![EMPTY_NODE; batch * n];
        for start in (0..kp).step_by(batch) {
            let end = (start + batch).min(kp);
            let first_kept = if keep_slivers { 0 } else { start };
            row_leaves[..(end - start) * n]
                .par_chunks_mut(n)
                .zip(recovery[first_kept * row_recovery_len..].par_chunks_mut(row_recovery_len))
                .zip(row_roots[start..end].par_iter_mut())
                .enumerate()
                .for_each(|(offset, ((row_leaves, recovery), root))| {
                    if padding_rows.contains(&(start + offset)) {
                        // Padding only: every cell of the row is zero (the code is linear).
                        recovery.fill(0);
                        row_leaves.fill(zero_leaf);
                        *root = padding_root;
                        return;
                    }
                    let row = self.source_row(start + offset);
                    rs::encode_into_slots(ks, n, s, &row, recovery, stride);
                    let (source_leaves, recovery_leaves) = row_leaves.split_at_mut(ks);
                    merkle::leaf_hashes_into(&row, s, source_leaves);
                    merkle::leaf_hashes_in_slots(recovery, stride, recovery_leaves);
                    *root = merkle::root_from_leaf_hashes(row_leaves);
                });
            let (recovery, row_leaves) = (&recovery, &row_leaves);
            secondary
                .par_chunks_mut(TREES_PER_RAISE)
                .zip(column_trees.par_chunks_mut(TREES_PER_RAISE))
                .enumerate()
                .for_each(|(chunk, (slivers, trees))| {
                    for (offset, (sliver, tree)) in slivers.iter_mut().zip(trees.iter_mut()).enumerate() {
                        let column = chunk * TREES_PER_RAISE + offset;
                        for row in start..end {
                            tree.push(row_leaves[(row - start) * n + column]);
                        }
                        if !keep_slivers {
                            continue; // read where it lies in the column pass
                        }
                        for row in start..end {
                            if column < ks {
                                let offset = (ks * row + column) * s;
                                sliver.extend_from_slice(&rs::copy_padded(self.blob, offset, s));
                            } else {
                                let at = (row - start) * row_recovery_len + (column - ks) * stride + 1;
                                sliver.extend_from_slice(&recovery[at..at + s]);
                            }
                        }
                    }
                    StreamingRoot::raise_whole_blocks(trees);
                });
        }
        drop(row_leaves);
        // With slivers kept the rows' recovery symbols are in them: free the batch buffer now.
        let row_recovery = if keep_slivers {
            drop(recovery);
            Vec::new()
        } else {
            recovery
        };

        // Columns: encode each secondary sliver into the rest of its column, hash the new
        // cells, finish the column's root, and hand the new cells' leaves on to the trees of
        // the non-systematic rows and the cells themselves to the primary slivers.
        let mut bottom_trees = vec![StreamingRoot::default(); n - kp];
        let mut column_roots = vec![EMPTY_NODE; n];
        let mut repair_rows: Vec<Vec<u8>> =
            if keep_slivers { (kp..n).map(|_| Vec::with_capacity(ks * s)).collect() } else { Vec::new() };
        let column_recovery_len = (n - kp) * stride;
        let batch = self.batch_len(n - kp, n - kp, n);
        let mut recovery = vec![0; batch * column_recovery_len];
        let mut column_leaves = vec![EMPTY_NODE; batch * (n - kp)];
        for start in (0..n).step_by(batch) {
            let end = (start + batch).min(n);
            let sources: Vec<rs::Sources<'_>> = (start..end)
                .map(|column| match secondary[column].as_slice() {
                    [] if column < ks => self.source_column(column),
                    [] => rs::Sources::Strided {
                        data: &row_recovery,
                        first: (column - ks) * stride + 1,
                        step: row_recovery_len,
                    },
                    sliver => rs::Sources::Consecutive(sliver),
                })
                .collect();
            // Padding only: a zero column expands to zeros (the code is linear).
            let zero: Vec<bool> = sources.par_iter().map(|sources| sources.is_zero(kp, s)).collect();
            let jobs = sources
                .iter()
                .zip(recovery.chunks_mut(column_recovery_len))
                .zip(&zero)
                .filter_map(|((sources, recovery), zero)| (!zero).then_some((*sources, recovery)))
                .collect();
            rs::encode_many_into_slots(kp, n, s, jobs, stride);
            recovery
                .par_chunks_mut(column_recovery_len)
                .zip(column_leaves.par_chunks_mut(n - kp))
                .zip(column_trees[start..end].par_iter_mut())
                .zip(zero.par_iter())
                .for_each(|(((recovery, leaves), tree), zero)| {
                    if *zero {
                        recovery.fill(0);
                        leaves.fill(zero_leaf);
                        *tree = StreamingRoot::default(); // its root is the padding root
                        return;
                    }
                    merkle::leaf_hashes_in_slots(recovery, stride, leaves);
                    leaves.iter().for_each(|leaf| tree.push(*leaf));
                });
            // The batch's columns are complete: their roots, raised together.
            let roots: Vec<Digest> = column_trees[start..end]
                .par_chunks_mut(TREES_PER_RAISE)
                .flat_map_iter(StreamingRoot::roots)
                .collect();
            for ((root, tree_root), zero) in column_roots[start..end].iter_mut().zip(roots).zip(&zero) {
                *root = if *zero { padding_root } else { tree_root };
            }
            let (recovery, column_leaves) = (&recovery, &column_leaves);
            bottom_trees.par_chunks_mut(TREES_PER_RAISE).enumerate().for_each(|(chunk, trees)| {
                for (offset, tree) in trees.iter_mut().enumerate() {
                    let offset = chunk * TREES_PER_RAISE + offset;
                    for column in start..end {
                        tree.push(column_leaves[(column - start) * (n - kp) + offset]);
                    }
                }
                StreamingRoot::raise_whole_blocks(trees);
            });
            repair_rows.par_iter_mut().enumerate().for_each(|(offset, sliver)| {
                for column in start..end.min(ks) {
                    let at = (column - start) * column_recovery_len + offset * stride + 1;
                    sliver.extend_from_slice(&recovery[at..at + s]);
                }
            });
        }
        drop((recovery, column_leaves));

        row_roots[kp..]
            .par_chunks_mut(TREES_PER_RAISE)
            .zip(bottom_trees.par_chunks_mut(TREES_PER_RAISE))
            .for_each(|(roots, trees)| roots.copy_from_slice(&StreamingRoot::roots(trees)));
        let blob_len = crate::config::to_u64(self.blob.len());
        let metadata = BlobMetadata::from_roots(blob_len, &row_roots, &column_roots);
        let blob_id = metadata.blob_id();
        let verified = VerifiedMetadata::new_unchecked(blob_id, self.config, self.symbol_size, metadata);
        (verified, secondary, repair_rows)
    }
}

/// A sliver or shard index as `u16`; indices are below `n ≤ 65535` by construction.
pub(crate) fn to_u16(index: usize) -> u16 {
    u16::try_from(index).expect("indices are below n, which is a u16")
}

/// Computes the metadata that commits to exactly these sliver pairs, whatever they hold.
///
/// For slivers from [`encode`] this equals its metadata. Given tampered slivers it yields
/// metadata for an *inconsistently* encoded blob, which is how a faulty or malicious writer
/// behaves: tests and tools use it to exercise inconsistency proofs.
pub fn metadata_for_pairs(
    config: EncodingConfig,
    unencoded_length: u64,
    pairs: &[SliverPair],
) -> Result<VerifiedMetadata, crate::MetadataError> {
    use crate::sliver::SliverType;
    use crate::verify::expansion_root;

    let n = config.n_shards();
    if pairs.len() != n {
        return Err(crate::MetadataError::WrongPairCount { expected: n, actual: pairs.len() });
    }
    let symbol_size = config.symbol_size(unencoded_length)?;
    let s = usize::from(symbol_size);
    let mut rows = vec![EMPTY_NODE; n];
    let mut columns = vec![EMPTY_NODE; n];
    rows.par_iter_mut().zip(columns.par_iter_mut()).zip(pairs).for_each(|((row, column), pair)| {
        *row = expansion_root(config, SliverType::Primary, s, &pair.primary.symbols);
        *column = expansion_root(config, SliverType::Secondary, s, &pair.secondary.symbols);
    });
    // `columns` is in pair order; the metadata wants it by secondary sliver index.
    let by_column: Vec<Digest> = (0..n).map(|column| columns[secondary_index_of_pair(column, n)]).collect();
    let metadata = BlobMetadata::from_roots(unencoded_length, &rows, &by_column);
    Ok(VerifiedMetadata::new_unchecked(metadata.blob_id(), config, symbol_size, metadata))
}
