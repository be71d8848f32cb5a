//! Reads while a node rebuilds (`morsa bench repair`): the latency of whole-blob reads on the
//! quiet cluster, then while the wiped node rebuilds its share, paced the same way.
//!
//! One client of its own reads the given blobs round robin, starting a read every
//! [`READ_INTERVAL`] (or as soon as the previous one ended, when it took longer), so the load
//! it adds is the same in both series. That load is not small: a whole-blob read at n = 1000
//! checks `kp` slivers against their Merkle roots, about 0.1 s of CPU, so the reader can take
//! one of a 2-core machine's cores; each series reports the CPU time the bench process used
//! meanwhile. A read that fails is counted, not timed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use morsa_client::Client;
use redstuff::BlobId;
use serde::Serialize;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// How often a read starts.
const READ_INTERVAL: Duration = Duration::from_millis(100);
/// Reads of the quiet series.
pub(crate) const QUIET_READS: usize = 60;

/// Latencies of one series of reads.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReadLatency {
    /// Reads that returned the blob.
    pub(crate) reads: usize,
    /// Reads that failed.
    pub(crate) failed: usize,
    /// Median and 99th percentile (nearest rank) of the reads that returned, in milliseconds.
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// CPU seconds the bench process (the reader, and the bench's own polling) used during
    /// the series, if known.
    pub(crate) cpu_seconds: Option<f64>,
}

/// What one series recorded.
#[derive(Debug, Default)]
struct Series {
    seconds: Vec<f64>,
    failed: usize,
}

impl Series {
    fn latency(mut self) -> ReadLatency {
        self.seconds.sort_by(f64::total_cmp);
        let at = |percent: usize| {
            let rank = (self.seconds.len() * percent).div_ceil(100).max(1);
            self.seconds.get(rank - 1).copied().unwrap_or(f64::NAN) * 1e3
        };
        ReadLatency {
            reads: self.seconds.len(),
            failed: self.failed,
            p50_ms: at(50),
            p99_ms: at(99),
            cpu_seconds: None,
        }
    }
}

/// Reads `blobs` round robin until `reads` reads are done or `stop` is set.
async fn read_series(
    client: Arc<Client>,
    blobs: Arc<[BlobId]>,
    reads: usize,
    stop: Arc<AtomicBool>,
) -> Series {
    let mut series = Series::default();
    let mut next_start = tokio::time::Instant::now();
    for blob_id in blobs.iter().cycle().take(reads) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        tokio::time::sleep_until(next_start).await;
        next_start = tokio::time::Instant::now() + READ_INTERVAL;
        let started = Instant::now();
        match client.read_blob(blob_id).await {
            Ok(_) => series.seconds.push(started.elapsed().as_secs_f64()),
            Err(_) => series.failed += 1,
        }
    }
    series
}

/// A client that reads a fixed set of blobs.
pub(crate) struct Reader {
    client: Arc<Client>,
    blobs: Arc<[BlobId]>,
}

impl Reader {
    /// A reader of `blobs` through `client` (a client of its own, so that its node estimates
    /// are learned on the quiet cluster and carried into the rebuild).
    pub(crate) fn new(client: Client, blobs: Vec<BlobId>) -> anyhow::Result<Self> {
        anyhow::ensure!(!blobs.is_empty(), "no blobs to read");
        Ok(Self { client: Arc::new(client), blobs: blobs.into() })
    }

    /// Reads [`QUIET_READS`] times and answers their latencies.
    pub(crate) fn quiet(&self, runtime: &Runtime) -> ReadLatency {
        let cpu_before = crate::process_cpu_seconds();
        let series = read_series(self.client.clone(), self.blobs.clone(), QUIET_READS, Arc::default());
        let mut latency = runtime.block_on(series).latency();
        latency.cpu_seconds = cpu_used_since(cpu_before);
        latency
    }

    /// Starts reading in the background until [`Background::finish`].
    pub(crate) fn start(&self, runtime: &Runtime) -> Background {
        let stop = Arc::new(AtomicBool::new(false));
        let cpu_before = crate::process_cpu_seconds();
        let task =
            runtime.spawn(read_series(self.client.clone(), self.blobs.clone(), usize::MAX, stop.clone()));
        Background { stop, task, cpu_before }
    }
}

/// Reads going on in the background.
pub(crate) struct Background {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Series>,
    cpu_before: Option<f64>,
}

impl Background {
    /// Stops reading (after the read in flight) and answers the latencies.
    pub(crate) fn finish(self, runtime: &Runtime) -> anyhow::Result<ReadLatency> {
        self.stop.store(true, Ordering::Relaxed);
        let mut latency = runtime.block_on(self.task)?.latency();
        latency.cpu_seconds = cpu_used_since(self.cpu_before);
        Ok(latency)
    }
}

/// CPU seconds this process used since it had used `before`.
fn cpu_used_since(before: Option<f64>) -> Option<f64> {
    Some(crate::process_cpu_seconds()? - before?)
}

/// The blobs a reader reads: those of the smallest size of at least 1 MiB (the most common
/// blob of the mix), or all of them if there is none.
pub(crate) fn blobs_to_read(blobs: &[(BlobId, u64)]) -> Vec<BlobId> {
    let smallest_large = blobs.iter().map(|(_, size)| *size).filter(|size| *size >= 1 << 20).min();
    blobs
        .iter()
        .filter(|(_, size)| smallest_large.is_none_or(|smallest| *size == smallest))
        .map(|(blob_id, _)| *blob_id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_and_failures_are_not_timed() {
        let series = Series { seconds: (1..=200).rev().map(|ms| f64::from(ms) / 1e3).collect(), failed: 3 };
        let latency = series.latency();
        assert_eq!((latency.reads, latency.failed), (200, 3));
        assert!((latency.p50_ms - 100.0).abs() < 1e-6, "{latency:?}");
        assert!((latency.p99_ms - 198.0).abs() < 1e-6, "{latency:?}");
        assert!(Series::default().latency().p99_ms.is_nan());
    }

    #[test]
    fn the_reader_reads_the_smallest_blobs_of_at_least_a_mebibyte() {
        let id = |byte: u8| BlobId([byte; 32]);
        let blobs = [(id(1), 1 << 10), (id(2), 4 << 20), (id(3), 1 << 20), (id(4), 1 << 20)];
        assert_eq!(blobs_to_read(&blobs), vec![id(3), id(4)]);
        assert_eq!(blobs_to_read(&blobs[..1]), vec![id(1)]);
    }
}
