//! Progress of long operations, reported as events; the library never prints.

use std::sync::Arc;

use redstuff::BlobId;

/// Something that happened during a store or a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A blob of `bytes` was encoded.
    Encoded {
        /// Unencoded size.
        bytes: u64,
    },
    /// The blob was found certified for long enough: nothing to upload.
    AlreadyStored {
        /// The blob.
        blob_id: BlobId,
    },
    /// Uploads of a registered blob start: `total` bytes of slivers to all nodes.
    UploadStarted {
        /// The blob.
        blob_id: BlobId,
        /// Sliver bytes to send in all.
        total: u64,
    },
    /// One sliver of `bytes` was acknowledged by its node.
    SliverUploaded {
        /// Its size.
        bytes: u64,
    },
    /// A node confirmed; confirmations so far hold `weight` of the `needed` shards.
    Confirmation {
        /// Shards confirmed so far.
        weight: usize,
        /// Shards needed.
        needed: usize,
    },
    /// The blob was certified.
    Certified {
        /// The blob.
        blob_id: BlobId,
    },
    /// A read of a blob of `total` bytes starts.
    ReadStarted {
        /// The blob.
        blob_id: BlobId,
        /// Its size.
        total: u64,
    },
    /// `bytes` more of the blob's data are in hand (verified slivers, counted in blob bytes).
    BytesRead {
        /// Bytes.
        bytes: u64,
    },
    /// Chunk `index` (from 0) of `count` of a large file is done.
    ChunkDone {
        /// The chunk.
        index: usize,
        /// Chunks in all.
        count: usize,
    },
}

/// Where progress events go.
pub type ProgressSink = Arc<dyn Fn(&Progress) + Send + Sync>;

/// A sink that drops everything.
pub(crate) fn ignore() -> ProgressSink {
    Arc::new(|_| {})
}
