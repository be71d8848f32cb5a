//! Codec throughput: `cargo bench -p redstuff`.
//!
//! Every group reports bytes of blob per second; `baseline_raw_rs` is classic 1D
//! Reed–Solomon over the same bytes, measured in the same run. `morsa bench codec` measures
//! the same operations at 256 MiB.

use divan::Bencher;
use divan::counter::BytesCount;
use redstuff::{EncodingConfig, Sliver};

const N_SHARDS: u16 = 1000;
const SIZES: [usize; 3] = [1 << 10, 1 << 20, 32 << 20];

fn main() {
    divan::main();
}

fn blob(len: usize) -> Vec<u8> {
    (0..len).map(|i| u8::try_from((i.wrapping_mul(2_654_435_761) >> 13) & 0xff).unwrap_or(0)).collect()
}

fn config() -> EncodingConfig {
    EncodingConfig::new(N_SHARDS).expect("valid shard count")
}

#[divan::bench(args = SIZES, sample_count = 5, sample_size = 1)]
fn baseline_raw_rs(bencher: Bencher, size: usize) {
    let data = blob(size);
    bencher.counter(BytesCount::new(size)).bench(|| redstuff::baseline::raw_rs_encode(config(), &data));
}

#[divan::bench(args = SIZES, sample_count = 5, sample_size = 1)]
fn encode(bencher: Bencher, size: usize) {
    let data = blob(size);
    bencher.counter(BytesCount::new(size)).bench(|| redstuff::encode(config(), &data).expect("encodes"));
}

#[divan::bench(args = SIZES, sample_count = 5, sample_size = 1)]
fn compute_metadata(bencher: Bencher, size: usize) {
    let data = blob(size);
    bencher
        .counter(BytesCount::new(size))
        .bench(|| redstuff::compute_metadata(config(), &data).expect("encodes"));
}

fn primary_slivers(size: usize, systematic: bool) -> (redstuff::VerifiedMetadata, Vec<Sliver>) {
    let encoded = redstuff::encode(config(), &blob(size)).expect("encodes");
    let kp = config().kp();
    let n = config().n_shards();
    let range = if systematic { 0..kp } else { n - kp..n };
    let slivers = encoded.pairs[range].iter().map(|pair| pair.primary.clone()).collect();
    (encoded.metadata, slivers)
}

#[divan::bench(args = SIZES, sample_count = 5, sample_size = 1)]
fn decode_systematic(bencher: Bencher, size: usize) {
    let (metadata, slivers) = primary_slivers(size, true);
    bencher.counter(BytesCount::new(size)).bench(|| metadata.decode(&slivers).expect("decodes"));
}

#[divan::bench(args = SIZES, sample_count = 5, sample_size = 1)]
fn decode_non_systematic(bencher: Bencher, size: usize) {
    let (metadata, slivers) = primary_slivers(size, false);
    bencher.counter(BytesCount::new(size)).bench(|| metadata.decode(&slivers).expect("decodes"));
}

#[divan::bench(args = SIZES, sample_count = 5, sample_size = 1)]
fn verify_one_primary_sliver(bencher: Bencher, size: usize) {
    let (metadata, slivers) = primary_slivers(size, false);
    let sliver = &slivers[0];
    bencher
        .counter(BytesCount::new(sliver.symbols.len()))
        .bench(|| metadata.verify_sliver(redstuff::SliverType::Primary, sliver).expect("verifies"));
}
