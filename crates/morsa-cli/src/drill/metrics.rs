//! The drill as Prometheus metrics (text format, for node_exporter's textfile collector):
//! gauges of the last drill, and histograms of every blob's time to first byte and restore
//! throughput over the drills this process ran (one with `--every` keeps adding to them, as
//! Prometheus histograms expect; their buckets are the gateway's).

use morsa_plumbing::metrics::{Registry, SECONDS_BUCKETS, THROUGHPUT_BUCKETS};

use super::Report;
use crate::textfile::count;

const FIRST_BYTE: (&str, &str) = (
    "morsa_drill_time_to_first_byte_seconds",
    "Time to the first byte of each blob restored by the drills this process ran.",
);
const THROUGHPUT: (&str, &str) = (
    "morsa_drill_restore_throughput_bytes_per_second",
    "Bytes per second of each whole-blob restore of the drills this process ran.",
);

/// The histograms, kept across the drills of one process.
pub struct Histograms {
    seconds: Registry,
    throughput: Registry,
}

impl Default for Histograms {
    fn default() -> Self {
        let histograms = Self {
            seconds: Registry::with_buckets(&SECONDS_BUCKETS),
            throughput: Registry::with_buckets(&THROUGHPUT_BUCKETS),
        };
        // Registered before the first drill, so that a drill that restored nothing still
        // exports them (at zero).
        let _ = histograms.seconds.histogram(FIRST_BYTE.0, FIRST_BYTE.1, &[]);
        let _ = histograms.throughput.histogram(THROUGHPUT.0, THROUGHPUT.1, &[]);
        histograms
    }
}

impl Histograms {
    /// Adds the blobs of `report` that came back (a failed blob has no honest timing).
    pub fn record(&self, report: &Report) {
        let seconds = self.seconds.histogram(FIRST_BYTE.0, FIRST_BYTE.1, &[]);
        let throughput = self.throughput.histogram(THROUGHPUT.0, THROUGHPUT.1, &[]);
        for blob in report.blobs.iter().filter(|blob| blob.ok) {
            if let Some(ms) = blob.ttfb_ms {
                seconds.record(ms / 1e3);
            }
            if let Some(rate) = blob.bytes_per_second {
                throughput.record(rate);
            }
        }
    }
}

/// The gauges of `report` (the last drill) and `histograms`.
pub fn render(report: &Report, histograms: &Histograms) -> String {
    let mut gauges = vec![
        (
            "morsa_drill_last_run_timestamp_seconds",
            "When the last restore drill started.",
            morsa_core::convert::lossy_f64(report.started_unix),
        ),
        ("morsa_drill_blobs_passed", "Blobs the last restore drill restored.", count(report.passed)),
        ("morsa_drill_blobs_failed", "Blobs the last restore drill could not restore.", count(report.failed)),
        (
            "morsa_drill_success",
            "1 if the last restore drill restored every blob.",
            f64::from(u8::from(report.failed == 0)),
        ),
        (
            "morsa_drill_excluded_shards",
            "Shards of the nodes the last drill read without (--with-failures; 0 without).",
            count(report.with_failures.as_ref().map_or(0, |failures| failures.excluded_shards)),
        ),
    ];
    let ttfb = report.blobs.iter().filter_map(|blob| blob.ttfb_ms).reduce(f64::max);
    if let Some(worst) = ttfb {
        let help = "Longest time to first byte in the last drill.";
        gauges.push(("morsa_drill_ttfb_max_seconds", help, worst / 1e3));
    }
    let rate = report.blobs.iter().filter_map(|blob| blob.bytes_per_second).reduce(f64::min);
    if let Some(slowest) = rate {
        let help = "Slowest restore in the last drill.";
        gauges.push(("morsa_drill_throughput_min_bytes_per_second", help, slowest));
    }
    let mut text = crate::textfile::render(&gauges);
    text.push_str(&histograms.seconds.render());
    text.push_str(&histograms.throughput.render());
    text
}
