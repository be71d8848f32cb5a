//! Bodies that carry something to drop when hyper is done with them: a request's in-flight
//! mark, or the permit that accounts an answer's memory.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};

/// `bytes` as [`Bytes`] that hold `guard` until the last copy of them is dropped: once the
/// answer is written, or its connection closed. Use it to keep a memory budget's permit exactly
/// as long as the memory it accounts for.
pub fn owned_bytes<G: Send + 'static>(bytes: Vec<u8>, guard: G) -> Bytes {
    Bytes::from_owner(Owned { bytes, _guard: guard })
}

struct Owned<G> {
    bytes: Vec<u8>,
    _guard: G,
}

impl<G> AsRef<[u8]> for Owned<G> {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// A body that drops `guard` with itself.
pub(super) struct Guarded<G> {
    inner: Body,
    _guard: G,
}

impl<G> Guarded<G> {
    pub(super) fn new(inner: Body, guard: G) -> Self {
        Self { inner, _guard: guard }
    }
}

impl<G: Unpin + Send + 'static> HttpBody for Guarded<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
