//! The coordinator client.

use std::time::Duration;

use morsa_core::{AccountId, ObjectId};
use redstuff::BlobId;

use super::http::Endpoint;
use super::{ClientError, ClientOptions};
use crate::coord::{
    self, AccountBlobs, AccountInfo, BlobStatus, CommitteeInfo, EventsPage, MAX_RESPONSE_BYTES, MAX_WAIT_MS,
    NodeReport, SignedTransaction, SubmitResponse, SystemInfo, routes,
};

/// A typed client of the coordinator's API ([`crate::coord::routes`]). Answers are JSON of at
/// most [`MAX_RESPONSE_BYTES`].
#[derive(Debug, Clone)]
pub struct CoordClient {
    endpoint: Endpoint,
}

impl CoordClient {
    /// A client of the coordinator at `base_url` (`http://host:port`, or `host:port`), with
    /// default options.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let options = ClientOptions::default();
        Self::with_http(options.http_client()?, base_url, options)
    }

    /// A client sharing `http` (see [`ClientOptions::http_client`]) with timeouts `options`.
    pub fn with_http(
        http: reqwest::Client,
        base_url: &str,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        Ok(Self { endpoint: Endpoint::new(http, base_url, options)? })
    }

    /// The coordinator's base URL.
    pub fn base_url(&self) -> &str {
        self.endpoint.base()
    }

    /// Submits a signed transaction; answers the events it emitted and objects it created.
    /// A refused transaction is a [`ClientError::Http`] with the coordinator's error code.
    pub async fn submit_transaction(
        &self,
        transaction: &SignedTransaction,
    ) -> Result<SubmitResponse, ClientError> {
        let request = self.endpoint.post_json(routes::TRANSACTIONS, transaction)?;
        self.endpoint.call_json(request, MAX_RESPONSE_BYTES, Duration::ZERO).await
    }

    /// Submits a signed node report.
    pub async fn submit_node_report(&self, report: &NodeReport) -> Result<SubmitResponse, ClientError> {
        let request = self.endpoint.post_json(routes::NODE_REPORTS, report)?;
        self.endpoint.call_json(request, MAX_RESPONSE_BYTES, Duration::ZERO).await
    }

    /// Moves a coordinator run with `[testing] manual_epochs = true` to the start of the next
    /// epoch ([`routes::NEXT_EPOCH`]); answers the tick's events. Any other coordinator
    /// refuses it with 403 `manual_epochs_off`.
    pub async fn next_epoch(&self) -> Result<SubmitResponse, ClientError> {
        let request = self.endpoint.post_json(routes::NEXT_EPOCH, &())?;
        self.endpoint.call_json(request, MAX_RESPONSE_BYTES, Duration::ZERO).await
    }

    /// Up to `limit` events with sequence numbers above `after` (all if `None`), waiting up to
    /// `wait_ms` (capped at [`MAX_WAIT_MS`]) for one if there is none yet. The call's timeout
    /// is the client's plus the wait.
    pub async fn events(
        &self,
        after: Option<u64>,
        wait_ms: u64,
        limit: usize,
    ) -> Result<EventsPage, ClientError> {
        let wait_ms = wait_ms.min(MAX_WAIT_MS);
        let mut query = format!("wait_ms={wait_ms}&limit={limit}");
        if let Some(after) = after {
            query.push_str(&format!("&after={after}"));
        }
        let request = self.endpoint.get(routes::EVENTS, Some(&query))?;
        self.endpoint.call_json(request, MAX_RESPONSE_BYTES, Duration::from_millis(wait_ms)).await
    }

    /// The status of a blob ID over all its objects.
    pub async fn blob_status(&self, blob_id: &BlobId) -> Result<BlobStatus, ClientError> {
        self.get(&coord::blob_path(blob_id)).await
    }

    /// The current and next committees.
    pub async fn committee(&self) -> Result<CommitteeInfo, ClientError> {
        self.get(routes::COMMITTEE).await
    }

    /// System parameters and counters.
    pub async fn system(&self) -> Result<SystemInfo, ClientError> {
        self.get(routes::SYSTEM).await
    }

    /// An account's balance, nonce and stakes.
    pub async fn account(&self, account: &AccountId) -> Result<AccountInfo, ClientError> {
        self.get(&coord::account_path(account)).await
    }

    /// One page of the live blob objects owned by `account`, after object `after`.
    pub async fn account_blobs(
        &self,
        account: &AccountId,
        after: Option<&ObjectId>,
        limit: usize,
    ) -> Result<AccountBlobs, ClientError> {
        let mut query = format!("limit={limit}");
        if let Some(after) = after {
            query.push_str(&format!("&after={after}"));
        }
        let request = self.endpoint.get(&coord::account_blobs_path(account), Some(&query))?;
        self.endpoint.call_json(request, MAX_RESPONSE_BYTES, Duration::ZERO).await
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let request = self.endpoint.get(path, None)?;
        self.endpoint.call_json(request, MAX_RESPONSE_BYTES, Duration::ZERO).await
    }
}
