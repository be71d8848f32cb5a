//! What the codec examples share: timing with CPU seconds, medians, reproducible input.

use std::time::{Duration, Instant};

/// Wall time and CPU seconds of the process (all threads) spent in `work`.
pub fn timed<T>(work: impl FnOnce() -> T) -> (Duration, f64) {
    let (cpu, started) = (cpu_seconds(), Instant::now());
    drop(work());
    (started.elapsed(), cpu_seconds() - cpu)
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`, 100 ticks a
/// second); 0 elsewhere.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |at: usize| fields.get(at).and_then(|field| field.parse::<u32>().ok()).map_or(0.0, f64::from);
    (ticks(11) + ticks(12)) / 100.0
}

pub fn mb_per_s(bytes: u32, elapsed: Duration) -> f64 {
    f64::from(bytes) / elapsed.as_secs_f64().max(1e-9) / 1e6
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Bytes from an xorshift generator: incompressible enough, and the same in every build.
pub fn pseudo_random(len: usize) -> Vec<u8> {
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
