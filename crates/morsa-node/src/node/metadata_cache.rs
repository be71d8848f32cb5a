//! Recently used verified metadata, so that the hundreds of slivers of one blob uploaded or
//! read in a row do not each re-read, re-decode and re-hash its metadata (for `n = 1000` that
//! is 64 KiB of BCS and a Merkle tree of 1000 leaves per sliver).
//!
//! Verified metadata of a blob ID never changes, so an entry can only be stale when the blob's
//! metadata was deleted: garbage collection removes the entry when it deletes a blob.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use redstuff::{BlobId, VerifiedMetadata};

/// Entries kept: at `n = 1000`, about 64 KiB each.
const CAPACITY: usize = 64;

/// A bounded map from blob ID to its verified metadata, evicting the oldest entry first.
#[derive(Debug, Default)]
pub(crate) struct MetadataCache {
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<BlobId, Arc<VerifiedMetadata>>,
    order: VecDeque<BlobId>,
}

impl MetadataCache {
    pub(crate) fn get(&self, blob_id: &BlobId) -> Option<Arc<VerifiedMetadata>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).map.get(blob_id).cloned()
    }

    pub(crate) fn insert(&self, metadata: Arc<VerifiedMetadata>) {
        let mut entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let blob_id = *metadata.blob_id();
        if entries.map.insert(blob_id, metadata).is_none() {
            entries.order.push_back(blob_id);
        }
        while entries.order.len() > CAPACITY {
            if let Some(oldest) = entries.order.pop_front() {
                entries.map.remove(&oldest);
            }
        }
    }

    pub(crate) fn remove(&self, blob_id: &BlobId) {
        let mut entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.map.remove(blob_id).is_some() {
            entries.order.retain(|known| known != blob_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(seed: u8) -> Arc<VerifiedMetadata> {
        let config = redstuff::EncodingConfig::new(4).unwrap();
        Arc::new(redstuff::encode(config, &[seed; 10]).unwrap().metadata)
    }

    #[test]
    fn entries_are_kept_up_to_capacity_oldest_evicted_first_and_removable() {
        let cache = MetadataCache::default();
        let all: Vec<_> = (0..=u8::try_from(CAPACITY).unwrap()).map(metadata).collect();
        for entry in &all {
            cache.insert(Arc::clone(entry));
        }
        assert!(cache.get(all[0].blob_id()).is_none(), "the oldest was evicted");
        assert_eq!(cache.get(all[1].blob_id()).as_deref(), Some(&*all[1]));
        cache.remove(all[1].blob_id());
        assert!(cache.get(all[1].blob_id()).is_none());
        assert!(cache.get(all[CAPACITY].blob_id()).is_some());
    }
}
