//! The one-dimensional code: systematic Reed–Solomon from `reed-solomon-simd` 3.1.0.
//!
//! Encoding `k` sources into `n` symbols: symbols `0..k` are the sources, symbol `k + j` is
//! recovery shard `j`. Encoders and decoders are reused per thread, since building one
//! allocates its work buffers.

use std::cell::RefCell;

use rayon::prelude::*;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

/// Bytes of a batch's shard in [`decode_columns`]: wide enough that the per-decode setup (the
/// erasure locator, a transform over all 65 536 field elements) is paid once for many
/// codewords, small enough that a thread's decoder work buffer stays a few tens of MB.
const BATCH_SHARD_BYTES: usize = 16 * 1024;

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
        for source in sources.chunks_exact(symbol_size) {
            encoder.add_original_shard(source).expect("exactly k shards of the configured size are added");
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
/// Codewords are decoded in batches, side by side in wider shards, so that one decode (and its
/// setup, the erasure locator: a transform over all 65 536 field elements) does the work of
/// many. The code works on each 16-bit field element of a shard on its own, so every element of
/// every symbol may sit anywhere in the wide shard as long as it sits there in all shards;
/// [`Layout`] says where.
pub(crate) fn decode_columns(
    k: usize,
    n: usize,
    symbol_size: usize,
    columns: usize,
    shards: &[(usize, &[u8])],
) -> Vec<Vec<u8>> {
    let layout = Layout::new(symbol_size);
    let batch = layout.columns_per_batch(BATCH_SHARD_BYTES);
    let batches: Vec<std::ops::Range<usize>> =
        (0..columns).step_by(batch).map(|first| first..(first + batch).min(columns)).collect();
    batches
        .into_par_iter()
        .flat_map_iter(|span| {
            let width = layout.width(span.len());
            let packed: Vec<(usize, Vec<u8>)> = shards
                .iter()
                .map(|(index, bytes)| {
                    let mut wide = vec![0; width];
                    for (position, column) in span.clone().enumerate() {
                        layout.pack(
                            &bytes[column * symbol_size..(column + 1) * symbol_size],
                            position,
                            &mut wide,
                        );
                    }
                    (*index, wide)
                })
                .collect();
            let decoded = decode(k, n, width, packed.iter().map(|(index, wide)| (*index, wide.as_slice())));
            (0..span.len()).map(move |position| {
                let mut sources = vec![0; k * symbol_size];
                for (source, out) in decoded.chunks_exact(width).zip(sources.chunks_exact_mut(symbol_size)) {
                    layout.unpack(source, position, out);
                }
                sources
            })
        })
        .collect()
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
    mut jobs: Vec<(&[u8], &mut [u8])>,
    stride: usize,
) {
    let layout = Layout::new(symbol_size);
    let skip = stride - symbol_size;
    let threads = rayon::current_num_threads();
    let batch = layout.columns_per_batch(ENCODE_SHARD_BYTES).min(jobs.len().div_ceil(threads)).max(1);
    jobs.par_chunks_mut(batch).for_each(|batch| {
        if let [(codeword, slots)] = batch {
            encode_into_slots(k, n, symbol_size, codeword, slots, stride);
            return;
        }
        let width = layout.width(batch.len());
        let mut sources = vec![0; k * width];
        for (position, (codeword, _)) in batch.iter().enumerate() {
            for (symbol, wide) in codeword.chunks_exact(symbol_size).zip(sources.chunks_exact_mut(width)) {
                layout.pack(symbol, position, wide);
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

    #[test]
    fn batched_encodes_equal_one_encode_per_codeword() {
        for (k, n, symbol_size, codewords) in
            [(3, 7, 2, 5), (34, 100, 2, 700), (5, 12, 66, 300), (4, 10, 1206, 30)]
        {
            let stride = symbol_size + 1;
            let sources: Vec<Vec<u8>> =
                (0..codewords).map(|c| bytes(k * symbol_size, (c * 7 + symbol_size) as u64)).collect();
            let mut batched = vec![0xaa; codewords * (n - k) * stride];
            let jobs =
                sources.iter().map(Vec::as_slice).zip(batched.chunks_exact_mut((n - k) * stride)).collect();
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
