//! The 256 MiB decode from non-systematic primary slivers (with its consistency check) at
//! n = 1000 against raw 1D Reed–Solomon encoding of the same bytes, alternating in one process:
//! a quick check of the decoder's speed that builds from this crate alone.
//!
//! `cargo run --release -p redstuff --example decode_vs_baseline -- [RUNS] [BYTES]`
//!
//! Prints medians: decode and baseline MB/s, their ratio and the decode's CPU seconds (user +
//! system, Linux).

mod common;

use common::{mb_per_s, median, pseudo_random, timed};

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map_or(5, |arg| arg.parse().expect("RUNS is a number"));
    let size: u32 = args.next().map_or(256 << 20, |arg| arg.parse().expect("BYTES is a number below 4 GiB"));
    let config = redstuff::EncodingConfig::new(1000).expect("n = 1000 is valid");
    let data = pseudo_random(usize::try_from(size).expect("u32 fits in usize"));
    let encoded = redstuff::encode(config, &data).expect("encodes");
    let n = config.n_shards();
    let slivers: Vec<redstuff::Sliver> =
        encoded.pairs[n - config.kp()..].iter().map(|pair| pair.primary.clone()).collect();
    drop(encoded.pairs);
    let metadata = encoded.metadata;
    let (mut decode, mut baseline, mut decode_cpu) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (wall, _) = timed(|| std::hint::black_box(redstuff::baseline::raw_rs_encode(config, &data)));
        baseline.push(mb_per_s(size, wall));
        let (wall, cpu) = timed(|| {
            let decoded = metadata.decode(&slivers).expect("decodes");
            assert!(decoded == data, "decoded blob differs from the input");
        });
        decode.push(mb_per_s(size, wall));
        decode_cpu.push(cpu);
    }
    let (decode, baseline) = (median(&mut decode), median(&mut baseline));
    println!(
        "decode non-systematic {decode:.1} MB/s, baseline {baseline:.1} MB/s, ratio {:.3}, decode cpu {:.2} s",
        decode / baseline,
        median(&mut decode_cpu),
    );
}
