//! Group commit of verified slivers.
//!
//! An upload verifies its sliver on a blocking thread, hands it to the one committer thread
//! ([`GroupCommitter::submit`]) and waits. The committer writes everything that has queued in
//! one [`NodeStore::put_slivers`](morsa_store::NodeStore::put_slivers) transaction (one fsync
//! for the whole group) and only then answers every upload of the group: an upload is
//! acknowledged only after the commit that holds its sliver returned `Ok`, and a failed commit
//! fails exactly the uploads of that group. Slivers that arrive together cost one fsync, not one
//! each.
//!
//! The committer never waits for more work: on an empty queue the first sliver commits at once,
//! and the slivers that arrive during a commit form the next group. Everything is bounded: at
//! most [`IngestLimits::max_queued_slivers`] slivers and [`IngestLimits::max_queued_bytes`]
//! bytes are waiting for or in a commit (a submitter blocks until there is room), and a group
//! holds at most [`IngestLimits::max_group_slivers`] slivers and
//! [`IngestLimits::max_group_bytes`] bytes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use morsa_store::{SliverKind, SliverWrite, StoreError};

/// Bounds of a [`GroupCommitter`]. A zero is read as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestLimits {
    /// Slivers waiting for or in a commit; more submitters block.
    pub max_queued_slivers: usize,
    /// Bytes of slivers waiting for or in a commit; more submitters block. A single sliver
    /// larger than this is still taken, alone.
    pub max_queued_bytes: usize,
    /// Slivers in one commit.
    pub max_group_slivers: usize,
    /// Bytes in one commit; a single sliver larger than this commits alone.
    pub max_group_bytes: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_queued_slivers: 256,
            max_queued_bytes: 256 << 20,
            max_group_slivers: 64,
            max_group_bytes: 64 << 20,
        }
    }
}

/// A verified sliver to store: what a [`SliverWrite`] names, owning its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct QueuedSliver {
    /// The blob the sliver belongs to.
    pub blob_id: [u8; 32],
    /// The shard the sliver belongs to.
    pub shard: u16,
    /// Which sliver of the shard's pair.
    pub kind: SliverKind,
    /// The sliver's BCS bytes.
    pub bytes: axum::body::Bytes,
}

impl QueuedSliver {
    fn as_write(&self) -> SliverWrite<'_> {
        SliverWrite { blob_id: self.blob_id, shard: self.shard, kind: self.kind, bytes: &self.bytes }
    }
}

impl std::fmt::Debug for QueuedSliver {
    /// Shows the length of the bytes, not the bytes.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.as_write(), formatter)
    }
}

/// Why a sliver was not acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// The commit of the sliver's group failed; every sliver of the group gets this error. The
    /// sliver may or may not be stored (see `NodeStore`): upload it again.
    #[error("committing a group of {slivers} slivers failed: {source}")]
    Commit {
        /// Slivers in the failed group.
        slivers: usize,
        /// What the store reported.
        #[source]
        source: Arc<StoreError>,
    },
    /// The committer thread has stopped (it panicked, or the node is shutting down).
    #[error("the sliver committer has stopped; restart the node")]
    Stopped,
    /// The committer thread could not be started.
    #[error("cannot start the sliver committer thread: {0}")]
    Start(#[source] Arc<std::io::Error>),
}

/// What a [`GroupCommitter`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Commits (`put_slivers` calls), failed ones included.
    pub commits: u64,
    /// Commits that failed.
    pub failed_commits: u64,
    /// Slivers in successful commits.
    pub slivers: u64,
    /// Bytes of those slivers.
    pub bytes: u64,
    /// Slivers in the largest group so far.
    pub largest_group: usize,
    /// Time spent inside commits (writing and fsyncing), all commits together.
    pub commit_time: Duration,
    /// Slivers waiting for or in a commit right now.
    pub in_flight: usize,
}

/// The store operation a committer calls with each group.
type Commit = Box<dyn FnMut(&[SliverWrite<'_>]) -> Result<(), StoreError> + Send>;

/// One sliver and where to send its answer.
struct Job {
    sliver: QueuedSliver,
    reply: SyncSender<Result<(), IngestError>>,
}

/// Commits slivers from many threads in groups, on one thread of its own. Dropping it lets the
/// thread finish what was queued and joins it.
pub struct GroupCommitter {
    /// `None` only while dropping.
    queue: Option<SyncSender<Job>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for GroupCommitter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("GroupCommitter").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl GroupCommitter {
    /// Starts the committer thread; it passes each group to `commit`, which must store all of it
    /// durably or fail (as [`NodeStore::put_slivers`](morsa_store::NodeStore::put_slivers) does).
    pub fn spawn(
        limits: IngestLimits,
        commit: impl FnMut(&[SliverWrite<'_>]) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<Self, IngestError> {
        let limits = IngestLimits {
            max_queued_slivers: limits.max_queued_slivers.max(1),
            max_queued_bytes: limits.max_queued_bytes.max(1),
            max_group_slivers: limits.max_group_slivers.max(1),
            max_group_bytes: limits.max_group_bytes.max(1),
        };
        // The budget admits at most `max_queued_slivers`, so sending never blocks for long.
        let (queue, jobs) = mpsc::sync_channel(limits.max_queued_slivers);
        let shared = Arc::new(Shared::new(limits));
        let thread_shared = Arc::clone(&shared);
        let commit: Commit = Box::new(commit);
        let thread = std::thread::Builder::new()
            .name("sliver-committer".into())
            .spawn(move || run(&jobs, &thread_shared, commit))
            .map_err(|error| IngestError::Start(Arc::new(error)))?;
        Ok(Self { queue: Some(queue), shared, thread: Some(thread) })
    }

    /// Queues `sliver` for the next group and blocks until the commit that holds it has
    /// returned. Blocks first while the queue is full. Call it from a blocking thread.
    ///
    /// # Errors
    ///
    /// [`IngestError::Commit`] if that commit failed, [`IngestError::Stopped`] if the committer
    /// has stopped.
    pub fn submit(&self, sliver: QueuedSliver) -> Result<(), IngestError> {
        self.enqueue(sliver).and_then(|answer| Self::wait(&answer))
    }

    /// Queues all of `slivers`, then blocks until the commits that hold them have returned:
    /// [`GroupCommitter::submit`] for many slivers from one thread, so that they share commits
    /// instead of waiting for one each. One answer per sliver, in order.
    pub fn submit_all(&self, slivers: Vec<QueuedSliver>) -> Vec<Result<(), IngestError>> {
        let answers: Vec<_> = slivers.into_iter().map(|sliver| self.enqueue(sliver)).collect();
        answers.into_iter().map(|answer| answer.and_then(|answer| Self::wait(&answer))).collect()
    }

    /// Queues `sliver` (blocking while the queue is full) and returns where its answer comes.
    fn enqueue(&self, sliver: QueuedSliver) -> Result<Receiver<Result<(), IngestError>>, IngestError> {
        let len = sliver.bytes.len();
        self.shared.admit(len)?;
        let (reply, answer) = mpsc::sync_channel(1);
        let queue = self.queue.as_ref().expect("the queue is only taken while dropping");
        if queue.send(Job { sliver, reply }).is_err() {
            self.shared.release(1, len);
            return Err(IngestError::Stopped);
        }
        Ok(answer)
    }

    /// The answer of a queued sliver; a dropped reply means the committer died with the job.
    fn wait(answer: &Receiver<Result<(), IngestError>>) -> Result<(), IngestError> {
        answer.recv().unwrap_or(Err(IngestError::Stopped))
    }

    /// Commits and slivers so far.
    pub fn stats(&self) -> IngestStats {
        let stats = &self.shared.stats;
        IngestStats {
            commits: stats.commits.load(Ordering::Relaxed),
            failed_commits: stats.failed_commits.load(Ordering::Relaxed),
            slivers: stats.slivers.load(Ordering::Relaxed),
            bytes: stats.bytes.load(Ordering::Relaxed),
            largest_group: stats.largest_group.load(Ordering::Relaxed),
            commit_time: Duration::from_nanos(stats.commit_nanos.load(Ordering::Relaxed)),
            in_flight: self.shared.lock().slivers,
        }
    }
}

impl Drop for GroupCommitter {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has committed what is queued.
        drop(self.queue.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the sliver committer thread panicked");
        }
    }
}

/// What submitters and the committer thread share: the queue's budget and the counters.
struct Shared {
    limits: IngestLimits,
    budget: Mutex<Budget>,
    room: Condvar,
    stats: Counters,
}

/// Slivers and bytes admitted and not yet committed.
#[derive(Default)]
struct Budget {
    slivers: usize,
    bytes: usize,
    /// Set when the committer thread ends: nothing is admitted any more.
    closed: bool,
    /// Submitters waiting for room right now (lets tests wait for a submitter to be blocked).
    waiting: usize,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    failed_commits: AtomicU64,
    slivers: AtomicU64,
    bytes: AtomicU64,
    largest_group: AtomicUsize,
    commit_nanos: AtomicU64,
}

impl Shared {
    fn new(limits: IngestLimits) -> Self {
        Self { limits, budget: Mutex::default(), room: Condvar::new(), stats: Counters::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Budget> {
        self.budget.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until a sliver of `len` bytes fits in the queue, and counts it in.
    fn admit(&self, len: usize) -> Result<(), IngestError> {
        let mut budget = self.lock();
        loop {
            if budget.closed {
                return Err(IngestError::Stopped);
            }
            let fits = budget.slivers == 0
                || (budget.slivers < self.limits.max_queued_slivers
                    && budget.bytes.saturating_add(len) <= self.limits.max_queued_bytes);
            if fits {
                budget.slivers += 1;
                budget.bytes = budget.bytes.saturating_add(len);
                return Ok(());
            }
            budget.waiting += 1;
            budget = self.room.wait(budget).unwrap_or_else(PoisonError::into_inner);
            budget.waiting -= 1;
        }
    }

    /// Counts `slivers` of `bytes` out, and wakes the submitters waiting for room.
    fn release(&self, slivers: usize, bytes: usize) {
        let mut budget = self.lock();
        budget.slivers = budget.slivers.saturating_sub(slivers);
        budget.bytes = budget.bytes.saturating_sub(bytes);
        drop(budget);
        self.room.notify_all();
    }

    fn record(&self, slivers: usize, bytes: usize, ok: bool, took: Duration) {
        let stats = &self.stats;
        stats.commits.fetch_add(1, Ordering::Relaxed);
        let nanos = morsa_core::convert::saturating_u64_from_u128(took.as_nanos());
        stats.commit_nanos.fetch_add(nanos, Ordering::Relaxed);
        if ok {
            stats.slivers.fetch_add(to_u64(slivers), Ordering::Relaxed);
            stats.bytes.fetch_add(to_u64(bytes), Ordering::Relaxed);
        } else {
            stats.failed_commits.fetch_add(1, Ordering::Relaxed);
        }
        stats.largest_group.fetch_max(slivers, Ordering::Relaxed);
    }
}

/// Closes the budget when the committer thread ends, even by a panic, so no submitter waits
/// for room that will never come.
struct CloseOnExit<'a>(&'a Shared);

impl Drop for CloseOnExit<'_> {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.room.notify_all();
    }
}

/// The committer thread: takes a group, commits it, answers it; until the queue is closed.
fn run(jobs: &Receiver<Job>, shared: &Shared, mut commit: Commit) {
    let _close = CloseOnExit(shared);
    let limits = shared.limits;
    // A job that did not fit in the last group's bytes: it opens the next one.
    let mut carried: Option<Job> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(mpsc::RecvError) => return,
            },
        };
        let mut bytes = first.sliver.bytes.len();
        let mut group = vec![first];
        while group.len() < limits.max_group_slivers {
            let Ok(job) = jobs.try_recv() else { break };
            let len = job.sliver.bytes.len();
            if bytes.saturating_add(len) > limits.max_group_bytes {
                carried = Some(job);
                break;
            }
            bytes += len;
            group.push(job);
        }

        let writes: Vec<SliverWrite<'_>> = group.iter().map(|job| job.sliver.as_write()).collect();
        let started = Instant::now();
        let result = commit(&writes);
        let took = started.elapsed();
        drop(writes);
        let slivers = group.len();
        shared.record(slivers, bytes, result.is_ok(), took);
        // Free the bytes before making room for more.
        let replies: Vec<_> = group.into_iter().map(|job| job.reply).collect();
        shared.release(slivers, bytes);
        let answer = result.map_err(|source| {
            tracing::error!(slivers, error = %source, "committing a group of slivers failed");
            IngestError::Commit { slivers, source: Arc::new(source) }
        });
        for reply in replies {
            // The capacity-1 reply channel never blocks; a submitter that is gone needs no answer.
            let _ = reply.send(answer.clone());
        }
    }
}

fn to_u64(value: usize) -> u64 {
    u64::try_from(value).expect("a usize fits in a u64 on every platform Rust supports")
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use morsa_store::NodeStore;

    use super::*;

    fn sliver(shard: u16, kind: SliverKind, len: usize) -> QueuedSliver {
        let fill = u8::try_from(shard % 251).unwrap();
        QueuedSliver { blob_id: [7; 32], shard, kind, bytes: vec![fill; len].into() }
    }

    /// Waits until `done` holds, failing the test after ten seconds.
    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A commit function whose first call blocks until `gate` receives, and that records the
    /// shards of every group; with `fail_second` the second commit fails.
    struct Gated {
        started: mpsc::Receiver<()>,
        gate: mpsc::SyncSender<()>,
        groups: Arc<Mutex<Vec<Vec<u16>>>>,
        committer: GroupCommitter,
    }

    fn gated(limits: IngestLimits, fail_second: bool) -> Gated {
        let (started_tx, started) = mpsc::sync_channel(1);
        let (gate, gate_rx) = mpsc::sync_channel::<()>(1);
        let groups = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&groups);
        let committer = GroupCommitter::spawn(limits, move |writes| {
            let call = {
                let mut groups = recorded.lock().unwrap();
                groups.push(writes.iter().map(|write| write.shard).collect());
                groups.len()
            };
            if call == 1 {
                started_tx.send(()).unwrap();
                gate_rx.recv().unwrap();
            }
            if fail_second && call == 2 {
                return Err(StoreError::CorruptShardStats { shard: 99 });
            }
            Ok(())
        })
        .unwrap();
        Gated { started, gate, groups, committer }
    }

    #[test]
    fn concurrent_uploads_are_all_stored_in_fewer_commits_than_slivers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(NodeStore::open(&dir.path().join("node.redb")).unwrap());
        let committing = Arc::clone(&store);
        let committer = GroupCommitter::spawn(IngestLimits::default(), move |writes| {
            committing.put_slivers(writes)?;
            // A slow disk: the slivers submitted meanwhile must end up in one group.
            std::thread::sleep(Duration::from_millis(2));
            Ok(())
        })
        .unwrap();

        const THREADS: u16 = 8;
        const PER_THREAD: u16 = 12;
        let start = Barrier::new(usize::from(THREADS));
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let (committer, start, store) = (&committer, &start, &store);
                scope.spawn(move || {
                    start.wait();
                    for index in 0..PER_THREAD {
                        let shard = thread * PER_THREAD + index;
                        committer.submit(sliver(shard, SliverKind::Primary, 4096)).unwrap();
                        // Acknowledged means stored.
                        assert!(store.has_sliver(&[7; 32], shard, SliverKind::Primary).unwrap());
                    }
                });
            }
        });

        let total = THREADS * PER_THREAD;
        for shard in 0..total {
            let stored = store.get_sliver(&[7; 32], shard, SliverKind::Primary).unwrap();
            assert_eq!(
                stored,
                Some(sliver(shard, SliverKind::Primary, 4096).bytes.to_vec()),
                "shard {shard}"
            );
        }
        let stats = committer.stats();
        assert_eq!(
            (stats.slivers, stats.bytes, stats.failed_commits),
            (u64::from(total), 4096 * u64::from(total), 0)
        );
        assert!(stats.commits < u64::from(total), "{} commits for {total} slivers", stats.commits);
        assert!(stats.largest_group > 1);
        assert_eq!(stats.in_flight, 0);
    }

    #[test]
    fn a_failed_commit_fails_exactly_its_group() {
        let Gated { started, gate, groups, committer } = gated(IngestLimits::default(), true);
        std::thread::scope(|scope| {
            let committer = &committer;
            let first = scope.spawn(move || committer.submit(sliver(0, SliverKind::Primary, 10)));
            started.recv().unwrap();
            // Commit 1 (shard 0) is under way: these three queue up and form commit 2.
            let second: Vec<_> = (1..4)
                .map(|shard| scope.spawn(move || committer.submit(sliver(shard, SliverKind::Secondary, 10))))
                .collect();
            wait_for("three queued slivers", || committer.stats().in_flight == 4);
            gate.send(()).unwrap();

            assert!(first.join().unwrap().is_ok());
            for upload in second {
                match upload.join().unwrap() {
                    Err(IngestError::Commit { slivers: 3, source }) => {
                        assert!(matches!(*source, StoreError::CorruptShardStats { shard: 99 }));
                    }
                    other => panic!("expected the group's commit error, got {other:?}"),
                }
            }
        });
        // The committer goes on: the next group commits.
        committer.submit(sliver(4, SliverKind::Primary, 10)).unwrap();
        let groups = groups.lock().unwrap().clone();
        let mut failed = groups[1].clone();
        failed.sort_unstable();
        assert_eq!((groups[0].clone(), failed, groups[2].clone()), (vec![0], vec![1, 2, 3], vec![4]));
        let stats = committer.stats();
        assert_eq!((stats.commits, stats.failed_commits, stats.slivers), (3, 1, 2));
    }

    #[test]
    fn groups_are_capped_and_the_first_sliver_does_not_wait() {
        let limits = IngestLimits { max_group_slivers: 2, ..IngestLimits::default() };
        let Gated { started, gate, groups, committer } = gated(limits, false);
        std::thread::scope(|scope| {
            let committer = &committer;
            scope.spawn(move || committer.submit(sliver(0, SliverKind::Primary, 10)).unwrap());
            // The first sliver is committed alone, at once: nothing waits for company.
            started.recv().unwrap();
            for shard in 1..6 {
                scope.spawn(move || committer.submit(sliver(shard, SliverKind::Primary, 10)).unwrap());
            }
            wait_for("five queued slivers", || committer.stats().in_flight == 6);
            gate.send(()).unwrap();
        });
        let sizes: Vec<usize> = groups.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 2, 2, 1]);
    }

    #[test]
    fn groups_are_capped_in_bytes() {
        let limits = IngestLimits { max_group_bytes: 25, ..IngestLimits::default() };
        let Gated { started, gate, groups, committer } = gated(limits, false);
        std::thread::scope(|scope| {
            let committer = &committer;
            scope.spawn(move || committer.submit(sliver(0, SliverKind::Primary, 10)).unwrap());
            started.recv().unwrap();
            for shard in 1..5 {
                scope.spawn(move || committer.submit(sliver(shard, SliverKind::Primary, 10)).unwrap());
            }
            wait_for("four queued slivers", || committer.stats().in_flight == 5);
            gate.send(()).unwrap();
        });
        let sizes: Vec<usize> = groups.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 2, 2]);
    }

    #[test]
    fn slivers_submitted_together_from_one_thread_share_commits() {
        let Gated { started, gate, groups, committer } = gated(IngestLimits::default(), true);
        std::thread::scope(|scope| {
            let committer = &committer;
            let all = scope.spawn(move || {
                committer.submit_all((0..10).map(|shard| sliver(shard, SliverKind::Primary, 10)).collect())
            });
            // The first sliver commits alone and is held there; the nine others must be queued
            // meanwhile by the same thread, not wait for that commit one by one.
            started.recv().unwrap();
            wait_for("nine queued slivers", || committer.stats().in_flight == 10);
            gate.send(()).unwrap();
            let answers = all.join().unwrap();
            // At most two commits: the first group (held at the gate), and everything queued
            // meanwhile. The second fails (the harness's `fail_second`): exactly its slivers fail.
            let sizes: Vec<usize> = groups.lock().unwrap().iter().map(Vec::len).collect();
            assert!(sizes.len() <= 2 && sizes.iter().sum::<usize>() == 10, "groups {sizes:?}");
            let failed: Vec<bool> = answers.iter().map(Result::is_err).collect();
            let expected: Vec<bool> = (0..10).map(|position| position >= sizes[0]).collect();
            assert_eq!(failed, expected, "groups {sizes:?}");
        });
    }

    #[test]
    fn a_full_queue_blocks_submitters_until_a_commit_makes_room() {
        let limits = IngestLimits { max_queued_bytes: 15, ..IngestLimits::default() };
        let Gated { started, gate, groups, committer } = gated(limits, false);
        std::thread::scope(|scope| {
            let committer = &committer;
            scope.spawn(move || committer.submit(sliver(0, SliverKind::Primary, 10)).unwrap());
            started.recv().unwrap();
            let blocked = scope.spawn(move || committer.submit(sliver(1, SliverKind::Primary, 10)));
            // 10 + 10 bytes do not fit in 15: the second submitter waits for room, not admitted.
            let deadline = Instant::now() + Duration::from_secs(10);
            while committer.shared.lock().waiting == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            let waiting = committer.shared.lock().waiting;
            let (in_flight, finished) = (committer.stats().in_flight, blocked.is_finished());
            gate.send(()).unwrap(); // before asserting, so that a failure cannot hang the scope
            assert_eq!((waiting, in_flight, finished), (1, 1, false), "the second submitter waits");
            assert!(blocked.join().unwrap().is_ok());
        });
        assert_eq!(committer.shared.lock().waiting, 0);
        assert_eq!(groups.lock().unwrap().len(), 2);
        // A sliver larger than the whole queue still goes through, alone.
        committer.submit(sliver(2, SliverKind::Primary, 100)).unwrap();
        assert_eq!(committer.stats().slivers, 3);
    }

    #[test]
    fn a_panicking_commit_stops_the_committer_without_hanging_anyone() {
        let committer = GroupCommitter::spawn(IngestLimits::default(), |_| panic!("disk on fire")).unwrap();
        assert!(matches!(committer.submit(sliver(0, SliverKind::Primary, 1)), Err(IngestError::Stopped)));
        assert!(matches!(committer.submit(sliver(1, SliverKind::Primary, 1)), Err(IngestError::Stopped)));
    }
}
