//! Streaming a request body into chunk blobs: bytes are gathered into one buffer of at most
//! the chunk size (the last chunk of a body of declared length takes up to half a chunk more
//! rather than leave a small chunk after it); each full buffer is stored (sealed, encoded,
//! uploaded, certified) while the next one fills, and a request waits for that store before it
//! hands over the next buffer, so a request has at most two chunks in hand (one filling, one
//! being stored), and all requests together hold at most `max_chunk_buffers` (a semaphore
//! permit per buffer, given back when its chunk is certified). A chunk's encoding is counted
//! apart, in the gateway's encoding budget (`crate::trailing`): a chunk is encoded only once
//! its encoding fits beside those of the chunks still stored or still uploading to the nodes
//! outside their first quorum; and a request encodes a chunk only once the uploads of its
//! chunks before the last certified have ended, so it holds at most two encodings (one being
//! stored, one finishing its uploads). Stores of different requests never wait for one
//! another's uploads (`Client::store_blob_detached`). A gateway that encrypts seals each
//! full buffer into one age file before storing it ([`crate::encryption`]); the chunk's
//! recorded size is its plaintext's. A body smaller than `pack_threshold` is not a blob of
//! its own: it is sealed alone and stored as one piece of a packed blob ([`crate::packer`]).
//! The body's digests are checked before its last chunk is stored; an object whose body fails
//! them is never recorded.

use std::sync::Arc;

use futures_util::StreamExt as _;
use hyper::HeaderMap;
use morsa_client::StoreOptions;
use s3s::dto::StreamingBlob;
use s3s::{S3Error, S3ErrorCode};
use tokio::sync::OwnedSemaphorePermit;

use crate::GatewayError;
use crate::checksum::{Declared, StoredChecksum};
use crate::gateway::Gateway;
use crate::namespace::{ChunkRef, MAX_BODY_SIZE, Sealing};
use crate::reclaim::WriteGuard;
use crate::trailing::Trailing;

/// A body stored as chunk blobs, with its verified digests.
#[derive(Debug, Clone)]
pub struct Written {
    /// The certified chunk blobs, in order.
    pub chunks: Vec<ChunkRef>,
    /// Bytes in all.
    pub size: u64,
    /// Its MD5.
    pub md5: [u8; 16],
    /// The verified checksum the client gave, if any.
    pub checksum: Option<StoredChecksum>,
}

/// The chunk buffer being filled (up to `limit` bytes), with the permit that accounts for it.
struct Buffer {
    data: Vec<u8>,
    limit: usize,
    _permit: OwnedSemaphorePermit,
}

impl Gateway {
    /// Stores `body` as chunk blobs for the write `write` (which holds each chunk blob as
    /// it is certified, so no pass deletes it before the write ends). `declared` is checked
    /// against the body before its last chunk is stored; `trailers` yields the body's trailer
    /// once it is consumed; `content_length`, if given, must be the body's length.
    pub async fn write_body(
        &self,
        write: &WriteGuard,
        body: Option<StreamingBlob>,
        content_length: Option<i64>,
        declared: &Declared,
        trailers: impl FnOnce() -> Option<HeaderMap>,
    ) -> Result<Written, S3Error> {
        self.write_body_as(write, body, content_length, declared, trailers, false).await
    }

    /// [`Gateway::write_body`], storing the chunk blobs as permanent (nobody can delete them
    /// before they expire) if `permanent`: the blobs of a version under COMPLIANCE retention.
    pub async fn write_body_as(
        &self,
        write: &WriteGuard,
        body: Option<StreamingBlob>,
        content_length: Option<i64>,
        declared: &Declared,
        trailers: impl FnOnce() -> Option<HeaderMap>,
        permanent: bool,
    ) -> Result<Written, S3Error> {
        if content_length
            .and_then(|length| u64::try_from(length).ok())
            .is_some_and(|length| length > MAX_BODY_SIZE)
        {
            return Err(too_large());
        }
        let mut hasher = declared.hasher();
        let mut chunks = Vec::new();
        let mut size: u64 = 0;
        let mut buffer: Option<Buffer> = None;
        let total = content_length.and_then(|length| u64::try_from(length).ok());
        // Bytes of the body in the chunks before the buffer being filled.
        let mut before: u64 = 0;
        // The chunk being stored while the next one fills.
        let mut storing: Option<StoreTask> = None;
        // The uploads still running of the last chunk certified: the chunk after the one being
        // stored is encoded only once they end, so a request holds at most two encodings.
        let mut trailing: Option<Trailing> = None;
        if let Some(mut body) = body {
            while let Some(piece) = body.next().await {
                let mut piece = piece.map_err(body_error)?;
                hasher.update(&piece);
                size += u64::try_from(piece.len()).unwrap_or(u64::MAX);
                if size > MAX_BODY_SIZE {
                    return Err(too_large());
                }
                while !piece.is_empty() {
                    let full = buffer.as_ref().is_some_and(|buffer| buffer.data.len() == buffer.limit);
                    if full && let Some(done) = buffer.take() {
                        before += morsa_core::convert::saturating_u64(done.data.len());
                        let mut earlier = None;
                        if let Some(previous) = storing.take() {
                            let (chunk, uploads) = previous.finish().await?;
                            chunks.push(held(write, chunk)?);
                            earlier = trailing.replace(uploads);
                        }
                        storing = Some(self.start_store(done, permanent, earlier));
                    }
                    let current = match &mut buffer {
                        Some(current) => current,
                        None => buffer.insert(self.new_buffer(self.chunk_limit(total, before)).await?),
                    };
                    let room = current.limit - current.data.len();
                    let taken = piece.split_to(room.min(piece.len()));
                    current.data.extend_from_slice(&taken);
                }
            }
        }
        if let Some(expected) = content_length
            && u64::try_from(expected).ok() != Some(size)
        {
            return Err(S3Error::with_message(
                S3ErrorCode::IncompleteBody,
                format!("The body has {size} bytes; Content-Length said {expected}."),
            ));
        }
        let digests = hasher.finish();
        let trailer = trailers();
        let checksum = declared.verify(&digests, trailer.as_ref())?;
        if let Some(previous) = storing.take() {
            let (chunk, uploads) = previous.finish().await?;
            chunks.push(held(write, chunk)?);
            if let Some(earlier) = trailing.replace(uploads) {
                earlier.ended().await;
            }
        }
        if let Some(last) = buffer.take() {
            // A retained (permanent) body never shares a blob that is stored deletable.
            let chunk = match chunks.is_empty() && !permanent && last.data.len() < self.pack_threshold {
                true => self.store_packed(last).await?,
                false => self.store_chunk(last, permanent).await?.0,
            };
            chunks.push(held(write, chunk)?);
        }
        Ok(Written { chunks, size, md5: digests.md5, checksum })
    }

    /// The size of the chunk that starts `before` bytes into a body of `total` bytes (if
    /// declared): the rest of the body if it fits one last chunk of at most
    /// `last_chunk_limit` bytes (so a body a little over a chunk, e.g. a restic pack, is one
    /// blob, not a chunk and a small one), else `chunk_size`.
    fn chunk_limit(&self, total: Option<u64>, before: u64) -> usize {
        let rest =
            total.map(|total| total.saturating_sub(before)).and_then(|rest| usize::try_from(rest).ok());
        match rest {
            Some(rest) if rest > 0 && rest <= self.last_chunk_limit => rest,
            _ => self.chunk_size,
        }
    }

    async fn new_buffer(&self, limit: usize) -> Result<Buffer, S3Error> {
        let permit = Arc::clone(&self.buffers).acquire_owned().await.map_err(|_| {
            S3Error::with_message(S3ErrorCode::ServiceUnavailable, "The gateway is shutting down.")
        })?;
        Ok(Buffer { data: Vec::with_capacity(limit), limit, _permit: permit })
    }

    /// Starts storing a full buffer on a task of its own, once the `earlier` uploads have
    /// ended, so the request reads on meanwhile.
    fn start_store(&self, buffer: Buffer, permanent: bool, earlier: Option<Trailing>) -> StoreTask {
        let gateway = self.clone();
        StoreTask(tokio::spawn(async move {
            if let Some(earlier) = earlier {
                earlier.ended().await;
            }
            gateway.store_chunk(buffer, permanent).await
        }))
    }

    /// Stores one buffer as a chunk blob once its encoding fits the gateway's encoding budget;
    /// answers once it is certified, with its uploads still running, and gives the buffer's
    /// permit back then.
    async fn store_chunk(&self, buffer: Buffer, permanent: bool) -> Result<(ChunkRef, Trailing), S3Error> {
        let Buffer { data, _permit: permit, .. } = buffer;
        let options = StoreOptions { epochs: self.epochs, permanent, force: false };
        let size = morsa_core::convert::saturating_u64(data.len());
        let (data, sealing) = match self.seal {
            true => (self.sealed(data).await?, Sealing::Age),
            false => (data, Sealing::Plain),
        };
        let (stored, trailing) =
            crate::trailing::store_within(&self.client, &self.encodings, data, &options, ()).await?;
        // The buffer was consumed by the encoding; the encoding's own share of the budget is
        // held until the chunk's last uploads end.
        drop(permit);
        tracing::debug!(blob_id = %stored.blob_id, size, stored = stored.size, ?sealing, "chunk certified");
        Ok((ChunkRef { blob_id: stored.blob_id, size, sealing, packed: None }, trailing))
    }

    /// Stores a small body as one piece of a packed blob ([`crate::packer`]): sealed alone,
    /// then its buffer is given back and the packer holds its stored bytes.
    async fn store_packed(&self, buffer: Buffer) -> Result<ChunkRef, S3Error> {
        let Buffer { mut data, _permit: permit, .. } = buffer;
        let size = morsa_core::convert::saturating_u64(data.len());
        let (bytes, sealing) = match self.seal {
            true => (self.sealed(data).await?, Sealing::Age),
            false => {
                data.shrink_to_fit();
                (data, Sealing::Plain)
            }
        };
        drop(permit);
        let placed = self.packer.store(bytes).await?;
        tracing::debug!(blob_id = %placed.blob_id, size, ?placed.packed, ?sealing, "packed piece certified");
        Ok(ChunkRef { blob_id: placed.blob_id, size, sealing, packed: Some(placed.packed) })
    }

    /// `data` as one age file, sealed on a blocking thread.
    async fn sealed(&self, data: Vec<u8>) -> Result<Vec<u8>, S3Error> {
        let crypto = Arc::clone(&self.crypto);
        tokio::task::spawn_blocking(move || crypto.seal(&data))
            .await
            .map_err(|error| S3Error::internal_error(std::io::Error::other(error.to_string())))?
            .map_err(|error| GatewayError::from(morsa_client::Error::Crypt(error)).into())
    }
}

/// A chunk being stored by a task of its own. Dropping it (the request failed or went away)
/// stops the store: a chunk no record will name is not worth finishing.
struct StoreTask(tokio::task::JoinHandle<Result<(ChunkRef, Trailing), S3Error>>);

impl StoreTask {
    /// The stored chunk, once certified, with its uploads still running.
    async fn finish(mut self) -> Result<(ChunkRef, Trailing), S3Error> {
        (&mut self.0)
            .await
            .map_err(|error| S3Error::internal_error(std::io::Error::other(error.to_string())))?
    }
}

impl Drop for StoreTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `chunk`, once `write` holds its blob.
fn held(write: &WriteGuard, chunk: ChunkRef) -> Result<ChunkRef, S3Error> {
    write.hold([chunk.blob_id])?;
    Ok(chunk)
}

/// A body above S3's largest single PUT or part.
fn too_large() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::EntityTooLarge,
        format!("A single PUT or part has at most {MAX_BODY_SIZE} bytes: use a multipart upload."),
    )
}

/// What a failing body stream means to the client: s3s's own checks (the payload's SHA-256,
/// chunk signatures) or a body cut short.
fn body_error(error: s3s::StdError) -> S3Error {
    let text = error.to_string();
    let code = if text.contains("Sha256Mismatch") {
        S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into())
    } else if text.contains("SignatureMismatch") {
        S3ErrorCode::SignatureDoesNotMatch
    } else {
        S3ErrorCode::IncompleteBody
    };
    let mut error = S3Error::with_message(code, format!("Reading the body failed: {text}"));
    error.set_status_code(hyper::StatusCode::BAD_REQUEST);
    error
}
