//! The uploads of blobs stored with [`Client::store_blob`] that go on after certification:
//! each blob's finish on a task of their own, so stores on one client run at once instead
//! of each waiting for the uploads of the ones before. What bounds them is room for
//! encodings: a store takes its blob's encoded size before encoding, and its trailing
//! uploads give it back when they end (after at most [`TRAILING_UPLOADS_LIMIT`]).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use redstuff::EncodingConfig;

use super::background::Background;
use crate::{Client, NodeFailure};

/// Encoded bytes that the stores of one client and their trailing uploads hold together; a
/// blob whose encoding is larger takes all of it (so it is stored alone, and the next store
/// waits for its trailing uploads, as chunks of a large file do).
const ROOM_FOR_ENCODINGS: u64 = 2 << 30;

/// Room is counted in KiB.
const ROOM_UNIT: u64 = 1 << 10;

/// Longest a blob's uploads go on after it is certified (the nodes left without their
/// slivers then rebuild them themselves).
pub(crate) const TRAILING_UPLOADS_LIMIT: Duration = Duration::from_secs(120);

/// The trailing uploads of one client's stores, and the room their encodings take.
pub(crate) struct Trailing {
    room: Arc<Semaphore>,
    /// One task per blob whose uploads go on.
    tasks: Mutex<JoinSet<()>>,
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
            tasks: Mutex::new(JoinSet::new()),
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

    /// Lets `background` finish on a task of its own, holding `room` until it ends.
    pub(super) fn keep(&self, background: Background, room: OwnedSemaphorePermit) {
        if background.uploads.is_empty() {
            return;
        }
        let (late_failures, mut cut) = (Arc::clone(&self.late_failures), self.cut.subscribe());
        let stop = async move {
            match cut.changed().await {
                Ok(()) => *cut.borrow(),
                // The client is gone: nobody stops these uploads but their deadline.
                Err(_) => std::future::pending().await,
            }
        };
        let deadline = tokio::time::Instant::now() + TRAILING_UPLOADS_LIMIT;
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            let failures = background.settle(deadline, TRAILING_UPLOADS_LIMIT, stop).await;
            late_failures.lock().unwrap_or_else(PoisonError::into_inner).extend(failures);
            drop(room);
        });
    }

    /// Waits up to `timeout` for the trailing uploads running now, then stops those left.
    async fn settle(&self, timeout: Duration) {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(_) => break,
            }
        }
        self.cut.send_replace(timeout);
        while tasks.join_next().await.is_some() {}
    }
}

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
    /// their own (each blob's go on for at most two minutes after it is certified). Call it
    /// before the process exits, so that every node gets its slivers without needing repair.
    pub async fn finish_uploads(&self, timeout: Duration) -> Vec<NodeFailure> {
        self.trailing.settle(timeout).await;
        std::mem::take(&mut *self.trailing.late_failures.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EncodingConfig {
        EncodingConfig::new(1000).unwrap()
    }

    #[test]
    fn an_encoding_counts_its_slivers_and_one_copy_of_the_metadata() {
        // n = 1000: kp + ks = 1001 symbols of 2 bytes per pair, 64 KB of metadata once.
        assert_eq!(encoding_bytes(config(), 1024), 1000 * 1001 * 2 + 64 * 1000 + 32);
        assert_eq!(encoding_bytes(config(), u64::MAX), u64::MAX);
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
