//! `morsa drill`: a restore drill. Restores a sample of the account's certified blobs, whole
//! and at random ranges, the way a restore on the worst day would (every sliver verified
//! against the blob ID, files opened with the keyring when they are encrypted), measures time
//! to first byte and throughput, and writes what happened as JSON, as a self-contained HTML
//! page and as Prometheus metrics. Trust in backups comes from restores that are tested.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;
use morsa_client::Client;
use redstuff::BlobId;
use serde::Serialize;

use crate::blobs::{ConfigArg, Keys, runtime};

/// `morsa drill`.
#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Restore this many blobs, picked at random among the account's certified ones.
    #[arg(long, default_value_t = 5, conflicts_with_all = ["all", "blobs"])]
    pub sample: usize,
    /// Restore every certified blob of the account.
    #[arg(long)]
    pub all: bool,
    /// Restore the blobs listed in FILE (one blob ID per line; `#` starts a comment).
    #[arg(long, value_name = "FILE")]
    pub blobs: Option<PathBuf>,
    /// Random ranges read from each blob besides the whole blob.
    #[arg(long, default_value_t = 3)]
    pub ranges: usize,
    /// Seed of the random choices (default: from the clock), to repeat a drill exactly.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write the report as a self-contained HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the results as Prometheus metrics to FILE (e.g. for node_exporter's textfile
    /// collector), replaced atomically after each drill.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Keep running, one drill every DURATION (e.g. `6h`, `1d`).
    #[arg(long, value_name = "DURATION", value_parser = crate::renew::parse_every)]
    pub every: Option<Duration>,
    #[command(flatten)]
    pub common: ConfigArg,
}

/// What a drill found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// When it started (Unix seconds).
    pub started_unix: u64,
    /// Its seed.
    pub seed: u64,
    /// Blobs restored without a fault.
    pub passed: usize,
    /// Blobs that could not be restored, whole or in part.
    pub failed: usize,
    /// Each blob.
    pub blobs: Vec<BlobResult>,
}

/// One blob's restore.
#[derive(Debug, Serialize)]
pub struct BlobResult {
    /// The blob.
    pub blob_id: String,
    /// Whether the whole blob and every range came back.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// Bytes restored (the file's size).
    pub bytes: u64,
    /// Milliseconds until the first byte was written.
    pub ttfb_ms: Option<f64>,
    /// Milliseconds the whole restore took.
    pub total_ms: f64,
    /// Restore throughput, MB/s.
    pub mb_per_s: Option<f64>,
    /// Slivers that failed verification on the way (the read went around them).
    pub bad_slivers: usize,
    /// Nodes that could not serve.
    pub failed_nodes: Vec<String>,
    /// The ranges read.
    pub ranges: Vec<RangeResult>,
}

/// One range read.
#[derive(Debug, Serialize)]
pub struct RangeResult {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Whether it came back and equals the same bytes of the whole restore.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// Milliseconds it took.
    pub ms: f64,
}

/// Runs `morsa drill`: exits with an error if any blob failed (in a one-shot run).
pub fn run(args: &DrillArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = args.common.connect_with(Keys::Read).await?;
        let mut seed = args.seed.unwrap_or_else(clock_seed);
        loop {
            let report = drill(&client, args, seed).await?;
            publish(args, &report)?;
            let Some(every) = args.every else {
                if report.failed > 0 {
                    let names: Vec<&str> = report
                        .blobs
                        .iter()
                        .filter(|blob| !blob.ok)
                        .map(|blob| blob.blob_id.as_str())
                        .collect();
                    bail!(
                        "restore drill failed for {} of {} blob(s): {}",
                        report.failed,
                        report.blobs.len(),
                        names.join(", ")
                    );
                }
                return Ok(());
            };
            seed = next(&mut seed);
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    })
}

/// One drill.
async fn drill(client: &Client, args: &DrillArgs, seed: u64) -> anyhow::Result<Report> {
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let mut rng = seed;
    let blobs = choose(client, args, &mut rng).await?;
    let mut results = Vec::with_capacity(blobs.len());
    for blob_id in blobs {
        results.push(restore(client, &blob_id, args.ranges, &mut rng).await);
    }
    let failed = results.iter().filter(|blob| !blob.ok).count();
    Ok(Report { started_unix, seed, passed: results.len() - failed, failed, blobs: results })
}

/// The blobs to restore.
async fn choose(client: &Client, args: &DrillArgs, rng: &mut u64) -> anyhow::Result<Vec<BlobId>> {
    if let Some(path) = &args.blobs {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        return text
            .lines()
            .map(|line| line.split('#').next().unwrap_or("").trim())
            .filter(|line| !line.is_empty())
            .map(|line| {
                line.parse().map_err(|error| {
                    anyhow::anyhow!("{}: {line:?} is not a blob ID: {error}", path.display())
                })
            })
            .collect();
    }
    let certified: BTreeSet<BlobId> = client
        .list_blobs()
        .await?
        .into_iter()
        .filter(|blob| blob.certified_epoch.is_some() && !blob.invalid)
        .map(|blob| blob.blob_id)
        .collect();
    let mut certified: Vec<BlobId> = certified.into_iter().collect();
    if args.all || certified.len() <= args.sample {
        return Ok(certified);
    }
    // A partial Fisher–Yates shuffle: the first `sample` are a uniform sample.
    for index in 0..args.sample {
        let left = u64::try_from(certified.len() - index).unwrap_or(u64::MAX);
        let pick = index + usize::try_from(next(rng) % left).unwrap_or(0);
        certified.swap(index, pick);
    }
    certified.truncate(args.sample);
    Ok(certified)
}

/// Restores `blob_id` whole, then `ranges` random ranges of it, compared with the whole.
async fn restore(client: &Client, blob_id: &BlobId, ranges: usize, rng: &mut u64) -> BlobResult {
    let mut sink = Sink::default();
    let started = Instant::now();
    let read = client.read_file(blob_id, &mut sink).await;
    let total = started.elapsed();
    let mut result = BlobResult {
        blob_id: blob_id.to_string(),
        ok: false,
        error: None,
        bytes: u64::try_from(sink.data.len()).unwrap_or(u64::MAX),
        ttfb_ms: sink.first.map(|first| ms(first.duration_since(started))),
        total_ms: ms(total),
        mb_per_s: None,
        bad_slivers: 0,
        failed_nodes: Vec::new(),
        ranges: Vec::new(),
    };
    let summary = match read {
        Ok(summary) => summary,
        Err(error) => {
            result.error = Some(error.to_string());
            return result;
        }
    };
    result.bad_slivers = summary.bad_slivers.len();
    result.failed_nodes = summary.failures.iter().map(|failure| failure.node.clone()).collect();
    result.mb_per_s = Some(sink.data.len() as f64 / 1e6 / total.as_secs_f64().max(1e-9));
    let len = result.bytes;
    for _ in 0..ranges {
        if len == 0 {
            break;
        }
        let start = next(rng) % len;
        let end = (start + 1 + next(rng) % (len - start).min(1 << 20)).min(len);
        let began = Instant::now();
        let outcome = client.read_file_range(blob_id, start..end).await;
        let elapsed = ms(began.elapsed());
        let expected = &sink.data[usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0)];
        let (ok, error) = match outcome {
            Ok(read) if read.data == expected => (true, None),
            Ok(read) => (false, Some(format!("{} bytes differ from the whole restore", read.data.len()))),
            Err(error) => (false, Some(error.to_string())),
        };
        result.ranges.push(RangeResult { start, end, ok, error, ms: elapsed });
    }
    result.ok = result.ranges.iter().all(|range| range.ok);
    if !result.ok {
        result.error = Some("a range read failed".into());
    }
    result
}

/// Where a restore is written: kept in memory (to check the ranges against), with the time
/// of the first byte.
#[derive(Default)]
struct Sink {
    data: Vec<u8>,
    first: Option<Instant>,
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.first.is_none() && !bytes.is_empty() {
            self.first = Some(Instant::now());
        }
        self.data.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Prints the report and writes the files asked for.
fn publish(args: &DrillArgs, report: &Report) -> anyhow::Result<()> {
    if args.common.json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        for blob in &report.blobs {
            match &blob.error {
                None => println!(
                    "ok     {} {} bytes, first byte {:.0} ms, {:.1} MB/s, {} range(s)",
                    blob.blob_id,
                    blob.bytes,
                    blob.ttfb_ms.unwrap_or(0.0),
                    blob.mb_per_s.unwrap_or(0.0),
                    blob.ranges.len()
                ),
                Some(error) => println!("FAILED {}: {error}", blob.blob_id),
            }
        }
        println!("restore drill: {} passed, {} failed (seed {})", report.passed, report.failed, report.seed);
    }
    if let Some(path) = &args.report {
        write_file(path, serde_json::to_string_pretty(report)?.as_bytes())?;
    }
    if let Some(path) = &args.html {
        write_file(path, html(report).as_bytes())?;
    }
    if let Some(path) = &args.metrics {
        write_file(path, metrics(report).as_bytes())?;
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    morsa_plumbing::file::replace(path, bytes, morsa_plumbing::file::Access::Shared)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The drill as Prometheus metrics (text format).
fn metrics(report: &Report) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: String| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"));
    };
    gauge(
        "morsa_drill_last_run_timestamp_seconds",
        "When the last restore drill started.",
        report.started_unix.to_string(),
    );
    gauge("morsa_drill_blobs_passed", "Blobs the last restore drill restored.", report.passed.to_string());
    gauge(
        "morsa_drill_blobs_failed",
        "Blobs the last restore drill could not restore.",
        report.failed.to_string(),
    );
    gauge(
        "morsa_drill_success",
        "1 if the last restore drill restored every blob.",
        u8::from(report.failed == 0).to_string(),
    );
    let ttfb: Vec<f64> = report.blobs.iter().filter_map(|blob| blob.ttfb_ms).collect();
    let rate: Vec<f64> = report.blobs.iter().filter_map(|blob| blob.mb_per_s).collect();
    if let Some(worst) = ttfb.iter().copied().reduce(f64::max) {
        gauge(
            "morsa_drill_ttfb_max_seconds",
            "Longest time to first byte in the last drill.",
            (worst / 1e3).to_string(),
        );
    }
    if let Some(slowest) = rate.iter().copied().reduce(f64::min) {
        gauge(
            "morsa_drill_throughput_min_bytes_per_second",
            "Slowest restore in the last drill.",
            (slowest * 1e6).to_string(),
        );
    }
    out
}

/// The drill as one HTML page: a table and two bar plots (time to first byte, throughput),
/// inline SVG, no scripts.
fn html(report: &Report) -> String {
    let bars = |values: Vec<(String, f64)>, unit: &str| -> String {
        let top = values.iter().map(|(_, value)| *value).fold(0.0_f64, f64::max).max(1e-9);
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="640" height="{}">"#,
            22 * values.len() + 4
        );
        for (row, (label, value)) in values.iter().enumerate() {
            let y = 22 * row + 2;
            let width = (value / top * 400.0).max(1.0);
            svg.push_str(&format!(
                r##"<text x="0" y="{}" font-size="11" font-family="monospace">{}</text><rect x="130" y="{y}" width="{width:.0}" height="18" fill="#3b7dd8"/><text x="{:.0}" y="{}" font-size="11">{value:.1} {unit}</text>"##,
                y + 13,
                escape(&label.chars().take(16).collect::<String>()),
                135.0 + width,
                y + 13
            ));
        }
        svg.push_str("</svg>");
        svg
    };
    let ttfb = bars(
        report.blobs.iter().filter_map(|blob| Some((blob.blob_id.clone(), blob.ttfb_ms?))).collect(),
        "ms",
    );
    let rate = bars(
        report.blobs.iter().filter_map(|blob| Some((blob.blob_id.clone(), blob.mb_per_s?))).collect(),
        "MB/s",
    );
    let rows: String = report
        .blobs
        .iter()
        .map(|blob| {
            format!(
                "<tr class=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.1}</td><td>{}</td><td>{}</td></tr>",
                if blob.ok { "ok" } else { "failed" },
                escape(&blob.blob_id),
                if blob.ok { "ok" } else { "FAILED" },
                blob.bytes,
                blob.ttfb_ms.unwrap_or(f64::NAN),
                blob.mb_per_s.unwrap_or(f64::NAN),
                blob.ranges.iter().filter(|range| range.ok).count(),
                escape(blob.error.as_deref().unwrap_or(""))
            )
        })
        .collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Morsa restore drill</title><style>\
         body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}\
         tr.failed{{background:#fdd}}</style></head><body><h1>Restore drill: {} passed, {} failed</h1>\
         <p>Started at Unix time {}, seed {}.</p><table><tr><th>blob</th><th>result</th><th>bytes</th>\
         <th>first byte (ms)</th><th>MB/s</th><th>ranges ok</th><th>error</th></tr>{rows}</table>\
         <h2>Time to first byte</h2>{ttfb}<h2>Throughput</h2>{rate}</body></html>\n",
        report.passed, report.failed, report.started_unix, report.seed
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |since| u64::try_from(since.as_nanos()).unwrap_or(1))
}

/// SplitMix64: the next pseudo-random number of `state`.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
