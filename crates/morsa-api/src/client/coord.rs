//! The coordinator client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use morsa_core::{AccountId, NodeId, ObjectId};
use redstuff::BlobId;

use super::http::Endpoint;
use super::{ClientError, ClientOptions, FailedUrl};
use crate::coord::{
    self, AccountBlobs, AccountInfo, AddReplica, AvailabilityAnswer, AvailabilityView, BlobStatus,
    CommitteeInfo, EventsPage, LogPage, MAX_RESPONSE_BYTES, MAX_WAIT_MS, MEMBERSHIP_WAIT, Membership,
    NodeChallenges, NodeReport, SignedAvailability, SignedTransaction, SubmitResponse, SystemInfo, routes,
};

/// A typed client of the coordinator's API ([`crate::coord::routes`]). Answers are JSON of at
/// most [`MAX_RESPONSE_BYTES`].
///
/// It may know several replicas' URLs. Each call starts with the URL that last answered and
/// moves on to the next when one cannot be reached, times out or answers 503, trying each URL
/// at most once; when all fail the error ([`ClientError::NoAnswer`]) names every URL and why.
/// A write moves on only when it surely was not received (no connection, or 503): after a
/// timeout its outcome is unknown, so the error is returned and the next call starts with the
/// next URL. Clones share the memory of which URL answered last.
#[derive(Debug, Clone)]
pub struct CoordClient {
    /// At least one.
    endpoints: Arc<[Endpoint]>,
    /// Index in `endpoints` of the one tried first.
    preferred: Arc<AtomicUsize>,
}

/// Whether a call changes the coordinator's state (see [`CoordClient`] on failing over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

impl CoordClient {
    /// A client of the coordinator at `base_url` (`http://host:port`, or `host:port`), with
    /// default options.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::with_urls(&[base_url], ClientOptions::default())
    }

    /// A client of the replicas at `base_urls` (at least one), with timeouts `options`,
    /// following redirects.
    pub fn with_urls<S: AsRef<str>>(base_urls: &[S], options: ClientOptions) -> Result<Self, ClientError> {
        Self::with_http_urls(options.redirecting_http_client()?, base_urls, options)
    }

    /// A client sharing `http` (see [`ClientOptions::http_client`]; redirects are followed
    /// only if `http` follows them) with timeouts `options`.
    pub fn with_http(
        http: reqwest::Client,
        base_url: &str,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        Self::with_http_urls(http, &[base_url], options)
    }

    /// A client of the replicas at `base_urls` (at least one) sharing `http`.
    pub fn with_http_urls<S: AsRef<str>>(
        http: reqwest::Client,
        base_urls: &[S],
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        if base_urls.is_empty() {
            return Err(ClientError::InvalidUrl("no coordinator URL given".into()));
        }
        let endpoints = base_urls
            .iter()
            .map(|url| Endpoint::new(http.clone(), url.as_ref(), options))
            .collect::<Result<Arc<[Endpoint]>, _>>()?;
        Ok(Self { endpoints, preferred: Arc::new(AtomicUsize::new(0)) })
    }

    /// The base URL tried first: the one that answered last.
    pub fn base_url(&self) -> &str {
        self.endpoints[self.preferred.load(Ordering::Relaxed) % self.endpoints.len()].base()
    }

    /// Every base URL, in configuration order.
    pub fn base_urls(&self) -> Vec<&str> {
        self.endpoints.iter().map(Endpoint::base).collect()
    }

    /// Makes the call `request` builds against each URL in turn, as [`CoordClient`] says.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        kind: Kind,
        extra: Duration,
        request: impl Fn(&Endpoint) -> Result<reqwest::RequestBuilder, ClientError>,
    ) -> Result<T, ClientError> {
        let count = self.endpoints.len();
        let first = self.preferred.load(Ordering::Relaxed) % count;
        let mut attempts = Vec::new();
        for index in (first..count).chain(0..first) {
            let endpoint = &self.endpoints[index];
            let result = endpoint.call_json(request(endpoint)?, MAX_RESPONSE_BYTES, extra).await;
            let error = match result {
                Ok(answer) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(answer);
                }
                Err(error) => error,
            };
            let next = (index + 1) % count;
            if !error.is_unreachable() {
                self.preferred.store(index, Ordering::Relaxed);
                return Err(error);
            }
            self.preferred.store(next, Ordering::Relaxed);
            let surely_not_received = match &error {
                ClientError::Connect(_) => true,
                ClientError::Http { status, .. } => *status == reqwest::StatusCode::SERVICE_UNAVAILABLE,
                _ => false,
            };
            if count == 1 || (kind == Kind::Write && !surely_not_received) {
                return Err(error);
            }
            attempts.push(FailedUrl { url: endpoint.base().to_owned(), error });
        }
        Err(ClientError::NoAnswer { attempts })
    }

    /// Submits a signed transaction; answers the events it emitted and objects it created.
    /// A refused transaction is a [`ClientError::Http`] with the coordinator's error code.
    pub async fn submit_transaction(
        &self,
        transaction: &SignedTransaction,
    ) -> Result<SubmitResponse, ClientError> {
        self.call(Kind::Write, Duration::ZERO, |endpoint| {
            endpoint.post_json(routes::TRANSACTIONS, transaction)
        })
        .await
    }

    /// Submits a signed node report.
    pub async fn submit_node_report(&self, report: &NodeReport) -> Result<SubmitResponse, ClientError> {
        self.call(Kind::Write, Duration::ZERO, |endpoint| endpoint.post_json(routes::NODE_REPORTS, report))
            .await
    }

    /// Sends a node's availability summary to the replica that answers first; answers the
    /// system-wide margins of the blobs it lists. Soft state: nothing is logged, so a
    /// summary is safe to send again anywhere.
    pub async fn submit_availability(
        &self,
        summary: &SignedAvailability,
    ) -> Result<AvailabilityAnswer, ClientError> {
        self.call(Kind::Read, Duration::ZERO, |endpoint| endpoint.post_json(routes::AVAILABILITY, summary))
            .await
    }

    /// The system-wide availability margin as the replica that answers sees it.
    pub async fn availability(&self) -> Result<AvailabilityView, ClientError> {
        self.call(Kind::Read, Duration::ZERO, |endpoint| endpoint.get(routes::AVAILABILITY, None)).await
    }

    /// Moves a coordinator run with `[testing] manual_epochs = true` to the start of the next
    /// epoch ([`routes::NEXT_EPOCH`]); answers the tick's events. Any other coordinator
    /// refuses it with 403 `manual_epochs_off`.
    pub async fn next_epoch(&self) -> Result<SubmitResponse, ClientError> {
        self.call(Kind::Write, Duration::ZERO, |endpoint| endpoint.post_json(routes::NEXT_EPOCH, &())).await
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
        self.call(Kind::Read, Duration::from_millis(wait_ms), |endpoint| {
            endpoint.get(routes::EVENTS, Some(&query))
        })
        .await
    }

    /// The open storage-challenge round and the last epoch's outcomes
    /// ([`routes::CHALLENGES`]); with `node`, only the targets it is challenged as or audits.
    pub async fn challenges(
        &self,
        node: Option<&NodeId>,
    ) -> Result<crate::coord::ChallengesInfo, ClientError> {
        let query = node.map(|node| format!("node={node}"));
        self.call(Kind::Read, Duration::ZERO, |endpoint| endpoint.get(routes::CHALLENGES, query.as_deref()))
            .await
    }

    /// The challenge rules and the last epoch's outcomes, without the open round's targets.
    pub async fn challenge_outcomes(&self) -> Result<crate::coord::ChallengesInfo, ClientError> {
        self.call(Kind::Read, Duration::ZERO, |endpoint| {
            endpoint.get(routes::CHALLENGES, Some("targets=false"))
        })
        .await
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

    /// `node`'s challenge record: this epoch's tally and its last settled epochs.
    pub async fn node_challenges(&self, node: &NodeId) -> Result<NodeChallenges, ClientError> {
        self.get(&coord::node_challenges_path(node)).await
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
        let path = coord::account_blobs_path(account);
        self.call(Kind::Read, Duration::ZERO, |endpoint| endpoint.get(&path, Some(&query))).await
    }

    /// Adds replica `id` at `url` to the group ([`routes::RAFT_MEMBERS`]) with the admin
    /// token `admin_token`; answers the group once the change is committed (waiting up to
    /// [`MEMBERSHIP_WAIT`] for the new replica to catch up).
    pub async fn add_replica(
        &self,
        admin_token: &str,
        id: u64,
        url: &str,
    ) -> Result<Membership, ClientError> {
        let body = AddReplica { id, url: url.to_owned() };
        self.call(Kind::Write, MEMBERSHIP_WAIT, |endpoint| {
            Ok(endpoint.post_json(routes::RAFT_MEMBERS, &body)?.bearer_auth(admin_token))
        })
        .await
    }

    /// Removes replica `id` from the group ([`routes::RAFT_MEMBER`]) with the admin token
    /// `admin_token`; answers the group once the change is committed.
    pub async fn remove_replica(&self, admin_token: &str, id: u64) -> Result<Membership, ClientError> {
        let path = coord::member_path(id);
        self.call(Kind::Write, MEMBERSHIP_WAIT, |endpoint| {
            Ok(endpoint.delete(&path)?.bearer_auth(admin_token))
        })
        .await
    }

    /// Up to `limit` entries the replica recorded, from entry `from` ([`routes::LOG`]).
    pub async fn log_page(&self, from: u64, limit: usize) -> Result<LogPage, ClientError> {
        let query = format!("from={from}&limit={limit}");
        self.call(Kind::Read, Duration::ZERO, |endpoint| endpoint.get(routes::LOG, Some(&query))).await
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Kind::Read, Duration::ZERO, |endpoint| endpoint.get(path, None)).await
    }
}

/// The attempts of a [`ClientError::NoAnswer`] as text: `url: error; url: error`.
pub(super) fn describe_attempts(attempts: &[FailedUrl]) -> String {
    let described: Vec<String> =
        attempts.iter().map(|attempt| format!("{}: {}", attempt.url, attempt.error)).collect();
    described.join("; ")
}
