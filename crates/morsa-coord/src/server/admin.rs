//! The operator's routes: changing the replica group (`POST /v1/raft/members`,
//! `DELETE /v1/raft/members/{id}`), guarded by the admin token and forwarded to the leader
//! like every write, and the recorded log pages that `morsa coord audit --url` replays.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use morsa_api::ErrorBody;
use morsa_api::coord::{
    ADMIN_AUTHORIZATION, AddReplica, LogPage, LogQuery, MAX_BODY_BYTES, MAX_LOG_PAGE, MEMBERSHIP_WAIT,
    member_path, routes,
};
use morsa_api::server::refusal::{self, ApiPath, ApiQuery};
use morsa_core::hash::domain_hash;
use morsa_plumbing::ConfigError;
use morsa_plumbing::config;

use super::replication::{FORWARDED_HEADER, Forwarded, route_to_leader};
use super::{ApiError, Shared};
use crate::Digest;
use crate::raft::MembershipError;

/// Shortest admin token accepted (a guessable token would let anyone change the group).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;
/// Hex characters of recorded entries one log page carries at most (beyond its first entry),
/// well under what a client reads from the coordinator.
const MAX_LOG_PAGE_HEX_CHARS: usize = 4 << 20;
/// Largest admin token file read.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// The secret that authorizes membership changes, read from the file `coord.toml` names in
/// `admin_token_file`. Only its hash is kept, and requests are compared by hash, so the
/// comparison takes the same time however much of a wrong token matches.
#[derive(Clone)]
pub struct AdminToken(Digest);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// Reads the token from `path` (surrounding whitespace ignored); it must have at least
    /// [`MIN_ADMIN_TOKEN_CHARS`] characters.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = config::read_limited(path, MAX_TOKEN_FILE_BYTES)?;
        Self::new(text.trim()).map_err(|message| ConfigError::invalid(path, message))
    }

    /// The token `token`; refused if shorter than [`MIN_ADMIN_TOKEN_CHARS`] or not one line
    /// of printable text.
    pub fn new(token: &str) -> Result<Self, String> {
        if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
            return Err(format!(
                "the admin token must have at least {MIN_ADMIN_TOKEN_CHARS} characters \
                 (make one with `openssl rand -hex 32`)"
            ));
        }
        if token.chars().any(|character| character.is_whitespace() || character.is_control()) {
            return Err("the admin token must be one word of printable characters".to_owned());
        }
        Ok(Self(hash(token)))
    }

    fn admits(&self, token: &str) -> bool {
        hash(token) == self.0
    }
}

fn hash(token: &str) -> Digest {
    domain_hash(b"morsa/admin-token", &[token.as_bytes()])
}

/// The operator's routes: membership (with its own timeout, longer than other requests) and
/// log pages.
pub(super) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(routes::RAFT_MEMBERS, post(post_member))
        .route(routes::RAFT_MEMBER, axum::routing::delete(delete_member))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            MEMBERSHIP_WAIT + Duration::from_secs(5),
            refusal::within_time,
        ))
}

/// The log pages (served with the other reads).
pub(super) fn log_router() -> Router<Arc<Shared>> {
    Router::new().route(routes::LOG, get(get_log))
}

fn refusal(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    ApiError(status, ErrorBody::new(code, message))
}

fn refused(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    refusal(status, code, message).into_response()
}

/// Checks the request's admin token against this replica's; answers the refusal if it fails.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(expected) = &shared.admin_token else {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "this coordinator has no admin token (`admin_token_file` in its coord.toml): \
             its membership cannot be changed through it",
        ));
    };
    let given = headers
        .get(ADMIN_AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(given) = given else {
        return Err(refusal(
            StatusCode::UNAUTHORIZED,
            "admin_token_required",
            "changing the membership needs the admin token: `Authorization: Bearer TOKEN` \
             (`morsa coord add-replica --admin-token-file FILE`)",
        ));
    };
    if !expected.admits(given) {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "bad_admin_token",
            "the admin token is wrong: use the token in the file coord.toml names in `admin_token_file`",
        ));
    }
    Ok(given.to_owned())
}

fn membership_refused(error: &MembershipError) -> Response {
    let status = match error {
        MembershipError::NotLeader => StatusCode::SERVICE_UNAVAILABLE,
        // Not 503: clients send a write answered 503 elsewhere, and this one may commit.
        MembershipError::Unconfirmed => StatusCode::GATEWAY_TIMEOUT,
        MembershipError::Unreachable { .. } => StatusCode::BAD_GATEWAY,
        MembershipError::UnknownReplica { .. } => StatusCode::NOT_FOUND,
        MembershipError::NotCaughtUp { .. } => StatusCode::GATEWAY_TIMEOUT,
        MembershipError::Raft(_) => StatusCode::INTERNAL_SERVER_ERROR,
        MembershipError::AlreadyMember { .. }
        | MembershipError::UrlInUse { .. }
        | MembershipError::WrongReplica { .. }
        | MembershipError::OtherGroup { .. }
        | MembershipError::OtherChain { .. }
        | MembershipError::LastVoter { .. }
        | MembershipError::IsLeader { .. }
        | MembershipError::InProgress => StatusCode::CONFLICT,
    };
    refused(status, error.code(), error.to_string())
}

fn not_replicated() -> Response {
    refused(StatusCode::NOT_FOUND, "not_replicated", "this coordinator does not replicate")
}

async fn post_member(AxumState(shared): AxumState<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let token = match authorize(&shared, &headers) {
        Ok(token) => token,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(replica) = shared.replica() else { return not_replicated() };
    let request: AddReplica = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("expected {{\"id\", \"url\"}}: {error}"),
            );
        }
    };
    if let Err(reason) = check_url(&request.url) {
        return refused(StatusCode::BAD_REQUEST, "bad_url", format!("{:?}: {reason}", request.url));
    }
    let forwarded = headers.contains_key(FORWARDED_HEADER);
    let to_leader =
        Forwarded::Membership { path: routes::RAFT_MEMBERS.to_owned(), add: Some(&request), token: &token };
    if let Some(answer) = route_to_leader(&shared, forwarded, &to_leader).await {
        return answer;
    }
    tracing::info!(id = request.id, url = %request.url, "adding a replica");
    match replica.add_replica(request.id, &request.url).await {
        Ok(membership) => Json(membership).into_response(),
        Err(error) => membership_refused(&error),
    }
}

async fn delete_member(
    AxumState(shared): AxumState<Arc<Shared>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Response {
    let token = match authorize(&shared, &headers) {
        Ok(token) => token,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(replica) = shared.replica() else { return not_replicated() };
    let Ok(id) = id.parse::<u64>() else {
        return refused(StatusCode::BAD_REQUEST, "bad_replica_id", format!("{id:?} is not a replica ID"));
    };
    let forwarded = headers.contains_key(FORWARDED_HEADER);
    let to_leader = Forwarded::Membership { path: member_path(id), add: None, token: &token };
    if let Some(answer) = route_to_leader(&shared, forwarded, &to_leader).await {
        return answer;
    }
    tracing::info!(id, "removing a replica");
    match replica.remove_replica(id).await {
        Ok(membership) => Json(membership).into_response(),
        Err(error) => membership_refused(&error),
    }
}

/// A replica URL is `http(s)://host:port` with nothing after it.
fn check_url(url: &str) -> Result<(), &'static str> {
    let parsed = reqwest::Url::parse(url).map_err(|_| "not a URL")?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("expected http://host:port");
    }
    if parsed.host().is_none() || parsed.port_or_known_default().is_none() {
        return Err("expected a host and port");
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("expected http://host:port with no path");
    }
    Ok(())
}

async fn get_log(
    AxumState(shared): AxumState<Arc<Shared>>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Json<LogPage>, ApiError> {
    let from = query.from.unwrap_or(0);
    let limit = query.limit.unwrap_or(MAX_LOG_PAGE).clamp(1, MAX_LOG_PAGE);
    let page = tokio::task::spawn_blocking(move || shared.lock().recorded(from, limit))
        .await
        .map_err(super::task_failed)?;
    let page = page.map_err(|error| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorBody::new("unavailable", format!("command log: {error}")),
        )
    })?;
    let mut chars = 0_usize;
    let entries = page
        .entries
        .iter()
        .map(hex::encode)
        .take_while(|entry| {
            let first = chars == 0;
            chars = chars.saturating_add(entry.len());
            first || chars <= MAX_LOG_PAGE_HEX_CHARS
        })
        .collect();
    Ok(Json(LogPage { genesis_hash: hex::encode(page.genesis_hash), from, entries, count: page.count }))
}

#[cfg(test)]
mod tests;
