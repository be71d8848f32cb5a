//! Storing many files from one client at once: a bounded number in flight, and a bounded
//! number of their bytes, the results handed back in the order the files were given. What
//! `morsa store FILE...` and `morsa bench cluster`'s batch of small stores both run.
//!
//! The stores share the client: its committee and metadata caches, its one sender of
//! coordinator transactions (the commands of stores in flight together go in one
//! transaction), and the room for encodings that bounds the uploads going on after a blob
//! is certified ([`Client::finish_uploads`]).

use std::future::Future;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt as _};
use tokio::sync::Semaphore;

use crate::files::FileOutcome;
use crate::{Client, Error, StoreOptions};

/// Files stored at once by default: enough to keep both the encoder and the uploads busy
/// while other stores wait for their transactions to commit.
pub const DEFAULT_JOBS: usize = 8;

/// File bytes in flight together by default. A file is read whole (up to one chunk) before
/// it is encoded, and its encoding is about 4.5 times its size at n = 1000 (that part is
/// bounded on its own by the client's room for encodings), so this keeps a batch's memory
/// within a few hundred MiB; a larger file is stored alone.
pub const DEFAULT_BYTES_IN_FLIGHT: u64 = 64 << 20;

/// Weights are counted in KiB, so a semaphore's `u32` permits cover up to 4 TiB.
const WEIGHT_UNIT: u64 = 1 << 10;

/// How much may be in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// Items at once (at least 1).
    pub jobs: usize,
    /// Bytes of the items in flight together; an item larger than this runs alone.
    pub bytes: u64,
}

impl Default for InFlight {
    fn default() -> Self {
        Self { jobs: DEFAULT_JOBS, bytes: DEFAULT_BYTES_IN_FLIGHT }
    }
}

/// `work` applied to every item, at most `limits.jobs` at once and at most `limits.bytes` of
/// their `bytes` together, the outputs in the order of `items`. Admission is first come,
/// first served: a large item waits for the smaller ones before it and holds back those
/// after it.
pub fn in_order<'a, I, T, Fut>(
    items: Vec<I>,
    limits: InFlight,
    bytes: impl Fn(&I) -> u64 + 'a,
    work: impl Fn(I) -> Fut + 'a,
) -> impl Stream<Item = T> + 'a
where
    I: 'a,
    Fut: Future<Output = T> + 'a,
{
    let budget = u32::try_from(limits.bytes.div_ceil(WEIGHT_UNIT).max(1)).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(usize::try_from(budget).unwrap_or(usize::MAX)));
    futures_util::stream::iter(items)
        .map(move |item| {
            let units = u32::try_from(bytes(&item).div_ceil(WEIGHT_UNIT)).unwrap_or(u32::MAX);
            let needed = units.clamp(1, budget);
            let permits = Arc::clone(&permits);
            let work = work(item);
            async move {
                // The semaphore is never closed, so this always holds a permit.
                let _held = permits.acquire_many_owned(needed).await.ok();
                work.await
            }
        })
        .buffered(limits.jobs.max(1))
}

/// Something to store as one file.
pub enum Source {
    /// The file at this path.
    File(PathBuf),
    /// Everything a reader yields (standard input, a pipe), of unknown length: it is stored
    /// alone, as it may be of any size.
    Stream {
        /// The bytes.
        reader: Box<dyn Read + Send>,
        /// What errors call it.
        name: String,
    },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => f.debug_tuple("File").field(path).finish(),
            Source::Stream { name, .. } => {
                f.debug_struct("Stream").field("name", name).finish_non_exhaustive()
            }
        }
    }
}

/// What storing one of many files did.
#[derive(Debug)]
pub struct StoredFile {
    /// Its position among the sources given.
    pub index: usize,
    /// What was stored, or why not.
    pub outcome: Result<FileOutcome, Error>,
    /// From the start of its store (once admitted) to its end.
    pub elapsed: Duration,
}

impl Client {
    /// Stores every source, as [`Client::store_file`] and [`Client::store_reader`] do, at
    /// most `limits.jobs` at once and at most `limits.bytes` of files together (a stream
    /// weighs the whole budget), and yields each one's result in the order given. A source
    /// that fails does not stop the others. The uploads that go on after each blob is
    /// certified are left running: [`Client::finish_uploads`] waits for them.
    pub fn store_files<'a>(
        &'a self,
        sources: Vec<Source>,
        options: &'a StoreOptions,
        limits: InFlight,
    ) -> impl Stream<Item = StoredFile> + 'a {
        let items: Vec<(usize, Source)> = sources.into_iter().enumerate().collect();
        in_order(
            items,
            limits,
            move |(_, source)| bytes_of(source, limits),
            move |(index, source)| async move {
                let started = Instant::now();
                let outcome = match source {
                    Source::File(path) => self.store_file(&path, options).await,
                    Source::Stream { reader, name } => self.store_reader(reader, name, None, options).await,
                };
                StoredFile { index, outcome, elapsed: started.elapsed() }
            },
        )
    }
}

/// A source's weight in flight: a file's size (a file whose size cannot be read will fail at
/// once and weighs nothing), a stream's the whole budget.
fn bytes_of(source: &Source, limits: InFlight) -> u64 {
    match source {
        Source::File(path) => std::fs::metadata(path).map(|metadata| metadata.len()).unwrap_or(0),
        Source::Stream { .. } => limits.bytes,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    const KIB: u64 = 1 << 10;

    /// What was in flight at most, as the items saw it.
    #[derive(Default)]
    struct Peak {
        count: usize,
        bytes: u64,
        most_count: usize,
        most_bytes: u64,
    }

    /// Runs `in_order` over items given as byte sizes; each item's work yields a while, later
    /// items for fewer turns than earlier ones, so they finish out of order and all that may
    /// run together do. Returns the outputs and the peak in flight.
    fn run(sizes: Vec<u64>, limits: InFlight) -> (Vec<usize>, Peak) {
        let peak = Arc::new(Mutex::new(Peak::default()));
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let items: Vec<(usize, u64)> = sizes.into_iter().enumerate().collect();
        let outputs = runtime.block_on({
            let peak = Arc::clone(&peak);
            in_order(
                items,
                limits,
                |&(_, size)| size,
                move |(index, size)| {
                    let peak = Arc::clone(&peak);
                    async move {
                        {
                            let mut peak = peak.lock().unwrap();
                            peak.count += 1;
                            peak.bytes += size;
                            peak.most_count = peak.most_count.max(peak.count);
                            peak.most_bytes = peak.most_bytes.max(peak.bytes);
                        }
                        for _ in 0..(20 - index % 20) {
                            tokio::task::yield_now().await;
                        }
                        let mut peak = peak.lock().unwrap();
                        peak.count -= 1;
                        peak.bytes -= size;
                        index
                    }
                },
            )
            .collect::<Vec<_>>()
        });
        let peak = std::mem::take(&mut *peak.lock().unwrap());
        (outputs, peak)
    }

    #[test]
    fn small_items_run_jobs_at_once_and_come_back_in_order() {
        let (outputs, peak) = run(vec![64 * KIB; 40], InFlight { jobs: 8, bytes: 64 << 20 });
        assert_eq!(outputs, (0..40).collect::<Vec<_>>());
        assert_eq!(peak.most_count, 8, "eight small items should have been in flight together");
    }

    #[test]
    fn the_byte_budget_bounds_what_runs_together() {
        let (outputs, peak) = run(vec![20 << 20; 12], InFlight { jobs: 8, bytes: 64 << 20 });
        assert_eq!(outputs, (0..12).collect::<Vec<_>>());
        assert_eq!(peak.most_count, 3, "three items of 20 MiB fit in 64 MiB, a fourth does not");
        assert_eq!(peak.most_bytes, 60 << 20);
    }

    #[test]
    fn a_budget_that_is_not_a_whole_number_of_units_still_admits_what_fits() {
        // 3 items of 1000 bytes (1 KiB units each) in a 3000-byte budget (3 units).
        let (outputs, peak) = run(vec![1000; 6], InFlight { jobs: 8, bytes: 3000 });
        assert_eq!(outputs, (0..6).collect::<Vec<_>>());
        assert_eq!(peak.most_count, 3);
    }

    #[test]
    fn an_item_larger_than_the_budget_runs_alone() {
        let (outputs, peak) = run(vec![1 << 30, 1 << 30, 64 * KIB], InFlight { jobs: 8, bytes: 64 << 20 });
        assert_eq!(outputs, vec![0, 1, 2]);
        assert_eq!(peak.most_count, 1, "each gigabyte item held the whole budget");
    }

    #[test]
    fn one_job_runs_one_item_at_a_time() {
        let (outputs, peak) = run(vec![KIB; 10], InFlight { jobs: 1, bytes: 64 << 20 });
        assert_eq!(outputs, (0..10).collect::<Vec<_>>());
        assert_eq!(peak.most_count, 1);
    }
}
