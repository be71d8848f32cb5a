//! The storage node's stable error codes and the HTTP status each one maps to, in one place.

use std::fmt;
use std::str::FromStr;

use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::ErrorBody;

/// A machine-readable reason a storage node refused a request: the `code` of its
/// [`ErrorBody`]. The text forms never change once released; new codes may be added, so
/// clients must treat an unknown code by its HTTP status.
///
/// | code             | status | meaning / what to do                                           |
/// |------------------|--------|----------------------------------------------------------------|
/// | `bad_request`    | 400    | malformed path, query or body: fix the request                 |
/// | `not_found`      | 404    | the node does not store that metadata or sliver                |
/// | `not_registered` | 409    | the node has not seen the blob registered: retry after it has  |
/// | `not_ready`      | 409    | the node is still storing or syncing what is asked: retry      |
/// | `blob_expired`   | 410    | the blob's storage ended; it is no longer kept                 |
/// | `invalid_blob`   | 410    | the blob was proven inconsistently encoded                     |
/// | `too_large`      | 413    | the body or batch is over its limit                            |
/// | `wrong_shard`    | 421    | the node does not hold that pair's shard in its epoch          |
/// | `size_mismatch`  | 422    | the sliver or metadata does not have the blob's shape          |
/// | `hash_mismatch`  | 422    | the sliver or metadata does not match the blob ID              |
/// | `over_budget`    | 413    | (batch items only) no room left in the answer: ask again       |
/// | `forbidden`      | 403    | an admin route without its token, from a web page or remotely; |
/// |                  |        | a shard page asked by a node that is not the shard's new owner |
/// | `internal`       | 500    | a bug or a storage failure on the node                         |
/// | `corrupt_data`   | 500    | what the node stored is damaged (it repairs it): ask another   |
/// | `unavailable`    | 503    | the node is starting, stopping or overloaded: retry later      |
/// | `challenged`     | 423    | recovery symbols towards a sliver challenged in the open round |
/// |                  |        | are not served until the round closes: retry later             |
/// | `round_not_open` | 409    | challenge answers asked for a round that is not the open one   |
/// | `unknown_route`  | 404    | no route of the node matches the path: check the URL (an older |
/// |                  |        | node answers a newer route so, or with a 404 without a body)   |
/// | `method_not_allowed` | 405 | the route does not take that method (`Allow` lists those it does) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeErrorCode {
    /// Malformed path, query or body.
    BadRequest,
    /// The node does not store the metadata or sliver asked for.
    NotFound,
    /// The node has not seen the blob registered (and the upload was not `pending`).
    NotRegistered,
    /// The node does not have everything yet (e.g. a confirmation before all slivers are in).
    NotReady,
    /// The blob's storage has ended.
    BlobExpired,
    /// The blob was proven inconsistently encoded and is no longer served.
    InvalidBlob,
    /// The request body, or the number of batch items, is over its limit.
    TooLarge,
    /// The node does not hold the shard of that sliver pair in its current epoch.
    WrongShard,
    /// The sliver or metadata has the wrong size, symbol size or index for the blob.
    SizeMismatch,
    /// The sliver does not match its hash in the metadata, or the metadata the blob ID.
    HashMismatch,
    /// A recovery-batch item left out because the answer reached its byte budget.
    OverBudget,
    /// An admin route asked without its token, with an `Origin` header, or not from loopback.
    Forbidden,
    /// A bug or a storage failure on the node.
    Internal,
    /// A record the node stored (its metadata, its record of a blob) is damaged: the node's
    /// disk, not the request, is at fault.
    CorruptData,
    /// The node cannot serve now (starting, stopping, overloaded).
    Unavailable,
    /// The node's disk has less free space than the reserve it keeps: it takes no new data.
    InsufficientStorage,
    /// Recovery symbols towards a sliver challenged in the open round: not served until the
    /// round closes, so that a node cannot rebuild what it is challenged on when asked.
    Challenged,
    /// Challenge answers asked for a round that is not the coordinator's open round.
    RoundNotOpen,
    /// No route of the node matches the path.
    UnknownRoute,
    /// The route does not take the request's method.
    MethodNotAllowed,
}

impl NodeErrorCode {
    /// Every code, for tables and tests.
    pub const ALL: [Self; 20] = [
        Self::BadRequest,
        Self::NotFound,
        Self::NotRegistered,
        Self::NotReady,
        Self::BlobExpired,
        Self::InvalidBlob,
        Self::TooLarge,
        Self::WrongShard,
        Self::SizeMismatch,
        Self::HashMismatch,
        Self::OverBudget,
        Self::Forbidden,
        Self::Internal,
        Self::CorruptData,
        Self::Unavailable,
        Self::InsufficientStorage,
        Self::Challenged,
        Self::RoundNotOpen,
        Self::UnknownRoute,
        Self::MethodNotAllowed,
    ];

    /// The stable text form, as in [`ErrorBody::code`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => crate::codes::BAD_REQUEST,
            Self::NotFound => "not_found",
            Self::NotRegistered => "not_registered",
            Self::NotReady => "not_ready",
            Self::BlobExpired => "blob_expired",
            Self::InvalidBlob => "invalid_blob",
            Self::TooLarge => crate::codes::TOO_LARGE,
            Self::WrongShard => "wrong_shard",
            Self::SizeMismatch => "size_mismatch",
            Self::HashMismatch => "hash_mismatch",
            Self::OverBudget => "over_budget",
            Self::Forbidden => "forbidden",
            Self::Internal => "internal",
            Self::CorruptData => "corrupt_data",
            Self::Unavailable => "unavailable",
            Self::InsufficientStorage => "insufficient_storage",
            Self::Challenged => "challenged",
            Self::RoundNotOpen => "round_not_open",
            Self::UnknownRoute => crate::codes::UNKNOWN_ROUTE,
            Self::MethodNotAllowed => crate::codes::METHOD_NOT_ALLOWED,
        }
    }

    /// The HTTP status a response with this code carries.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::NotFound | Self::UnknownRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotRegistered | Self::NotReady | Self::RoundNotOpen => StatusCode::CONFLICT,
            Self::Challenged => StatusCode::LOCKED,
            Self::BlobExpired | Self::InvalidBlob => StatusCode::GONE,
            Self::TooLarge | Self::OverBudget => StatusCode::PAYLOAD_TOO_LARGE,
            Self::WrongShard => StatusCode::MISDIRECTED_REQUEST,
            Self::SizeMismatch | Self::HashMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Internal | Self::CorruptData => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        }
    }

    /// Whether the same request may succeed later without change (the node catches up on
    /// events, finishes storing or syncing, or comes back).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::NotRegistered | Self::NotReady | Self::OverBudget | Self::Unavailable | Self::Challenged
        )
    }

    /// An error body with this code and `message` (say what to do next).
    pub fn body(self, message: impl Into<String>) -> ErrorBody {
        ErrorBody::new(self.as_str(), message)
    }
}

impl fmt::Display for NodeErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for text that is not a node error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a storage node error code")]
pub struct UnknownErrorCode(pub String);

impl FromStr for NodeErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|code| code.as_str() == text)
            .ok_or_else(|| UnknownErrorCode(text.chars().take(64).collect()))
    }
}
