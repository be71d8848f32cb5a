//! What answers each HTTP request: an unsigned `GET /metrics` gets the metrics, paths under
//! `/v1/` go to the Walrus-style blob API, everything else to S3 (s3s). Every answer is
//! metered on the way out ([`crate::metrics`]).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use s3s::access::{S3Access, S3AccessContext};
use s3s::service::S3Service;
use s3s::{HttpError, S3Result};

use crate::blob_api::BlobApi;
use crate::metrics::GatewayMetrics;

/// The operation label of an S3 request s3s refused before naming its operation (a bad
/// signature, an unknown key, a malformed path).
const UNRESOLVED: &str = "Unresolved";

/// The gateway's HTTP front: S3, the blob API and the metrics.
#[derive(Debug)]
pub struct Router {
    s3: S3Service,
    blob_api: BlobApi,
    metrics: Arc<GatewayMetrics>,
}

impl Router {
    /// A router over the S3 service `s3` (built by [`crate::server::service`], which names
    /// each operation for the metrics) and `blob_api`.
    pub fn new(s3: S3Service, blob_api: BlobApi) -> Arc<Self> {
        Arc::new(Self { s3, blob_api, metrics: Arc::new(GatewayMetrics::default()) })
    }

    /// The service answering one connection from `peer`.
    pub fn connection(self: &Arc<Self>, peer: IpAddr) -> Connection {
        Connection { router: Arc::clone(self), peer }
    }

    async fn answer(
        &self,
        request: Request<Incoming>,
        peer: IpAddr,
    ) -> Result<Response<s3s::Body>, HttpError> {
        let started = Instant::now();
        if is_metrics_scrape(&request) {
            self.metrics.answered("metrics", "Metrics", 200);
            let mut response = Response::new(s3s::Body::from(self.metrics.render()));
            let text = "text/plain; version=0.0.4; charset=utf-8".parse().expect("a valid header value");
            response.headers_mut().insert(CONTENT_TYPE, text);
            return Ok(response);
        }
        let is_get = request.method() == Method::GET;
        let received = Arc::new(AtomicU64::new(0));
        let request = request.map(|body| Counted { inner: body, count: Arc::clone(&received) });
        let (api, operation, response) = match BlobApi::handles(request.uri().path()) {
            true => {
                let (operation, response) = self.blob_api.handle(request, peer).await;
                ("blob", operation.name().to_string(), response)
            }
            false => {
                let slot = OperationSlot::default();
                let mut request = request.map(s3s::Body::http_body_unsync);
                request.extensions_mut().insert(slot.clone());
                let response = self.s3.call(request).await?;
                ("s3", slot.0.get().map_or(UNRESOLVED, String::as_str).to_string(), response)
            }
        };
        // A handler has consumed the body it needed by the time it answers.
        self.metrics.received(api, &operation, received.load(Ordering::Relaxed));
        let status = response.status();
        self.metrics.answered(api, &operation, status.as_u16());
        let is_read = is_get && matches!(operation.as_str(), "GetObject" | "ReadBlob");
        let read = match status {
            StatusCode::OK | StatusCode::PARTIAL_CONTENT if is_read => {
                Some(ReadTiming { whole: status == StatusCode::OK, started })
            }
            _ => None,
        };
        let length =
            response.headers().get(CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse().ok());
        let metrics = Arc::clone(&self.metrics);
        Ok(response.map(|inner| {
            s3s::Body::http_body_unsync(Metered {
                inner,
                metrics,
                api,
                operation,
                read,
                length,
                sent: 0,
                ended: false,
            })
        }))
    }
}

/// Whether `request` is a scrape: an unsigned `GET /metrics` (a signed one is S3, on a
/// bucket named `metrics`).
fn is_metrics_scrape<B>(request: &Request<B>) -> bool {
    let presigned = request.uri().query().is_some_and(|query| query.contains("X-Amz-Signature="));
    request.method() == Method::GET
        && request.uri().path() == "/metrics"
        && !request.headers().contains_key(AUTHORIZATION)
        && !presigned
}

/// The service of one connection.
#[derive(Debug, Clone)]
pub struct Connection {
    router: Arc<Router>,
    peer: IpAddr,
}

impl hyper::service::Service<Request<Incoming>> for Connection {
    type Response = Response<s3s::Body>;
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let (router, peer) = (Arc::clone(&self.router), self.peer);
        Box::pin(async move { router.answer(request, peer).await })
    }
}

/// Where the S3 side writes the name of the operation it resolved a request to.
#[derive(Debug, Clone, Default)]
struct OperationSlot(Arc<OnceLock<String>>);

/// s3s's access check, unchanged (a request must be signed), that also writes the operation's
/// name into the request's [`OperationSlot`].
#[derive(Debug)]
pub(crate) struct NameOperation;

#[async_trait::async_trait]
impl S3Access for NameOperation {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let name = cx.s3_op().name().to_string();
        if let Some(slot) = cx.extensions_mut().get::<OperationSlot>() {
            let _ = slot.0.set(name);
        }
        match cx.credentials() {
            Some(_) => Ok(()),
            None => Err(s3s::s3_error!(AccessDenied, "Signature is required")),
        }
    }
}

/// A request body that counts the bytes read from it.
struct Counted<B> {
    inner: B,
    count: Arc<AtomicU64>,
}

impl<B: hyper::body::Body<Data = Bytes> + Unpin> hyper::body::Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.count.fetch_add(morsa_core::convert::saturating_u64(data.len()), Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// When a read started, and whether it reads the whole object or blob.
#[derive(Debug, Clone, Copy)]
struct ReadTiming {
    whole: bool,
    started: Instant,
}

/// A response body that records the bytes sent, and for reads the time to the first byte
/// and (for a whole read sent to its end) the throughput.
struct Metered {
    inner: s3s::Body,
    metrics: Arc<GatewayMetrics>,
    api: &'static str,
    operation: String,
    read: Option<ReadTiming>,
    /// The `Content-Length` answered, if any.
    length: Option<u64>,
    sent: u64,
    ended: bool,
}

impl hyper::body::Body for Metered {
    type Data = Bytes;
    type Error = s3s::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                let bytes =
                    frame.data_ref().map_or(0, |data| morsa_core::convert::saturating_u64(data.len()));
                if self.sent == 0
                    && bytes > 0
                    && let Some(read) = self.read
                {
                    self.metrics.first_byte(&self.operation, read.started.elapsed().as_secs_f64());
                }
                self.sent += bytes;
            }
            Poll::Ready(None) => self.ended = true,
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Metered {
    /// The body is done (sent, or the client went away): count what was sent.
    fn drop(&mut self) {
        self.metrics.sent(self.api, &self.operation, self.sent);
        let complete = self.ended || self.length == Some(self.sent);
        if let Some(read) = self.read
            && read.whole
            && complete
            && self.sent > 0
        {
            let seconds = read.started.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
            self.metrics.whole_read(&self.operation, morsa_core::convert::lossy_f64(self.sent) / seconds);
        }
    }
}
