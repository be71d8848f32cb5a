//! The blob API's errors, and the one place they become an HTTP status, a stable reason and
//! a JSON body in the envelope Walrus's daemons answer with:
//! `{"error": {"code": 404, "status": "NOT_FOUND", "message": "...", "details":
//! [{"@type": "ErrorInfo", "reason": "BLOB_NOT_FOUND", "domain": "morsa.gateway"}]}}`.

use hyper::StatusCode;
use hyper::header::{CONTENT_RANGE, CONTENT_TYPE, HeaderValue};
use morsa_api::coord::BlobStatusKind;
use redstuff::BlobId;

use super::range::RangeError;

/// Why a blob API request failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobApiError {
    /// The path names no blob ID.
    #[error("{given:?} is not a blob ID: {reason}")]
    BadBlobId {
        /// What the path held.
        given: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A query parameter is unknown or has a bad value.
    #[error("query parameter {name:?}: {reason}")]
    BadQuery {
        /// The parameter.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The blob is not certified (never stored, expired or deleted, or only registered).
    #[error("blob {blob_id} is not available: {}", describe(status))]
    BlobNotFound {
        /// The blob.
        blob_id: BlobId,
        /// What the system says of it.
        status: BlobStatusKind,
    },
    /// The blob was encoded inconsistently by its writer: it has no trustworthy content.
    #[error("blob {0} is inconsistently encoded: its writer was faulty; there is no trustworthy content")]
    Inconsistent(BlobId),
    /// The `Range` header cannot be served.
    #[error("Range {header:?}: {source}")]
    BadRange {
        /// The header as sent.
        header: String,
        /// Why.
        source: RangeError,
    },
    /// The body is larger than one blob stored through this API may be.
    #[error("the body is larger than {limit} bytes, the largest blob this gateway stores through /v1/blobs")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// Storing through this API is switched off.
    #[error("storing through /v1/blobs is off on this gateway (blob_api.publisher = \"off\")")]
    PublisherOff,
    /// The client is not on a loopback address and only loopback clients may store.
    #[error(
        "storing through /v1/blobs is allowed from loopback addresses only \
         (blob_api.publisher = \"loopback\"); this request came from {0}"
    )]
    NotLoopback(std::net::IpAddr),
    /// The bearer token is missing or wrong.
    #[error(
        "storing through /v1/blobs needs the header \"Authorization: Bearer TOKEN\" with this gateway's token"
    )]
    BadToken,
    /// No such route in the API.
    #[error("no route {path:?} in the blob API (PUT /v1/blobs, GET or HEAD /v1/blobs/BLOB_ID)")]
    NoRoute {
        /// The path asked for.
        path: String,
    },
    /// The route exists but not with this method.
    #[error("method {method} is not allowed on {path:?} (use {allowed})")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The path.
        path: String,
        /// The methods the route takes.
        allowed: &'static str,
    },
    /// The request body could not be read.
    #[error("reading the request body failed: {0}")]
    Body(String),
    /// Storing or reading on Morsa failed.
    #[error(transparent)]
    Morsa(morsa_client::Error),
    /// A read gave other bytes than the blob's metadata promised.
    #[error(transparent)]
    Read(crate::GatewayError),
}

impl From<crate::GatewayError> for BlobApiError {
    fn from(error: crate::GatewayError) -> Self {
        match error {
            crate::GatewayError::Morsa(error) => error.into(),
            other => Self::Read(other),
        }
    }
}

fn describe(status: &BlobStatusKind) -> &'static str {
    match status {
        BlobStatusKind::Nonexistent => "not stored (never certified, expired or deleted)",
        BlobStatusKind::Registered => "registered but not certified yet",
        BlobStatusKind::Certified => "certified",
        BlobStatusKind::Invalid => "proven inconsistently encoded",
    }
}

impl From<morsa_client::Error> for BlobApiError {
    fn from(error: morsa_client::Error) -> Self {
        match error {
            morsa_client::Error::NotAvailable { blob_id, status } => Self::BlobNotFound { blob_id, status },
            morsa_client::Error::Inconsistent(blob_id) => Self::Inconsistent(blob_id),
            morsa_client::Error::EpochsOutOfRange { asked, max } => Self::BadQuery {
                name: "epochs".into(),
                reason: format!("{asked} is out of range: this system stores blobs for 1 to {max} epochs"),
            },
            other => Self::Morsa(other),
        }
    }
}

impl BlobApiError {
    /// The HTTP status, the canonical status name and the stable reason of this error.
    pub fn code(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::BadBlobId { .. } => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "INVALID_BLOB_ID"),
            Self::BadQuery { .. } => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "INVALID_PARAMETER"),
            Self::BlobNotFound { .. } => (StatusCode::NOT_FOUND, "NOT_FOUND", "BLOB_NOT_FOUND"),
            Self::Inconsistent(_) => (StatusCode::NOT_FOUND, "NOT_FOUND", "BLOB_INCONSISTENT"),
            Self::BadRange { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "OUT_OF_RANGE", "RANGE_NOT_SATISFIABLE")
            }
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "OUT_OF_RANGE", "BLOB_TOO_LARGE"),
            Self::PublisherOff => (StatusCode::FORBIDDEN, "PERMISSION_DENIED", "PUBLISHER_OFF"),
            Self::NotLoopback(_) => (StatusCode::FORBIDDEN, "PERMISSION_DENIED", "PUBLISHER_LOOPBACK_ONLY"),
            Self::BadToken => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "BAD_TOKEN"),
            Self::NoRoute { .. } => (StatusCode::NOT_FOUND, "NOT_FOUND", "NO_ROUTE"),
            Self::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, "UNIMPLEMENTED", "METHOD_NOT_ALLOWED")
            }
            Self::Body(_) => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "BAD_BODY"),
            Self::Morsa(_) | Self::Read(_) => (StatusCode::BAD_GATEWAY, "UNAVAILABLE", "STORAGE_FAILED"),
        }
    }

    /// The error as an HTTP response with its JSON body.
    pub fn into_response(self) -> hyper::Response<s3s::Body> {
        let (status, status_name, reason) = self.code();
        let body = serde_json::json!({
            "error": {
                "code": status.as_u16(),
                "status": status_name,
                "message": self.to_string(),
                "details": [{"@type": "ErrorInfo", "reason": reason, "domain": "morsa.gateway"}],
            }
        });
        let mut response = hyper::Response::new(s3s::Body::from(body.to_string()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Self::BadRange { source: RangeError::Unsatisfiable { len }, .. } = &self
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}"))
        {
            headers.insert(CONTENT_RANGE, value);
        }
        response
    }
}
