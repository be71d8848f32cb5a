//! Garbage collection: the data of blobs nothing needs any more (every registration expired
//! or was deleted, or the blob was proven invalid) is removed, one blob per durable
//! transaction (metadata, record and every sliver together). It runs after each epoch change
//! and after events that delete or invalidate blobs, spread over time: each node starts after
//! an offset of its own (so that the nodes of a committee do not all do heavy I/O at once) and
//! removes blobs in small batches with pauses between them. The two-phase removal Walrus does
//! (metadata first, slivers later) is not built yet.

use morsa_store::DeleteStats;

use crate::blob_info::BlobInfo;
use crate::error::NodeError;
use crate::node::Node;

/// What one collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Blobs whose data was removed.
    pub blobs: u64,
    /// Slivers removed.
    pub slivers: u64,
    /// Bytes of slivers removed.
    pub bytes: u64,
}

impl Node {
    /// Removes the data of every blob that is garbage in the current epoch.
    pub fn collect_garbage(&self) -> Result<GcStats, NodeError> {
        let mut total = GcStats::default();
        loop {
            let (stats, more) = self.collect_garbage_batch(usize::MAX)?;
            total.blobs += stats.blobs;
            total.slivers += stats.slivers;
            total.bytes += stats.bytes;
            if !more {
                return Ok(total);
            }
        }
    }

    /// Removes the data of at most `max_blobs` garbage blobs; says whether more remain.
    ///
    /// Blob records of invalid blobs are kept (so late uploads are refused as invalid); other
    /// garbage records go with their data.
    pub fn collect_garbage_batch(&self, max_blobs: usize) -> Result<(GcStats, bool), NodeError> {
        let epoch = self.view().epoch();
        let mut garbage = Vec::new();
        let mut more = false;
        self.store().for_each_blob_info(|blob_id, bytes| {
            if let Ok(info) = bcs::from_bytes::<BlobInfo>(bytes)
                && info.is_garbage(epoch)
                && !(info.invalid.is_some() && info.objects.is_empty() && !self.holds_any(blob_id))
            {
                if garbage.len() < max_blobs {
                    garbage.push((*blob_id, info));
                } else {
                    more = true;
                }
            }
            Ok(())
        })?;
        let mut stats = GcStats::default();
        for (blob_id, info) in garbage {
            self.forget_metadata(&redstuff::BlobId(blob_id));
            let DeleteStats { slivers, bytes } = self.store().delete_blob(&blob_id)?;
            if info.invalid.is_some() {
                // `delete_blob` removed the record too; keep the invalid mark so that late
                // uploads are refused as invalid.
                let mark = BlobInfo { invalid: info.invalid, size: info.size, objects: Default::default() };
                self.store().put_blob_info(&blob_id, &bcs::to_bytes(&mark).expect("records serialize"))?;
            }
            if slivers > 0 || bytes > 0 {
                stats.blobs += 1;
            }
            stats.slivers += slivers;
            stats.bytes += bytes;
        }
        Ok((stats, more))
    }

    /// Whether any metadata or sliver of `blob_id` is stored (a cheap index lookup).
    fn holds_any(&self, blob_id: &[u8; 32]) -> bool {
        let store = self.store();
        store.has_metadata(blob_id).unwrap_or(true)
            || self.owned_shards().into_iter().any(|shard| {
                store.sliver_kinds_held(blob_id, shard).map_or(true, |held| held != (false, false))
            })
    }
}
