//! Files: stored as one blob when they fit in a chunk, else as chunk blobs and a manifest
//! ([`crate::manifest`] holds the format), from a path or a stream of unknown length, and read
//! back whole or by range.

use std::io::{Read, Write};
use std::ops::Range;
use std::path::Path;

use redstuff::BlobId;

use crate::manifest::{Chunk, MAGIC, MAX_MANIFEST_BYTES, Manifest};
use crate::read::ReadLog;
use crate::stream_read::Fetched;
use crate::{Client, Error, InternalError, Progress, ReadOutcome, StoreOptions, StoreOutcome, StoredHow};

/// A source cut into chunks of `chunk_size` bytes, read on a blocking thread; one byte is
/// read ahead, so the last chunk is known as such when it is handed out.
struct Pieces<R> {
    /// Taken while a read runs on its thread.
    reader: Option<R>,
    /// The byte read ahead, if the source had one more.
    next: Option<u8>,
    chunk_size: usize,
    name: String,
}

/// One chunk's bytes, and whether the source ends with it.
struct Piece {
    data: Vec<u8>,
    is_last: bool,
}

/// Buffers start at most this large and grow as bytes arrive, so a short stream does not
/// allocate a whole chunk.
const INITIAL_PIECE_CAPACITY: usize = 8 << 20;

impl<R: Read + Send + 'static> Pieces<R> {
    async fn next(&mut self) -> Result<Piece, Error> {
        let mut reader = self.reader.take().ok_or_else(|| Error::Internal(InternalError::SourceReadTwice))?;
        let (ahead, limit) = (self.next.take(), self.chunk_size);
        let (reader, read) = tokio::task::spawn_blocking(move || {
            let read = read_piece(&mut reader, ahead, limit);
            (reader, read)
        })
        .await
        .map_err(Error::panicked("the reading thread"))?;
        self.reader = Some(reader);
        let (data, next) = read.map_err(|source| Error::Io { path: self.name.clone(), source })?;
        self.next = next;
        Ok(Piece { data, is_last: next.is_none() })
    }
}

/// Reads up to `limit` bytes (starting with `ahead`), then one more byte if there is one.
fn read_piece(
    reader: &mut impl Read,
    ahead: Option<u8>,
    limit: usize,
) -> std::io::Result<(Vec<u8>, Option<u8>)> {
    let mut data = Vec::with_capacity(limit.min(INITIAL_PIECE_CAPACITY));
    data.extend(ahead);
    let rest = u64::try_from(limit.saturating_sub(data.len())).unwrap_or(u64::MAX);
    reader.by_ref().take(rest).read_to_end(&mut data)?;
    let mut byte = [0u8];
    loop {
        match reader.read(&mut byte) {
            Ok(0) => return Ok((data, None)),
            Ok(_) => return Ok((data, Some(byte[0]))),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

/// What storing a file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutcome {
    /// The blob to read the file back from: its own blob, or its manifest's.
    pub blob_id: BlobId,
    /// The file's size.
    pub size: u64,
    /// Each blob stored, chunks first and the manifest last (one entry for a small file).
    pub blobs: Vec<StoreOutcome>,
}

impl FileOutcome {
    /// Whether nothing new had to be uploaded.
    pub fn already_stored(&self) -> bool {
        self.blobs.iter().all(|blob| matches!(blob.how, StoredHow::AlreadyCertified { .. }))
    }
}

impl Client {
    /// Stores the file at `path`: as one blob if it fits in one chunk, else as chunks and a
    /// manifest. At most one chunk is held in memory (plus its encoding).
    pub async fn store_file(&self, path: &Path, options: &StoreOptions) -> Result<FileOutcome, Error> {
        let file = std::fs::File::open(path).map_err(Error::io(path))?;
        let size = file.metadata().map_err(Error::io(path))?.len();
        self.store_reader(file, path.display().to_string(), Some(size), options).await
    }

    /// Stores everything `reader` yields until its end (standard input, a pipe, a file), of a
    /// length known in advance or not, exactly as [`Client::store_file`] stores a file of
    /// the same bytes: one blob if it fits in one chunk, else chunks and a manifest. At most
    /// one chunk is held in memory (plus its encoding); reads run on a blocking thread.
    /// `name` names the source in errors; `expected_size`, if known, only sizes the progress
    /// reports.
    pub async fn store_reader<R: Read + Send + 'static>(
        &self,
        reader: R,
        name: String,
        expected_size: Option<u64>,
        options: &StoreOptions,
    ) -> Result<FileOutcome, Error> {
        let chunk_size = morsa_core::convert::saturating_usize(self.effective_chunk_size());
        let mut pieces = Pieces { reader: Some(reader), next: None, chunk_size, name };
        let first = pieces.next().await?;
        if first.is_last && !first.data.starts_with(MAGIC) {
            let size = morsa_core::convert::saturating_u64(first.data.len());
            let outcome = self.store_blob(self.sealed(first.data).await?, options).await?;
            return Ok(FileOutcome { blob_id: outcome.blob_id, size, blobs: vec![outcome] });
        }
        let known_count =
            expected_size.and_then(|size| usize::try_from(size.div_ceil(self.effective_chunk_size())).ok());
        let mut blobs = Vec::new();
        let mut chunks = Vec::new();
        let mut piece = first;
        loop {
            let is_last = piece.is_last;
            // The chunk's size in the file, not in its blob (sealing adds a header and tags).
            let length = morsa_core::convert::saturating_u64(piece.data.len());
            let outcome = self.store_blob(self.sealed(piece.data).await?, options).await?;
            chunks.push(Chunk { blob_id: outcome.blob_id, size: length });
            blobs.push(outcome);
            let index = chunks.len() - 1;
            // A stream of unknown length counts the chunks known so far.
            let count = known_count.unwrap_or(chunks.len() + usize::from(!is_last)).max(index + 1);
            self.report(Progress::ChunkDone { index, count });
            if is_last {
                break;
            }
            piece = pieces.next().await?;
        }
        let size = chunks.iter().map(|chunk| chunk.size).sum();
        let manifest = Manifest { size, chunks };
        let outcome = self.store_blob(self.sealed(manifest.to_bytes()).await?, options).await?;
        let blob_id = outcome.blob_id;
        blobs.push(outcome);
        Ok(FileOutcome { blob_id, size, blobs })
    }

    /// Reads what was stored as `blob_id` by [`Client::store_file`] (or any blob) into
    /// `out`; a manifest's chunks are read one after the other. Blobs of 64 MiB and more are
    /// written a window of rows at a time as they are read (memory holds a few windows, and
    /// the first bytes are out before the rest is read); a read that fails then has written
    /// part of the blob. Answers the file's size.
    pub async fn read_file(&self, blob_id: &BlobId, out: &mut dyn Write) -> Result<ReadSummary, Error> {
        let mut summary = ReadSummary::default();
        // A manifest is small, so a streamed blob is the file itself.
        let first =
            match self.fetch_or_stream(blob_id, out, &mut |read| summary.absorb(read), |_| Ok(())).await? {
                Fetched::Streamed(size) => {
                    summary.size = size;
                    return Ok(summary);
                }
                Fetched::Whole(first) => first,
            };
        summary.absorb(&first);
        if !first.data.starts_with(MAGIC)
            || morsa_core::convert::saturating_u64(first.data.len()) > MAX_MANIFEST_BYTES
        {
            write_all(out, &first.data)?;
            summary.size = morsa_core::convert::saturating_u64(first.data.len());
            return Ok(summary);
        }
        // A blob written by another tool may start with the tag without being a manifest:
        // it is then returned as it is.
        let Ok(manifest) = Manifest::parse(blob_id, &first.data) else {
            write_all(out, &first.data)?;
            summary.size = morsa_core::convert::saturating_u64(first.data.len());
            return Ok(summary);
        };
        drop(first);
        let count = manifest.chunks.len();
        for (index, chunk) in manifest.chunks.iter().enumerate() {
            let wrong_size = |size: u64| Error::Manifest {
                blob_id: *blob_id,
                reason: format!("chunk {index} has {size} bytes, the manifest says {}", chunk.size),
            };
            // A large chunk is checked before any of it is written, a small one after it is read.
            let check = |size: u64| if size == chunk.size { Ok(()) } else { Err(wrong_size(size)) };
            match self.fetch_or_stream(&chunk.blob_id, out, &mut |read| summary.absorb(read), check).await? {
                Fetched::Streamed(_) => {}
                Fetched::Whole(read) => {
                    check(morsa_core::convert::saturating_u64(read.data.len()))?;
                    summary.absorb(&read);
                    write_all(out, &read.data)?;
                }
            }
            self.report(Progress::ChunkDone { index, count });
        }
        summary.size = manifest.size;
        Ok(summary)
    }

    /// Reads bytes `range` of what was stored as `blob_id` (a whole blob or a chunked file).
    pub async fn read_file_range(&self, blob_id: &BlobId, range: Range<u64>) -> Result<ReadOutcome, Error> {
        // One status check and one metadata fetch serve the tag check and the range.
        let nodes = self.refresh_nodes().await?;
        let mut log = ReadLog::default();
        let metadata = self.verified_metadata(&nodes, blob_id, &mut log).await?;
        // An age file's header is read once and serves every range of it.
        let view = self.view(&nodes, metadata, &mut log).await?;
        let tag = morsa_core::convert::saturating_u64(MAGIC.len());
        let size = view.len();
        let head = match size >= tag && size <= MAX_MANIFEST_BYTES {
            true => self.view_range(&nodes, &view, 0..tag, &mut log).await?,
            false => Vec::new(),
        };
        let manifest = match head == MAGIC {
            true => Manifest::parse(blob_id, &self.view_range(&nodes, &view, 0..size, &mut log).await?).ok(),
            false => None,
        };
        let Some(manifest) = manifest else {
            let data = self.view_range(&nodes, &view, range, &mut log).await?;
            return Ok(log.into_outcome(data));
        };
        if range.start > range.end || range.end > manifest.size {
            return Err(Error::BadRange { start: range.start, end: range.end, len: manifest.size });
        }
        let mut outcome = log.into_outcome(Vec::new());
        for (chunk, part) in manifest.pieces(range) {
            let read = self.read_opened_range(&chunk.blob_id, part).await?;
            outcome.data.extend(read.data);
            outcome.bad_slivers.extend(read.bad_slivers);
            outcome.failures.extend(read.failures);
            outcome.without_coordinator |= read.without_coordinator;
        }
        Ok(outcome)
    }
}

/// What reading a file found, besides its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// Bytes written.
    pub size: u64,
    /// Slivers that failed verification.
    pub bad_slivers: Vec<crate::BadSliver>,
    /// Nodes that could not serve.
    pub failures: Vec<crate::NodeFailure>,
    /// Some blob of the file was read without a coordinator (see
    /// [`ReadOutcome::without_coordinator`]).
    pub without_coordinator: bool,
    /// The sliver requests of every blob read.
    pub stats: crate::ReadStats,
}

impl ReadSummary {
    pub(crate) fn absorb(&mut self, read: &ReadOutcome) {
        self.without_coordinator |= read.without_coordinator;
        self.stats.absorb(&read.stats);
        self.bad_slivers.extend(read.bad_slivers.iter().cloned());
        for failure in &read.failures {
            if !self.failures.iter().any(|known| known.node == failure.node) {
                self.failures.push(failure.clone());
            }
        }
    }
}

fn write_all(out: &mut dyn Write, data: &[u8]) -> Result<(), Error> {
    out.write_all(data).map_err(|source| Error::Io { path: "output".into(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_cut_into_full_chunks_and_its_end_is_known_with_the_last() {
        let cut = |len: usize, limit: usize| {
            let source: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
            let mut reader = std::io::Cursor::new(source.clone());
            let (mut pieces, mut ahead) = (Vec::new(), None);
            loop {
                let (data, next) = read_piece(&mut reader, ahead, limit).unwrap();
                pieces.push(data);
                if next.is_none() {
                    break;
                }
                ahead = next;
            }
            assert_eq!(pieces.concat(), source);
            pieces.iter().map(Vec::len).collect::<Vec<_>>()
        };
        assert_eq!(cut(0, 4), [0]);
        assert_eq!(cut(3, 4), [3]);
        assert_eq!(cut(4, 4), [4], "a source of exactly one chunk is one piece, like a file");
        assert_eq!(cut(5, 4), [4, 1]);
        assert_eq!(cut(12, 4), [4, 4, 4]);
    }
}
