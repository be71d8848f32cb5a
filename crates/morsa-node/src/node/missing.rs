//! What the node lacks: the slivers of its shards missing for certified blobs, and the blobs
//! certified recently (from the event follower), which the sync loop checks first. Blocking
//! store reads; call from a blocking thread.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use morsa_store::SliverKind;
use redstuff::{BlobId, SliverType};

use crate::blob_info::{BlobInfo, Status};
use crate::error::NodeError;
use crate::ingest::QueuedSliver;
use crate::node::Node;
use crate::repair_queue::Missing;

/// Slivers of owned shards missing for one blob: shard and kind.
pub type MissingSlivers = Vec<(u16, SliverKind)>;

/// Most certifications remembered between two looks of the sync loop; past that, the next
/// full scan finds them.
const MAX_INBOX: usize = 65_536;

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
        if blobs.len() < MAX_INBOX {
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

impl Node {
    /// The index of the `kind` sliver stored under `shard` for `blob_id`.
    pub fn sliver_index(&self, blob_id: &BlobId, shard: u16, kind: SliverType) -> u16 {
        let n = self.config().n_shards();
        let pair = blob_id.pair_for_shard(usize::from(shard), n);
        let index = match kind {
            SliverType::Primary => pair,
            SliverType::Secondary => redstuff::secondary_index_of_pair(pair, n),
        };
        u16::try_from(index).expect("sliver indices are below n, which is a u16")
    }

    /// Stores a rebuilt sliver that was checked against the metadata (group commit).
    pub fn store_rebuilt(&self, target: Missing, bytes: Vec<u8>) -> Result<(), NodeError> {
        let sliver = QueuedSliver {
            blob_id: target.blob_id.0,
            shard: target.shard,
            kind: target.kind,
            bytes: bytes.into(),
        };
        self.ingest_submit(sliver)
    }

    /// The slivers of owned shards missing for `blob_id` if it is certified, and the size of
    /// one sliver (the larger kind, estimated from the blob's size).
    pub fn missing_of(&self, blob_id: &BlobId) -> Result<(MissingSlivers, u64), NodeError> {
        let info = self.blob_info(blob_id)?;
        self.missing_with(blob_id, &info)
    }

    fn missing_with(&self, blob_id: &BlobId, info: &BlobInfo) -> Result<(MissingSlivers, u64), NodeError> {
        if info.status(self.view().epoch()) != Status::Certified {
            return Ok((Vec::new(), 0));
        }
        let mut missing = Vec::new();
        for shard in self.owned_shards() {
            let (primary, secondary) = self.store().sliver_kinds_held(&blob_id.0, shard)?;
            if !primary {
                missing.push((shard, SliverKind::Primary));
            }
            if !secondary {
                missing.push((shard, SliverKind::Secondary));
            }
        }
        Ok((missing, self.sliver_bytes_estimate(info.size)))
    }

    /// Bytes of a primary sliver (the larger kind) of a blob of `size` bytes.
    pub fn sliver_bytes_estimate(&self, size: u64) -> u64 {
        let config = self.config();
        let symbol = config.symbol_size(size).map_or(0, u64::from);
        symbol.saturating_mul(u64::try_from(config.ks()).unwrap_or(u64::MAX))
    }

    /// Every certified blob with missing slivers: the blob, its missing slivers, and one
    /// sliver's estimated size. Reads every blob record and the index of every owned shard.
    pub fn scan_missing(&self) -> Result<Vec<(BlobId, MissingSlivers, u64)>, NodeError> {
        let epoch = self.view().epoch();
        let mut certified = Vec::new();
        self.store().for_each_blob_info(|blob_id, bytes| {
            if let Ok(info) = bcs::from_bytes::<BlobInfo>(bytes)
                && info.status(epoch) == Status::Certified
            {
                certified.push((BlobId(*blob_id), info));
            }
            Ok(())
        })?;
        let mut found = Vec::new();
        for (blob_id, info) in certified {
            let (missing, bytes) = self.missing_with(&blob_id, &info)?;
            if !missing.is_empty() {
                found.push((blob_id, missing, bytes));
            }
        }
        Ok(found)
    }

    /// The certified blobs, for the scrubber.
    pub fn certified_blobs(&self) -> Result<Vec<BlobId>, NodeError> {
        let epoch = self.view().epoch();
        let mut certified = Vec::new();
        self.store().for_each_blob_info(|blob_id, bytes| {
            if let Ok(info) = bcs::from_bytes::<BlobInfo>(bytes)
                && info.status(epoch) == Status::Certified
            {
                certified.push(BlobId(*blob_id));
            }
            Ok(())
        })?;
        Ok(certified)
    }
}
