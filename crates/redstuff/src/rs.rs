//! The one-dimensional code: systematic Reed–Solomon from `reed-solomon-simd` 3.1.0.
//!
//! Encoding `k` sources into `n` symbols: symbols `0..k` are the sources, symbol `k + j` is
//! recovery shard `j`. Encoders and decoders are reused per thread, since building one
//! allocates its work buffers.

use std::cell::RefCell;

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

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
