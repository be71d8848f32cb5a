//! The uploads of blobs stored with [`Client::store_blob`] that go on after certification:
//! each blob's finish on a task of their own, so stores on one client run at once instead
//! of each waiting for the uploads of the ones before. What bounds them is room for
//! encodings: a store takes its blob's encoded size before encoding, and its trailing
//! uploads give it back when they end (after at most [`trailing_limit`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use redstuff::EncodingConfig;

use super::background::Background;
use crate::{Client, NodeFailure};

/// Encoded bytes that the stores of one client and their trailing uploads hold together; a
/// blob whose encoding is larger takes all of it (so it is stored alone, and the next store
/// waits for its trailing uploads, as chunks of a large file do).
const ROOM_FOR_ENCODINGS: u64 = 2 << 30;

/// Room is counted in KiB.
const ROOM_UNIT: u64 = 1 << 10;

/// How long a blob's uploads go on after it is certified: four times what its store took
/// until then, at least 5 s and at most 2 minutes. The nodes left without their slivers then
/// rebuild them themselves. Healthy nodes outside the first quorum take about as long as those
/// in it; a hung node (one that takes connections and answers nothing) would otherwise hold
/// the blob's encoding, and with it the next chunk of a large file, for minutes.
pub(crate) fn trailing_limit(certified_after: Duration) -> Duration {
    (certified_after * STRAGGLER_FACTOR).clamp(MIN_TRAILING, MAX_TRAILING)
}

const STRAGGLER_FACTOR: u32 = 4;
const MIN_TRAILING: Duration = Duration::from_secs(5);
const MAX_TRAILING: Duration = Duration::from_secs(120);

/// The trailing uploads of one client's stores, and the room their encodings take.
pub(crate) struct Trailing {
    room: Arc<Semaphore>,
    /// One task per blob whose uploads go on (those that ended are dropped as others come).
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Sent by [`Client::finish_uploads`] when it stops waiting (how long it waited): the
    /// uploads still running then are stopped.
    cut: watch::Sender<Duration>,
    /// Nodes whose trailing uploads failed or were stopped, until `finish_uploads` reports
    /// them (shared with [`super::DetachedUploads`]).
    pub(crate) late_failures: Arc<Mutex<Vec<NodeFailure>>>,
}

impl Default for Trailing {
    fn default() -> Self {
        let units = usize::try_from(ROOM_FOR_ENCODINGS / ROOM_UNIT).unwrap_or(usize::MAX);
        Self {
            room: Arc::new(Semaphore::new(units)),
            tasks: Mutex::default(),
            cut: watch::Sender::new(Duration::ZERO),
            late_failures: Arc::default(),
        }
    }
}

impl Trailing {
    /// Waits until there is room for the encoding of a blob of `size` bytes (all the room if
    /// it is larger) and takes it.
    pub(super) async fn room_for(&self, encoding: EncodingConfig, size: u64) -> OwnedSemaphorePermit {
        let all = ROOM_FOR_ENCODINGS / ROOM_UNIT;
        let units = encoding_bytes(encoding, size).div_ceil(ROOM_UNIT).clamp(1, all);
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        // The semaphore is never closed, and no store asks for more than it holds.
        loop {
            if let Ok(permit) = Arc::clone(&self.room).acquire_many_owned(units).await {
                return permit;
            }
        }
    }

    /// Lets `background` finish on a task of its own, for at most `limit`, holding `room`
    /// until it ends.
    pub(super) fn keep(&self, background: Background, limit: Duration, room: OwnedSemaphorePermit) {
        if background.uploads.is_empty() {
            return;
        }
        self.keep_settling(room, move |stop| {
            let deadline = tokio::time::Instant::now() + limit;
            background.settle(deadline, limit, stop)
        });
    }

    /// Runs `settle` (given the signal [`Trailing::settle`] sends when it stops waiting) on a
    /// task of its own, holding `room` until it ends, and keeps the nodes it answers.
    fn keep_settling<S, F>(&self, room: OwnedSemaphorePermit, settle: S)
    where
        S: FnOnce(Stop) -> F,
        F: Future<Output = Vec<NodeFailure>> + Send + 'static,
    {
        let late_failures = Arc::clone(&self.late_failures);
        // Subscribed under the lock that `settle` sends the cut under: a task is either taken
        // by that `settle` and sees its cut, or kept after it and does not.
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let mut cut = self.cut.subscribe();
        let stop: Stop = Box::pin(async move {
            match cut.changed().await {
                Ok(()) => *cut.borrow(),
                // The client is gone: nobody stops these uploads but their deadline.
                Err(_) => std::future::pending().await,
            }
        });
        let settling = settle(stop);
        tasks.retain(|task| !task.is_finished());
        tasks.push(tokio::spawn(async move {
            let failures = settling.await;
            late_failures.lock().unwrap_or_else(PoisonError::into_inner).extend(failures);
            drop(room);
        }));
    }

    /// Waits up to `timeout` for the trailing uploads running now and for those of stores that
    /// end meanwhile, then stops those left and waits for them to stop.
    async fn settle(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut waiting = FuturesUnordered::new();
        loop {
            waiting.extend(self.take_tasks());
            if waiting.is_empty() {
                return;
            }
            if tokio::time::timeout_at(deadline, waiting.next()).await.is_err() {
                break;
            }
        }
        {
            let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
            self.cut.send_replace(timeout);
            waiting.extend(tasks.drain(..));
        }
        while waiting.next().await.is_some() {}
    }

    /// The tasks kept so far, taken out.
    fn take_tasks(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// What [`Trailing::settle`] sends a kept task when it stops waiting: how long it waited.
type Stop = Pin<Box<dyn Future<Output = Duration> + Send>>;

/// Bytes the encoding of a blob of `size` bytes holds: every sliver pair and the metadata
/// once (`u64::MAX` for a blob too large to encode).
fn encoding_bytes(encoding: EncodingConfig, size: u64) -> u64 {
    let Ok(symbol_size) = encoding.symbol_size(size) else { return u64::MAX };
    let n = morsa_core::convert::saturating_u64(encoding.n_shards());
    let pair = morsa_core::convert::saturating_u64(encoding.kp() + encoding.ks()) * u64::from(symbol_size);
    n.saturating_mul(pair).saturating_add(64 * n + 32)
}

impl Client {
    /// Waits up to `timeout` for the uploads that were still running when their blobs were
    /// certified, and stops those still running then; answers the nodes that failed or had
    /// not finished (the nodes rebuild what they lack themselves), also those of
    /// [`super::DetachedUploads`] finished before and of uploads that ran out of time on
    /// their own (each blob's go on for at most four times what its store took until
    /// certified, 5 s to 2 minutes). Call it before the process exits, so that every node gets
    /// its slivers without needing repair.
    pub async fn finish_uploads(&self, timeout: Duration) -> Vec<NodeFailure> {
        self.trailing.settle(timeout).await;
        std::mem::take(&mut *self.trailing.late_failures.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    fn config() -> EncodingConfig {
        EncodingConfig::new(1000).unwrap()
    }

    #[test]
    fn trailing_uploads_get_four_times_the_store_within_bounds() {
        assert_eq!(trailing_limit(Duration::from_millis(300)), MIN_TRAILING);
        assert_eq!(trailing_limit(Duration::from_secs(3)), Duration::from_secs(12));
        assert_eq!(trailing_limit(Duration::from_secs(600)), MAX_TRAILING);
    }

    #[test]
    fn an_encoding_counts_its_slivers_and_one_copy_of_the_metadata() {
        // n = 1000: kp + ks = 1001 symbols of 2 bytes per pair, 64 KB of metadata once.
        assert_eq!(encoding_bytes(config(), 1024), 1000 * 1001 * 2 + 64 * 1000 + 32);
        assert_eq!(encoding_bytes(config(), u64::MAX), u64::MAX);
    }

    /// Keeps, on `trailing`, a blob's trailing uploads to node `node` that end after `time`, or
    /// when stopped (then the node is answered as stopped); answers a flag set when they end
    /// on their own.
    async fn keep_uploads(trailing: &Trailing, time: Duration, node: &'static str) -> Arc<AtomicBool> {
        let ended = Arc::new(AtomicBool::new(false));
        let room = trailing.room_for(config(), 1024).await;
        let flag = Arc::clone(&ended);
        trailing.keep_settling(room, move |stop| async move {
            tokio::select! {
                () = tokio::time::sleep(time) => {
                    flag.store(true, Ordering::SeqCst);
                    Vec::new()
                }
                waited = stop => vec![NodeFailure {
                    node: node.into(),
                    shards: 1,
                    reason: format!("still uploading after {waited:?}; stopped"),
                }],
            }
        });
        ended
    }

    /// Starts `Trailing::settle` on a task of its own and returns once it has taken the tasks
    /// kept so far (the list is empty then).
    async fn settling(trailing: &Arc<Trailing>, timeout: Duration) -> tokio::task::JoinHandle<()> {
        let settle = tokio::spawn({
            let trailing = Arc::clone(trailing);
            async move { trailing.settle(timeout).await }
        });
        for _ in 0..1000 {
            if trailing.tasks.lock().unwrap().is_empty() {
                return settle;
            }
            tokio::task::yield_now().await;
        }
        panic!("settle never took the kept tasks");
    }

    #[tokio::test]
    async fn finishing_waits_for_the_uploads_of_stores_that_end_while_it_waits() {
        let trailing = Arc::new(Trailing::default());
        let first = keep_uploads(&trailing, Duration::from_millis(10), "a").await;
        let started = tokio::time::Instant::now();
        let settle = settling(&trailing, Duration::from_secs(10)).await;
        // A store that ends while `settle` waits keeps its uploads, which take longer.
        let second = keep_uploads(&trailing, Duration::from_millis(300), "b").await;
        settle.await.unwrap();
        let waited = started.elapsed();
        assert!(second.load(Ordering::SeqCst), "the later store's uploads ended first");
        assert!(waited >= Duration::from_millis(300), "finishing waited {waited:?}");
        assert!(first.load(Ordering::SeqCst));
        assert!(trailing.late_failures.lock().unwrap().is_empty(), "nothing was stopped");
    }

    #[tokio::test]
    async fn uploads_of_stores_that_end_while_finishing_waits_are_stopped_at_its_deadline_and_reported() {
        let trailing = Arc::new(Trailing::default());
        keep_uploads(&trailing, Duration::from_millis(10), "a").await;
        let started = tokio::time::Instant::now();
        let settle = settling(&trailing, Duration::from_millis(300)).await;
        let second = keep_uploads(&trailing, Duration::from_secs(60), "b").await;
        settle.await.unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(60),
            "waited {waited:?}"
        );
        assert!(!second.load(Ordering::SeqCst));
        let failures = trailing.late_failures.lock().unwrap().clone();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].node, "b");
        assert!(failures[0].reason.contains("stopped"), "{}", failures[0].reason);
        // A store kept after `settle` ended is not stopped by its cut.
        let third = keep_uploads(&trailing, Duration::from_millis(10), "c").await;
        let settle = settling(&trailing, Duration::from_secs(10)).await;
        settle.await.unwrap();
        assert!(third.load(Ordering::SeqCst), "its uploads ended on their own");
    }

    #[tokio::test]
    async fn small_encodings_share_the_room_and_a_large_one_waits_for_all_of_it() {
        let trailing = Trailing::default();
        let small: Vec<_> =
            futures_util::future::join_all((0..100).map(|_| trailing.room_for(config(), 64 << 10))).await;
        assert_eq!(small.len(), 100, "a hundred 64 KiB blobs' encodings fit together");
        let large = trailing.room_for(config(), 1 << 30);
        tokio::pin!(large);
        assert!(
            tokio::time::timeout(Duration::ZERO, &mut large).await.is_err(),
            "a 1 GiB blob's encoding takes all the room: it waits for the small ones"
        );
        drop(small);
        let large =
            tokio::time::timeout(Duration::from_secs(10), large).await.expect("room once the others end");
        assert_eq!(trailing.room.available_permits(), 0, "it holds all the room");
        drop(large);
        assert_eq!(
            trailing.room.available_permits(),
            usize::try_from(ROOM_FOR_ENCODINGS / ROOM_UNIT).unwrap()
        );
    }
}
