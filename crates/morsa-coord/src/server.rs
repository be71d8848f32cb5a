//! The coordinator's HTTP server: transactions and node reports in, state and events out.
//!
//! One [`Coordinator`] sits behind a mutex. Submissions run on blocking threads (each commit
//! waits for an fsync); reads take the lock briefly. A background task applies a tick whenever
//! an epoch deadline comes due. If a commit fails the process must restart, so the server stops.
//!
//! Nothing expensive happens under the lock: signatures are verified before it is taken (in a
//! bounded stage), `/v1/system` is answered from a copy of the state, and a commit wakes only
//! the long-polls its events answer. See its `limits` module for the bounds.

mod admin;
mod availability;
mod challenges;
mod limits;
mod manual_epochs;
mod node_challenges;
mod replication;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, State as AxumState};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use morsa_api::ErrorBody;
use morsa_api::coord::{
    AccountBlobs, AccountBlobsQuery, AccountInfo, CommandResult, CommitteeInfo, EventsPage, EventsQuery,
    MAX_ACCOUNT_BLOBS_PAGE, MAX_BODY_BYTES, MAX_EVENTS_PAGE, MAX_WAIT_MS, MemberZones, NodeReport,
    SignedTransaction, SubmitResponse, SystemInfo, routes,
};
use morsa_api::server::refusal::{self, ApiJson, ApiPath, ApiQuery};
use morsa_core::AccountId;
use redstuff::BlobId;
use tokio::sync::watch;

use crate::availability::{Availability, DEFAULT_STALE_AFTER};
use crate::metrics::Metrics;
use crate::raft::Replica;
use crate::system_view::SystemAnswer;
use crate::{
    Applied, CommandApplied, CommandError, Coordinator, CoordinatorError, EpochPhase, Input, Prechecked,
    SubmitError, SystemView,
};
pub use admin::{AdminToken, MIN_ADMIN_TOKEN_CHARS};
use limits::{Budgets, Gate, ParkError, Waiters};
pub use manual_epochs::Clock;
use morsa_core::NodeId;

/// Longest any request may take: the longest long-poll plus slack for a slow commit.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(MAX_WAIT_MS + 15_000);

/// Longest the ticker sleeps before looking at the deadlines again.
const TICK_CHECK: Duration = Duration::from_secs(1);

/// Transaction signatures verified at once (ed25519, and BLS certificates of certify and
/// invalidate commands).
pub const TRANSACTION_VERIFIERS: usize = 2;
/// Node reports verified at once (one BLS pairing each, or more with a certificate): at most
/// one core, whatever arrives.
pub const REPORT_VERIFIERS: usize = 1;
/// Requests waiting to be verified, per stage, before more are refused with 503.
pub const MAX_WAITING_VERIFICATIONS: usize = 256;
/// Node reports verified per second in all (and at once): a flood of forged reports costs at
/// most this many BLS checks, a fraction of a core; beyond it reports are refused with 503
/// until the budget refills. Nodes report a few times per epoch.
pub const REPORT_VERIFICATIONS_PER_SECOND: u32 = 100;
/// Reports from one client address that may fail verification at once; then one more per
/// [`FAILED_REPORT_REFILL_MS`]. Beyond it the address's reports are refused with 429 unverified
/// (when the server records client addresses).
pub const FAILED_REPORT_BURST: u32 = 16;
/// See [`FAILED_REPORT_BURST`].
pub const FAILED_REPORT_REFILL_MS: u32 = 1_000;
/// Verified reports a node may send at once, and the interval in which it earns one more.
pub const REPORT_BURST: u32 = 16;
/// See [`REPORT_BURST`].
pub const REPORT_REFILL_MS: u32 = 1_000;
/// `/v1/system` requests waiting for the state hash before more are refused with 503.
pub const MAX_WAITING_SYSTEM: usize = 256;
/// Long-polls parked in all, and per client address.
pub const MAX_PARKED_POLLS: usize = 4096;
/// See [`MAX_PARKED_POLLS`].
pub const MAX_PARKED_POLLS_PER_ADDRESS: usize = 64;

/// What the handlers share.
pub struct Shared {
    coordinator: Arc<Mutex<Coordinator>>,
    /// The Raft replica in front of the coordinator; `None` for an unreplicated coordinator
    /// embedded in a process (tests), which commits directly to its log.
    replica: Option<Replica>,
    /// Answers `/v1/system` without `coordinator`'s lock.
    view: Arc<SystemView>,
    /// Parked long-polls, woken by the commits that answer them.
    waiters: Waiters,
    transaction_verifiers: Gate,
    report_verifiers: Gate,
    system: Gate,
    /// Verified reports per node.
    report_budgets: Budgets<NodeId>,
    /// Report verifications in all.
    report_verifications: Budgets<()>,
    /// Failed report verifications per client address.
    failed_reports: Budgets<IpAddr>,
    /// Fired when a commit failed and the server must stop.
    fatal: watch::Sender<bool>,
    metrics: Metrics,
    /// The time entries are stamped with.
    clock: Clock,
    /// The token that authorizes membership changes; `None`: they are refused.
    admin_token: Option<AdminToken>,
    /// The nodes' latest availability summaries (soft state of this replica).
    availability: Availability,
    /// Verified availability summaries per node.
    summary_budgets: Budgets<NodeId>,
}

impl Shared {
    /// Wraps a coordinator for serving, unreplicated (writes commit directly to its log), on
    /// the wall clock.
    pub fn new(coordinator: Coordinator) -> Arc<Self> {
        Self::with_clock(coordinator, Clock::wall())
    }

    /// Wraps a coordinator for serving, unreplicated, on `clock`.
    pub fn with_clock(coordinator: Coordinator, clock: Clock) -> Arc<Self> {
        Self::build(Arc::new(Mutex::new(coordinator)), None, clock, None, DEFAULT_STALE_AFTER)
    }

    /// Serves a replica on `clock`: writes go through Raft (or to the leader), reads from its
    /// state; membership changes need `admin_token` (none: they are refused); a node's
    /// availability summary counts for `stale_after`.
    pub fn replicated(
        replica: Replica,
        clock: Clock,
        admin_token: Option<AdminToken>,
        stale_after: Duration,
    ) -> Arc<Self> {
        Self::build(Arc::clone(replica.coordinator()), Some(replica), clock, admin_token, stale_after)
    }

    fn build(
        coordinator: Arc<Mutex<Coordinator>>,
        replica: Option<Replica>,
        clock: Clock,
        admin_token: Option<AdminToken>,
        stale_after: Duration,
    ) -> Arc<Self> {
        let (count, view) = {
            let locked = crate::lock(&coordinator);
            (locked.event_count(), locked.system_view())
        };
        Arc::new(Self {
            view,
            coordinator,
            replica,
            waiters: Waiters::new(count, MAX_PARKED_POLLS, MAX_PARKED_POLLS_PER_ADDRESS),
            transaction_verifiers: Gate::new(TRANSACTION_VERIFIERS, MAX_WAITING_VERIFICATIONS),
            report_verifiers: Gate::new(REPORT_VERIFIERS, MAX_WAITING_VERIFICATIONS),
            system: Gate::new(1, MAX_WAITING_SYSTEM),
            report_budgets: Budgets::new(REPORT_BURST, REPORT_REFILL_MS),
            report_verifications: Budgets::new(
                REPORT_VERIFICATIONS_PER_SECOND,
                1_000 / REPORT_VERIFICATIONS_PER_SECOND.max(1),
            ),
            failed_reports: Budgets::new(FAILED_REPORT_BURST, FAILED_REPORT_REFILL_MS),
            fatal: watch::channel(false).0,
            metrics: Metrics::default(),
            clock,
            admin_token,
            availability: Availability::new(stale_after),
            summary_budgets: Budgets::new(availability::SUMMARY_BURST, availability::SUMMARY_REFILL_MS),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Coordinator> {
        // A panic while holding the lock cannot leave a half-applied entry: `apply` checks
        // before it mutates. Keep serving what the state says.
        crate::lock(&self.coordinator)
    }

    /// The replica, if the coordinator replicates.
    pub fn replica(&self) -> Option<&Replica> {
        self.replica.as_ref()
    }

    /// Submits `input`, whose signatures `checks` verified, now, on the calling (blocking)
    /// thread, to an unreplicated coordinator.
    fn submit(&self, input: Input, checks: &Prechecked) -> Result<SubmitResponse, SubmitError> {
        let mut coordinator = self.lock();
        let result = coordinator.submit_prechecked(input, checks, self.clock.now_ms());
        let count = coordinator.event_count();
        drop(coordinator);
        match &result {
            Ok(_) => self.metrics.accepted(),
            Err(SubmitError::Refused(error)) => self.metrics.refused(error.code()),
            Err(SubmitError::Fatal(_)) => {
                self.fatal.send_replace(true);
            }
        }
        self.waiters.publish(count);
        result.map(submit_response)
    }

    /// Entries in the coordinator's log.
    pub fn log_len(&self) -> Result<u64, morsa_store::StoreError> {
        self.lock().log_len()
    }

    /// Long-polls waiting for events right now (lets tests commit only once a poll is waiting).
    pub fn event_waiters(&self) -> usize {
        self.waiters.parked()
    }

    /// A receiver that turns true when the server must stop.
    pub fn fatal_signal(&self) -> watch::Receiver<bool> {
        self.fatal.subscribe()
    }
}

/// Milliseconds since the Unix epoch (the clock entries are stamped with).
pub use morsa_plumbing::now_ms;

/// The router with every route.
pub fn router(shared: Arc<Shared>) -> Router {
    let routes = Router::new()
        .route(routes::TRANSACTIONS, post(post_transaction))
        .route(routes::NODE_REPORTS, post(post_node_report))
        .route(routes::EVENTS, get(get_events))
        .route(routes::BLOB, get(get_blob))
        .route(routes::COMMITTEE, get(get_committee))
        .route(routes::SYSTEM, get(get_system))
        .route(routes::ACCOUNT, get(get_account))
        .route(routes::ACCOUNT_BLOBS, get(get_account_blobs))
        .route(
            routes::AVAILABILITY,
            post(availability::post_availability).get(availability::get_availability),
        )
        .route(routes::CHALLENGES, get(challenges::get_challenges))
        .route(routes::NODE_CHALLENGES, get(node_challenges::get_node_challenges))
        .route(routes::METRICS, get(get_metrics))
        .route(routes::NEXT_EPOCH, post(manual_epochs::post_next_epoch))
        .merge(admin::log_router())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(replication::router())
        .layer(axum::middleware::from_fn_with_state(REQUEST_TIMEOUT, refusal::within_time))
        // Membership changes wait for a new replica to catch up: their own, longer timeout.
        .merge(admin::router());
    refusal::with_refusals(routes).layer(morsa_plumbing::telemetry::trace_layer()).with_state(shared)
}

/// Applies a tick whenever a deadline comes due, until `stop` turns true.
pub async fn run_ticker(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let due = shared.lock().state().next_deadline_ms();
        let wait =
            due.map_or(TICK_CHECK, |due| Duration::from_millis(due.saturating_sub(shared.clock.now_ms())));
        tokio::select! {
            _ = tokio::time::sleep(wait.min(TICK_CHECK)) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        if shared.lock().state().deadline_due(shared.clock.now_ms()).is_some() {
            if let Some(replica) = shared.replica() {
                // Only the leader proposes ticks; every replica applies them.
                if replica.is_leader()
                    && let Err(error) =
                        replica.propose(Input::Tick, Prechecked::default(), shared.clock.now_ms()).await
                {
                    tracing::warn!(%error, "tick not committed");
                }
                continue;
            }
            let shared = Arc::clone(&shared);
            let result =
                tokio::task::spawn_blocking(move || shared.submit(Input::Tick, &Prechecked::default())).await;
            if let Ok(Err(error)) = result {
                tracing::error!(%error, "tick failed");
            }
        }
    }
}

/// An error response: status, stable code, message.
struct ApiError(StatusCode, ErrorBody);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::Refused(error) => {
                Self(status_of(&error), ErrorBody::new(error.code(), error.to_string()))
            }
            SubmitError::Fatal(error) => {
                let status = match error {
                    CoordinatorError::Store(_)
                    | CoordinatorError::Poisoned
                    | CoordinatorError::Thread { .. } => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                let message = format!("{error}; retry once the coordinator has restarted");
                Self(status, ErrorBody::new(error.code(), message))
            }
        }
    }
}

/// The answer to an accepted submission: what it did, and for a batch what each command did
/// (a refused one with the status and error it would have been refused with alone).
pub(crate) fn submit_response(applied: Applied) -> SubmitResponse {
    let results = applied
        .results
        .into_iter()
        .map(|result| match result {
            Ok(CommandApplied { events, created }) => CommandResult::Applied { events, created },
            Err(error) => CommandResult::Refused {
                status: status_of(&error).as_u16(),
                error: ErrorBody::new(error.code(), error.to_string()),
            },
        })
        .collect();
    SubmitResponse { events: applied.events, created: applied.created, results }
}

fn status_of(error: &CommandError) -> StatusCode {
    match error {
        CommandError::BadSignature(_) | CommandError::BadNodeSignature(_) => StatusCode::UNAUTHORIZED,
        CommandError::NotOwner { .. } | CommandError::NotOperator { .. } => StatusCode::FORBIDDEN,
        CommandError::UnknownObject(_) | CommandError::UnknownNode(_) => StatusCode::NOT_FOUND,
        CommandError::BadNonce { .. }
        | CommandError::BlobState { .. }
        | CommandError::InvalidBlob(_)
        | CommandError::WrongEpoch { .. }
        | CommandError::TickDue { .. }
        | CommandError::TooManyInactiveNodes { .. }
        | CommandError::NodeActive(_)
        | CommandError::WithdrawalNotDue { .. }
        | CommandError::NodeRetired(_)
        | CommandError::TimeWentBackwards { .. } => StatusCode::CONFLICT,
        CommandError::InsufficientBalance { .. } => StatusCode::PAYMENT_REQUIRED,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn task_failed(_: tokio::task::JoinError) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, ErrorBody::new("internal", "the submission task failed"))
}

fn busy(what: &str) -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorBody::new("busy", format!("too many {what} are waiting; retry in a moment")),
    )
}

fn too_many(code: &str, message: String) -> ApiError {
    ApiError(StatusCode::TOO_MANY_REQUESTS, ErrorBody::new(code, message))
}

/// Sends a write where it belongs: to this replica's Raft if it leads (or if the coordinator
/// does not replicate), else to the leader; a request that was already forwarded once is not
/// forwarded again.
async fn submit(shared: Arc<Shared>, input: Input, from: Option<IpAddr>, forwarded: bool) -> Response {
    if shared.replica().is_some()
        && let Some(response) = replication::route_write(&shared, &input, forwarded).await
    {
        return response;
    }
    match verify_and_apply(shared, input, from).await {
        Ok(answer) => answer.into_response(),
        Err(error) => error.into_response(),
    }
}

/// Verifies `input`'s signatures without the coordinator's lock (taking it only to read what
/// to verify against), in a bounded stage, then applies and commits it.
async fn verify_and_apply(
    shared: Arc<Shared>,
    input: Input,
    from: Option<IpAddr>,
) -> Result<Json<SubmitResponse>, ApiError> {
    let is_report = matches!(input, Input::Node(_));
    if is_report {
        if from.is_some_and(|address| !shared.failed_reports.has(&address)) {
            shared.metrics.refused("rate_limited");
            return Err(too_many(
                "rate_limited",
                format!(
                    "too many reports from this address failed verification; it may send one per {FAILED_REPORT_REFILL_MS} ms"
                ),
            ));
        }
        if !shared.report_verifications.take(&()) {
            shared.metrics.refused("busy");
            return Err(busy("node reports"));
        }
    }
    let gate = if is_report { &shared.report_verifiers } else { &shared.transaction_verifiers };
    let permit = gate.enter().await.map_err(|_| busy("submissions"))?;
    let (input, checks) = {
        let shared = Arc::clone(&shared);
        tokio::task::spawn_blocking(move || {
            let precheck = shared.lock().state().precheck(&input);
            (input, precheck.run())
        })
        .await
        .map_err(task_failed)?
    };
    drop(permit);
    let checks = match checks {
        Ok(checks) => checks,
        Err(error) => {
            if let (true, Some(address)) = (is_report, from) {
                shared.failed_reports.take(&address);
            }
            shared.metrics.refused(error.code());
            return Err(SubmitError::Refused(error).into());
        }
    };
    if let Input::Node(report) = &input
        && !shared.report_budgets.take(&report.node)
    {
        shared.metrics.refused("rate_limited");
        return Err(too_many(
            "rate_limited",
            format!(
                "node {} sent more than {REPORT_BURST} reports in a short time; it may send one per {REPORT_REFILL_MS} ms",
                report.node
            ),
        ));
    }
    if let Some(replica) = shared.replica() {
        let result = replica.propose(input, checks, shared.clock.now_ms()).await;
        let count = crate::lock(&shared.coordinator).event_count();
        shared.waiters.publish(count);
        return match result {
            Ok(applied) => {
                shared.metrics.accepted();
                Ok(Json(submit_response(applied)))
            }
            Err(error) => Err(replication::propose_error(&shared, error)),
        };
    }
    let outcome =
        tokio::task::spawn_blocking(move || shared.submit(input, &checks)).await.map_err(task_failed)?;
    Ok(Json(outcome?))
}

/// The client's IP address, when the server records it (served with connect info).
struct ClientAddress(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())))
    }
}

async fn post_transaction(
    AxumState(shared): AxumState<Arc<Shared>>,
    ClientAddress(from): ClientAddress,
    headers: axum::http::HeaderMap,
    ApiJson(transaction): ApiJson<SignedTransaction>,
) -> Response {
    let forwarded = headers.contains_key(replication::FORWARDED_HEADER);
    submit(shared, Input::Transaction(transaction), from, forwarded).await
}

async fn post_node_report(
    AxumState(shared): AxumState<Arc<Shared>>,
    ClientAddress(from): ClientAddress,
    headers: axum::http::HeaderMap,
    ApiJson(report): ApiJson<NodeReport>,
) -> Response {
    let forwarded = headers.contains_key(replication::FORWARDED_HEADER);
    submit(shared, Input::Node(report), from, forwarded).await
}

async fn get_events(
    AxumState(shared): AxumState<Arc<Shared>>,
    ClientAddress(address): ClientAddress,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<EventsPage>, ApiError> {
    let from = query.after.map_or(0, |after| after.saturating_add(1));
    let limit = query.limit.unwrap_or(MAX_EVENTS_PAGE).clamp(1, MAX_EVENTS_PAGE);
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0).min(MAX_WAIT_MS));
    if let Some(after) = query.after {
        // `after` may name the last event or the one after it (a client that saw nothing
        // yet); anything further is a mistake, and parking it would only hold resources.
        let count = shared.lock().event_count();
        if after > count {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                ErrorBody::new(
                    "after_beyond_head",
                    format!(
                        "after={after} is beyond the {count} events that exist; ask with after < {count}"
                    ),
                ),
            ));
        }
    }
    if !wait.is_zero() {
        match shared.waiters.park(from, address) {
            Ok(Some(mut parked)) => {
                // Woken only by the commit whose events answer this poll.
                let _ = tokio::time::timeout(wait, &mut parked.woken).await;
            }
            Ok(None) => {}
            Err(ParkError::TooMany) => {
                return Err(ApiError(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorBody::new(
                        "too_many_polls",
                        format!(
                            "too many long-polls are parked (at most {MAX_PARKED_POLLS}, {MAX_PARKED_POLLS_PER_ADDRESS} per address); retry later or poll without wait_ms"
                        ),
                    ),
                ));
            }
        }
    }
    let coordinator = shared.lock();
    Ok(Json(EventsPage {
        events: coordinator.events_from(from, limit).to_vec(),
        count: coordinator.event_count(),
    }))
}

async fn get_blob(
    AxumState(shared): AxumState<Arc<Shared>>,
    ApiPath(blob_id): ApiPath<String>,
) -> Result<Json<morsa_api::coord::BlobStatus>, ApiError> {
    let blob_id: BlobId = blob_id.parse().map_err(|error: redstuff::BlobIdParseError| {
        ApiError(StatusCode::BAD_REQUEST, ErrorBody::new("bad_blob_id", error.to_string()))
    })?;
    Ok(Json(shared.lock().state().blob_status(&blob_id)))
}

async fn get_committee(AxumState(shared): AxumState<Arc<Shared>>) -> Json<CommitteeInfo> {
    let coordinator = shared.lock();
    let state = coordinator.state();
    Json(CommitteeInfo {
        epoch: state.epoch,
        epoch_change_done: state.phase == EpochPhase::Done,
        current: state.committee.clone(),
        next: state.next_committee.clone(),
        zones: MemberZones::of_members(
            std::iter::once(&state.committee).chain(&state.next_committee),
            |node| state.nodes.get(node).map(|node| node.zone.as_str()),
        ),
    })
}

/// Answered from the coordinator's copy of the state, never under its lock; one request at a
/// time computes the hash, at a bounded pace, and each answer serves every request that
/// arrived before it (see [`SystemView`]).
async fn get_system(AxumState(shared): AxumState<Arc<Shared>>) -> Result<Json<SystemInfo>, ApiError> {
    let covering = shared.view.committed();
    let _permit = shared.system.enter().await.map_err(|_| busy("system requests"))?;
    loop {
        let view = Arc::clone(&shared.view);
        let answer =
            tokio::task::spawn_blocking(move || view.system_info(covering)).await.map_err(task_failed)?;
        match answer {
            Ok(SystemAnswer::Ready(info)) => {
                let mut info = *info;
                info.replica = shared.replica().map(Replica::info);
                return Ok(Json(info));
            }
            Ok(SystemAnswer::NotBefore(at)) => tokio::time::sleep_until(at.into()).await,
            Err(error) => {
                return Err(ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorBody::new("system_view_failed", error.to_string()),
                ));
            }
        }
    }
}

async fn get_account(
    AxumState(shared): AxumState<Arc<Shared>>,
    ApiPath(account): ApiPath<String>,
) -> Result<Json<AccountInfo>, ApiError> {
    let id: AccountId = account.parse().map_err(|error: morsa_core::ParseHexError| {
        ApiError(StatusCode::BAD_REQUEST, ErrorBody::new("bad_account_id", error.to_string()))
    })?;
    let coordinator = shared.lock();
    let state = coordinator.state();
    let account = state.account(&id);
    let stakes = state.stakes_of(&id);
    let withdrawals = state.withdrawals_of(&id);
    Ok(Json(AccountInfo { id, balance: account.balance, nonce: account.nonce, stakes, withdrawals }))
}

async fn get_account_blobs(
    AxumState(shared): AxumState<Arc<Shared>>,
    ApiPath(account): ApiPath<String>,
    ApiQuery(query): ApiQuery<AccountBlobsQuery>,
) -> Result<Json<AccountBlobs>, ApiError> {
    let id: AccountId = account.parse().map_err(|error: morsa_core::ParseHexError| {
        ApiError(StatusCode::BAD_REQUEST, ErrorBody::new("bad_account_id", error.to_string()))
    })?;
    let limit = query.limit.unwrap_or(MAX_ACCOUNT_BLOBS_PAGE).clamp(1, MAX_ACCOUNT_BLOBS_PAGE);
    let (blobs, more) = shared.lock().state().owned_blobs(&id, query.after, limit);
    Ok(Json(AccountBlobs { blobs, more }))
}

async fn get_metrics(AxumState(shared): AxumState<Arc<Shared>>) -> Result<impl IntoResponse, ApiError> {
    let text = tokio::task::spawn_blocking(move || {
        let mut text = {
            let coordinator = shared.lock();
            shared.metrics.render(coordinator.state(), coordinator.event_count(), shared.waiters.parked())
        };
        match availability::view(&shared) {
            Ok(view) => text.push_str(&crate::metrics::render_availability(&view)),
            Err(error) => tracing::error!(%error, "no availability metrics"),
        }
        text
    })
    .await
    .map_err(task_failed)?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

/// Serves `shared` on `listener` with the ticker, until `shutdown` resolves or a commit fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let ticker = tokio::spawn(run_ticker(Arc::clone(&shared), stopped));
    let watcher = shared.replica().is_some().then(|| tokio::spawn(replication::watch(Arc::clone(&shared))));
    let mut fatal = shared.fatal_signal();
    let until = async move {
        tokio::select! {
            () = shutdown => {}
            _ = fatal.wait_for(|fatal| *fatal) => {
                tracing::error!("a log commit failed; stopping so that a restart replays the log");
            }
        }
    };
    // Bounded connections and header-read, idle and write timeouts (see `morsa_api::server`).
    let limits = morsa_api::server::ServeLimits::default();
    let result = morsa_api::server::serve(listener, router(Arc::clone(&shared)), limits, until).await;
    stop.send_replace(true);
    let _ = ticker.await;
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    if let Some(replica) = shared.replica() {
        replica.shutdown().await;
    }
    if *shared.fatal_signal().borrow() {
        return Err(std::io::Error::other("a log commit failed; restart to replay the log"));
    }
    result
}

#[cfg(test)]
mod tests;
