//! Encoding a blob into sliver pairs, metadata and blob ID.
//!
//! The expanded `n × n` matrix is never held: rows of the message matrix are encoded in
//! batches and scattered into the secondary slivers, then every column is encoded from its
//! secondary sliver, filling the non-systematic primary slivers. Each cell is hashed once,
//! right after it is produced, and its leaf hash serves both its row tree and its column
//! tree. Only the `n × n` leaf hashes (32 bytes a cell) are kept until the roots are built.

use std::borrow::Cow;

use rayon::prelude::*;

use crate::config::EncodingConfig;
use crate::error::EncodeError;
use crate::merkle::{self, Digest, EMPTY_NODE};
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
const BATCH_BYTES: usize = 32 << 20;

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
        copy_padded(self.blob, row * row_len, row_len)
    }

    /// How many rows or columns to encode per batch, producing `recovery_symbols` each.
    fn batch_len(&self, recovery_symbols: usize, total: usize) -> usize {
        let per_item = (recovery_symbols * self.s).max(1);
        let threads = rayon::current_num_threads();
        (BATCH_BYTES / per_item).max(2 * threads).min(total).max(1)
    }

    /// Encodes the matrix. Returns the metadata, the `n` secondary slivers and, when
    /// `keep_primary`, the `n − kp` non-systematic primary slivers.
    fn run(&self, keep_primary: bool) -> (VerifiedMetadata, Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let Self { n, kp, ks, s, .. } = *self;
        let mut leaves = vec![EMPTY_NODE; n * n];
        let mut secondary: Vec<Vec<u8>> = (0..n).map(|_| vec![0; kp * s]).collect();

        // Rows: encode each source row, hash its n cells, and scatter it into the columns.
        let batch = self.batch_len(n - ks, kp);
        for start in (0..kp).step_by(batch) {
            let end = (start + batch).min(kp);
            let recovery: Vec<Vec<u8>> = leaves[start * n..end * n]
                .par_chunks_mut(n)
                .enumerate()
                .map(|(offset, row_leaves)| {
                    let row = self.source_row(start + offset);
                    let mut recovery = vec![0; (n - ks) * s];
                    rs::encode_into(ks, n, s, &row, &mut recovery);
                    let (source_leaves, recovery_leaves) = row_leaves.split_at_mut(ks);
                    merkle::leaf_hashes_into(&row, s, source_leaves);
                    merkle::leaf_hashes_into(&recovery, s, recovery_leaves);
                    recovery
                })
                .collect();
            secondary.par_iter_mut().enumerate().for_each(|(column, sliver)| {
                for row in start..end {
                    let cell = &mut sliver[row * s..(row + 1) * s];
                    if column < ks {
                        let offset = (ks * row + column) * s;
                        let source = copy_padded(self.blob, offset, s);
                        cell.copy_from_slice(&source);
                    } else {
                        let at = (column - ks) * s;
                        cell.copy_from_slice(&recovery[row - start][at..at + s]);
                    }
                }
            });
        }

        // Columns: encode each secondary sliver into the rest of its column, hash the new
        // cells, build the column root, and scatter the cells into the primary slivers.
        let (top, bottom) = leaves.split_at_mut(kp * n);
        let top: &[Digest] = top;
        let mut column_roots = vec![EMPTY_NODE; n];
        let mut repair_rows: Vec<Vec<u8>> =
            if keep_primary { (kp..n).map(|_| vec![0; ks * s]).collect() } else { Vec::new() };
        let batch = self.batch_len(n - kp, n);
        for start in (0..n).step_by(batch) {
            let end = (start + batch).min(n);
            let columns: Vec<(Vec<u8>, Vec<Digest>)> = (start..end)
                .into_par_iter()
                .zip(column_roots[start..end].par_iter_mut())
                .map(|(column, root)| {
                    let mut recovery = vec![0; (n - kp) * s];
                    rs::encode_into(kp, n, s, &secondary[column], &mut recovery);
                    let mut column_leaves: Vec<Digest> = (0..kp).map(|row| top[row * n + column]).collect();
                    column_leaves.resize(n, EMPTY_NODE);
                    merkle::leaf_hashes_into(&recovery, s, &mut column_leaves[kp..]);
                    *root = merkle::root_from_leaf_hashes(&column_leaves);
                    let keep = keep_primary && column < ks;
                    (if keep { recovery } else { Vec::new() }, column_leaves)
                })
                .collect();
            bottom.par_chunks_mut(n).enumerate().for_each(|(offset, row_leaves)| {
                for (column, (_, column_leaves)) in (start..end).zip(&columns) {
                    row_leaves[column] = column_leaves[kp + offset];
                }
            });
            repair_rows.par_iter_mut().enumerate().for_each(|(offset, sliver)| {
                for (column, (recovery, _)) in (start..end.min(ks)).zip(&columns) {
                    let at = offset * s;
                    sliver[column * s..(column + 1) * s].copy_from_slice(&recovery[at..at + s]);
                }
            });
        }

        let row_roots: Vec<Digest> = leaves.par_chunks(n).map(merkle::root_from_leaf_hashes).collect();
        drop(leaves);
        let blob_len = crate::config::to_u64(self.blob.len());
        let metadata = BlobMetadata::from_roots(blob_len, &row_roots, &column_roots);
        let blob_id = metadata.blob_id();
        let verified = VerifiedMetadata::new_unchecked(blob_id, self.config, self.symbol_size, metadata);
        (verified, secondary, repair_rows)
    }
}

/// `len` bytes of `data` from `offset`, zero-padded where `data` ends; borrowed when whole.
pub(crate) fn copy_padded(data: &[u8], offset: usize, len: usize) -> Cow<'_, [u8]> {
    match data.get(offset..offset + len) {
        Some(whole) => Cow::Borrowed(whole),
        None => {
            let mut padded = vec![0; len];
            if let Some(available) = data.get(offset..) {
                padded[..available.len()].copy_from_slice(available);
            }
            Cow::Owned(padded)
        }
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
