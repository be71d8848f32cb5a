//! Encodes one pseudo-random blob repeatedly, for profiling: `encode_profile N SIZE RUNS`.
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64 << 20);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let blob: Vec<u8> =
        (0..size).map(|i| u8::try_from((i * 2_654_435_761) >> 24 & 0xff).unwrap_or(0)).collect();
    let config = redstuff::EncodingConfig::new(n).expect("valid n");
    for _ in 0..runs {
        let started = Instant::now();
        let encoded = redstuff::encode(config, &blob).expect("encodes");
        println!("encode {:?} {}", started.elapsed(), encoded.metadata.blob_id());
    }
}
