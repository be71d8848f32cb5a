//! The 256 MiB decode from non-systematic primary slivers (with its consistency check) at
//! n = 1000 against raw 1D Reed–Solomon encoding of the same bytes, alternating in one process:
//! a quick check of the decoder's speed that builds from this crate alone.
//!
//! `cargo run --release -p redstuff --example decode_vs_baseline -- [RUNS] [BYTES]`
//!
//! Prints medians: decode and baseline MB/s, their ratio and the decode's CPU seconds (user +
//! system, Linux).

use std::time::{Duration, Instant};

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

/// Wall time and CPU seconds of the process (all threads) spent in `work`.
fn timed<T>(work: impl FnOnce() -> T) -> (Duration, f64) {
    let (cpu, started) = (cpu_seconds(), Instant::now());
    drop(work());
    (started.elapsed(), cpu_seconds() - cpu)
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`, 100 ticks a
/// second); 0 elsewhere.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |at: usize| fields.get(at).and_then(|field| field.parse::<u32>().ok()).map_or(0.0, f64::from);
    (ticks(11) + ticks(12)) / 100.0
}

fn mb_per_s(bytes: u32, elapsed: Duration) -> f64 {
    f64::from(bytes) / elapsed.as_secs_f64().max(1e-9) / 1e6
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Bytes from an xorshift generator: incompressible enough, and the same in every build.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}
