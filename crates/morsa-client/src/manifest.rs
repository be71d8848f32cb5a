//! Files larger than one chunk: stored as chunk blobs plus a small manifest blob naming them,
//! read back as one file.
//!
//! When the client encrypts ([`crate::crypt`]), each chunk blob and the manifest blob are
//! each one age file; the manifest's sizes are those of the plaintext.
//!
//! A manifest blob is the bytes [`MAGIC`] followed by a JSON [`Manifest`]. A file that is
//! stored whole is never one that starts with [`MAGIC`] (such a file is stored as a
//! one-chunk manifest instead), so a blob stored by Morsa that starts with [`MAGIC`] is always
//! a manifest. A blob from elsewhere that starts with it but does not parse as one is read as
//! it is.

use std::io::{Read, Write};
use std::ops::Range;
use std::path::Path;

use redstuff::BlobId;
use serde::{Deserialize, Serialize};

use crate::read::ReadLog;
use crate::{Client, Error, Progress, ReadOutcome, StoreOptions, StoreOutcome, StoredHow};

/// First bytes of every manifest blob.
pub const MAGIC: &[u8] = b"morsa-manifest-v1\n";

/// Largest manifest read (a 1 TiB file in 1 GiB chunks needs about 100 KiB).
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// The chunks of a file, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Size of the whole file.
    pub size: u64,
    /// The chunks, in file order.
    pub chunks: Vec<Chunk>,
}

/// One chunk of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    /// The chunk's blob.
    pub blob_id: BlobId,
    /// Its size.
    pub size: u64,
}

impl Manifest {
    /// The manifest's blob bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(serde_json::to_vec(self).expect("manifests serialize"));
        bytes
    }

    /// Parses a blob that starts with [`MAGIC`]; checks that the chunk sizes add up.
    pub fn parse(blob_id: &BlobId, bytes: &[u8]) -> Result<Self, Error> {
        let bad = |reason: String| Error::Manifest { blob_id: *blob_id, reason };
        let body =
            bytes.strip_prefix(MAGIC).ok_or_else(|| bad("it does not start with the manifest tag".into()))?;
        let manifest: Manifest = serde_json::from_slice(body).map_err(|error| bad(error.to_string()))?;
        let sum = manifest.chunks.iter().try_fold(0u64, |sum, chunk| sum.checked_add(chunk.size));
        if sum != Some(manifest.size) {
            return Err(bad(format!("its chunks do not add up to its size {}", manifest.size)));
        }
        Ok(manifest)
    }

    /// The chunks overlapping bytes `range` of the file, each with the part of it needed.
    fn pieces(&self, range: Range<u64>) -> Vec<(&Chunk, Range<u64>)> {
        let mut start = 0;
        let mut pieces = Vec::new();
        if range.is_empty() {
            return pieces;
        }
        for chunk in &self.chunks {
            let end = start + chunk.size;
            if range.start < end && start < range.end {
                let from = range.start.max(start) - start;
                let to = range.end.min(end) - start;
                pieces.push((chunk, from..to));
            }
            start = end;
        }
        pieces
    }
}

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
        let mut reader =
            self.reader.take().ok_or_else(|| Error::Internal("a source read twice at once".into()))?;
        let (ahead, limit) = (self.next.take(), self.chunk_size);
        let (reader, read) = tokio::task::spawn_blocking(move || {
            let read = read_piece(&mut reader, ahead, limit);
            (reader, read)
        })
        .await
        .map_err(|error| Error::Internal(format!("the reading thread panicked: {error}")))?;
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
    /// `out`; a manifest's chunks are read one after the other. Answers the file's size.
    pub async fn read_file(&self, blob_id: &BlobId, out: &mut dyn Write) -> Result<ReadSummary, Error> {
        let mut first = self.read_blob(blob_id).await?;
        first.data = self.opened(blob_id, first.data).await?;
        let mut summary = ReadSummary::default();
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
            let mut read = self.read_blob(&chunk.blob_id).await?;
            read.data = self.opened(&chunk.blob_id, read.data).await?;
            if u64::try_from(read.data.len()).ok() != Some(chunk.size) {
                return Err(Error::Manifest {
                    blob_id: *blob_id,
                    reason: format!(
                        "chunk {index} has {} bytes, the manifest says {}",
                        read.data.len(),
                        chunk.size
                    ),
                });
            }
            summary.absorb(&read);
            write_all(out, &read.data)?;
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
        let mut outcome = ReadOutcome { data: Vec::new(), bad_slivers: Vec::new(), failures: Vec::new() };
        for (chunk, part) in manifest.pieces(range) {
            let read = self.read_opened_range(&chunk.blob_id, part).await?;
            outcome.data.extend(read.data);
            outcome.bad_slivers.extend(read.bad_slivers);
            outcome.failures.extend(read.failures);
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
}

impl ReadSummary {
    fn absorb(&mut self, read: &ReadOutcome) {
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

    fn id(seed: u8) -> BlobId {
        BlobId::from_root(1, &[seed; 32])
    }

    #[test]
    fn a_manifest_round_trips_and_its_sizes_must_add_up() {
        let manifest = Manifest {
            size: 30,
            chunks: vec![Chunk { blob_id: id(1), size: 10 }, Chunk { blob_id: id(2), size: 20 }],
        };
        let bytes = manifest.to_bytes();
        assert!(bytes.starts_with(MAGIC));
        assert_eq!(Manifest::parse(&id(9), &bytes).unwrap(), manifest);
        let wrong = Manifest { size: 31, ..manifest };
        assert!(Manifest::parse(&id(9), &wrong.to_bytes()).unwrap_err().to_string().contains("add up"));
        assert!(Manifest::parse(&id(9), b"morsa-manifest-v1\n{").is_err());
    }

    #[test]
    fn a_range_maps_to_the_parts_of_the_chunks_it_overlaps() {
        let manifest = Manifest {
            size: 30,
            chunks: vec![Chunk { blob_id: id(1), size: 10 }, Chunk { blob_id: id(2), size: 20 }],
        };
        let pieces: Vec<_> = manifest.pieces(5..15).into_iter().map(|(c, r)| (c.blob_id, r)).collect();
        assert_eq!(pieces, vec![(id(1), 5..10), (id(2), 0..5)]);
        let pieces: Vec<_> = manifest.pieces(10..30).into_iter().map(|(c, r)| (c.blob_id, r)).collect();
        assert_eq!(pieces, vec![(id(2), 0..20)]);
        assert!(manifest.pieces(7..7).is_empty());
    }

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
