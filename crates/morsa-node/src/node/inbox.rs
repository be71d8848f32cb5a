//! What the event follower tells the background tasks: blobs certified (for the sync loop)
//! and blobs registered (for the pending-upload buffer). Each inbox is bounded; an overflow
//! asks its reader to look at everything instead.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use redstuff::BlobId;

/// Most certifications remembered between two looks of the sync loop; past that, the next
/// full scan finds them.
const MAX_CERTIFIED: usize = 65_536;

/// Blobs certified by events the follower applied, with the events' times: what the sync loop
/// looks at next. Bounded; an overflow asks for a full scan.
#[derive(Debug, Default)]
pub struct CertifiedInbox {
    blobs: Mutex<VecDeque<(BlobId, u64)>>,
    overflowed: AtomicBool,
    /// Woken on every certification.
    pub notify: tokio::sync::Notify,
}

impl CertifiedInbox {
    /// Records that `blob_id` was certified at `time_ms` (the event's time).
    pub fn push(&self, blob_id: BlobId, time_ms: u64) {
        let mut blobs = self.blobs.lock().unwrap_or_else(PoisonError::into_inner);
        if blobs.len() < MAX_CERTIFIED {
            blobs.push_back((blob_id, time_ms));
        } else {
            self.overflowed.store(true, Ordering::Release);
        }
        drop(blobs);
        self.notify.notify_one();
    }

    /// Asks the sync loop for a full scan soon (the node's shards changed).
    pub fn request_scan(&self) {
        self.overflowed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// Takes what was recorded, and whether some was lost to the bound (or a scan was asked).
    pub fn take(&self) -> (Vec<(BlobId, u64)>, bool) {
        let blobs = std::mem::take(&mut *self.blobs.lock().unwrap_or_else(PoisonError::into_inner));
        (blobs.into(), self.overflowed.swap(false, Ordering::AcqRel))
    }
}

/// Most registrations remembered between two looks of the buffer's task; past that, it checks
/// every held blob.
const MAX_REGISTERED: usize = 65_536;

/// Blobs registered by events the follower applied, for the buffer's task: it stores their
/// held uploads. Bounded; an overflow asks for a check of every held blob.
#[derive(Debug, Default)]
pub struct RegisteredInbox {
    blobs: Mutex<Vec<BlobId>>,
    overflowed: AtomicBool,
    /// Woken on every registration.
    pub notify: tokio::sync::Notify,
}

impl RegisteredInbox {
    /// Records that `blob_id` was registered.
    pub fn push(&self, blob_id: BlobId) {
        let mut blobs = self.blobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if blobs.len() < MAX_REGISTERED {
            blobs.push(blob_id);
        } else {
            self.overflowed.store(true, Ordering::Release);
        }
        drop(blobs);
        self.notify.notify_one();
    }

    /// Takes what was recorded, and whether some was lost to the bound.
    pub fn take(&self) -> (Vec<BlobId>, bool) {
        let blobs =
            std::mem::take(&mut *self.blobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        (blobs, self.overflowed.swap(false, Ordering::AcqRel))
    }
}
