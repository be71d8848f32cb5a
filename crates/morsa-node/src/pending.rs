//! Uploads that arrive shortly before the node sees their blob's registration (`?pending=true`)
//! are held in a bounded buffer and stored once the registration arrives; those whose
//! registration does not come within the time limit are dropped.
//!
//! The buffer is bounded in entries and in bytes, and every entry counts at least
//! [`ENTRY_OVERHEAD`] bytes, so empty bodies cannot fill it for free. Holding, expiring and
//! taking a blob's uploads cost `O(log n)` each. Held uploads are stored when the event
//! follower applies their blob's registration (the node's registration inbox says which blobs),
//! not by polling the database for every entry.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use redstuff::{BlobId, SliverType};

use crate::blob_info::Status;
use crate::config::Limits;
use crate::error::NodeError;
use crate::node::Node;

/// Bytes every held upload counts on top of its body: its bookkeeping.
const ENTRY_OVERHEAD: u64 = Limits::PENDING_ENTRY_OVERHEAD;

/// How often expired uploads are dropped when nothing else happens.
const EXPIRY_CHECK: Duration = Duration::from_secs(1);

/// What is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl PendingKind {
    /// A key that orders metadata first; one upload per key and blob is held.
    fn key(self) -> (u8, u16) {
        match self {
            Self::Metadata => (0, 0),
            Self::Sliver { pair, kind: SliverType::Primary } => (1, pair),
            Self::Sliver { pair, kind: SliverType::Secondary } => (2, pair),
        }
    }
}

/// One held upload.
#[derive(Debug, Clone)]
pub struct PendingUpload {
    /// The blob.
    pub blob_id: BlobId,
    /// What it is.
    pub kind: PendingKind,
    /// The body as received.
    pub bytes: Bytes,
    arrived: Instant,
}

impl PendingUpload {
    fn charge(&self) -> u64 {
        charge(self.bytes.len())
    }
}

fn charge(len: usize) -> u64 {
    morsa_core::convert::saturating_u64(len).saturating_add(ENTRY_OVERHEAD)
}

#[derive(Debug, Default)]
struct Held {
    /// Every upload by arrival (a sequence number): the oldest expire first.
    by_arrival: BTreeMap<u64, PendingUpload>,
    /// Each blob's uploads: key to sequence number.
    by_blob: HashMap<BlobId, BTreeMap<(u8, u16), u64>>,
    bytes: u64,
    next: u64,
}

impl Held {
    fn remove(&mut self, seq: u64) -> Option<PendingUpload> {
        let upload = self.by_arrival.remove(&seq)?;
        self.bytes = self.bytes.saturating_sub(upload.charge());
        if let Some(keys) = self.by_blob.get_mut(&upload.blob_id) {
            keys.remove(&upload.kind.key());
            if keys.is_empty() {
                self.by_blob.remove(&upload.blob_id);
            }
        }
        Some(upload)
    }

    fn expire(&mut self, now: Instant, ttl: Duration) {
        while let Some((&seq, upload)) = self.by_arrival.first_key_value() {
            if now.duration_since(upload.arrived) < ttl {
                break;
            }
            self.remove(seq);
        }
    }
}

/// The bounded buffer.
#[derive(Debug)]
pub struct PendingBuffer {
    held: Mutex<Held>,
    max_bytes: u64,
    max_entries: usize,
    ttl: Duration,
}

impl PendingBuffer {
    /// A buffer holding at most `max_entries` uploads and `max_bytes` (each upload counting
    /// [`ENTRY_OVERHEAD`] more than its body) for at most `ttl` each.
    pub fn new(max_bytes: u64, max_entries: usize, ttl: Duration) -> Self {
        Self { held: Mutex::default(), max_bytes, max_entries, ttl }
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn full(&self, held: &Held, len: usize) -> Option<NodeError> {
        if held.by_arrival.len() >= self.max_entries {
            return Some(NodeError::PendingEntriesFull(self.max_entries));
        }
        if held.bytes.saturating_add(charge(len)) > self.max_bytes {
            return Some(NodeError::PendingBytesFull { held: held.bytes, max: self.max_bytes });
        }
        None
    }

    /// Refuses now if an upload of up to `len` bytes would not fit: checked before its body is
    /// read.
    pub fn check_room(&self, len: usize) -> Result<(), NodeError> {
        let mut held = self.lock();
        held.expire(Instant::now(), self.ttl);
        self.full(&held, len).map_or(Ok(()), Err)
    }

    /// Holds an upload (replacing a held one of the same blob and kind), after dropping
    /// expired ones; refuses it if the buffer is full.
    pub fn hold(&self, blob_id: BlobId, kind: PendingKind, bytes: Bytes) -> Result<(), NodeError> {
        let mut held = self.lock();
        let now = Instant::now();
        held.expire(now, self.ttl);
        let replaced = held.by_blob.get(&blob_id).and_then(|keys| keys.get(&kind.key())).copied();
        if let Some(seq) = replaced {
            held.remove(seq);
        }
        if let Some(error) = self.full(&held, bytes.len()) {
            return Err(error);
        }
        let seq = held.next;
        held.next += 1;
        let upload = PendingUpload { blob_id, kind, bytes, arrived: now };
        held.bytes = held.bytes.saturating_add(upload.charge());
        held.by_arrival.insert(seq, upload);
        held.by_blob.entry(blob_id).or_default().insert(kind.key(), seq);
        Ok(())
    }

    /// Removes and returns `blob_id`'s uploads, metadata first.
    pub fn take(&self, blob_id: &BlobId) -> Vec<PendingUpload> {
        let mut held = self.lock();
        let Some(keys) = held.by_blob.get(blob_id) else { return Vec::new() };
        let seqs: Vec<u64> = keys.values().copied().collect();
        seqs.into_iter().filter_map(|seq| held.remove(seq)).collect()
    }

    /// Whether uploads of `blob_id` are held.
    pub fn holds(&self, blob_id: &BlobId) -> bool {
        self.lock().by_blob.contains_key(blob_id)
    }

    /// The blobs with held uploads.
    pub fn blobs(&self) -> Vec<BlobId> {
        self.lock().by_blob.keys().copied().collect()
    }

    /// Drops the expired uploads.
    pub fn expire(&self) {
        self.lock().expire(Instant::now(), self.ttl);
    }

    /// Uploads held now.
    pub fn len(&self) -> usize {
        self.lock().by_arrival.len()
    }

    /// Bytes held now, each upload counting [`ENTRY_OVERHEAD`] more than its body.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }
}

/// Stores `blob_id`'s held uploads if the blob is registered now. Blocks.
pub fn store_if_registered(node: &Node, buffer: &PendingBuffer, blob_id: &BlobId) {
    if !buffer.holds(blob_id) {
        return;
    }
    let epoch = node.view().epoch();
    let registered = node
        .blob_info(blob_id)
        .is_ok_and(|info| matches!(info.status(epoch), Status::Registered | Status::Certified));
    if !registered {
        return;
    }
    let refused = |error: &NodeError| {
        tracing::warn!(%blob_id, %error, "a pending upload was refused once its blob was registered");
    };
    // The metadata first (the slivers are checked against it), then the slivers, checked one by
    // one and stored together so that they share group commits instead of one fsync each.
    let (metadata, slivers): (Vec<_>, Vec<_>) =
        buffer.take(blob_id).into_iter().partition(|upload| matches!(upload.kind, PendingKind::Metadata));
    for upload in metadata {
        if let Err(error) = node.store_metadata(&upload.blob_id, &upload.bytes) {
            refused(&error);
        }
    }
    let mut checked = Vec::new();
    for upload in slivers {
        let PendingKind::Sliver { pair, kind } = upload.kind else { continue };
        match node.checked_sliver(&upload.blob_id, pair, kind, upload.bytes) {
            Ok(sliver) => checked.push(sliver),
            Err(error) => refused(&error),
        }
    }
    for stored in node.ingest_submit_all(checked) {
        if let Err(error) = stored {
            refused(&error);
        }
    }
}

/// Stores the held uploads of the blobs registered since the last call (all held blobs if the
/// node's registration inbox overflowed). Blocks.
pub fn store_ready(node: &Node, buffer: &PendingBuffer) {
    let (registered, overflowed) = node.registered_inbox().take();
    let blobs = if overflowed { buffer.blobs() } else { registered };
    for blob_id in blobs {
        store_if_registered(node, buffer, &blob_id);
    }
}

/// Stores held uploads as their registrations are applied, and drops expired ones, until
/// `stop` turns true.
pub async fn run(node: Arc<Node>, buffer: Arc<PendingBuffer>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = node.registered_inbox().notify.notified() => {}
            () = tokio::time::sleep(EXPIRY_CHECK) => {}
            _ = stop.changed() => return,
        }
        buffer.expire();
        let (node, buffer) = (Arc::clone(&node), Arc::clone(&buffer));
        let _ = tokio::task::spawn_blocking(move || store_ready(&node, &buffer)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sliver(pair: u16) -> PendingKind {
        PendingKind::Sliver { pair, kind: SliverType::Primary }
    }

    #[test]
    fn the_buffer_is_bounded_in_bytes_and_forgets_old_uploads() {
        let buffer = PendingBuffer::new(100 + 2 * ENTRY_OVERHEAD, 10, Duration::from_secs(60));
        buffer.hold(BlobId([1; 32]), PendingKind::Metadata, vec![0; 60].into()).unwrap();
        assert!(matches!(
            buffer.hold(BlobId([2; 32]), PendingKind::Metadata, vec![0; 60].into()),
            Err(NodeError::PendingEntriesFull(_) | NodeError::PendingBytesFull { .. })
        ));
        buffer.hold(BlobId([1; 32]), sliver(0), vec![0; 40].into()).unwrap();
        let taken = buffer.take(&BlobId([1; 32]));
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[0].kind, PendingKind::Metadata, "metadata first");
        assert_eq!(buffer.len(), 0);
        assert_eq!(buffer.bytes(), 0);

        let short = PendingBuffer::new(1000, 10, Duration::ZERO);
        short.hold(BlobId([1; 32]), sliver(0), vec![0; 10].into()).unwrap();
        short.expire();
        assert!(short.take(&BlobId([1; 32])).is_empty(), "expired uploads are dropped");
    }

    #[test]
    fn empty_bodies_count_and_entries_are_bounded() {
        let buffer = PendingBuffer::new(1 << 20, 3, Duration::from_secs(60));
        for blob in 0..3 {
            buffer.hold(BlobId([blob; 32]), PendingKind::Metadata, Bytes::new()).unwrap();
        }
        assert_eq!(buffer.bytes(), 3 * ENTRY_OVERHEAD, "an empty body still counts");
        assert!(matches!(
            buffer.hold(BlobId([9; 32]), PendingKind::Metadata, Bytes::new()),
            Err(NodeError::PendingEntriesFull(_) | NodeError::PendingBytesFull { .. })
        ));
        assert!(matches!(
            buffer.check_room(0),
            Err(NodeError::PendingEntriesFull(_) | NodeError::PendingBytesFull { .. })
        ));
        // The same upload again replaces the held one instead of taking room.
        buffer.hold(BlobId([0; 32]), PendingKind::Metadata, Bytes::from_static(b"x")).unwrap();
        assert_eq!(buffer.len(), 3);
        let bytes_only = PendingBuffer::new(10 * ENTRY_OVERHEAD, 1_000_000, Duration::from_secs(60));
        let held = (0..20u8)
            .filter(|blob| bytes_only.hold(BlobId([*blob; 32]), PendingKind::Metadata, Bytes::new()).is_ok())
            .count();
        assert_eq!(held, 10, "empty bodies are bounded by bytes too");
    }
}
