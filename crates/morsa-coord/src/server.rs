//! The coordinator's HTTP server: transactions and node reports in, state and events out.
//!
//! One [`Coordinator`] sits behind a mutex. Submissions run on blocking threads (each commit
//! waits for an fsync); reads take the lock briefly. A background task applies a tick whenever
//! an epoch deadline comes due. If a commit fails the process must restart, so the server stops.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{DefaultBodyLimit, Path, Query, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use morsa_api::ErrorBody;
use morsa_api::coord::{
    AccountBlobs, AccountBlobsQuery, AccountInfo, CommitteeInfo, EventsPage, EventsQuery,
    MAX_ACCOUNT_BLOBS_PAGE, MAX_BODY_BYTES, MAX_EVENTS_PAGE, MAX_WAIT_MS, NodeReport, SignedTransaction,
    SubmitResponse, SystemInfo, routes,
};
use morsa_core::AccountId;
use redstuff::BlobId;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::{CommandError, Coordinator, EpochPhase, Input, SubmitError};

/// Longest any request may take: the longest long-poll plus slack for a slow commit.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(MAX_WAIT_MS + 15_000);

/// Longest the ticker sleeps before looking at the deadlines again.
const TICK_CHECK: Duration = Duration::from_secs(1);

/// What the handlers share.
pub struct Shared {
    coordinator: Mutex<Coordinator>,
    /// The number of events, published after every commit (for long-polls).
    events: watch::Sender<u64>,
    /// Fired when a commit failed and the server must stop.
    fatal: watch::Sender<bool>,
    metrics: Metrics,
}

impl Shared {
    /// Wraps a coordinator for serving.
    pub fn new(coordinator: Coordinator) -> Arc<Self> {
        let count = coordinator.event_count();
        Arc::new(Self {
            coordinator: Mutex::new(coordinator),
            events: watch::channel(count).0,
            fatal: watch::channel(false).0,
            metrics: Metrics::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Coordinator> {
        // A panic while holding the lock cannot leave a half-applied entry: `apply` checks
        // before it mutates. Keep serving what the state says.
        self.coordinator.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Submits `input` now, on the calling (blocking) thread.
    fn submit(&self, input: Input) -> Result<SubmitResponse, SubmitError> {
        let mut coordinator = self.lock();
        let result = coordinator.submit(input, now_ms());
        let count = coordinator.event_count();
        drop(coordinator);
        match &result {
            Ok(_) => self.metrics.accepted(),
            Err(SubmitError::Refused(error)) => self.metrics.refused(error.code()),
            Err(SubmitError::Fatal(_)) => {
                self.fatal.send_replace(true);
            }
        }
        self.events.send_replace(count);
        result.map(|applied| SubmitResponse { events: applied.events, created: applied.created })
    }

    /// Long-polls waiting for events right now (lets tests commit only once a poll is waiting).
    pub fn event_waiters(&self) -> usize {
        self.events.receiver_count()
    }

    /// A receiver that turns true when the server must stop.
    pub fn fatal_signal(&self) -> watch::Receiver<bool> {
        self.fatal.subscribe()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// The router with every route.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(routes::TRANSACTIONS, post(post_transaction))
        .route(routes::NODE_REPORTS, post(post_node_report))
        .route(routes::EVENTS, get(get_events))
        .route(routes::BLOB, get(get_blob))
        .route(routes::COMMITTEE, get(get_committee))
        .route(routes::SYSTEM, get(get_system))
        .route(routes::ACCOUNT, get(get_account))
        .route(routes::ACCOUNT_BLOBS, get(get_account_blobs))
        .route(routes::METRICS, get(get_metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(shared)
}

/// Applies a tick whenever a deadline comes due, until `stop` turns true.
pub async fn run_ticker(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let due = shared.lock().state().next_deadline_ms();
        let wait = due.map_or(TICK_CHECK, |due| Duration::from_millis(due.saturating_sub(now_ms())));
        tokio::select! {
            _ = tokio::time::sleep(wait.min(TICK_CHECK)) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        if shared.lock().state().deadline_due(now_ms()).is_some() {
            let shared = Arc::clone(&shared);
            let result = tokio::task::spawn_blocking(move || shared.submit(Input::Tick)).await;
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
            SubmitError::Fatal(error) => Self(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorBody::new("unavailable", format!("{error}; retry once the coordinator has restarted")),
            ),
        }
    }
}

fn status_of(error: &CommandError) -> StatusCode {
    match error {
        CommandError::BadSignature(_) | CommandError::BadNodeSignature(_) => StatusCode::UNAUTHORIZED,
        CommandError::NotOwner { .. } => StatusCode::FORBIDDEN,
        CommandError::UnknownObject(_) | CommandError::UnknownNode(_) => StatusCode::NOT_FOUND,
        CommandError::BadNonce { .. }
        | CommandError::BlobState { .. }
        | CommandError::InvalidBlob(_)
        | CommandError::WrongEpoch { .. }
        | CommandError::TickDue { .. }
        | CommandError::TimeWentBackwards { .. } => StatusCode::CONFLICT,
        CommandError::InsufficientBalance { .. } => StatusCode::PAYMENT_REQUIRED,
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn submit(shared: Arc<Shared>, input: Input) -> Result<Json<SubmitResponse>, ApiError> {
    let outcome = tokio::task::spawn_blocking(move || shared.submit(input)).await.map_err(|_| {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, ErrorBody::new("internal", "the submission task failed"))
    })?;
    Ok(Json(outcome?))
}

async fn post_transaction(
    AxumState(shared): AxumState<Arc<Shared>>,
    Json(transaction): Json<SignedTransaction>,
) -> Result<Json<SubmitResponse>, ApiError> {
    submit(shared, Input::Transaction(transaction)).await
}

async fn post_node_report(
    AxumState(shared): AxumState<Arc<Shared>>,
    Json(report): Json<NodeReport>,
) -> Result<Json<SubmitResponse>, ApiError> {
    submit(shared, Input::Node(report)).await
}

async fn get_events(
    AxumState(shared): AxumState<Arc<Shared>>,
    Query(query): Query<EventsQuery>,
) -> Json<EventsPage> {
    let from = query.after.map_or(0, |after| after.saturating_add(1));
    let limit = query.limit.unwrap_or(MAX_EVENTS_PAGE).clamp(1, MAX_EVENTS_PAGE);
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0).min(MAX_WAIT_MS));
    let mut counts = shared.events.subscribe();
    if *counts.borrow_and_update() <= from && !wait.is_zero() {
        // Woken by every commit; give up when the wait is over.
        let _ = tokio::time::timeout(wait, counts.wait_for(|count| *count > from)).await;
    }
    let coordinator = shared.lock();
    Json(EventsPage {
        events: coordinator.events_from(from, limit).to_vec(),
        count: coordinator.event_count(),
    })
}

async fn get_blob(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(blob_id): Path<String>,
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
    })
}

async fn get_system(AxumState(shared): AxumState<Arc<Shared>>) -> Json<SystemInfo> {
    let coordinator = shared.lock();
    let state = coordinator.state();
    Json(SystemInfo {
        chain_id: state.params.chain_id.clone(),
        epoch: state.epoch,
        n_shards: state.params.n_shards,
        epoch_duration_ms: state.params.epoch_duration_ms,
        epoch_start_ms: state.epoch_start_ms(state.epoch),
        storage_price_per_mib_epoch: state.params.storage_price_per_mib_epoch,
        write_price_per_mib: state.params.write_price_per_mib,
        max_epochs_ahead: state.params.max_epochs_ahead,
        capacity: state.capacity,
        used: state.used.get(&state.epoch).copied().unwrap_or(0),
        time_ms: state.time_ms,
        event_count: state.event_count,
        state_hash: hex::encode(state.hash()),
    })
}

async fn get_account(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(account): Path<String>,
) -> Result<Json<AccountInfo>, ApiError> {
    let id: AccountId = account.parse().map_err(|error: morsa_core::ParseHexError| {
        ApiError(StatusCode::BAD_REQUEST, ErrorBody::new("bad_account_id", error.to_string()))
    })?;
    let coordinator = shared.lock();
    let state = coordinator.state();
    let account = state.account(&id);
    let stakes = state
        .stakes
        .iter()
        .filter(|((staker, _), _)| *staker == id)
        .map(|((_, node), stake)| (*node, *stake))
        .collect();
    Ok(Json(AccountInfo { id, balance: account.balance, nonce: account.nonce, stakes }))
}

async fn get_account_blobs(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(account): Path<String>,
    Query(query): Query<AccountBlobsQuery>,
) -> Result<Json<AccountBlobs>, ApiError> {
    let id: AccountId = account.parse().map_err(|error: morsa_core::ParseHexError| {
        ApiError(StatusCode::BAD_REQUEST, ErrorBody::new("bad_account_id", error.to_string()))
    })?;
    let limit = query.limit.unwrap_or(MAX_ACCOUNT_BLOBS_PAGE).clamp(1, MAX_ACCOUNT_BLOBS_PAGE);
    let (blobs, more) = shared.lock().state().owned_blobs(&id, query.after, limit);
    Ok(Json(AccountBlobs { blobs, more }))
}

async fn get_metrics(AxumState(shared): AxumState<Arc<Shared>>) -> impl IntoResponse {
    let text = {
        let coordinator = shared.lock();
        shared.metrics.render(coordinator.state(), coordinator.event_count())
    };
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// Serves `shared` on `listener` with the ticker, until `shutdown` resolves or a commit fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let ticker = tokio::spawn(run_ticker(Arc::clone(&shared), stopped));
    let mut fatal = shared.fatal_signal();
    let result = axum::serve(listener, router(Arc::clone(&shared)))
        .with_graceful_shutdown(async move {
            tokio::select! {
                () = shutdown => {}
                _ = fatal.wait_for(|fatal| *fatal) => {
                    tracing::error!("a log commit failed; stopping so that a restart replays the log");
                }
            }
        })
        .await;
    stop.send_replace(true);
    let _ = ticker.await;
    if *shared.fatal_signal().borrow() {
        return Err(std::io::Error::other("a log commit failed; restart to replay the log"));
    }
    result
}
