//! Large blobs written out as they are read, a window of rows at a time.
//!
//! The systematic primary slivers are the blob's rows in order, so a blob can be read as a
//! series of ranges (`range_with_metadata`, which checks every byte against its row's
//! hash as a full read does, and rebuilds a row whose node cannot serve) and each written
//! out as soon as it and those before it are in: memory holds a few windows, not the blob,
//! and the first byte is out after the first window. An age file is opened a window at a
//! time the same way (`view_range`). Small blobs are read whole through the hedged path.

use std::io::Write;
use std::sync::Arc;

use futures_util::StreamExt as _;
use redstuff::{BlobId, VerifiedMetadata};

use crate::nodes::NodeSet;
use crate::read::ReadLog;
use crate::{Client, Error, Progress, ReadOutcome};

/// Which blobs are streamed, and about how many bytes each window holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Streaming {
    /// Blobs at least this large are streamed; smaller ones are read whole.
    pub(crate) from: u64,
    /// About this many bytes per window (whole rows, or whole 64 KiB segments of an age file).
    pub(crate) window: u64,
}

impl Default for Streaming {
    fn default() -> Self {
        Self { from: 64 << 20, window: 16 << 20 }
    }
}
/// Windows read at once: the one being written and those after it.
const WINDOWS_AHEAD: usize = 3;
/// An age file's plaintext segment: windows of one are multiples of it.
const AGE_SEGMENT: u64 = 64 << 10;

/// What reading a blob for a file gave.
pub(crate) enum Fetched {
    /// A small blob, read whole and opened, not written yet.
    Whole(Box<ReadOutcome>),
    /// A large blob, already written out: its size in bytes (opened).
    Streamed(u64),
}

impl Client {
    /// Reads blob `blob_id`: whole if it is small (answered, not written), else written to
    /// `out` a window at a time, after `check` accepted its size (opened, if an age file),
    /// with what each part of the read met handed to `absorb`.
    pub(crate) async fn fetch_or_stream(
        &self,
        blob_id: &BlobId,
        out: &mut dyn Write,
        absorb: &mut dyn FnMut(&ReadOutcome),
        check: impl FnOnce(u64) -> Result<(), Error>,
    ) -> Result<Fetched, Error> {
        let nodes = self.refresh_nodes().await?;
        self.probes.probe_stalest(&nodes, *blob_id);
        let mut log = ReadLog::default();
        let metadata = self.verified_metadata(&nodes, blob_id, &mut log).await?;
        if metadata.unencoded_length() < self.streaming.from {
            let data = self.read_with_metadata(&nodes, metadata, &mut log).await;
            self.remember_node_scores();
            let mut read = log.into_outcome(data?);
            read.data = self.opened(blob_id, read.data).await?;
            return Ok(Fetched::Whole(Box::new(read)));
        }
        let written = self.stream_blob(&nodes, metadata, log, out, absorb, check).await;
        self.remember_node_scores();
        written.map(Fetched::Streamed)
    }

    async fn stream_blob(
        &self,
        nodes: &Arc<NodeSet>,
        metadata: Arc<VerifiedMetadata>,
        mut log: ReadLog,
        out: &mut dyn Write,
        absorb: &mut dyn FnMut(&ReadOutcome),
        check: impl FnOnce(u64) -> Result<(), Error>,
    ) -> Result<u64, Error> {
        let blob_id = *metadata.blob_id();
        let row = u64::try_from(metadata.config().ks())
            .unwrap_or(u64::MAX)
            .saturating_mul(u64::from(metadata.symbol_size()));
        let view = self.view(nodes, metadata, &mut log).await?;
        absorb(&log.into_outcome(Vec::new()));
        let len = view.len();
        check(len)?;
        let window = window_bytes(self.streaming.window, row, view.is_sealed());
        self.report(Progress::ReadStarted { blob_id, total: len });
        let view = &view;
        let mut windows = std::pin::pin!(
            futures_util::stream::iter((0..len.div_ceil(window)).map(|index| {
                let start = index * window;
                start..(start + window).min(len)
            }))
            .map(|range| async move {
                let mut log = ReadLog::default();
                let data = self.view_range_bytes(nodes, view, range, &mut log).await;
                data.map(|data| (data, log.into_outcome(Vec::new())))
            })
            .buffered(WINDOWS_AHEAD)
        );
        let mut written = 0u64;
        while let Some(read) = windows.next().await {
            let (data, read) = read?;
            // Written from the rows where they lie: no copy between the slivers and `out`.
            data.write_to(out).map_err(|source| Error::Io { path: "output".into(), source })?;
            let bytes = u64::try_from(data.len()).unwrap_or(u64::MAX);
            written = written.saturating_add(bytes);
            self.report(Progress::BytesRead { bytes });
            absorb(&read);
        }
        Ok(written)
    }
}

/// Bytes per window of about `about` bytes for rows of `row` bytes: whole rows (one at
/// least), so that no row is fetched for two windows; for an age file whole segments
/// instead, which covers rows shifted by the header (a row at a window's edge may then be
/// fetched twice).
fn window_bytes(about: u64, row: u64, sealed: bool) -> u64 {
    match sealed {
        false => (about / row.max(1)).max(1) * row.max(1),
        true => about.div_ceil(AGE_SEGMENT) * AGE_SEGMENT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_rows_or_whole_segments() {
        let about = 32 << 20;
        for row in [1, 4096, 3 << 20, 3_210_987, about, about + 1] {
            let window = window_bytes(about, row, false);
            assert_eq!(window % row, 0, "row {row}");
            assert!(window <= about.max(row), "row {row}: {window}");
            assert!(window > about.saturating_sub(row) || window == row, "row {row}: {window}");
        }
        assert_eq!(window_bytes(about, 3_210_987, true) % AGE_SEGMENT, 0);
        assert_eq!(window_bytes(1000, 3_210_987, true), AGE_SEGMENT);
    }
}
