//! `morsa bench challenges`: what storage challenges cost one node, measured with the real
//! code — deriving a round's challenges over many certified blobs, answering them from real
//! encoded slivers, verifying the answers — and the size of an answer on the wire.
//! docs/PERFORMANCE.md extrapolates these to 1 TiB stored at n = 1000.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use morsa_core::challenge::{CandidateBlob, ChallengeItem, answer_challenge, derive_shard_items, round_seed};
use morsa_core::{BlobId, Epoch, ShardIndex};
use redstuff::{EncodedBlob, EncodingConfig};
use serde::Serialize;

/// Options of `morsa bench challenges`.
#[derive(Debug, Args)]
pub struct ChallengesArgs {
    /// Number of shards n.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(4..))]
    n_shards: u16,
    /// Size of each real blob answered from, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    size: u64,
    /// Real blobs encoded (challenges are drawn over them to be answered).
    #[arg(long, default_value_t = 4)]
    blobs: usize,
    /// Certified blobs the derivation draws from (synthetic IDs and sizes).
    #[arg(long, default_value_t = 100_000)]
    candidates: usize,
    /// Challenges per shard and round.
    #[arg(long, default_value_t = 16)]
    samples_per_shard: u32,
    /// Shards whose challenges are derived, answered and verified per run.
    #[arg(long, default_value_t = 32)]
    shards: u16,
    /// Runs of each measurement; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct ChallengesReport {
    n_shards: u16,
    blob_size: u64,
    symbol_size: u16,
    candidates: usize,
    samples_per_shard: u32,
    shards: u16,
    runs: u32,
    /// Challenges derived, answered and verified per run.
    challenges: usize,
    /// Microseconds to derive one shard's challenges of a round over `candidates` blobs.
    derive_us_per_shard: f64,
    /// Microseconds to build one answer from the stored sliver pair.
    answer_us: f64,
    /// Microseconds to verify one answer from the blob ID and length.
    verify_us: f64,
    /// Bytes of one answer in BCS and in JSON.
    answer_bcs_bytes: usize,
    answer_json_bytes: usize,
}

/// Synthetic certified blobs: distinct IDs, sizes spread from 1 KiB to about 1 GiB.
fn candidates(count: usize, config: EncodingConfig) -> anyhow::Result<Vec<CandidateBlob>> {
    let mut blobs = Vec::with_capacity(count);
    for index in 0..count {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&u64::try_from(index)?.to_be_bytes());
        let unencoded_length = 1024u64 << (index % 21);
        blobs.push(CandidateBlob {
            blob_id: BlobId(id),
            unencoded_length,
            encoded_size: config.encoded_size(unencoded_length)?,
        });
    }
    Ok(blobs)
}

fn median(runs: u32, mut once: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..runs).map(|_| once()).collect();
    times.sort();
    times[times.len() / 2]
}

fn micros_each(elapsed: Duration, count: usize) -> f64 {
    let count = morsa_core::convert::lossy_f64(morsa_core::convert::saturating_u64(count.max(1)));
    elapsed.as_secs_f64() * 1e6 / count
}

/// Runs `morsa bench challenges`.
pub fn run(args: &ChallengesArgs) -> anyhow::Result<()> {
    let config = EncodingConfig::new(args.n_shards)?;
    let shards: Vec<ShardIndex> = (0..args.shards.min(args.n_shards)).map(ShardIndex).collect();
    let seed = round_seed(Epoch(7), 1, &[3; 32], &[4; 32]);

    let synthetic = candidates(args.candidates, config)?;
    let derive = median(args.runs, || {
        let started = Instant::now();
        for shard in &shards {
            let items = derive_shard_items(&seed, args.n_shards, *shard, &synthetic, args.samples_per_shard);
            std::hint::black_box(items.expect("derivable"));
        }
        started.elapsed()
    });

    let size = usize::try_from(args.size).context("blob size does not fit in memory")?;
    let encoded: Vec<EncodedBlob> = (0..args.blobs)
        .map(|index| {
            Ok(redstuff::encode(config, &morsa_cluster::sample::bytes(size, u64::try_from(index)?))?)
        })
        .collect::<anyhow::Result<_>>()?;
    let mut real: Vec<CandidateBlob> = encoded
        .iter()
        .map(|blob| {
            let length = blob.metadata.unencoded_length();
            Ok(CandidateBlob {
                blob_id: *blob.metadata.blob_id(),
                unencoded_length: length,
                encoded_size: config.encoded_size(length)?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    real.sort_by_key(|blob| blob.blob_id);
    let by_id = |id: &BlobId| encoded.iter().find(|blob| blob.metadata.blob_id() == id).expect("a real blob");
    let items: Vec<ChallengeItem> = shards
        .iter()
        .map(|shard| derive_shard_items(&seed, args.n_shards, *shard, &real, args.samples_per_shard))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    let answer_all = || {
        items
            .iter()
            .map(|item| {
                let blob = by_id(&item.blob_id);
                answer_challenge(&blob.metadata, &blob.pairs[usize::from(item.pair.0)], item)
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let answers = answer_all()?;
    let answer = median(args.runs, || {
        let started = Instant::now();
        std::hint::black_box(answer_all().expect("answers"));
        started.elapsed()
    });
    let verify = median(args.runs, || {
        let started = Instant::now();
        for (answer, item) in answers.iter().zip(&items) {
            answer.verify(item, args.n_shards).expect("genuine answers verify");
        }
        started.elapsed()
    });
    let first = answers.first().context("no challenge was drawn")?;
    let report = ChallengesReport {
        n_shards: args.n_shards,
        blob_size: args.size,
        symbol_size: config.symbol_size(args.size)?,
        candidates: args.candidates,
        samples_per_shard: args.samples_per_shard,
        shards: args.shards,
        runs: args.runs,
        challenges: items.len(),
        derive_us_per_shard: micros_each(derive, shards.len()),
        answer_us: micros_each(answer, items.len()),
        verify_us: micros_each(verify, items.len()),
        answer_bcs_bytes: bcs::to_bytes(first)?.len(),
        answer_json_bytes: serde_json::to_vec(first)?.len(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "challenges: n = {}, blobs of {} bytes (symbols of {}), {} candidates, {} per shard, {} shards, median of {}",
        report.n_shards,
        report.blob_size,
        report.symbol_size,
        report.candidates,
        report.samples_per_shard,
        report.shards,
        report.runs
    );
    println!("  derive a round's challenges    {:>10.1} µs per shard", report.derive_us_per_shard);
    println!("  answer (from the sliver pair)  {:>10.1} µs per challenge", report.answer_us);
    println!("  verify an answer               {:>10.1} µs per challenge", report.verify_us);
    println!(
        "  answer size                    {:>10} bytes BCS, {} JSON",
        report.answer_bcs_bytes, report.answer_json_bytes
    );
    Ok(())
}
