//! The JSON body of every error response.

use serde::{Deserialize, Serialize};

/// `{"code": "...", "message": "..."}`: a stable machine-readable code and a sentence that
/// tells a person what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable code; its meaning never changes once released.
    pub code: String,
    /// What went wrong and what to do.
    pub message: String,
}

impl ErrorBody {
    /// An error body.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// The codes every Morsa server gives the same way (each server's own codes are listed with
/// it): a request refused before any route's handler looked at it.
pub mod codes {
    /// A malformed path, query or body.
    pub const BAD_REQUEST: &str = "bad_request";
    /// A body over its limit.
    pub const TOO_LARGE: &str = "too_large";
    /// No route of the server matches the path (a server older than this code answers a 404
    /// without a body instead).
    pub const UNKNOWN_ROUTE: &str = "unknown_route";
    /// The route does not take the request's method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// The request took longer than the server allows one to take.
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
}
