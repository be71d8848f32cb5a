//! Garbage collection: the data of blobs nothing needs any more (every registration expired
//! or was deleted, or the blob was proven invalid) is removed, one blob per durable
//! transaction (metadata, record and every sliver together). It runs after each epoch change
//! and after events that delete or invalidate blobs. Spreading the work over time, and the
//! two-phase removal Walrus does, are not built yet.

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
    ///
    /// Blob records of invalid blobs are kept (so late uploads are refused as invalid); other
    /// garbage records go with their data.
    pub fn collect_garbage(&self) -> Result<GcStats, NodeError> {
        let epoch = self.view().epoch();
        let mut garbage = Vec::new();
        self.store().for_each_blob_info(|blob_id, bytes| {
            if let Ok(info) = bcs::from_bytes::<BlobInfo>(bytes)
                && info.is_garbage(epoch)
            {
                garbage.push((*blob_id, info));
            }
            Ok(())
        })?;
        let mut stats = GcStats::default();
        for (blob_id, info) in garbage {
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
        Ok(stats)
    }
}
