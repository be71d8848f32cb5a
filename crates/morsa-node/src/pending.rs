//! Uploads that arrive shortly before the node sees their blob's registration (`?pending=true`)
//! are held in a bounded buffer and stored once the registration arrives; those whose
//! registration does not come within the time limit are dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redstuff::{BlobId, SliverType};

use crate::blob_info::Status;
use crate::error::NodeError;
use crate::node::Node;

/// What is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingKind {
    /// BCS metadata with its ID.
    Metadata,
    /// A BCS sliver of pair `pair`.
    Sliver {
        /// The pair index.
        pair: u16,
        /// Primary or secondary.
        kind: SliverType,
    },
}

/// One held upload.
#[derive(Debug, Clone)]
pub struct PendingUpload {
    /// The blob.
    pub blob_id: BlobId,
    /// What it is.
    pub kind: PendingKind,
    /// The body as received.
    pub bytes: Vec<u8>,
    arrived: Instant,
}

/// The bounded buffer.
#[derive(Debug)]
pub struct PendingBuffer {
    uploads: Mutex<VecDeque<PendingUpload>>,
    max_bytes: u64,
    ttl: Duration,
}

impl PendingBuffer {
    /// A buffer holding at most `max_bytes` for at most `ttl` each.
    pub fn new(max_bytes: u64, ttl: Duration) -> Self {
        Self { uploads: Mutex::new(VecDeque::new()), max_bytes, ttl }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<PendingUpload>> {
        self.uploads.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds an upload, after dropping expired ones; refuses it if the buffer is full.
    pub fn hold(&self, blob_id: BlobId, kind: PendingKind, bytes: Vec<u8>) -> Result<(), NodeError> {
        let mut uploads = self.lock();
        let now = Instant::now();
        uploads.retain(|upload| now.duration_since(upload.arrived) < self.ttl);
        let held: u64 = uploads.iter().map(|upload| len(&upload.bytes)).sum();
        if held + len(&bytes) > self.max_bytes {
            return Err(NodeError::Busy(format!(
                "the pending-upload buffer is full ({held} of {} bytes); retry after the blob's registration is seen",
                self.max_bytes
            )));
        }
        uploads.push_back(PendingUpload { blob_id, kind, bytes, arrived: now });
        Ok(())
    }

    /// Removes and returns the uploads whose blob `ready` accepts, metadata first; drops the
    /// expired ones.
    pub fn take_ready(&self, mut ready: impl FnMut(&BlobId) -> bool) -> Vec<PendingUpload> {
        let mut uploads = self.lock();
        let now = Instant::now();
        uploads.retain(|upload| now.duration_since(upload.arrived) < self.ttl);
        let (mut taken, kept): (Vec<_>, Vec<_>) =
            uploads.drain(..).partition(|upload| ready(&upload.blob_id));
        uploads.extend(kept);
        taken.sort_by_key(|upload| upload.kind != PendingKind::Metadata);
        taken
    }

    /// Uploads held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn len(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

/// Stores the held uploads of blobs that are now registered. Called periodically.
pub fn store_ready(node: &Node, buffer: &PendingBuffer) {
    let epoch = node.view().epoch();
    let ready = buffer.take_ready(|blob_id| {
        node.blob_info(blob_id)
            .is_ok_and(|info| matches!(info.status(epoch), Status::Registered | Status::Certified))
    });
    for upload in ready {
        let result = match upload.kind {
            PendingKind::Metadata => node.store_metadata(&upload.blob_id, &upload.bytes).map(drop),
            PendingKind::Sliver { pair, kind } => {
                node.store_sliver(&upload.blob_id, pair, kind, upload.bytes.clone().into())
            }
        };
        if let Err(error) = result {
            tracing::warn!(blob_id = %upload.blob_id, %error, "a pending upload was refused once its blob was registered");
        }
    }
}

/// Every `period`, stores what became ready, until `stop` turns true.
pub async fn run(
    node: Arc<Node>,
    buffer: Arc<PendingBuffer>,
    period: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        if buffer.is_empty() {
            continue;
        }
        let (node, buffer) = (Arc::clone(&node), Arc::clone(&buffer));
        let _ = tokio::task::spawn_blocking(move || store_ready(&node, &buffer)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_bounded_and_forgets_old_uploads() {
        let buffer = PendingBuffer::new(100, Duration::from_secs(60));
        buffer.hold(BlobId([1; 32]), PendingKind::Metadata, vec![0; 60]).unwrap();
        assert!(matches!(
            buffer.hold(BlobId([2; 32]), PendingKind::Metadata, vec![0; 60]),
            Err(NodeError::Busy(_))
        ));
        let sliver = PendingKind::Sliver { pair: 0, kind: SliverType::Primary };
        buffer.hold(BlobId([1; 32]), sliver.clone(), vec![0; 40]).unwrap();
        let taken = buffer.take_ready(|blob_id| *blob_id == BlobId([1; 32]));
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[0].kind, PendingKind::Metadata, "metadata first");
        assert!(buffer.is_empty());

        let short = PendingBuffer::new(100, Duration::ZERO);
        short.hold(BlobId([1; 32]), sliver, vec![0; 10]).unwrap();
        assert!(short.take_ready(|_| true).is_empty(), "expired uploads are dropped");
    }
}
