//! The 256 MiB encode at n = 1000 against raw 1D Reed–Solomon, alternating in one process,
//! and the 1 KiB encode: a quick check of the encoder's speed that builds from this crate alone
//! (so it also builds at older commits when bisecting).
//!
//! `cargo run --release -p redstuff --example encode_vs_baseline -- [RUNS] [BYTES]`
//!
//! Prints medians: encode and baseline MB/s and their ratio, the encode's CPU seconds (user +
//! system, Linux), and the 1 KiB encode's wall and CPU milliseconds (21 encodes).

mod common;

use common::{mb_per_s, median, pseudo_random, timed};

/// 1 KiB encodes timed.
const SMALL_ENCODES: u32 = 21;

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map_or(5, |arg| arg.parse().expect("RUNS is a number"));
    let size: u32 = args.next().map_or(256 << 20, |arg| arg.parse().expect("BYTES is a number below 4 GiB"));
    let config = redstuff::EncodingConfig::new(1000).expect("n = 1000 is valid");
    let data = pseudo_random(usize::try_from(size).expect("u32 fits in usize"));
    drop(redstuff::encode(config, &data).expect("encodes")); // warm the allocator
    let (mut encode, mut baseline, mut encode_cpu) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (wall, _) = timed(|| std::hint::black_box(redstuff::baseline::raw_rs_encode(config, &data)));
        baseline.push(mb_per_s(size, wall));
        let (wall, cpu) = timed(|| drop(redstuff::encode(config, &data).expect("encodes")));
        encode.push(mb_per_s(size, wall));
        encode_cpu.push(cpu);
    }
    let small = pseudo_random(1024);
    let mut small_ms = Vec::new();
    let mut small_cpu = 0.0;
    for _ in 0..SMALL_ENCODES {
        let (wall, cpu) = timed(|| drop(redstuff::encode(config, &small).expect("encodes")));
        small_ms.push(wall.as_secs_f64() * 1e3);
        small_cpu += cpu;
    }
    let blob_id = redstuff::compute_metadata(config, &data).expect("encodes").blob_id().to_string();
    let (encode, baseline) = (median(&mut encode), median(&mut baseline));
    println!(
        "encode {encode:.1} MB/s, baseline {baseline:.1} MB/s, ratio {:.3}, encode cpu {:.2} s; \
         1 KiB encode {:.1} ms, cpu {:.1} ms; blob id {blob_id}",
        encode / baseline,
        median(&mut encode_cpu),
        median(&mut small_ms),
        small_cpu * 1e3 / f64::from(SMALL_ENCODES),
    );
}
