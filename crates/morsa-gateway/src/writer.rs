//! Streaming a request body into chunk blobs: bytes are gathered into one buffer of at most
//! the chunk size; each full buffer is stored (encoded, uploaded, certified) before the next
//! is filled, so a request holds one chunk at a time, and all requests together hold at most
//! `max_chunk_buffers` (a semaphore permit per buffer). A gateway that encrypts seals each
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
use crate::namespace::{ChunkRef, Sealing};

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

/// The chunk buffer being filled, with the permit that accounts for it.
struct Buffer {
    data: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl Gateway {
    /// Stores `body` as chunk blobs. `declared` is checked against the body before its last
    /// chunk is stored; `trailers` yields the body's trailer once it is consumed;
    /// `content_length`, if given, must be the body's length.
    pub async fn write_body(
        &self,
        body: Option<StreamingBlob>,
        content_length: Option<i64>,
        declared: &Declared,
        trailers: impl FnOnce() -> Option<HeaderMap>,
    ) -> Result<Written, S3Error> {
        self.write_body_as(body, content_length, declared, trailers, false).await
    }

    /// [`Gateway::write_body`], storing the chunk blobs as permanent (nobody can delete them
    /// before they expire) if `permanent`: the blobs of a version under COMPLIANCE retention.
    pub async fn write_body_as(
        &self,
        body: Option<StreamingBlob>,
        content_length: Option<i64>,
        declared: &Declared,
        trailers: impl FnOnce() -> Option<HeaderMap>,
        permanent: bool,
    ) -> Result<Written, S3Error> {
        let mut hasher = declared.hasher();
        let mut chunks = Vec::new();
        let mut size: u64 = 0;
        let mut buffer: Option<Buffer> = None;
        if let Some(mut body) = body {
            while let Some(piece) = body.next().await {
                let mut piece = piece.map_err(body_error)?;
                hasher.update(&piece);
                size += u64::try_from(piece.len()).unwrap_or(u64::MAX);
                while !piece.is_empty() {
                    let full = buffer.as_ref().is_some_and(|buffer| buffer.data.len() == self.chunk_size);
                    if full && let Some(done) = buffer.take() {
                        chunks.push(self.store_chunk(done.data, permanent).await?);
                    }
                    let current = match &mut buffer {
                        Some(current) => current,
                        None => buffer.insert(self.new_buffer().await?),
                    };
                    let room = self.chunk_size - current.data.len();
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
        if let Some(last) = buffer.take() {
            // A retained (permanent) body never shares a blob that is stored deletable.
            let chunk = match chunks.is_empty() && !permanent && last.data.len() < self.pack_threshold {
                true => self.store_packed(last).await?,
                false => self.store_chunk(last.data, permanent).await?,
            };
            chunks.push(chunk);
        }
        Ok(Written { chunks, size, md5: digests.md5, checksum })
    }

    async fn new_buffer(&self) -> Result<Buffer, S3Error> {
        let permit = Arc::clone(&self.buffers).acquire_owned().await.map_err(|_| {
            S3Error::with_message(S3ErrorCode::ServiceUnavailable, "The gateway is shutting down.")
        })?;
        Ok(Buffer { data: Vec::with_capacity(self.chunk_size), _permit: permit })
    }

    async fn store_chunk(&self, data: Vec<u8>, permanent: bool) -> Result<ChunkRef, S3Error> {
        let options = StoreOptions { epochs: self.epochs, permanent, force: false };
        let size = morsa_core::convert::saturating_u64(data.len());
        let (data, sealing) = match self.seal {
            true => (self.sealed(data).await?, Sealing::Age),
            false => (data, Sealing::Plain),
        };
        let stored = self.client.store_blob(data, &options).await.map_err(GatewayError::from)?;
        tracing::debug!(blob_id = %stored.blob_id, size, stored = stored.size, ?sealing, "chunk certified");
        Ok(ChunkRef { blob_id: stored.blob_id, size, sealing, packed: None })
    }

    /// Stores a small body as one piece of a packed blob ([`crate::packer`]): sealed alone,
    /// then its buffer is given back and the packer holds its stored bytes.
    async fn store_packed(&self, buffer: Buffer) -> Result<ChunkRef, S3Error> {
        let Buffer { mut data, _permit: permit } = buffer;
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
