//! Streaming an object (or a range of it) back: the chunks the range overlaps are read one
//! after the other, a whole chunk as a blob read and a part of one as a Morsa range read (no
//! whole-object fetch for a range). A sealed chunk ([`Sealing::Age`]) is opened with the
//! gateway's keys: read whole and decrypted, or, for a part of it, only the age segments
//! covering the part are fetched and opened (`morsa-client`'s segment range read). A chunk
//! that is one piece of a packed blob ([`crate::packer`]) is read as a range of that blob:
//! only its own bytes, opened alone when sealed. The first
//! piece is read before the response starts, so a failure to read surfaces as an S3 error;
//! later pieces are read while earlier ones are sent.

use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use morsa_client::crypt::AGE_MAGIC;
use morsa_client::{Client, CryptError, Crypto};
use s3s::S3Error;
use s3s::dto::StreamingBlob;
use tokio::sync::mpsc;

use crate::GatewayError;
use crate::namespace::{ChunkRef, Sealing};

/// One chunk, or the part of it a range needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The chunk.
    pub chunk: ChunkRef,
    /// The bytes of it wanted.
    pub range: Range<u64>,
}

/// The pieces of `chunks` that cover bytes `range` of the object, in order.
pub fn pieces(chunks: &[ChunkRef], range: Range<u64>) -> Vec<Piece> {
    let mut start = 0;
    let mut pieces = Vec::new();
    if range.is_empty() {
        return pieces;
    }
    for chunk in chunks {
        let end = start + chunk.size;
        if range.start < end && start < range.end {
            let from = range.start.max(start) - start;
            let to = range.end.min(end) - start;
            pieces.push(Piece { chunk: chunk.clone(), range: from..to });
        }
        start = end;
    }
    pieces
}

/// What chunks are read with: the Morsa client, and the keys sealed chunks open with (the
/// client's own, for its segment range reads, are the same).
#[derive(Debug, Clone)]
pub struct ChunkReader {
    /// The client.
    pub client: Arc<Client>,
    /// The keys.
    pub crypto: Arc<Crypto>,
}

impl ChunkReader {
    /// Reads one piece, checking it has the expected length.
    async fn read_piece(&self, piece: &Piece) -> Result<Bytes, GatewayError> {
        let blob_id = &piece.chunk.blob_id;
        let whole = piece.range.start == 0 && piece.range.end == piece.chunk.size;
        let data = match (piece.chunk.packed, piece.chunk.sealing, whole) {
            (None, Sealing::Plain, true) => self.client.read_blob(blob_id).await?.data,
            (None, Sealing::Plain, false) => {
                self.client.read_blob_range(blob_id, piece.range.clone()).await?.data
            }
            (None, Sealing::Age, true) => {
                self.open(piece, self.client.read_blob(blob_id).await?.data).await?
            }
            // Only the header and the segments covering the range are fetched.
            (None, Sealing::Age, false) => {
                self.client.read_opened_range(blob_id, piece.range.clone()).await?.data
            }
            // A piece of a packed blob: only its own bytes are fetched.
            (Some(packed), Sealing::Plain, _) => {
                let range = packed.offset + piece.range.start..packed.offset + piece.range.end;
                self.client.read_blob_range(blob_id, range).await?.data
            }
            // A sealed piece is an age file of its own (small: it is fetched and opened whole).
            (Some(packed), Sealing::Age, _) => {
                let sealed = self.client.read_blob_range(blob_id, packed.range()).await?.data;
                let opened = self.open(piece, sealed).await?;
                let wanted = (usize::try_from(piece.range.start), usize::try_from(piece.range.end));
                match wanted {
                    (Ok(from), Ok(to)) if from <= to && to <= opened.len() => opened[from..to].to_vec(),
                    _ => {
                        let got = morsa_core::convert::saturating_u64(opened.len());
                        return Err(GatewayError::ChunkLength {
                            blob_id: *blob_id,
                            got,
                            expected: piece.chunk.size,
                        });
                    }
                }
            }
        };
        let expected = piece.range.end - piece.range.start;
        if u64::try_from(data.len()).ok() != Some(expected) {
            let got = morsa_core::convert::saturating_u64(data.len());
            return Err(GatewayError::ChunkLength { blob_id: *blob_id, got, expected });
        }
        Ok(Bytes::from(data))
    }

    /// The plaintext of a sealed chunk read whole, opened on a blocking thread. Its bytes
    /// must be an age file: a chunk recorded as sealed is never passed on as it is.
    async fn open(&self, piece: &Piece, sealed: Vec<u8>) -> Result<Vec<u8>, GatewayError> {
        let blob_id = piece.chunk.blob_id;
        if !sealed.starts_with(AGE_MAGIC) {
            let reason = "the namespace records it as sealed and it is not an age file".into();
            return Err(morsa_client::Error::Crypt(CryptError::Damaged { blob_id, reason }).into());
        }
        let crypto = Arc::clone(&self.crypto);
        tokio::task::spawn_blocking(move || crypto.open(&blob_id, sealed))
            .await
            .map_err(|error| {
                let reason = format!("decryption stopped: {error}");
                morsa_client::Error::Crypt(CryptError::Damaged { blob_id, reason })
            })?
            .map_err(|error| morsa_client::Error::Crypt(error).into())
    }
}

/// The body of a GET: `pieces` read in order. The first is read now (its failure is the
/// request's error); the rest by a task that stays one piece ahead of the client.
pub async fn object_body(reader: ChunkReader, pieces: Vec<Piece>) -> Result<StreamingBlob, S3Error> {
    Ok(pieces_body(reader, pieces).await?)
}

/// [`object_body`] with the gateway's own error, for APIs other than S3.
pub async fn pieces_body(reader: ChunkReader, pieces: Vec<Piece>) -> Result<StreamingBlob, GatewayError> {
    let mut pieces = pieces.into_iter();
    let Some(first) = pieces.next() else { return Ok(StreamingBlob::wrap(ChannelBody::empty())) };
    let first = reader.read_piece(&first).await?;
    let (sender, receiver) = mpsc::channel(1);
    tokio::spawn(async move {
        if sender.send(Ok(first)).await.is_err() {
            return;
        }
        for piece in pieces {
            let read = reader.read_piece(&piece).await.map_err(|error| {
                tracing::error!(%error, blob_id = %piece.chunk.blob_id, "reading an object failed mid-body");
                std::io::Error::other(error.to_string())
            });
            let failed = read.is_err();
            // The client went away: stop reading.
            if sender.send(read).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(StreamingBlob::wrap(ChannelBody { receiver: Some(receiver) }))
}

/// A body fed by a channel.
struct ChannelBody {
    receiver: Option<mpsc::Receiver<Result<Bytes, std::io::Error>>>,
}

impl ChannelBody {
    fn empty() -> Self {
        Self { receiver: None }
    }
}

impl futures_util::Stream for ChannelBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.receiver {
            Some(receiver) => receiver.poll_recv(cx),
            None => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use redstuff::BlobId;

    use super::*;

    fn chunk(seed: u8, size: u64) -> ChunkRef {
        ChunkRef { blob_id: BlobId::from_root(1, &[seed; 32]), size, sealing: Sealing::Age, packed: None }
    }

    #[test]
    fn a_range_maps_to_the_parts_of_the_chunks_it_overlaps() {
        let chunks = [chunk(1, 10), chunk(2, 20), chunk(3, 5)];
        let parts =
            |range| pieces(&chunks, range).into_iter().map(|p| (p.chunk.size, p.range)).collect::<Vec<_>>();
        assert_eq!(parts(0..35), [(10, 0..10), (20, 0..20), (5, 0..5)]);
        assert_eq!(parts(5..15), [(10, 5..10), (20, 0..5)]);
        assert_eq!(parts(10..30), [(20, 0..20)]);
        assert_eq!(parts(34..35), [(5, 4..5)]);
        assert!(parts(7..7).is_empty());
    }
}
