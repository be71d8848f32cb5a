//! Store reads and codec work run on blocking threads, never on the async workers.
//!
//! A node's background work (rebuilding slivers it lacks, answering peers' recovery requests,
//! scrubbing, pulling and serving shard pages) runs on a [`Background`] pool of its own whose
//! threads run at a lower CPU priority (`[repair] background_nice`), so that when the CPU is
//! contended the node's reads and uploads (and other processes' work at normal priority) win,
//! and when it is idle the background work still takes all of it. The codec's parallel loops
//! run on the pool they are called from, so a rebuild's decode fans out on the pool's threads,
//! not on rayon's global pool (which serves the requests' codec work at normal priority).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::error::NodeError;

/// Runs `work` on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    tokio::task::spawn_blocking(work).await.map_err(|_| NodeError::WorkerFailed)?
}

/// The largest nice value (the lowest priority) Linux gives a thread.
pub(crate) const LOWEST_PRIORITY_NICE: u8 = 19;

/// Whether a request waits for some work, or it is the node's own background work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// A request waits for it (a read, an upload, a rebuild a read needs): a blocking thread
    /// at the process's priority.
    Serving,
    /// The node's background work: the [`Background`] pool.
    Background,
}

/// What the background pool has done, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BackgroundCounts {
    /// The nice value added to the pool's threads (0: the pool is off).
    pub nice: u8,
    /// Jobs run on the pool.
    pub jobs: u64,
    /// Microseconds jobs waited for one of the pool's threads, in all.
    pub waited_us: u64,
}

/// Jobs queued on or running in the background pool at once; more wait (asynchronously)
/// for a slot before they are queued. Its callers bound their own work too (repair
/// concurrency, the answer budget); this bounds the pool's queue whatever they do.
const MAX_JOBS: usize = 256;

/// The node's pool for background work: twice as many threads as cores (a job waiting for the
/// disk, e.g. a group commit, leaves no core idle), each of which raises its own nice value by
/// `nice` when it starts, and a queue of at most [`MAX_JOBS`]. It is built on first use; with
/// `nice` 0 there is none and the work runs on blocking threads like any other.
pub(crate) struct Background {
    nice: u8,
    /// A slot per job queued or running, held by the job until it ends.
    slots: Arc<tokio::sync::Semaphore>,
    pool: OnceLock<Option<rayon::ThreadPool>>,
    jobs: AtomicU64,
    /// Shared with the jobs, which add their wait when they start.
    waited_us: Arc<AtomicU64>,
}

impl Background {
    /// A pool whose threads run `nice` (at most [`LOWEST_PRIORITY_NICE`]) above the nice value
    /// of the thread that first uses it; 0 turns it off.
    pub(crate) fn new(nice: u8) -> Self {
        Self::with_slots(nice, MAX_JOBS)
    }

    fn with_slots(nice: u8, slots: usize) -> Self {
        Self {
            nice: nice.min(LOWEST_PRIORITY_NICE),
            slots: Arc::new(tokio::sync::Semaphore::new(slots.max(1))),
            pool: OnceLock::new(),
            jobs: AtomicU64::new(0),
            waited_us: Arc::default(),
        }
    }

    /// Runs background `work` on the pool (on a blocking thread when it is off).
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, NodeError> {
        let Some(pool) = self.pool() else { return blocking(work).await };
        // The semaphore is never closed.
        let slot = Arc::clone(&self.slots).acquire_owned().await.map_err(|_| NodeError::WorkerFailed)?;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let queued = Instant::now();
        self.jobs.fetch_add(1, Ordering::Relaxed);
        let waited_us = Arc::clone(&self.waited_us);
        pool.spawn(move || {
            let micros = u64::try_from(queued.elapsed().as_micros()).unwrap_or(u64::MAX);
            waited_us.fetch_add(micros, Ordering::Relaxed);
            // A panic becomes `WorkerFailed`, as on a blocking thread, and the pool lives on.
            let result =
                std::panic::catch_unwind(AssertUnwindSafe(work)).unwrap_or(Err(NodeError::WorkerFailed));
            // The slot is free before the answer is: whoever awaits the answer finds it given
            // back (after the answer, a caller could see its job done and the slot still held).
            drop(slot);
            let _ = answer.send(result);
        });
        answered.await.unwrap_or(Err(NodeError::WorkerFailed))
    }

    /// Runs `work` on the pool if `priority` is [`Priority::Background`], else on a blocking
    /// thread.
    pub(crate) async fn run_at<T: Send + 'static>(
        &self,
        priority: Priority,
        work: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, NodeError> {
        match priority {
            Priority::Serving => blocking(work).await,
            Priority::Background => self.run(work).await,
        }
    }

    /// What the pool has done.
    pub(crate) fn counts(&self) -> BackgroundCounts {
        BackgroundCounts {
            nice: self.nice,
            jobs: self.jobs.load(Ordering::Relaxed),
            waited_us: self.waited_us.load(Ordering::Relaxed),
        }
    }

    /// The pool, built on first use; `None` when off (or when it cannot be built: the work
    /// then runs at normal priority, which was logged).
    fn pool(&self) -> Option<&rayon::ThreadPool> {
        if self.nice == 0 {
            return None;
        }
        self.pool.get_or_init(|| build_pool(self.nice)).as_ref()
    }
}

fn build_pool(nice: u8) -> Option<rayon::ThreadPool> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(2 * cores)
        .thread_name(|index| format!("morsa-background-{index}"))
        .start_handler(move |_| lower_priority(nice))
        .build();
    match built {
        Ok(pool) => Some(pool),
        Err(error) => {
            tracing::warn!(%error, "cannot start the background pool: background work runs at normal priority");
            None
        }
    }
}

/// Raises the calling thread's nice value by `nice` (up to [`LOWEST_PRIORITY_NICE`]).
#[cfg(target_os = "linux")]
fn lower_priority(nice: u8) {
    use rustix::process::{getpriority_process, setpriority_process};
    let thread = Some(rustix::thread::gettid());
    let lowered = getpriority_process(thread).and_then(|current| {
        let target = (current + i32::from(nice)).min(i32::from(LOWEST_PRIORITY_NICE));
        setpriority_process(thread, target)
    });
    if let Err(error) = lowered {
        tracing::warn!(%error, "cannot lower a background thread's priority: it runs at normal priority");
    }
}

/// Thread priorities are only lowered on Linux.
#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: u8) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use rayon::prelude::*;

    use super::*;

    fn own_nice() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid()))
            .expect("a thread reads its own nice value")
    }

    fn expected(base: i32, nice: u8) -> i32 {
        (base + i32::from(nice)).min(i32::from(LOWEST_PRIORITY_NICE))
    }

    #[tokio::test]
    async fn background_work_and_its_parallel_loops_run_at_the_lowered_priority() {
        let base = own_nice();
        let background = Background::new(7);
        let (outer, inner) = background
            .run(|| {
                // What the codec does inside a rebuild: a parallel loop, which must stay on
                // the pool's threads, not go to rayon's global pool.
                let inner: Vec<(Option<usize>, i32)> =
                    (0..256).into_par_iter().map(|_| (rayon::current_thread_index(), own_nice())).collect();
                Ok((own_nice(), inner))
            })
            .await
            .unwrap();
        assert_eq!(outer, expected(base, 7));
        for (index, nice) in inner {
            assert!(index.is_some(), "a parallel loop ran outside the background pool");
            assert_eq!(nice, expected(base, 7));
        }
        assert_eq!(own_nice(), base, "the caller's own priority is unchanged");
        assert_eq!(background.counts().jobs, 1);
        assert_eq!(background.counts().nice, 7);
    }

    #[tokio::test]
    async fn serving_work_and_a_pool_turned_off_run_at_the_process_priority() {
        let base = own_nice();
        let background = Background::new(7);
        let serving = background.run_at(Priority::Serving, || Ok(own_nice())).await.unwrap();
        assert_eq!(serving, base);
        let lowered = background.run_at(Priority::Background, || Ok(own_nice())).await.unwrap();
        assert_eq!(lowered, expected(base, 7));
        let off = Background::new(0);
        assert_eq!(off.run(|| Ok(own_nice())).await.unwrap(), base);
        assert_eq!(off.counts(), BackgroundCounts::default());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_beyond_the_queue_bound_wait_for_a_slot() {
        use std::sync::atomic::AtomicUsize;
        // Two slots, on a pool of at least two threads per core: without the bound all four
        // jobs start at once.
        let background = Arc::new(Background::with_slots(5, 2));
        let running = Arc::new(AtomicUsize::new(0));
        let (started, mut starts) = tokio::sync::mpsc::unbounded_channel();
        let mut releases = Vec::new();
        let mut jobs = Vec::new();
        for _ in 0..4 {
            let (release, released) = std::sync::mpsc::channel::<()>();
            releases.push(release);
            let (background, running, started) =
                (Arc::clone(&background), Arc::clone(&running), started.clone());
            jobs.push(tokio::spawn(async move {
                background
                    .run(move || {
                        started.send(running.fetch_add(1, Ordering::SeqCst) + 1).unwrap();
                        released.recv().unwrap();
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
            }));
        }
        let mut at_start = vec![starts.recv().await.unwrap(), starts.recv().await.unwrap()];
        // Each job ends once released (at once if released before it starts).
        for release in releases {
            release.send(()).unwrap();
        }
        for job in jobs {
            job.await.unwrap().unwrap();
        }
        drop(started);
        while let Some(count) = starts.recv().await {
            at_start.push(count);
        }
        assert_eq!(at_start.len(), 4);
        assert!(at_start.iter().all(|&count| count <= 2), "jobs running at each start: {at_start:?}");
        assert_eq!(background.slots.available_permits(), 2, "every slot given back");
    }

    #[tokio::test]
    async fn the_nice_value_stops_at_the_lowest_priority() {
        let background = Background::new(200);
        assert_eq!(background.counts().nice, LOWEST_PRIORITY_NICE);
        let nice = background.run(|| Ok(own_nice())).await.unwrap();
        assert_eq!(nice, i32::from(LOWEST_PRIORITY_NICE));
    }

    #[tokio::test]
    async fn a_panic_is_a_failed_worker_and_the_pool_lives_on() {
        let background = Background::new(5);
        let failed: Result<(), NodeError> = background.run(|| panic!("a job panics")).await;
        assert!(matches!(failed, Err(NodeError::WorkerFailed)), "{failed:?}");
        assert_eq!(background.run(|| Ok(41 + 1)).await.unwrap(), 42);
    }
}
