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
