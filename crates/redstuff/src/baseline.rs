//! The reference point codec benchmarks compare against: classic one-dimensional
//! Reed–Solomon encoding of the same bytes with the same `n`, as `reed-solomon-simd` does it.

use rayon::prelude::*;
use reed_solomon_simd::ReedSolomonEncoder;

use crate::EncodingConfig;

/// Encodes `blob` cut into `ks` equal shards into `n − ks` recovery shards, spread over
/// rayon's threads in byte stripes (each stripe of every shard is an independent codeword),
/// and returns the total length of the recovery shards.
pub fn raw_rs_encode(config: EncodingConfig, blob: &[u8]) -> usize {
    let (n, ks) = (config.n_shards(), config.ks());
    let shard = blob.len().div_ceil(ks).max(2);
    let shard = shard + shard % 2;
    let threads = rayon::current_num_threads();
    let stripe = shard.div_ceil(threads).max(2);
    let stripe = stripe + stripe % 2;
    (0..threads)
        .into_par_iter()
        .map(|part| {
            let begin = (part * stripe).min(shard);
            let end = ((part + 1) * stripe).min(shard);
            if begin == end {
                return 0;
            }
            let width = end - begin;
            let mut encoder = ReedSolomonEncoder::new(ks, n - ks, width).expect("valid code parameters");
            let mut buffer = vec![0; width];
            for index in 0..ks {
                let at = index * shard + begin;
                let available = blob.get(at..(at + width).min(blob.len())).unwrap_or(&[]);
                buffer[..available.len()].copy_from_slice(available);
                buffer[available.len()..].fill(0);
                encoder.add_original_shard(&buffer).expect("ks shards of equal size");
            }
            let result = encoder.encode().expect("all shards were added");
            result.recovery_iter().map(<[u8]>::len).sum::<usize>()
        })
        .sum()
}
