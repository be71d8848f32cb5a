//! The one-dimensional code: systematic Reed–Solomon from `reed-solomon-simd` 3.1.0.
//!
//! Encoding `k` sources into `n` symbols: symbols `0..k` are the sources, symbol `k + j` is
//! recovery shard `j`. Encoders and decoders are reused per thread, since building one
//! allocates its work buffers.

use std::borrow::Cow;
use std::cell::RefCell;

use rayon::prelude::*;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::erasure::PatternDecoder;

/// Bytes of a batch's shard in [`decode_columns`], at most. Its erasure locator is computed
/// once for all batches, so a batch only needs to be wide enough to amortise a decode's fixed
/// steps; narrower is faster, since the decoder's work buffer (2048 shards at n = 1000) then
/// stays in the core's caches: with a 1216-byte shard a 256 MiB blob decoded at ~1.35 core-s,
/// with 2432 ~1.55, with 16 KiB ~2.4 (2026-12-07, AMD EPYC Zen 3).
const DECODE_SHARD_BYTES: usize = 1280;

/// Bytes of a wide shard in [`encode_many_into_slots`]. An encode's setup is small, so packing
/// only pays for small symbols; a wide shard makes the encoder's work buffer (about 1024 wide
/// shards at n = 1000) outgrow the core's cache: at n = 1000 one encode runs at ~800 MB/s up
/// to shards of a few KiB and at ~550 MB/s with 12–16 KiB shards on this machine. 2 KiB keeps
/// a symbol of 1 KiB or more in an encode of its own, as before batching.
const ENCODE_SHARD_BYTES: usize = 2 * 1024;

thread_local! {
    static ENCODER: RefCell<Option<ReedSolomonEncoder>> = const { RefCell::new(None) };
    static DECODER: RefCell<Option<ReedSolomonDecoder>> = const { RefCell::new(None) };
}

/// The `k` source symbols of one codeword.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sources<'a> {
    /// One after another, `symbol_size` bytes each.
    Consecutive(&'a [u8]),
    /// Symbol `i` at byte `first + i * step` of `data`, zero past its end: a column of a
    /// blob's message matrix, read where it lies instead of gathered first.
    Strided { data: &'a [u8], first: usize, step: usize },
}

impl<'a> Sources<'a> {
    /// Source symbol `index`.
    fn symbol(self, index: usize, symbol_size: usize) -> Cow<'a, [u8]> {
        match self {
            Self::Consecutive(symbols) => {
                Cow::Borrowed(&symbols[index * symbol_size..(index + 1) * symbol_size])
            }
            Self::Strided { data, first, step } => copy_padded(data, first + index * step, symbol_size),
        }
    }

    /// Whether all `k` symbols are zero (so are their recovery symbols: the code is linear).
    pub(crate) fn is_zero(self, k: usize, symbol_size: usize) -> bool {
        match self {
            Self::Consecutive(symbols) => symbols.iter().all(|byte| *byte == 0),
            Self::Strided { .. } => {
                (0..k).all(|index| self.symbol(index, symbol_size).iter().all(|byte| *byte == 0))
            }
        }
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

/// Encodes the `k` symbols of `sources` (each `symbol_size` bytes) into `n − k` recovery
/// symbols, written one after another into `recovery`.
///
/// The caller guarantees `1 ≤ k < n ≤ 65535`, an even non-zero `symbol_size`, and buffer
/// lengths of `k` and `n − k` symbols.
pub(crate) fn encode_into(k: usize, n: usize, symbol_size: usize, sources: &[u8], recovery: &mut [u8]) {
    encode_into_slots(k, n, symbol_size, sources, recovery, symbol_size);
}

/// Like [`encode_into`], but recovery symbol `j` is written at the end of the `stride`-byte
/// slot `j` of `recovery`, leaving the first `stride − symbol_size` bytes of each slot alone
/// (room for a hash prefix).
pub(crate) fn encode_into_slots(
    k: usize,
    n: usize,
    symbol_size: usize,
    sources: &[u8],
    recovery: &mut [u8],
    stride: usize,
) {
    debug_assert_eq!(sources.len(), k * symbol_size);
    encode_sources_into_slots(k, n, symbol_size, Sources::Consecutive(sources), recovery, stride);
}

/// [`encode_into_slots`] of sources wherever they lie.
fn encode_sources_into_slots(
    k: usize,
    n: usize,
    symbol_size: usize,
    sources: Sources<'_>,
    recovery: &mut [u8],
    stride: usize,
) {
    debug_assert_eq!(recovery.len(), (n - k) * stride);
    let skip = stride - symbol_size;
    ENCODER.with_borrow_mut(|slot| {
        let encoder = match slot {
            Some(encoder) => {
                encoder
                    .reset(k, n - k, symbol_size)
                    .expect("code parameters were validated by EncodingConfig");
                encoder
            }
            None => slot.insert(
                ReedSolomonEncoder::new(k, n - k, symbol_size)
                    .expect("code parameters were validated by EncodingConfig"),
            ),
        };
        for index in 0..k {
            encoder
                .add_original_shard(sources.symbol(index, symbol_size))
                .expect("exactly k shards of the configured size are added");
        }
        let result = encoder.encode().expect("all k original shards were added");
        for (slot, symbol) in recovery.chunks_exact_mut(stride).zip(result.recovery_iter()) {
            slot[skip..].copy_from_slice(symbol);
        }
    });
}

/// Encodes `sources` and returns all `n` symbols: the sources followed by the recovery ones.
pub(crate) fn expand(k: usize, n: usize, symbol_size: usize, sources: &[u8]) -> Vec<u8> {
    let mut symbols = vec![0; n * symbol_size];
    let (head, tail) = symbols.split_at_mut(k * symbol_size);
    head.copy_from_slice(sources);
    encode_into(k, n, symbol_size, sources, tail);
    symbols
}

/// Decodes the `k` source symbols from `k` or more `(index, symbol)` pairs with distinct
/// indices below `n`, and returns them concatenated.
///
/// The caller guarantees distinct in-range indices, at least `k` of them, and symbols of
/// `symbol_size` bytes.
pub(crate) fn decode<'a>(
    k: usize,
    n: usize,
    symbol_size: usize,
    symbols: impl IntoIterator<Item = (usize, &'a [u8])>,
) -> Vec<u8> {
    let mut out = vec![0; k * symbol_size];
    let mut present = vec![false; k];
    let mut recovery = Vec::new();
    let mut given = 0;
    for (index, symbol) in symbols {
        if index < k {
            out[index * symbol_size..(index + 1) * symbol_size].copy_from_slice(symbol);
            present[index] = true;
            given += 1;
        } else {
            recovery.push((index - k, symbol));
        }
    }
    if given == k {
        return out;
    }
    let needed = k - given;
    DECODER.with_borrow_mut(|slot| {
        let decoder = match slot {
            Some(decoder) => {
                decoder
                    .reset(k, n - k, symbol_size)
                    .expect("code parameters were validated by EncodingConfig");
                decoder
            }
            None => slot.insert(
                ReedSolomonDecoder::new(k, n - k, symbol_size)
                    .expect("code parameters were validated by EncodingConfig"),
            ),
        };
        for (index, symbol) in out.chunks_exact(symbol_size).enumerate() {
            if present[index] {
                decoder.add_original_shard(index, symbol).expect("distinct in-range original shards");
            }
        }
        for (index, symbol) in recovery.iter().take(needed) {
            decoder.add_recovery_shard(*index, symbol).expect("distinct in-range recovery shards");
        }
        let result = decoder.decode().expect("k distinct shards were given");
        for (index, symbol) in result.restored_original_iter() {
            out[index * symbol_size..(index + 1) * symbol_size].copy_from_slice(symbol);
        }
    });
    out
}

/// Decodes `columns` codewords that share one erasure pattern, with the result of [`decode`]
/// on each: every `(index, bytes)` of `shards` (distinct in-range indices, at least `k`) holds
/// symbol `c` of codeword `c` at `bytes[c * symbol_size..]`, and codeword `c`'s `k` sources,
/// concatenated, are item `c` of the answer.
///
/// The erasure locator is computed once for all columns ([`PatternDecoder`]), and codewords
/// are decoded in batches, side by side in wider shards of at most [`DECODE_SHARD_BYTES`]. The
/// code works on each 16-bit field element of a shard on its own, so every element of every
/// symbol may sit anywhere in the wide shard as long as it sits there in all shards; [`Layout`]
/// says where.
pub(crate) fn decode_columns(
    k: usize,
    n: usize,
    symbol_size: usize,
    columns: usize,
    shards: &[(usize, &[u8])],
) -> Vec<Vec<u8>> {
    let layout = Layout::new(symbol_size);
    let decoder = PatternDecoder::new(k, n, shards.iter().map(|(index, _)| *index));
    let symbol =
        |item: usize, column: usize| &shards[item].1[column * symbol_size..(column + 1) * symbol_size];
    let given_sources = |out: &mut [u8], column: usize| {
        for (item, (index, _)) in shards.iter().enumerate().filter(|(_, (index, _))| *index < k) {
            out[index * symbol_size..(index + 1) * symbol_size].copy_from_slice(symbol(item, column));
        }
    };
    let mut decoded: Vec<Vec<u8>> = vec![Vec::new(); columns];
    if let (Some(decoder), Some(symbol_blocks)) = (&decoder, layout.blocks_per_symbol())
        && symbol_blocks * 64 > DECODE_SHARD_BYTES
    {
        // Symbols wider than a batch: each column decoded in pieces of whole blocks, of
        // about equal size.
        let pieces = (symbol_blocks * 64).div_ceil(DECODE_SHARD_BYTES);
        let piece_blocks = symbol_blocks.div_ceil(pieces);
        decoded.par_iter_mut().enumerate().for_each(|(column, out)| {
            *out = vec![0; k * symbol_size];
            given_sources(out, column);
            for first in (0..symbol_blocks).step_by(piece_blocks) {
                let blocks = piece_blocks.min(symbol_blocks - first);
                decoder.decode_batch(
                    blocks * 64,
                    |item, wide| layout.pack_blocks(symbol(item, column), first, wide),
                    |index, wide| {
                        layout.unpack_blocks(
                            wide,
                            first,
                            &mut out[index * symbol_size..(index + 1) * symbol_size],
                        );
                    },
                );
            }
        });
        return decoded;
    }
    let batch = layout.columns_per_batch(DECODE_SHARD_BYTES);
    decoded.par_chunks_mut(batch).enumerate().for_each(|(number, outs)| {
        let first = number * batch;
        for (position, out) in outs.iter_mut().enumerate() {
            *out = vec![0; k * symbol_size];
            given_sources(out, first + position);
        }
        let Some(decoder) = &decoder else { return };
        let count = outs.len();
        decoder.decode_batch(
            layout.width(count),
            |item, wide| {
                for position in 0..count {
                    layout.pack(symbol(item, first + position), position, wide);
                }
            },
            |index, wide| {
                for (position, out) in outs.iter_mut().enumerate() {
                    layout.unpack(wide, position, &mut out[index * symbol_size..(index + 1) * symbol_size]);
                }
            },
        );
    });
    decoded
}

/// Encodes several codewords of `k` sources each, as [`encode_into_slots`] would one by one:
/// each job is a codeword's `k` sources (`k * symbol_size` bytes) and the `(n − k) * stride`
/// bytes of slots its recovery symbols go to. Small codewords are encoded side by side in wider
/// shards ([`Layout`], at most [`ENCODE_SHARD_BYTES`]), so small symbols do not each pay for a
/// whole transform; the jobs are spread over at least as many encodes as rayon has threads, and
/// a codeword alone in its encode is encoded in place, without packing.
pub(crate) fn encode_many_into_slots(
    k: usize,
    n: usize,
    symbol_size: usize,
    mut jobs: Vec<(Sources<'_>, &mut [u8])>,
    stride: usize,
) {
    let layout = Layout::new(symbol_size);
    let skip = stride - symbol_size;
    let threads = rayon::current_num_threads();
    let batch = layout.columns_per_batch(ENCODE_SHARD_BYTES).min(jobs.len().div_ceil(threads)).max(1);
    jobs.par_chunks_mut(batch).for_each(|batch| {
        if let [(codeword, slots)] = batch {
            encode_sources_into_slots(k, n, symbol_size, *codeword, slots, stride);
            return;
        }
        let width = layout.width(batch.len());
        let mut sources = vec![0; k * width];
        for (position, (codeword, _)) in batch.iter().enumerate() {
            for (index, wide) in sources.chunks_exact_mut(width).enumerate() {
                layout.pack(&codeword.symbol(index, symbol_size), position, wide);
            }
        }
        let mut recovery = vec![0; (n - k) * width];
        encode_into(k, n, width, &sources, &mut recovery);
        for (position, (_, slots)) in batch.iter_mut().enumerate() {
            for (wide, slot) in recovery.chunks_exact(width).zip(slots.chunks_exact_mut(stride)) {
                layout.unpack(wide, position, &mut slot[skip..]);
            }
        }
    });
}

/// The symbols at positions `picks` (each below `n`) of the `n`-symbol codeword of each of
/// `codewords` (`k` sources of `symbol_size` bytes each): per codeword, `picks.len()` symbols
/// one after another, in the order of `picks`. Encoded side by side as
/// [`encode_many_into_slots`] does, but only the positions picked are copied out: a peer that
/// answers a few targets does not lay out every cell of every codeword.
pub(crate) fn encode_many_picked(
    k: usize,
    n: usize,
    symbol_size: usize,
    codewords: &[&[u8]],
    picks: &[usize],
) -> Vec<Vec<u8>> {
    assert!(picks.iter().all(|pick| *pick < n), "every pick is below n");
    let layout = Layout::new(symbol_size);
    let threads = rayon::current_num_threads();
    let batch = layout.columns_per_batch(ENCODE_SHARD_BYTES).min(codewords.len().div_ceil(threads)).max(1);
    let recovery_picked = picks.iter().any(|pick| *pick >= k);
    let batches: Vec<Vec<Vec<u8>>> = codewords
        .par_chunks(batch)
        .map(|batch| {
            let mut picked: Vec<Vec<u8>> = batch
                .iter()
                .map(|codeword| {
                    let mut out = vec![0; picks.len() * symbol_size];
                    for (slot, pick) in out.chunks_exact_mut(symbol_size).zip(picks) {
                        if let Some(source) = codeword.get(pick * symbol_size..(pick + 1) * symbol_size)
                            && *pick < k
                        {
                            slot.copy_from_slice(source);
                        }
                    }
                    out
                })
                .collect();
            if !recovery_picked {
                return picked;
            }
            let width = layout.width(batch.len());
            let mut sources = vec![0; k * width];
            for (position, codeword) in batch.iter().enumerate() {
                for (symbol, wide) in codeword.chunks_exact(symbol_size).zip(sources.chunks_exact_mut(width))
                {
                    layout.pack(symbol, position, wide);
                }
            }
            let mut recovery = vec![0; (n - k) * width];
            encode_into(k, n, width, &sources, &mut recovery);
            for (position, out) in picked.iter_mut().enumerate() {
                for (slot, pick) in out.chunks_exact_mut(symbol_size).zip(picks) {
                    if let Some(row) = pick.checked_sub(k) {
                        layout.unpack(&recovery[row * width..(row + 1) * width], position, slot);
                    }
                }
            }
            picked
        })
        .collect();
    batches.into_iter().flatten().collect()
}

/// Where the symbols of a batch of codewords sit in a wide shard. `reed-solomon-simd` lays a
/// shard out in 64-byte blocks of 32 field elements (32 low bytes, then the 32 high bytes); a
/// shorter last block of `r` bytes holds its first `r / 2` bytes as low bytes and the rest as
/// high bytes.
#[derive(Clone, Copy)]
enum Layout {
    /// Symbols of 64 bytes or more: each in its own blocks (its length rounded up to 64),
    /// laid out as a lone decode lays it out; whole blocks are copied as they are.
    Blocks { symbol_size: usize, padded: usize },
    /// Symbols shorter than 64 bytes (all tail, `symbol_size / 2` elements each): their
    /// elements packed densely one after another, so small symbols do not each pay for a
    /// whole block.
    Dense { symbol_size: usize },
}

impl Layout {
    fn new(symbol_size: usize) -> Self {
        match symbol_size < 64 {
            true => Self::Dense { symbol_size },
            false => Self::Blocks { symbol_size, padded: symbol_size.div_ceil(64) * 64 },
        }
    }

    /// How many codewords fit side by side in a wide shard of `shard_bytes` (at least one).
    fn columns_per_batch(self, shard_bytes: usize) -> usize {
        let per_column = match self {
            Self::Blocks { padded, .. } => padded,
            Self::Dense { symbol_size } => symbol_size,
        };
        (shard_bytes / per_column).max(1)
    }

    /// Bytes of the wide shard of `columns` codewords (a multiple of 64).
    fn width(self, columns: usize) -> usize {
        match self {
            Self::Blocks { padded, .. } => columns * padded,
            Self::Dense { symbol_size } => (columns * symbol_size).div_ceil(64) * 64,
        }
    }

    /// Blocks of 64 bytes a symbol takes in a lone shard's layout, for [`Layout::Blocks`].
    fn blocks_per_symbol(self) -> Option<usize> {
        match self {
            Self::Blocks { padded, .. } => Some(padded / 64),
            Self::Dense { .. } => None,
        }
    }

    /// Writes blocks `first..` of `symbol`'s lone-shard layout ([`Layout::Blocks`]) into
    /// `wide`, as many as it holds; bytes past the symbol's are left alone.
    fn pack_blocks(self, symbol: &[u8], first: usize, wide: &mut [u8]) {
        let Self::Blocks { symbol_size, .. } = self else { unreachable!("only symbols of whole blocks") };
        let whole = symbol_size - symbol_size % 64;
        let start = first * 64;
        let copied = whole.saturating_sub(start).min(wide.len());
        wide[..copied].copy_from_slice(&symbol[start..start + copied]);
        let half = (symbol_size - whole) / 2;
        if half > 0 && start + wide.len() > whole {
            let tail = &mut wide[whole - start..];
            tail[..half].copy_from_slice(&symbol[whole..whole + half]);
            tail[32..32 + half].copy_from_slice(&symbol[whole + half..]);
        }
    }

    /// Reads what [`Layout::pack_blocks`] wrote back into `symbol`.
    fn unpack_blocks(self, wide: &[u8], first: usize, symbol: &mut [u8]) {
        let Self::Blocks { symbol_size, .. } = self else { unreachable!("only symbols of whole blocks") };
        let whole = symbol_size - symbol_size % 64;
        let start = first * 64;
        let copied = whole.saturating_sub(start).min(wide.len());
        symbol[start..start + copied].copy_from_slice(&wide[..copied]);
        let half = (symbol_size - whole) / 2;
        if half > 0 && start + wide.len() > whole {
            let tail = &wide[whole - start..];
            symbol[whole..whole + half].copy_from_slice(&tail[..half]);
            symbol[whole + half..].copy_from_slice(&tail[32..32 + half]);
        }
    }

    /// Writes `symbol`, of the codeword at `position` in the batch, into `wide`.
    fn pack(self, symbol: &[u8], position: usize, wide: &mut [u8]) {
        match self {
            Self::Blocks { symbol_size, padded } => {
                let out = &mut wide[position * padded..(position + 1) * padded];
                let whole = symbol_size - symbol_size % 64;
                out[..whole].copy_from_slice(&symbol[..whole]);
                let half = (symbol_size - whole) / 2;
                if half == 0 {
                    return;
                }
                out[whole..whole + half].copy_from_slice(&symbol[whole..whole + half]);
                out[whole + 32..whole + 32 + half].copy_from_slice(&symbol[whole + half..]);
            }
            Self::Dense { symbol_size } => {
                let half = symbol_size / 2;
                for element in 0..half {
                    let (low, high) = dense_slot(position * half + element);
                    wide[low] = symbol[element];
                    wide[high] = symbol[half + element];
                }
            }
        }
    }

    /// Reads the symbol of the codeword at `position` in the batch out of `wide` into `out`.
    fn unpack(self, wide: &[u8], position: usize, out: &mut [u8]) {
        match self {
            Self::Blocks { symbol_size, padded } => {
                let packed = &wide[position * padded..(position + 1) * padded];
                let whole = symbol_size - symbol_size % 64;
                out[..whole].copy_from_slice(&packed[..whole]);
                let half = (symbol_size - whole) / 2;
                if half == 0 {
                    return;
                }
                out[whole..whole + half].copy_from_slice(&packed[whole..whole + half]);
                out[whole + half..].copy_from_slice(&packed[whole + 32..whole + 32 + half]);
            }
            Self::Dense { symbol_size } => {
                let half = symbol_size / 2;
                for element in 0..half {
                    let (low, high) = dense_slot(position * half + element);
                    out[element] = wide[low];
                    out[half + element] = wide[high];
                }
            }
        }
    }
}

/// Where field element `element` of a wide shard keeps its low and high byte.
fn dense_slot(element: usize) -> (usize, usize) {
    let low = element / 32 * 64 + element % 32;
    (low, low + 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random bytes (xorshift), enough for a test.
    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect()
    }

    #[test]
    fn batched_column_decodes_equal_one_decode_per_column() {
        for (k, n, symbol_size, columns) in [
            (3, 7, 2, 5),
            (34, 100, 2, 67),
            (34, 100, 62, 40),
            (5, 12, 64, 9),
            (5, 12, 66, 300),
            (4, 10, 1206, 30),
            (3, 9, 62, 600),
        ] {
            // Every shard of every codeword, encoded one codeword at a time.
            let codewords: Vec<Vec<u8>> = (0..columns)
                .map(|column| expand(k, n, symbol_size, &bytes(k * symbol_size, (column * 31 + k) as u64)))
                .collect();
            // Shards as slivers hold them: symbol `c` of shard `i` is codeword `c`'s symbol `i`.
            // Keep the last `k` shards (most sources missing) and one source.
            let kept: Vec<usize> = std::iter::once(1).chain(n - k + 1..n).collect();
            let slivers: Vec<(usize, Vec<u8>)> = kept
                .iter()
                .map(|&index| {
                    (
                        index,
                        codewords
                            .iter()
                            .flat_map(|c| &c[index * symbol_size..(index + 1) * symbol_size])
                            .copied()
                            .collect(),
                    )
                })
                .collect();
            let shards: Vec<(usize, &[u8])> =
                slivers.iter().map(|(index, bytes)| (*index, bytes.as_slice())).collect();
            let batched = decode_columns(k, n, symbol_size, columns, &shards);
            assert_eq!(batched.len(), columns);
            for (column, sources) in batched.iter().enumerate() {
                let cells = shards
                    .iter()
                    .map(|(index, bytes)| (*index, &bytes[column * symbol_size..(column + 1) * symbol_size]));
                let alone = decode(k, n, symbol_size, cells);
                assert_eq!(*sources, alone, "k {k}, n {n}, s {symbol_size}, column {column}");
                assert_eq!(*sources, codewords[column][..k * symbol_size], "column {column}");
            }
        }
    }

    /// Every codeword's symbol `index`, one after another (a sliver's view of the columns).
    fn sliver_of(codewords: &[Vec<u8>], index: usize, symbol_size: usize) -> Vec<u8> {
        codewords.iter().flat_map(|c| &c[index * symbol_size..(index + 1) * symbol_size]).copied().collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// The decoder of our own against the library's, one decode per codeword: both rates
        /// (and the boundary where the library's choice flips), any erasure pattern (sources
        /// given or not, recovery symbols beyond the `k` needed, in any order), symbols packed
        /// side by side, symbols cut into pieces, and the batch and piece widths' edges.
        #[test]
        fn pattern_decodes_equal_the_librarys(
            n in 3usize..140,
            k_pick in 1usize..139,
            symbol_size in proptest::sample::select(vec![
                2usize, 4, 30, 62, 64, 66, 126, 128, 130, 1206, 1216, 1278, 1280, 1282, 1344, 2562, 4820,
            ]),
            columns in 1usize..24,
            seed in proptest::prelude::any::<u64>(),
            extra in 0usize..3,
        ) {
            let k = 1 + (k_pick - 1) % (n - 1);
            let codewords: Vec<Vec<u8>> =
                (0..columns).map(|c| expand(k, n, symbol_size, &bytes(k * symbol_size, seed ^ c as u64))).collect();
            // A pseudo-random order of all indices; the first `k + extra` are given.
            let mut order: Vec<usize> = (0..n).collect();
            let mut state = seed | 1;
            for i in (1..n).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                order.swap(i, usize::try_from(state % (i as u64 + 1)).expect("below i + 1"));
            }
            let given: Vec<(usize, Vec<u8>)> =
                order.iter().take((k + extra).min(n)).map(|&i| (i, sliver_of(&codewords, i, symbol_size))).collect();
            let shards: Vec<(usize, &[u8])> = given.iter().map(|(i, b)| (*i, b.as_slice())).collect();
            let ours = decode_columns(k, n, symbol_size, columns, &shards);
            for (column, sources) in ours.iter().enumerate() {
                let cells = shards.iter().map(|(i, b)| (*i, &b[column * symbol_size..(column + 1) * symbol_size]));
                proptest::prop_assert_eq!(sources, &decode(k, n, symbol_size, cells), "column {}", column);
                proptest::prop_assert_eq!(&sources[..], &codewords[column][..k * symbol_size]);
            }
        }
    }

    #[test]
    fn pieces_of_blocks_unpack_to_what_was_packed() {
        for len in [64, 66, 126, 1206, 1216, 1282, 4820] {
            let layout = Layout::new(len);
            let blocks = layout.blocks_per_symbol().expect("a symbol of whole blocks");
            let symbol = bytes(len, len as u64);
            let mut whole = vec![0; blocks * 64];
            layout.pack(&symbol, 0, &mut whole);
            for piece in 1..=blocks {
                let mut back = vec![0; len];
                for first in (0..blocks).step_by(piece) {
                    let count = piece.min(blocks - first);
                    let mut wide = vec![0; count * 64];
                    layout.pack_blocks(&symbol, first, &mut wide);
                    assert_eq!(
                        wide,
                        whole[first * 64..(first + count) * 64],
                        "{len}, piece {piece}, at {first}"
                    );
                    layout.unpack_blocks(&wide, first, &mut back);
                }
                assert_eq!(back, symbol, "{len}, piece {piece}");
            }
        }
    }

    #[test]
    fn batched_encodes_equal_one_encode_per_codeword() {
        for (k, n, symbol_size, codewords) in
            [(3, 7, 2, 5), (34, 100, 2, 700), (5, 12, 66, 300), (4, 10, 1206, 30)]
        {
            let stride = symbol_size + 1;
            let sources: Vec<Vec<u8>> =
                (0..codewords).map(|c| bytes(k * symbol_size, (c * 7 + symbol_size) as u64)).collect();
            let mut batched = vec![0xaa; codewords * (n - k) * stride];
            let jobs = sources
                .iter()
                .map(|codeword| Sources::Consecutive(codeword))
                .zip(batched.chunks_exact_mut((n - k) * stride))
                .collect();
            encode_many_into_slots(k, n, symbol_size, jobs, stride);
            for (codeword, slots) in sources.iter().zip(batched.chunks_exact((n - k) * stride)) {
                let mut alone = vec![0xaa; (n - k) * stride];
                encode_into_slots(k, n, symbol_size, codeword, &mut alone, stride);
                assert_eq!(slots, alone.as_slice(), "k {k}, n {n}, s {symbol_size}");
            }
        }
    }

    #[test]
    fn every_layout_unpacks_what_it_packs() {
        for len in [2, 4, 30, 62, 64, 66, 128, 130, 1206] {
            let layout = Layout::new(len);
            let symbols: Vec<Vec<u8>> = (0..5).map(|seed| bytes(len, seed + len as u64)).collect();
            let mut wide = vec![0; layout.width(symbols.len())];
            for (position, symbol) in symbols.iter().enumerate() {
                layout.pack(symbol, position, &mut wide);
            }
            for (position, symbol) in symbols.iter().enumerate() {
                let mut back = vec![0; len];
                layout.unpack(&wide, position, &mut back);
                assert_eq!(back, *symbol, "{len}, symbol {position}");
            }
        }
    }
}
