//! Where one store's time went, phase by phase.

use std::time::{Duration, Instant};

/// The phases of one store, in the order they run (each from its start to its end; a phase
/// that did not run is zero). The epoch is read while the blob is encoded; the other phases
/// run one after the other, and but for `queued` and `epoch` they add up to
/// [`crate::StoreOutcome::total_time`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreTimings {
    /// Waiting until the encodings held by this client's other stores and their uploads left
    /// room for this one.
    pub queued: Duration,
    /// Reading the current epoch from the coordinator (while the blob is encoded).
    pub epoch: Duration,
    /// Encoding the blob (and, when that took longer, reading the epoch).
    pub encode: Duration,
    /// Asking the coordinator whether the blob is already stored.
    pub status: Duration,
    /// Paying for storage and registering the blob (two commands, one after the other, each
    /// in a transaction that may carry other stores' commands too).
    pub register: Duration,
    /// Uploading metadata and slivers until nodes holding a quorum of shards confirmed.
    pub upload: Duration,
    /// Aggregating the confirmations and submitting the certificate (one command).
    pub certify: Duration,
}

/// Times consecutive phases: each call to [`Clock::lap`] answers the time since the last.
pub(super) struct Clock {
    last: Instant,
}

impl Clock {
    pub(super) fn start() -> Self {
        Self { last: Instant::now() }
    }

    /// The time since the previous lap (or the start).
    pub(super) fn lap(&mut self) -> Duration {
        let now = Instant::now();
        let elapsed = now - self.last;
        self.last = now;
        elapsed
    }
}

impl StoreTimings {
    /// Each phase with its name, in the order they run.
    pub fn phases(&self) -> [(&'static str, Duration); 7] {
        [
            ("queued", self.queued),
            ("epoch", self.epoch),
            ("encode", self.encode),
            ("status", self.status),
            ("register", self.register),
            ("upload", self.upload),
            ("certify", self.certify),
        ]
    }
}

impl std::iter::Sum for StoreTimings {
    /// Phase by phase (a file's blobs are stored one after the other).
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |sum, one| Self {
            queued: sum.queued + one.queued,
            epoch: sum.epoch + one.epoch,
            encode: sum.encode + one.encode,
            status: sum.status + one.status,
            register: sum.register + one.register,
            upload: sum.upload + one.upload,
            certify: sum.certify + one.certify,
        })
    }
}
