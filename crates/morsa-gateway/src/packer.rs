//! Small objects packed several to a blob, so that they do not each pay a blob's fixed cost
//! (its metadata and one sliver per shard). A body (a single PUT or a part) smaller than
//! `pack_threshold` is not stored as a blob of its own: its stored bytes (an age file of its
//! own when the gateway encrypts) are handed to the packer, which stores the pieces waiting
//! together as one blob and answers each its place in it ([`Packed`]). A piece is read back
//! as a range of that blob: only its own bytes, opened alone.
//!
//! The packer adds no waiting of its own: the first piece is stored at once, and pieces that
//! arrive while earlier packs are being stored wait for a free slot and then go together
//! (group commit). At most [`CONCURRENT_PACKS`] packs are stored at once, and pieces queued or
//! being stored hold at most one pack's bytes more than that. Each waiting request gets its place only
//! once the pack's blob is certified, and records its object after that, so no object is
//! visible before its data is stored.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use redstuff::BlobId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::GatewayError;
use crate::namespace::Packed;

/// Packs stored at once.
pub const CONCURRENT_PACKS: usize = 2;

/// Pieces waiting in the queue, at most (their bytes are bounded too).
const QUEUE: usize = 4096;

/// A piece's place: its blob, and where in it its bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// The certified blob.
    pub blob_id: BlobId,
    /// Where the piece is in it.
    pub packed: Packed,
}

/// What stores one pack: its bytes in, the certified blob's ID (or why not) out.
pub type StorePack =
    Arc<dyn Fn(Vec<u8>) -> Pin<Box<dyn Future<Output = Result<BlobId, String>> + Send>> + Send + Sync>;

/// A piece waiting for its pack.
struct Waiting {
    bytes: Vec<u8>,
    placed: oneshot::Sender<Result<Placed, String>>,
    /// Its share of the queue's byte bound, released once its pack is stored.
    _queued: OwnedSemaphorePermit,
}

/// The packer: a queue of pieces and the task that stores them in packs.
#[derive(Debug)]
pub struct Packer {
    queue: mpsc::Sender<Waiting>,
    /// Bytes the queue may hold.
    room: Arc<Semaphore>,
    pack_size: usize,
}

impl Packer {
    /// Starts a packer storing packs of up to `pack_size` bytes with `store` (on the current
    /// tokio runtime).
    pub fn start(pack_size: usize, store: StorePack) -> Self {
        Self::start_with(pack_size, CONCURRENT_PACKS, store)
    }

    fn start_with(pack_size: usize, concurrent: usize, store: StorePack) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let concurrent = concurrent.max(1);
        tokio::spawn(pack_loop(waiting, pack_size, Arc::new(Semaphore::new(concurrent)), store));
        let room = pack_size.saturating_mul(concurrent + 1).min(Semaphore::MAX_PERMITS);
        Self { queue, room: Arc::new(Semaphore::new(room)), pack_size }
    }

    /// Queues `bytes` (at most the pack size); the answer comes once its pack is certified.
    pub async fn enqueue(
        &self,
        bytes: Vec<u8>,
    ) -> Result<oneshot::Receiver<Result<Placed, String>>, GatewayError> {
        let closed = || GatewayError::Packing("the packer has stopped".into());
        let len = bytes.len().min(self.pack_size);
        let permits = u32::try_from(len).map_err(|_| GatewayError::Packing("a piece is too large".into()))?;
        let queued = Arc::clone(&self.room).acquire_many_owned(permits).await.map_err(|_| closed())?;
        let (placed, answer) = oneshot::channel();
        self.queue.send(Waiting { bytes, placed, _queued: queued }).await.map_err(|_| closed())?;
        Ok(answer)
    }

    /// Stores `bytes` in a pack; answers their place once the pack's blob is certified.
    pub async fn store(&self, bytes: Vec<u8>) -> Result<Placed, GatewayError> {
        let answer = self.enqueue(bytes).await?;
        answer
            .await
            .map_err(|_| GatewayError::Packing("the packer dropped a piece".into()))?
            .map_err(GatewayError::Packing)
    }
}

/// Takes the pieces waiting whenever a pack slot is free, and stores them as one blob.
async fn pack_loop(
    mut waiting: mpsc::Receiver<Waiting>,
    pack_size: usize,
    slots: Arc<Semaphore>,
    store: StorePack,
) {
    let mut carried: Option<Waiting> = None;
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
        let first = match carried.take() {
            Some(first) => first,
            None => match waiting.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let mut size = first.bytes.len();
        let mut pack = vec![first];
        while let Ok(next) = waiting.try_recv() {
            if size + next.bytes.len() > pack_size {
                carried = Some(next);
                break;
            }
            size += next.bytes.len();
            pack.push(next);
        }
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store_pack(pack, size, &store).await;
            drop(slot);
        });
    }
}

/// Stores `pack` as one blob and answers each piece its place (or the failure).
async fn store_pack(pack: Vec<Waiting>, size: usize, store: &StorePack) {
    let mut bytes = Vec::with_capacity(size);
    let mut places = Vec::with_capacity(pack.len());
    for piece in &pack {
        let offset = morsa_core::convert::saturating_u64(bytes.len());
        let stored = morsa_core::convert::saturating_u64(piece.bytes.len());
        places.push(Packed { offset, stored });
        bytes.extend_from_slice(&piece.bytes);
    }
    let pieces = pack.len();
    let stored = store(bytes).await;
    match &stored {
        Ok(blob_id) => tracing::info!(%blob_id, pieces, bytes = size, "small objects packed into one blob"),
        Err(error) => tracing::warn!(%error, pieces, "storing a pack failed"),
    }
    for (piece, packed) in pack.into_iter().zip(places) {
        let answer = stored.clone().map(|blob_id| Placed { blob_id, packed });
        // The request went away: nothing records the piece.
        let _ = piece.placed.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A store that keeps every pack, the first one only once `gate` is notified.
    fn recording_store(packs: Arc<Mutex<Vec<Vec<u8>>>>, gate: Arc<tokio::sync::Notify>) -> StorePack {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        Arc::new(move |bytes: Vec<u8>| {
            let (packs, gate) = (Arc::clone(&packs), Arc::clone(&gate));
            let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move {
                if call == 0 {
                    gate.notified().await;
                }
                let mut packs = packs.lock().unwrap();
                packs.push(bytes);
                let seed = u8::try_from(packs.len()).unwrap();
                Ok(BlobId::from_root(1, &[seed; 32]))
            })
        })
    }

    #[tokio::test]
    async fn pieces_that_arrive_together_share_one_blob_and_each_knows_its_place() {
        let packs = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(tokio::sync::Notify::new());
        let packer = Packer::start_with(100, 1, recording_store(Arc::clone(&packs), Arc::clone(&gate)));
        // The first piece is stored at once (its store waits for the gate); the others arrive
        // while it is being stored.
        let first = packer.enqueue(vec![0; 10]).await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while packer.queue.capacity() < QUEUE {
            assert!(std::time::Instant::now() < deadline, "the packer never took the first piece");
            tokio::task::yield_now().await;
        }
        let mut later = Vec::new();
        for (index, len) in [30usize, 20, 40, 50].into_iter().enumerate() {
            let byte = u8::try_from(index + 1).unwrap();
            later.push(packer.enqueue(vec![byte; len]).await.unwrap());
        }
        gate.notify_one();
        let first = first.await.unwrap().unwrap();
        assert_eq!(first.packed, Packed { offset: 0, stored: 10 });
        let mut placed = Vec::new();
        for answer in later {
            placed.push(answer.await.unwrap().unwrap());
        }
        // 30 + 20 + 40 fill the second pack (of at most 100 bytes); 50 goes in a third.
        let second = placed[0].blob_id;
        assert_ne!(second, first.blob_id);
        assert!(placed[..3].iter().all(|place| place.blob_id == second));
        assert_ne!(placed[3].blob_id, second);
        let places: Vec<_> = placed.iter().map(|place| (place.packed.offset, place.packed.stored)).collect();
        assert_eq!(places, [(0, 30), (30, 20), (50, 40), (0, 50)]);
        let packs = packs.lock().unwrap();
        assert_eq!(packs.len(), 3);
        // Each piece's bytes are where its place says.
        for (index, place) in placed[..3].iter().enumerate() {
            let range = usize::try_from(place.packed.offset).unwrap()
                ..usize::try_from(place.packed.offset + place.packed.stored).unwrap();
            assert!(packs[1][range].iter().all(|byte| usize::from(*byte) == index + 1));
        }
    }

    #[tokio::test]
    async fn a_failed_pack_fails_every_piece_in_it() {
        let store: StorePack = Arc::new(|_| Box::pin(async { Err::<BlobId, _>("no quorum".to_string()) }));
        let packer = Packer::start(1000, store);
        let error = packer.store(vec![1; 10]).await.unwrap_err().to_string();
        assert!(error.contains("no quorum"), "{error}");
    }
}
