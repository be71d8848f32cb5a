//! The replicated coordinator's side of the server: writes routed to the leader, the
//! replica-to-replica Raft routes, and the task that turns applied entries into woken
//! long-polls and a stopped Raft into a stopped server.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use morsa_api::ErrorBody;
use morsa_api::coord::{AddReplica, MEMBERSHIP_WAIT, routes};
use serde::de::DeserializeOwned;

use super::{ApiError, Shared, status_of};
use crate::Input;
use crate::raft::{COMMIT_WAIT, MAX_RAFT_BODY_BYTES, ProposeError, ReplicaId, Route};

/// Header marking a write a replica forwarded to the leader: it is not forwarded again.
pub const FORWARDED_HEADER: &str = "x-morsa-forwarded";
/// Longest a write waits for a leader to be known and reachable.
const LEADER_WAIT: Duration = Duration::from_secs(5);
/// Longest pause between attempts to reach a leader that did not answer (the next attempt
/// goes as soon as another leader is known).
const LEADER_RETRY: Duration = Duration::from_millis(200);

fn no_quorum(detail: &str) -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorBody::new(
            "no_quorum",
            format!(
                "no quorum of coordinators: {detail}; retry later, or bring more coordinator replicas back"
            ),
        ),
    )
}

/// The answer to a write whose outcome is unknown: it reached the leader (or was proposed
/// here) but its commit was not confirmed. It must not be answered 503: clients send a write
/// that got a 503 to another replica, and this one may still be applied.
fn commit_unknown(detail: &str) -> ApiError {
    ApiError(
        StatusCode::GATEWAY_TIMEOUT,
        ErrorBody::new(
            "commit_unknown",
            format!(
                "{detail}; the write may still be applied: check the account's nonce (or the blob) before retrying, or resend the same signed transaction, which is refused as bad_nonce if it was"
            ),
        ),
    )
}

/// Where `input` goes: see [`route_to_leader`].
pub(super) async fn route_write(shared: &Shared, input: &Input, forwarded: bool) -> Option<Response> {
    route_to_leader(shared, forwarded, &Forwarded::Input(input)).await
}

/// A write that may be forwarded to the leader.
pub(super) enum Forwarded<'a> {
    /// A transaction, node report or tick.
    Input(&'a Input),
    /// A membership change: `POST` of a replica to add, or `DELETE` of `path`, with the
    /// admin token it came with.
    Membership {
        /// The route and its parameter.
        path: String,
        /// The replica to add; `None`: a removal.
        add: Option<&'a AddReplica>,
        /// The admin token.
        token: &'a str,
    },
}

/// Where a write goes: `None` if this replica leads (do it here), else the answer the
/// leader gave to `request`; `no_quorum` (503) if no leader was reachable in time (the write
/// surely was not proposed), `commit_unknown` (504) if the leader received it but did not
/// answer. A write that was already forwarded once is not forwarded again.
pub(super) async fn route_to_leader(
    shared: &Shared,
    forwarded: bool,
    request: &Forwarded<'_>,
) -> Option<Response> {
    let replica = shared.replica()?;
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match replica.route(left).await {
            Route::Local => return None,
            Route::NoLeader => {
                return Some(
                    no_quorum(&format!("no leader was elected within {} s", LEADER_WAIT.as_secs()))
                        .into_response(),
                );
            }
            Route::Forward(_) if forwarded => {
                return Some(
                    ApiError(
                        StatusCode::SERVICE_UNAVAILABLE,
                        ErrorBody::new(
                            "not_leader",
                            "the leader changed while the write was forwarded; retry",
                        ),
                    )
                    .into_response(),
                );
            }
            Route::Forward(url) => match forward(replica.http(), &url, request).await {
                Ok(answer) => return Some(answer),
                // Sent, and perhaps applied: forwarding it again could only confuse the answer.
                Err(error) if !error.is_connect() => {
                    return Some(
                        commit_unknown(&format!("the leader at {url} did not answer: {error}"))
                            .into_response(),
                    );
                }
                Err(error) => {
                    if tokio::time::Instant::now() + LEADER_RETRY >= deadline {
                        return Some(
                            no_quorum(&format!("the leader at {url} did not answer: {error}"))
                                .into_response(),
                        );
                    }
                    tracing::debug!(%url, %error, "leader unreachable; retrying");
                    replica.leader_moved_from(&url, LEADER_RETRY).await;
                }
            },
        }
    }
}

/// Sends `request` to the leader at `url` and returns its answer as it is.
async fn forward(
    http: &reqwest::Client,
    url: &str,
    request: &Forwarded<'_>,
) -> Result<Response, reqwest::Error> {
    let wait = match request {
        Forwarded::Input(_) => COMMIT_WAIT + LEADER_WAIT,
        Forwarded::Membership { .. } => MEMBERSHIP_WAIT,
    };
    let request = match request {
        Forwarded::Input(Input::Transaction(transaction)) => {
            http.post(format!("{url}{}", routes::TRANSACTIONS)).json(transaction)
        }
        Forwarded::Input(Input::Node(report)) => {
            http.post(format!("{url}{}", routes::NODE_REPORTS)).json(report)
        }
        Forwarded::Input(Input::Tick) => http.post(format!("{url}{}", routes::TRANSACTIONS)),
        Forwarded::Membership { path, add: Some(add), token } => {
            http.post(format!("{url}{path}")).json(add).bearer_auth(token)
        }
        Forwarded::Membership { path, add: None, token } => {
            http.delete(format!("{url}{path}")).bearer_auth(token)
        }
    };
    let answer = request.header(FORWARDED_HEADER, "1").timeout(wait).send().await?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let body = answer.bytes().await?;
    Ok((status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The answer to a proposal that failed.
pub(super) fn propose_error(shared: &Shared, error: ProposeError) -> ApiError {
    match error {
        ProposeError::Refused(error) => {
            shared.metrics.refused(error.code());
            ApiError(status_of(&error), ErrorBody::new(error.code(), error.to_string()))
        }
        ProposeError::NotLeader => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorBody::new(
                "not_leader",
                "this replica stopped leading before the write was committed; retry",
            ),
        ),
        ProposeError::Unencodable(reason) => ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorBody::new("internal", format!("{reason}; the write was not applied")),
        ),
        ProposeError::Unconfirmed => commit_unknown(&format!(
            "no quorum of coordinators committed it within {} s",
            COMMIT_WAIT.as_secs()
        )),
        // Raft stopped after the entry was handed to it. A lone voter commits nothing it could
        // not store itself, so the write was not applied; in a group another replica may have
        // it already.
        ProposeError::Fatal(reason) => {
            shared.fatal.send_replace(true);
            if shared.replica().is_some_and(|replica| replica.is_sole_voter()) {
                ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorBody::new(
                        "unavailable",
                        format!(
                            "{reason}; the write was not applied: retry once the coordinator has restarted"
                        ),
                    ),
                )
            } else {
                commit_unknown(&format!("this replica stopped ({reason}); its write was proposed"))
            }
        }
    }
}

/// Wakes long-polls as entries are applied, and stops the server once Raft stopped.
pub(super) async fn watch(shared: Arc<Shared>) {
    let Some(replica) = shared.replica() else { return };
    let mut events = replica.events();
    let mut metrics = replica.stopped();
    loop {
        tokio::select! {
            changed = events.changed() => {
                if changed.is_err() {
                    return;
                }
                let count = *events.borrow_and_update();
                shared.waiters.publish(count);
            }
            changed = metrics.changed() => {
                let stopped = changed.is_err() || metrics.borrow_and_update().running_state.is_err();
                if stopped {
                    tracing::error!("raft stopped: its log or state machine could not be written");
                    shared.fatal.send_replace(true);
                    return;
                }
            }
        }
    }
}

/// The replica-to-replica routes, with their own body limit.
pub(super) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(routes::RAFT_APPEND, post(append))
        .route(routes::RAFT_VOTE, post(vote))
        .route(routes::RAFT_SNAPSHOT, post(snapshot))
        .layer(DefaultBodyLimit::max(MAX_RAFT_BODY_BYTES))
}

/// Parses a Raft message and checks that its sender is a member: a replica that never joined
/// a group (its membership is empty) takes messages from anyone, which is how an added
/// replica hears from the leader first.
fn admit<T: DeserializeOwned>(
    shared: &Shared,
    body: &[u8],
    sender: impl FnOnce(&T) -> ReplicaId,
) -> Result<T, ApiError> {
    let Some(replica) = shared.replica() else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            ErrorBody::new("not_replicated", "this coordinator does not replicate"),
        ));
    };
    let message: T = serde_json::from_slice(body).map_err(|error| {
        ApiError(
            StatusCode::BAD_REQUEST,
            ErrorBody::new("bad_raft_message", format!("the Raft message does not parse: {error}")),
        )
    })?;
    let from = sender(&message);
    if !replica.knows(from) && replica.has_members() {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            ErrorBody::new(
                "unknown_replica",
                format!("replica {from} is not a member of this coordinator group"),
            ),
        ));
    }
    Ok(message)
}

async fn append(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> Response {
    let request: openraft::raft::AppendEntriesRequest<crate::raft::TypeConfig> =
        match admit(&shared, &body, |request: &openraft::raft::AppendEntriesRequest<_>| {
            request.vote.leader_id.node_id
        }) {
            Ok(request) => request,
            Err(error) => return error.into_response(),
        };
    let Some(replica) = shared.replica() else { return StatusCode::NOT_FOUND.into_response() };
    axum::Json(replica.raft().append_entries(request).await).into_response()
}

async fn vote(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> Response {
    let request: openraft::raft::VoteRequest<ReplicaId> =
        match admit(&shared, &body, |request: &openraft::raft::VoteRequest<ReplicaId>| {
            request.vote.leader_id.node_id
        }) {
            Ok(request) => request,
            Err(error) => return error.into_response(),
        };
    let Some(replica) = shared.replica() else { return StatusCode::NOT_FOUND.into_response() };
    axum::Json(replica.raft().vote(request).await).into_response()
}

async fn snapshot(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> Response {
    let request: openraft::raft::InstallSnapshotRequest<crate::raft::TypeConfig> =
        match admit(&shared, &body, |request: &openraft::raft::InstallSnapshotRequest<_>| {
            request.vote.leader_id.node_id
        }) {
            Ok(request) => request,
            Err(error) => return error.into_response(),
        };
    let Some(replica) = shared.replica() else { return StatusCode::NOT_FOUND.into_response() };
    axum::Json(replica.raft().install_snapshot(request).await).into_response()
}
