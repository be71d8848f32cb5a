//! The handlers' shared answers: [`ApiError`] (a stable code and a message, from a
//! [`NodeError`] or the handler), blocking work, bounded body reads, and octet-stream answers.

use axum::Json;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use morsa_api::node::NodeErrorCode;

use crate::error::NodeError;

/// An error response.
pub(crate) struct ApiError(pub(crate) NodeErrorCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0.status(), Json(self.0.body(self.1))).into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(error: NodeError) -> Self {
        Self(error.code(), error.to_string())
    }
}

pub(crate) type Reply<T> = Result<T, ApiError>;

/// Runs `work` on a blocking thread (see [`crate::blocking::blocking`]).
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Reply<T> {
    Ok(crate::blocking::blocking(work).await?)
}

/// Reads a request body of at most `limit` bytes.
pub(crate) async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || ApiError(NodeErrorCode::TooLarge, format!("the body is larger than {limit} bytes"));
    let hint = body.size_hint().lower();
    if hint > morsa_core::convert::saturating_u64(limit) {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(limit).min(limit));
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame
            .map_err(|error| ApiError(NodeErrorCode::BadRequest, format!("reading the body: {error}")))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len().saturating_add(data.len()) > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(bytes))
}

pub(crate) fn octets(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}

/// The body, once.
pub(crate) fn take(body: &mut Option<Body>) -> Reply<Body> {
    body.take().ok_or_else(|| ApiError(NodeErrorCode::Internal, "the body was read twice".into()))
}

/// Answers `result`. A refused request's unread body is read and dropped first (up to
/// `limit`, nothing kept), so that its sender, which may still be writing it, gets the answer
/// rather than a reset connection.
pub(crate) async fn answer_after_draining<T>(result: Reply<T>, body: Option<Body>, limit: usize) -> Reply<T> {
    if result.is_err()
        && let Some(mut body) = body
    {
        let mut read = 0usize;
        while let Some(Ok(frame)) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            read = read.saturating_add(frame.data_ref().map_or(0, Bytes::len));
            if read > limit {
                break;
            }
        }
    }
    result
}

/// The body length a request announces, at most `limit` (`limit` if it announces none).
pub(crate) fn announced(body: Option<&Body>, limit: usize) -> usize {
    body.and_then(|body| body.size_hint().exact())
        .and_then(|len| usize::try_from(len).ok())
        .unwrap_or(limit)
        .min(limit)
}
