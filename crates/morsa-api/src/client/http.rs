//! What both clients share: the base URL, the timeout around each call, bounded reading of
//! answers, and the decoding of error bodies, JSON and BCS.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ClientError, ClientOptions, UNKNOWN_ERROR_CODE};
use crate::ErrorBody;
use crate::node::MAX_ERROR_BODY_BYTES;

/// Media type of BCS bodies.
pub(crate) const OCTET_STREAM: &str = "application/octet-stream";

/// Characters of a non-JSON error answer kept in the made-up error message.
const SHOWN_ERROR_CHARS: usize = 300;

/// One server: its base URL, a reqwest client and the timeouts.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    http: reqwest::Client,
    /// Scheme, host, port and any path prefix, without a trailing `/`.
    base: String,
    options: ClientOptions,
    /// The load figure the server sent with its last answer ([`crate::node::LOAD_HEADER`]);
    /// [`NO_LOAD`] until one came.
    load: Arc<AtomicU32>,
}

/// [`Endpoint::reported_load`] of a server that has sent no load figure.
const NO_LOAD: u32 = u32::MAX;

impl Endpoint {
    /// An endpoint at `base_url`; `host:port` alone means `http://host:port`.
    pub(crate) fn new(
        http: reqwest::Client,
        base_url: &str,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let base = if base_url.contains("://") { base_url.to_owned() } else { format!("http://{base_url}") };
        let url =
            Url::parse(&base).map_err(|error| ClientError::InvalidUrl(format!("{base_url:?}: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.query().is_some() || url.fragment().is_some() {
            return Err(ClientError::InvalidUrl(format!("{base_url:?}: expected http://host:port[/prefix]")));
        }
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            options,
            load: Arc::new(AtomicU32::new(NO_LOAD)),
        })
    }

    /// The load figure the server sent with its last answer, if any.
    pub(crate) fn reported_load(&self) -> Option<u32> {
        Some(self.load.load(Ordering::Relaxed)).filter(|load| *load != NO_LOAD)
    }

    /// The base URL, without a trailing `/`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `path` (which starts with `/`) and an optional query string.
    pub(crate) fn url(&self, path: &str, query: Option<&str>) -> Result<Url, ClientError> {
        let mut text = format!("{}{path}", self.base);
        if let Some(query) = query {
            text.push('?');
            text.push_str(query);
        }
        Url::parse(&text).map_err(|error| ClientError::InvalidUrl(format!("{text:?}: {error}")))
    }

    /// A `GET` of `path`.
    pub(crate) fn get(&self, path: &str, query: Option<&str>) -> Result<RequestBuilder, ClientError> {
        Ok(self.http.get(self.url(path, query)?))
    }

    /// A `POST` of `path` with a JSON body.
    pub(crate) fn post_json<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<RequestBuilder, ClientError> {
        Ok(self.http.post(self.url(path, None)?).json(body))
    }

    /// A `DELETE` of `path`.
    pub(crate) fn delete(&self, path: &str) -> Result<RequestBuilder, ClientError> {
        Ok(self.http.delete(self.url(path, None)?))
    }

    /// A request of `method` on `path` with a BCS body.
    pub(crate) fn with_bcs(
        &self,
        method: reqwest::Method,
        path: &str,
        query: Option<&str>,
        body: Vec<u8>,
    ) -> Result<RequestBuilder, ClientError> {
        self.with_bcs_body(method, path, query, body)
    }

    /// [`Endpoint::with_bcs`] with any body (e.g. one streamed from pieces).
    pub(crate) fn with_bcs_body(
        &self,
        method: reqwest::Method,
        path: &str,
        query: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Result<RequestBuilder, ClientError> {
        Ok(self.http.request(method, self.url(path, query)?).header(CONTENT_TYPE, OCTET_STREAM).body(body))
    }

    /// Sends `request` and reads a success answer of at most `limit` bytes, all within the
    /// timeout plus `extra` (a long-poll's wait).
    pub(crate) async fn call(
        &self,
        request: RequestBuilder,
        limit: usize,
        extra: Duration,
    ) -> Result<Vec<u8>, ClientError> {
        self.call_timed(request, limit, extra).await.map(|(body, _)| body)
    }

    /// [`Endpoint::call`], also answering how long the body took to come after the answer's
    /// head.
    pub(crate) async fn call_timed(
        &self,
        request: RequestBuilder,
        limit: usize,
        extra: Duration,
    ) -> Result<(Vec<u8>, Duration), ClientError> {
        let mut body = Vec::new();
        let after_head = self.call_into(request, limit, extra, &mut body).await?;
        Ok((body, after_head))
    }

    /// [`Endpoint::call_timed`] handing the body's pieces to `sink` as they come (which then
    /// need not be put together first), answering how long they took after the head.
    pub(crate) async fn call_into(
        &self,
        request: RequestBuilder,
        limit: usize,
        extra: Duration,
        sink: &mut impl BodySink,
    ) -> Result<Duration, ClientError> {
        let exchange = async {
            let response = request.send().await.map_err(transport)?;
            if let Some(load) = response
                .headers()
                .get(crate::node::LOAD_HEADER)
                .and_then(|value| value.to_str().ok())
                .and_then(|text| text.parse::<u32>().ok())
            {
                self.load.store(load.min(NO_LOAD - 1), Ordering::Relaxed);
            }
            let status = response.status();
            if !status.is_success() {
                return Err(error_answer(status, response).await);
            }
            let head = tokio::time::Instant::now();
            read_limited_into(response, limit, sink).await?;
            Ok(head.elapsed())
        };
        let timeout = self.options.timeout.saturating_add(extra);
        tokio::time::timeout(timeout, exchange).await.map_err(|_| ClientError::Timeout)?
    }

    /// [`Endpoint::call`], then decodes the answer as JSON.
    pub(crate) async fn call_json<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        limit: usize,
        extra: Duration,
    ) -> Result<T, ClientError> {
        let bytes = self.call(request, limit, extra).await?;
        serde_json::from_slice(&bytes).map_err(|error| ClientError::Decode(format!("JSON: {error}")))
    }

    /// [`Endpoint::call`], then decodes the answer as the BCS of a wire value.
    pub(crate) async fn call_bcs<T: redstuff::wire::WireValue>(
        &self,
        request: RequestBuilder,
        limit: usize,
    ) -> Result<T, ClientError> {
        let bytes = self.call(request, limit, Duration::ZERO).await?;
        redstuff::wire::from_bcs(&bytes, limit).map_err(|error| ClientError::Decode(error.to_string()))
    }
}

/// Where the pieces of an answer's body go as they come.
pub(crate) trait BodySink {
    /// The body will be `len` bytes (as announced, and within the limit).
    fn expect(&mut self, len: usize);

    /// The body's next piece.
    fn take(&mut self, piece: &[u8]);
}

impl BodySink for Vec<u8> {
    fn expect(&mut self, len: usize) {
        self.reserve(len);
    }

    fn take(&mut self, piece: &[u8]) {
        self.extend_from_slice(piece);
    }
}

impl BodySink for crate::node::ReadBatchDecoder<'_> {
    fn expect(&mut self, _len: usize) {}

    fn take(&mut self, piece: &[u8]) {
        self.push(piece);
    }
}

/// Reads the body of `response`, refusing it once it is known to be over `limit` bytes.
async fn read_limited(response: Response, limit: usize) -> Result<Vec<u8>, ClientError> {
    let mut body = Vec::new();
    read_limited_into(response, limit, &mut body).await?;
    Ok(body)
}

/// Hands the body of `response` to `sink` piece by piece, refusing it once it is known to be
/// over `limit` bytes.
async fn read_limited_into(
    mut response: Response,
    limit: usize,
    sink: &mut impl BodySink,
) -> Result<(), ClientError> {
    match response.content_length().map(usize::try_from) {
        Some(Ok(length)) if length <= limit => sink.expect(length),
        Some(_) => return Err(ClientError::TooLarge { limit }),
        None => {}
    }
    let mut read = 0usize;
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if chunk.len() > limit - read {
            return Err(ClientError::TooLarge { limit });
        }
        read += chunk.len();
        sink.take(&chunk);
    }
    Ok(())
}

/// The [`ClientError::Http`] for an error answer, with its error body if it has one.
async fn error_answer(status: StatusCode, response: Response) -> ClientError {
    let bytes = read_limited(response, MAX_ERROR_BODY_BYTES).await;
    let body = match &bytes {
        Ok(bytes) => serde_json::from_slice::<ErrorBody>(bytes).ok(),
        Err(_) => None,
    };
    let body = body.unwrap_or_else(|| {
        let shown = match &bytes {
            Ok(bytes) if !bytes.is_empty() => {
                String::from_utf8_lossy(bytes).chars().take(SHOWN_ERROR_CHARS).collect::<String>()
            }
            _ => status.canonical_reason().unwrap_or("no reason given").to_owned(),
        };
        ErrorBody::new(
            UNKNOWN_ERROR_CODE,
            format!("the server answered {status} without an error body: {shown}"),
        )
    });
    ClientError::Http { status, body }
}

/// A reqwest error as a [`ClientError`].
pub(crate) fn transport(error: reqwest::Error) -> ClientError {
    if error.is_timeout() {
        ClientError::Timeout
    } else if error.is_connect() {
        ClientError::Connect(describe(&error))
    } else {
        ClientError::Transport(describe(&error))
    }
}

/// An error with its chain of sources (reqwest's own message names only the outer layer).
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
