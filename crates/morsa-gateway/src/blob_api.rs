//! The Walrus-style HTTP API in the gateway process, so scripts written for Walrus's
//! publisher and aggregator work against Morsa: `PUT /v1/blobs?epochs=N&permanent=true` stores
//! the body as one blob (paid by the gateway's account) and answers `newlyCreated` or
//! `alreadyCertified` JSON as Walrus's publisher does; `GET /v1/blobs/BLOB_ID` streams a blob
//! back (a `Range` is a Morsa range read, answered 206); `HEAD` says its size.
//!
//! Who may store is `[blob_api]` in `gateway.toml` ([`BlobApiConfig`]): loopback clients by
//! default, optionally with a bearer token. A body is at most one chunk (`chunk_size`) and is
//! held in one of the gateway's chunk buffers while it is stored, so the API shares the S3
//! side's memory bound.
//!
//! Unlike S3 objects, these blobs are stored as given, not encrypted by the gateway: Walrus's
//! API is content addressed (storing the same bytes again answers `alreadyCertified` with the
//! same blob ID, and scripts compare blob IDs), and a blob ID read here may be anyone's.
//! Encrypt before `PUT` (e.g. with `age`) to keep such a blob private.

mod config;
mod error;
mod range;

use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{
    ACCEPT_RANGES, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, EXPECT, RANGE,
};
use hyper::http::request::Parts;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use morsa_client::{Client, StoreOptions, StoreOutcome, StoredHow};
use redstuff::BlobId;
use tokio::sync::Semaphore;

pub use config::{BlobApiConfig, Publisher};
pub use error::BlobApiError;
pub use range::{ByteRange, RangeError};

use crate::Gateway;
use crate::namespace::{ChunkRef, Sealing};
use crate::reader::{ChunkReader, Piece};

/// Epochs a store pays for when `epochs` is not given (Walrus's publisher's default).
const DEFAULT_EPOCHS: u32 = 1;

/// Most bytes of a refused body read and dropped before the error is answered.
const DRAIN_LIMIT: u64 = 16 << 20;

/// What a blob API request was, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOperation {
    /// `PUT /v1/blobs`.
    StoreBlob,
    /// `GET /v1/blobs/BLOB_ID`.
    ReadBlob,
    /// `HEAD /v1/blobs/BLOB_ID`.
    HeadBlob,
    /// Anything else under `/v1` (answered with an error).
    Unrouted,
}

impl BlobOperation {
    /// The operation's name in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::StoreBlob => "StoreBlob",
            Self::ReadBlob => "ReadBlob",
            Self::HeadBlob => "HeadBlob",
            Self::Unrouted => "BlobApiUnrouted",
        }
    }
}

/// The blob API over the gateway's Morsa client.
#[derive(Debug)]
pub struct BlobApi {
    client: Arc<Client>,
    config: BlobApiConfig,
    /// Largest body stored, and the size of the pieces a read is streamed in.
    max_body: u64,
    /// The gateway's chunk buffers: a store holds one until its blob is certified.
    buffers: Arc<Semaphore>,
    /// The gateway's encoding budget.
    encodings: Arc<crate::trailing::EncodingBudget>,
}

impl BlobApi {
    /// The API of `gateway`, configured by `config`.
    pub fn new(gateway: &Gateway, config: BlobApiConfig) -> Self {
        Self {
            client: Arc::clone(&gateway.client),
            config,
            max_body: morsa_core::convert::saturating_u64(gateway.chunk_size),
            buffers: Arc::clone(&gateway.buffers),
            encodings: Arc::clone(&gateway.encodings),
        }
    }

    /// Whether `path` belongs to this API rather than to S3 (no bucket is named `v1`: bucket
    /// names have at least three characters).
    pub fn handles(path: &str) -> bool {
        path == "/v1" || path.starts_with("/v1/")
    }

    /// Answers `request` from a client at `peer`; every failure is a JSON error.
    pub async fn handle<B>(&self, request: Request<B>, peer: IpAddr) -> (BlobOperation, Response<s3s::Body>)
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let (parts, mut body) = request.into_parts();
        let path = parts.uri.path().to_string();
        let (operation, answer) = match path.trim_end_matches('/').strip_prefix("/v1/blobs") {
            Some("") => match parts.method {
                Method::PUT => (BlobOperation::StoreBlob, self.store(&parts, &mut body, peer).await),
                _ => (BlobOperation::Unrouted, Err(not_allowed(&parts, "PUT"))),
            },
            Some(id) if id.starts_with('/') && !id[1..].contains('/') => {
                let id = &id[1..];
                match parts.method {
                    Method::GET => (BlobOperation::ReadBlob, self.read(id, &parts.headers, false).await),
                    Method::HEAD => (BlobOperation::HeadBlob, self.read(id, &parts.headers, true).await),
                    _ => (BlobOperation::Unrouted, Err(not_allowed(&parts, "GET, HEAD"))),
                }
            }
            _ => (BlobOperation::Unrouted, Err(BlobApiError::NoRoute { path })),
        };
        let response = match answer {
            Ok(response) => response,
            Err(error) => {
                // A client that waits for `100 Continue` sends no body unless it is read.
                if !(operation == BlobOperation::StoreBlob && expects_continue(&parts.headers)) {
                    drain(&mut body).await;
                }
                let (status, ..) = error.code();
                if status.is_server_error() {
                    tracing::error!(%error, operation = operation.name(), "blob api request failed");
                }
                error.into_response()
            }
        };
        (operation, response)
    }

    /// `PUT /v1/blobs`: the body stored as one blob.
    async fn store<B>(
        &self,
        parts: &Parts,
        body: &mut B,
        peer: IpAddr,
    ) -> Result<Response<s3s::Body>, BlobApiError>
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        authorise(&self.config, &parts.headers, peer)?;
        let options = store_options(parts.uri.query().unwrap_or(""))?;
        let limit = self.max_body;
        let declared = parts.headers.get(CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse().ok());
        if declared.is_some_and(|declared: u64| declared > limit) {
            return Err(BlobApiError::TooLarge { limit });
        }
        // The semaphore is never closed; holding a permit bounds the bodies held at once.
        let buffer = Arc::clone(&self.buffers)
            .acquire_owned()
            .await
            .map_err(|error| BlobApiError::Body(error.to_string()))?;
        let data = collect(body, limit).await?;
        let (outcome, _) =
            crate::trailing::store_within(&self.client, &self.encodings, data, &options, ()).await?;
        // The body was consumed by its encoding, which the encoding budget counts.
        drop(buffer);
        Ok(json(StatusCode::OK, &store_answer(&outcome, &options)))
    }

    /// `GET` (or `HEAD`, `head_only`) `/v1/blobs/BLOB_ID`, whole or one range.
    async fn read(
        &self,
        id: &str,
        headers: &HeaderMap,
        head_only: bool,
    ) -> Result<Response<s3s::Body>, BlobApiError> {
        let blob_id: BlobId = id.parse().map_err(|error: redstuff::BlobIdParseError| {
            BlobApiError::BadBlobId { given: id.to_string(), reason: error.to_string() }
        })?;
        let range = match headers.get(RANGE) {
            None => None,
            Some(value) => {
                let header = String::from_utf8_lossy(value.as_bytes()).into_owned();
                let parsed = value.to_str().map_err(|_| RangeError::Malformed).and_then(ByteRange::parse);
                Some(
                    parsed
                        .map(|range| (header.clone(), range))
                        .map_err(|source| BlobApiError::BadRange { header, source })?,
                )
            }
        };
        let size = self.client.blob_size(&blob_id).await?;
        let (status, bytes) = match range {
            None => (StatusCode::OK, 0..size),
            Some((header, range)) => (
                StatusCode::PARTIAL_CONTENT,
                range.resolve(size).map_err(|source| BlobApiError::BadRange { header, source })?,
            ),
        };
        let body = match head_only {
            true => s3s::Body::empty(),
            false => {
                let pieces = segments(blob_id, size, bytes.clone(), self.max_body);
                // Blobs of this API are stored as given: no keys are needed to read them.
                let reader = ChunkReader { client: Arc::clone(&self.client), crypto: Arc::default() };
                s3s::Body::from(crate::reader::pieces_body(reader, pieces).await?)
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, "application/octet-stream".parse().expect("a valid header value"));
        headers.insert(ACCEPT_RANGES, "bytes".parse().expect("a valid header value"));
        headers.insert(CONTENT_LENGTH, (bytes.end - bytes.start).into());
        if let Ok(etag) = format!("\"{blob_id}\"").parse() {
            headers.insert(ETAG, etag);
        }
        if status == StatusCode::PARTIAL_CONTENT
            && let Ok(value) = format!("bytes {}-{}/{size}", bytes.start, bytes.end - 1).parse()
        {
            headers.insert(CONTENT_RANGE, value);
        }
        Ok(response)
    }
}

/// Refuses a store `config` does not allow from `peer` with `headers`.
fn authorise(config: &BlobApiConfig, headers: &HeaderMap, peer: IpAddr) -> Result<(), BlobApiError> {
    match config.publisher {
        Publisher::Off => return Err(BlobApiError::PublisherOff),
        Publisher::Loopback if !peer.is_loopback() => return Err(BlobApiError::NotLoopback(peer)),
        Publisher::Loopback | Publisher::Anyone => {}
    }
    let Some(token) = &config.token else { return Ok(()) };
    let given = headers.get(AUTHORIZATION).and_then(|value| value.to_str().ok()?.strip_prefix("Bearer "));
    match given.is_some_and(|given| same_bytes(given.as_bytes(), token.as_bytes())) {
        true => Ok(()),
        false => Err(BlobApiError::BadToken),
    }
}

fn not_allowed(parts: &Parts, allowed: &'static str) -> BlobApiError {
    BlobApiError::MethodNotAllowed {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        allowed,
    }
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers.get(EXPECT).is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Reads and drops what is left of a refused request's body (at most [`DRAIN_LIMIT`] bytes),
/// so that a client still sending it reads the error instead of a reset connection.
async fn drain<B>(body: &mut B)
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    let mut left = DRAIN_LIMIT;
    while left > 0 {
        match body.frame().await {
            Some(Ok(frame)) => {
                let len = frame.data_ref().map_or(0, |data| morsa_core::convert::saturating_u64(data.len()));
                left = left.saturating_sub(len);
            }
            Some(Err(_)) | None => return,
        }
    }
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_bytes(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// The store options a query asks for: `epochs` (default 1), `permanent=true` or
/// `deletable=true` (the default).
fn store_options(query: &str) -> Result<StoreOptions, BlobApiError> {
    let mut options = StoreOptions { epochs: DEFAULT_EPOCHS, permanent: false, force: false };
    let mut deletable = false;
    let bad = |name: &str, reason: &str| BlobApiError::BadQuery { name: name.into(), reason: reason.into() };
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let flag = || match value {
            "true" | "" => Ok(true),
            "false" => Ok(false),
            _ => Err(bad(name, "expected true or false")),
        };
        match name {
            "epochs" => {
                options.epochs = value.parse().map_err(|_| bad(name, "expected a number of epochs"))?;
            }
            "permanent" => options.permanent = flag()?,
            "deletable" => deletable = flag()?,
            _ => return Err(bad(name, "not supported (this API takes epochs, permanent and deletable)")),
        }
    }
    if options.permanent && deletable {
        return Err(bad("permanent", "a blob cannot be both permanent and deletable"));
    }
    Ok(options)
}

/// Reads a body of at most `limit` bytes.
async fn collect<B>(body: &mut B, limit: u64) -> Result<Vec<u8>, BlobApiError>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut data = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| BlobApiError::Body(error.to_string()))?;
        if let Ok(bytes) = frame.into_data() {
            if morsa_core::convert::saturating_u64(data.len() + bytes.len()) > limit {
                return Err(BlobApiError::TooLarge { limit });
            }
            data.extend_from_slice(&bytes);
        }
    }
    Ok(data)
}

/// The pieces bytes `range` of a blob of `size` bytes is read in: at most `segment` bytes
/// each, so a large blob streams out piece by piece (a whole small blob is one whole read).
fn segments(blob_id: BlobId, size: u64, range: Range<u64>, segment: u64) -> Vec<Piece> {
    let chunk = ChunkRef { blob_id, size, sealing: Sealing::Plain, packed: None };
    let mut pieces = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let end = range.end.min(start.saturating_add(segment.max(1)));
        pieces.push(Piece { chunk: chunk.clone(), range: start..end });
        start = end;
    }
    pieces
}

/// The publisher's answer, in Walrus's shape (with the fields Morsa has).
fn store_answer(outcome: &StoreOutcome, options: &StoreOptions) -> serde_json::Value {
    let blob_id = outcome.blob_id.to_string();
    match &outcome.how {
        StoredHow::NewlyCertified { object } => serde_json::json!({
            "newlyCreated": {
                "blobObject": {
                    "id": object.to_string(),
                    "blobId": blob_id,
                    "size": outcome.size,
                    "deletable": !options.permanent,
                    "storage": {
                        "startEpoch": outcome.end_epoch.0.saturating_sub(options.epochs),
                        "endEpoch": outcome.end_epoch.0,
                        "storageSize": outcome.encoded_size,
                    },
                },
                "resourceOperation": {
                    "registerFromScratch": {"encodedLength": outcome.encoded_size, "epochsAhead": options.epochs},
                },
            }
        }),
        StoredHow::AlreadyCertified { object } => serde_json::json!({
            "alreadyCertified": {"blobId": blob_id, "object": object.to_string(), "endEpoch": outcome.end_epoch.0}
        }),
    }
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<s3s::Body> {
    let mut response = Response::new(s3s::Body::from(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, "application/json".parse().expect("a valid header value"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_queries_map_to_store_options() {
        let options = |query| store_options(query).map(|options| (options.epochs, options.permanent));
        assert_eq!(options("").unwrap(), (1, false));
        assert_eq!(options("epochs=5&permanent=true").unwrap(), (5, true));
        assert_eq!(options("epochs=2&deletable=true").unwrap(), (2, false));
        assert_eq!(options("permanent").unwrap(), (1, true));
        for bad in
            ["epochs=x", "epochs=-1", "permanent=yes", "send_object_to=0x1", "permanent=true&deletable=true"]
        {
            let error = options(bad).unwrap_err();
            assert!(matches!(error, BlobApiError::BadQuery { .. }), "{bad}: {error}");
        }
    }

    #[test]
    fn large_reads_stream_in_segments_and_small_ones_are_one_whole_read() {
        let blob_id = BlobId::from_root(1, &[7; 32]);
        let ranges = |size, range, segment| {
            segments(blob_id, size, range, segment).into_iter().map(|piece| piece.range).collect::<Vec<_>>()
        };
        assert_eq!(ranges(10, 0..10, 64), vec![0..10]);
        assert_eq!(ranges(10, 0..10, 4), [0..4, 4..8, 8..10]);
        assert_eq!(ranges(10, 3..9, 4), [3..7, 7..9]);
        assert!(ranges(0, 0..0, 4).is_empty());
    }

    #[test]
    fn stores_are_allowed_by_address_and_token_as_configured() {
        let (local, remote): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "192.0.2.7".parse().unwrap());
        let config =
            |publisher, token: Option<&str>| BlobApiConfig { publisher, token: token.map(String::from) };
        let bearer = |token: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
            headers
        };
        let reason = |result: Result<(), BlobApiError>| result.map_err(|error| error.code().2);
        let none = HeaderMap::new();
        let default = BlobApiConfig::default();
        assert_eq!(reason(authorise(&default, &none, local)), Ok(()));
        assert_eq!(reason(authorise(&default, &none, "::1".parse().unwrap())), Ok(()));
        assert_eq!(reason(authorise(&default, &none, remote)), Err("PUBLISHER_LOOPBACK_ONLY"));
        assert_eq!(reason(authorise(&config(Publisher::Off, None), &none, local)), Err("PUBLISHER_OFF"));
        assert_eq!(reason(authorise(&config(Publisher::Anyone, None), &none, remote)), Ok(()));
        let guarded = config(Publisher::Anyone, Some("s3cret"));
        assert_eq!(reason(authorise(&guarded, &none, remote)), Err("BAD_TOKEN"));
        assert_eq!(reason(authorise(&guarded, &bearer("guess!"), remote)), Err("BAD_TOKEN"));
        assert_eq!(reason(authorise(&guarded, &bearer("s3cret"), remote)), Ok(()));
        let loopback_guarded = config(Publisher::Loopback, Some("s3cret"));
        assert_eq!(
            reason(authorise(&loopback_guarded, &bearer("s3cret"), remote)),
            Err("PUBLISHER_LOOPBACK_ONLY")
        );
    }

    #[test]
    fn only_the_right_token_compares_equal() {
        assert!(same_bytes(b"secret", b"secret"));
        assert!(!same_bytes(b"secreT", b"secret"));
        assert!(!same_bytes(b"secret!", b"secret"));
        assert!(!same_bytes(b"", b"secret"));
    }
}
