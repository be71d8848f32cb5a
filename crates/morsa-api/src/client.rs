//! Typed async HTTP clients of the coordinator ([`CoordClient`]) and of storage nodes
//! ([`NodeClient`]), on reqwest without TLS (plain `http://`; put TLS in a proxy).
//!
//! Every call has a timeout covering connect, request and the whole answer
//! ([`ClientOptions::timeout`], 10 s by default; a long-poll adds its wait), and reads at most
//! the largest genuine answer of its route: a longer answer is refused as
//! [`ClientError::TooLarge`] as soon as its length is known or its bytes pass the limit, never
//! read to the end. Node clients follow no redirects; the coordinator client follows a few
//! (a replica that is not the leader may redirect a write) and, given several replicas' URLs,
//! fails over between them ([`CoordClient::with_urls`]).
//!
//! The clients check shapes and sizes, not truth: metadata, slivers and symbols from a node
//! are unverified until checked against the blob ID (`redstuff`), and signed answers until
//! their signature is checked ([`crate::node::SignedConfirmation::verify`]).
//!
//! ```no_run
//! # async fn example() -> Result<(), morsa_api::ClientError> {
//! use morsa_api::client::{CoordClient, NodeClient};
//! let coordinator = CoordClient::new("127.0.0.1:7000")?;
//! let system = coordinator.system().await?;
//! let config = redstuff::EncodingConfig::new(system.n_shards).expect("the coordinator's n is at least 4");
//! let node = NodeClient::new("http://127.0.0.1:9000", config)?;
//! println!("node in {}", node.health().await?.epoch);
//! # Ok(())
//! # }
//! ```

mod coord;
mod http;
mod node;
pub mod scoring;
#[cfg(test)]
mod tests;

use std::time::Duration;

use reqwest::StatusCode;

pub use coord::CoordClient;
pub use node::NodeClient;

use crate::ErrorBody;
use crate::node::NodeErrorCode;

/// The `code` of an [`ErrorBody`] made up by the client when an error answer has no JSON
/// error body (a proxy's page, an empty body, a cut body).
pub const UNKNOWN_ERROR_CODE: &str = "unknown";

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status. `body` is its error body; if it sent none
    /// that parses, the code is [`UNKNOWN_ERROR_CODE`] and the message shows what it sent.
    #[error("HTTP {status}: {body}")]
    Http {
        /// The status.
        status: StatusCode,
        /// The error body.
        body: ErrorBody,
    },
    /// No connection could be made (refused, unreachable, DNS): the request was not sent.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The connection broke (reset, protocol error) after the request may have been sent.
    #[error("transport error: {0}")]
    Transport(String),
    /// The call did not finish within its timeout.
    #[error("the call timed out")]
    Timeout,
    /// The answer was not the JSON or BCS value the route promises.
    #[error("could not decode the answer: {0}")]
    Decode(String),
    /// The answer is longer than the route's limit; it was not read.
    #[error("the answer is over the limit of {limit} bytes for this route")]
    TooLarge {
        /// The route's limit in bytes.
        limit: usize,
    },
    /// The base URL is not an `http://` or `https://` URL.
    #[error("invalid base URL: {0}")]
    InvalidUrl(String),
    /// None of a [`CoordClient`]'s several URLs answered; each was tried once, in this order.
    #[error("no coordinator answered ({})", coord::describe_attempts(.attempts))]
    NoAnswer {
        /// Each URL tried and why it failed.
        attempts: Vec<FailedUrl>,
    },
}

/// One URL a [`CoordClient`] tried and why it did not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedUrl {
    /// The base URL.
    pub url: String,
    /// Why it failed.
    pub error: ClientError,
}

impl ClientError {
    /// The error code of an HTTP error answer.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Http { body, .. } => Some(&body.code),
            _ => None,
        }
    }

    /// Whether the server could not be reached or did not answer in time or was unavailable
    /// (503): another replica, or the same server later, may answer.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Connect(_) | Self::Transport(_) | Self::Timeout | Self::NoAnswer { .. } => true,
            Self::Http { status, .. } => *status == StatusCode::SERVICE_UNAVAILABLE,
            Self::Decode(_) | Self::TooLarge { .. } | Self::InvalidUrl(_) => false,
        }
    }

    /// The storage node error code of an HTTP error answer, if it is one.
    pub fn node_code(&self) -> Option<NodeErrorCode> {
        self.code()?.parse().ok()
    }

    /// Whether the server has no such route: a 404 with the code `unknown_route`, or without
    /// a node error code (a node's own 404s carry `not_found`), as an older node answers a
    /// newer route.
    pub fn is_missing_route(&self) -> bool {
        matches!(self, Self::Http { status, .. } if *status == StatusCode::NOT_FOUND)
            && matches!(self.node_code(), None | Some(NodeErrorCode::UnknownRoute))
    }
}

/// Redirects a [`CoordClient`] follows in one call.
pub const MAX_REDIRECTS: usize = 3;

/// Timeouts of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// Longest a call may take from connecting to the last byte of the answer. Raise it for
    /// the slivers of very large blobs on slow links.
    pub timeout: Duration,
    /// Longest connecting may take (within `timeout`).
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(10), connect_timeout: Duration::from_secs(3) }
    }
}

impl ClientOptions {
    /// A reqwest client for these options: connect timeout, no redirects. Share one among
    /// many [`NodeClient`]s so they share its connection pool.
    pub fn http_client(&self) -> Result<reqwest::Client, ClientError> {
        self.build(reqwest::redirect::Policy::none())
    }

    /// A reqwest client for these options that follows up to [`MAX_REDIRECTS`] redirects (a
    /// coordinator replica that is not the leader may redirect writes to it; 307 and 308 keep
    /// the method and body).
    pub fn redirecting_http_client(&self) -> Result<reqwest::Client, ClientError> {
        self.build(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
    }

    fn build(&self, redirects: reqwest::redirect::Policy) -> Result<reqwest::Client, ClientError> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .redirect(redirects)
            .build()
            .map_err(|error| ClientError::Transport(http::describe(&error)))
    }
}
