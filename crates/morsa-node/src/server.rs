//! The node's HTTP routes, as Walrus's storage node has them, served by the bounded accept loop
//! of `morsa_api::server` (connection cap, header-read, idle and write timeouts).
//!
//! Uploads take their concurrency permit and have their blob's registration (or room in the
//! pending buffer) checked before their body is read, and are verified on blocking threads, at
//! most `max_concurrent_uploads` at a time; every request has a timeout. Answers that hold
//! memory until they are written (slivers, recovery symbols) hold part of the answer budget
//! until then (see `answers`).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use morsa_api::node::{
    BlobIdPath, DeletablePath, NodeBlobState, NodeBlobStatus, NodeErrorCode, NodeHealth, PutSliverQuery,
    ShardHealth, ShardStatus, SliverPath, StoredStatus, routes,
};
use morsa_core::{PersistenceType, ShardIndex};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::admin::AdminToken;
use crate::answers::{AnswerBudget, Callers};
use crate::blob_info::Status;
use crate::config::Limits;
use crate::error::NodeError;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::pending::{PendingBuffer, PendingKind};
use crate::repair::Repairer;

/// What the handlers share.
pub struct Served {
    node: Arc<Node>,
    uploads: Semaphore,
    started: Instant,
    metrics: Metrics,
    pending: Arc<PendingBuffer>,
    repair: Arc<Repairer>,
    /// Memory of answers until they are written.
    pub(crate) answers: AnswerBudget,
    /// Recovery-batch answers per caller.
    pub(crate) callers: Callers,
    /// Inconsistency proofs verified at once.
    pub(crate) proofs: Semaphore,
    /// Largest recovery-batch answer built.
    pub(crate) max_recovery_answer: usize,
    /// The admin routes' token; until one is set they refuse everyone.
    admin: OnceLock<AdminToken>,
}

impl Served {
    /// The node served.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The buffer of uploads waiting for their registration.
    pub fn pending(&self) -> &Arc<PendingBuffer> {
        &self.pending
    }

    /// The repair engine (blob sync, repair queue, scrubber, on-demand rebuilds).
    pub fn repair(&self) -> &Arc<Repairer> {
        &self.repair
    }

    /// Upload permits free now.
    pub fn upload_permits_available(&self) -> usize {
        self.uploads.available_permits()
    }

    /// Bytes of the answer budget free now.
    pub fn answer_budget_available(&self) -> usize {
        self.answers.available()
    }

    /// Serves `node` within `limits`; self-healing as `limits.repair` says. The admin routes
    /// refuse everyone until [`Served::set_admin_token`].
    pub fn new(node: Arc<Node>, limits: &Limits) -> Arc<Self> {
        Arc::new(Self {
            repair: Arc::new(Repairer::new(Arc::clone(&node), limits.repair)),
            node,
            uploads: Semaphore::new(limits.max_concurrent_uploads),
            started: Instant::now(),
            metrics: Metrics::default(),
            pending: Arc::new(PendingBuffer::new(
                limits.pending_buffer_bytes,
                limits.pending_buffer_entries,
                std::time::Duration::from_millis(limits.pending_ttl_ms),
            )),
            answers: AnswerBudget::new(limits.answer_buffer_bytes),
            callers: Callers::new(limits.max_recovery_answers_per_caller),
            proofs: Semaphore::new(limits.max_concurrent_proofs.max(1)),
            max_recovery_answer: usize::try_from(limits.max_recovery_answer_bytes).unwrap_or(usize::MAX),
            admin: OnceLock::new(),
        })
    }

    /// Sets the token the admin routes require (see `admin`); the first one set stays.
    pub fn set_admin_token(&self, token: AdminToken) {
        let _ = self.admin.set(token);
    }

    async fn upload_permit(&self) -> Result<SemaphorePermit<'_>, ApiError> {
        self.uploads
            .acquire()
            .await
            .map_err(|_| ApiError(NodeErrorCode::Unavailable, "the node is shutting down".into()))
    }
}

/// An error response.
pub(crate) struct ApiError(pub(crate) NodeErrorCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0.status(), Json(self.0.body(self.1))).into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(error: NodeError) -> Self {
        Self(error.code(), error.to_string())
    }
}

type Reply<T> = Result<T, ApiError>;

/// Runs `work` on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Reply<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ApiError(NodeErrorCode::Internal, "a worker task failed".into()))?
        .map_err(ApiError::from)
}

/// Reads a request body of at most `limit` bytes.
pub(crate) async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || ApiError(NodeErrorCode::TooLarge, format!("the body is larger than {limit} bytes"));
    let hint = body.size_hint().lower();
    if hint > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(limit).min(limit));
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame
            .map_err(|error| ApiError(NodeErrorCode::BadRequest, format!("reading the body: {error}")))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len().saturating_add(data.len()) > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(bytes))
}

pub(crate) fn octets(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}

/// The router with every route. Handlers that take a body read it themselves, each within
/// its own limit (`read_body`), once the request has been admitted.
pub fn router(served: Arc<Served>, limits: &Limits) -> Router {
    Router::new()
        .route(routes::METADATA, put(put_metadata).get(get_metadata))
        .route(routes::METADATA_STATUS, get(get_metadata_status))
        .route(routes::SLIVER, put(put_sliver).get(get_sliver))
        .route(routes::SLIVER_STATUS, get(get_sliver_status))
        .route(routes::PERMANENT_CONFIRMATION, get(get_permanent_confirmation))
        .route(routes::DELETABLE_CONFIRMATION, get(get_deletable_confirmation))
        .route(routes::BLOB_STATUS, get(get_blob_status))
        .route(routes::HEALTH, get(get_health))
        .route(routes::METRICS, get(get_metrics))
        .route(routes::ADMIN_REPAIR_PAUSE, axum::routing::post(post_repair_pause))
        .route(routes::ADMIN_REPAIR_RESUME, axum::routing::post(post_repair_resume))
        .merge(crate::recovery::routes())
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&served), track))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout(),
        ))
        .with_state(served)
}

fn stored() -> Response {
    Json(StoredStatus { stored: true }).into_response()
}

async fn put_metadata(
    State(served): State<Arc<Served>>,
    Path(path): Path<BlobIdPath>,
    Query(query): Query<PutSliverQuery>,
    request: axum::extract::Request,
) -> Reply<Response> {
    let limit = redstuff::wire::metadata_limit(served.node.config());
    let mut body = Some(request.into_body());
    let result = put_metadata_within(&served, path.blob_id, query.pending, limit, &mut body).await;
    answer_after_draining(result, body, limit).await
}

/// Checks the registration (or the pending buffer's room), then takes an upload permit, then
/// reads the body from `body`.
async fn put_metadata_within(
    served: &Arc<Served>,
    blob_id: redstuff::BlobId,
    pending: bool,
    limit: usize,
    body: &mut Option<Body>,
) -> Reply<Response> {
    let node = Arc::clone(&served.node);
    match blocking(move || node.require_live(&blob_id).map(drop)).await {
        Ok(()) => {
            let _permit = served.upload_permit().await?;
            let bytes = read_body(take(body)?, limit).await?;
            let node = Arc::clone(&served.node);
            blocking(move || node.store_metadata(&blob_id, &bytes).map(drop)).await?;
            Ok(stored())
        }
        Err(ApiError(NodeErrorCode::NotRegistered, _)) if pending => {
            served.pending.check_room(announced(body.as_ref(), limit))?;
            let _permit = served.upload_permit().await?;
            let bytes = read_body(take(body)?, limit).await?;
            // Metadata must hash to the blob ID it claims: that needs no registration.
            let (node, checked) = (Arc::clone(&served.node), bytes.clone());
            blocking(move || node.check_metadata(&blob_id, &checked).map(drop)).await?;
            hold(served, blob_id, PendingKind::Metadata, bytes).await
        }
        Err(error) => Err(error),
    }
}

/// The body, once.
fn take(body: &mut Option<Body>) -> Reply<Body> {
    body.take().ok_or_else(|| ApiError(NodeErrorCode::Internal, "the body was read twice".into()))
}

/// Answers `result`. A refused request's unread body is read and dropped first (up to
/// `limit`, nothing kept), so that its sender, which may still be writing it, gets the answer
/// rather than a reset connection.
pub(crate) async fn answer_after_draining<T>(result: Reply<T>, body: Option<Body>, limit: usize) -> Reply<T> {
    if result.is_err()
        && let Some(mut body) = body
    {
        let mut read = 0usize;
        while let Some(Ok(frame)) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            read = read.saturating_add(frame.data_ref().map_or(0, Bytes::len));
            if read > limit {
                break;
            }
        }
    }
    result
}

/// The body length a request announces, at most `limit` (`limit` if it announces none).
fn announced(body: Option<&Body>, limit: usize) -> usize {
    body.and_then(|body| body.size_hint().exact())
        .and_then(|len| usize::try_from(len).ok())
        .unwrap_or(limit)
        .min(limit)
}

/// Holds an upload of a blob not registered yet (202), or stores it at once if the
/// registration arrived meanwhile.
async fn hold(
    served: &Arc<Served>,
    blob_id: redstuff::BlobId,
    kind: PendingKind,
    body: Bytes,
) -> Reply<Response> {
    served.pending.hold(blob_id, kind, body)?;
    let (node, buffer) = (Arc::clone(&served.node), Arc::clone(&served.pending));
    blocking(move || {
        crate::pending::store_if_registered(&node, &buffer, &blob_id);
        Ok(())
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(StoredStatus { stored: false })).into_response())
}

async fn get_metadata(State(served): State<Arc<Served>>, Path(path): Path<BlobIdPath>) -> Reply<Response> {
    let node = Arc::clone(&served.node);
    Ok(octets(blocking(move || node.metadata_bytes(&path.blob_id)).await?))
}

async fn get_metadata_status(
    State(served): State<Arc<Served>>,
    Path(path): Path<BlobIdPath>,
) -> Reply<Json<StoredStatus>> {
    let stored = served.node.store().has_metadata(&path.blob_id.0).map_err(NodeError::from)?;
    Ok(Json(StoredStatus { stored }))
}

async fn put_sliver(
    State(served): State<Arc<Served>>,
    Path(path): Path<SliverPath>,
    Query(query): Query<PutSliverQuery>,
    request: axum::extract::Request,
) -> Reply<Response> {
    let mut body = Some(request.into_body());
    let result = put_sliver_within(&served, path, query.pending, &mut body).await;
    answer_after_draining(result, body, max_sliver_body(served.node.config())).await
}

/// Checks the registration and the shard (or the pending buffer's room), then takes an upload
/// permit, then reads the body from `body`, at most a sliver of the blob.
async fn put_sliver_within(
    served: &Arc<Served>,
    path: SliverPath,
    pending: bool,
    body: &mut Option<Body>,
) -> Reply<Response> {
    let (blob_id, pair, kind) = (path.blob_id, path.sliver_pair_index, path.sliver_type);
    let node = Arc::clone(&served.node);
    match blocking(move || node.sliver_upload_limit(&blob_id, pair, kind)).await {
        Ok(limit) => {
            let _permit = served.upload_permit().await?;
            let bytes = read_body(take(body)?, limit).await?;
            let node = Arc::clone(&served.node);
            blocking(move || node.store_sliver(&blob_id, pair, kind, bytes)).await?;
            Ok(stored())
        }
        Err(ApiError(NodeErrorCode::NotRegistered, _)) if pending => {
            // Held only for the shards this node owns, within the buffer's room.
            served.node.owned_shard_of(&blob_id, pair)?;
            let limit = max_sliver_body(served.node.config());
            served.pending.check_room(announced(body.as_ref(), limit))?;
            let _permit = served.upload_permit().await?;
            let bytes = read_body(take(body)?, limit).await?;
            hold(served, blob_id, PendingKind::Sliver { pair, kind }, bytes).await
        }
        Err(error) => Err(error),
    }
}

/// Largest sliver body of any blob: the largest sliver of the system.
pub(crate) fn max_sliver_body(config: redstuff::EncodingConfig) -> usize {
    config.ks() * usize::from(redstuff::MAX_SYMBOL_SIZE) + 1024
}

async fn get_sliver(State(served): State<Arc<Served>>, Path(path): Path<SliverPath>) -> Reply<Response> {
    let (blob_id, pair, kind) = (path.blob_id, path.sliver_pair_index, path.sliver_type);
    let node = Arc::clone(&served.node);
    let estimate = blocking(move || {
        let size = node.blob_info(&blob_id)?.size;
        Ok(usize::try_from(node.sliver_bytes_estimate(size)).unwrap_or(usize::MAX).saturating_add(64))
    })
    .await?;
    let reserved = served.answers.reserve(estimate).await?;
    let bytes = crate::on_demand::sliver(&served.repair, blob_id, pair, kind).await?;
    Ok(reserved.octets(bytes, ()))
}

/// Whether the request came from this machine (admin routes answer nobody else).
fn from_loopback(request: &axum::extract::Request) -> bool {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|info| info.0.ip().is_loopback())
}

async fn post_repair_pause(
    State(served): State<Arc<Served>>,
    request: axum::extract::Request,
) -> Reply<Response> {
    set_paused(&served, &request, true)
}

async fn post_repair_resume(
    State(served): State<Arc<Served>>,
    request: axum::extract::Request,
) -> Reply<Response> {
    set_paused(&served, &request, false)
}

/// Admits an admin request: from loopback, with the token, without `Origin`.
fn admit_admin(served: &Served, request: &axum::extract::Request) -> Reply<()> {
    let refused =
        |refusal: crate::admin::AdminRefusal| ApiError(NodeErrorCode::Forbidden, refusal.to_string());
    if !from_loopback(request) {
        return Err(refused(crate::admin::AdminRefusal::NotLoopback));
    }
    match served.admin.get() {
        Some(token) => token.check(request.headers()).map_err(refused),
        None => Err(refused(crate::admin::AdminRefusal::BadToken)),
    }
}

fn set_paused(served: &Served, request: &axum::extract::Request, paused: bool) -> Reply<Response> {
    admit_admin(served, request)?;
    served.repair.set_paused(paused);
    Ok(Json(serde_json::json!({ "paused": paused })).into_response())
}

async fn get_sliver_status(
    State(served): State<Arc<Served>>,
    Path(path): Path<SliverPath>,
) -> Reply<Json<StoredStatus>> {
    let node = Arc::clone(&served.node);
    let stored =
        blocking(move || match node.sliver_bytes(&path.blob_id, path.sliver_pair_index, path.sliver_type) {
            Ok(_) => Ok(true),
            Err(NodeError::NotFound(_)) => Ok(false),
            Err(error) => Err(error),
        })
        .await?;
    Ok(Json(StoredStatus { stored }))
}

async fn get_permanent_confirmation(
    State(served): State<Arc<Served>>,
    Path(path): Path<BlobIdPath>,
) -> Reply<Json<morsa_api::node::SignedConfirmation>> {
    let node = Arc::clone(&served.node);
    Ok(Json(blocking(move || node.confirmation(&path.blob_id, PersistenceType::Permanent)).await?))
}

async fn get_deletable_confirmation(
    State(served): State<Arc<Served>>,
    Path(path): Path<DeletablePath>,
) -> Reply<Json<morsa_api::node::SignedConfirmation>> {
    let node = Arc::clone(&served.node);
    let persistence = PersistenceType::Deletable { object_id: path.object_id };
    Ok(Json(blocking(move || node.confirmation(&path.blob_id, persistence)).await?))
}

async fn get_blob_status(
    State(served): State<Arc<Served>>,
    Path(path): Path<BlobIdPath>,
) -> Reply<Json<NodeBlobStatus>> {
    let node = Arc::clone(&served.node);
    Ok(Json(blocking(move || node.blob_status(&path.blob_id)).await?))
}

async fn get_health(State(served): State<Arc<Served>>) -> Reply<Json<NodeHealth>> {
    let node = Arc::clone(&served.node);
    let uptime_secs = served.started.elapsed().as_secs();
    let mut health = blocking(move || node.health(uptime_secs)).await?;
    health.pending_uploads = u64::try_from(served.pending.len()).unwrap_or(u64::MAX);
    health.repair = served.repair.health();
    Ok(Json(health))
}

/// Records every request's route, status, latency and answer bytes (every answer is a whole
/// buffer, so its length is known before it is sent).
async fn track(
    State(served): State<Arc<Served>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let body_bytes = response.body().size_hint().exact().unwrap_or(0);
    served.metrics.record(&route, response.status().as_u16(), started.elapsed(), body_bytes);
    response
}

async fn get_metrics(State(served): State<Arc<Served>>) -> Reply<Response> {
    let node = Arc::clone(&served.node);
    let stats = blocking(move || Ok(node.store().stats()?)).await?;
    let pending = u64::try_from(served.pending.len()).unwrap_or(u64::MAX);
    let mut text = served.metrics.render(&stats, pending);
    crate::metrics::render_repair(&mut text, &served.repair.health(), served.repair.stats());
    render_limits(&mut text, &served);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// What the limits refused or closed, and the answer budget left.
fn render_limits(out: &mut String, served: &Served) {
    use std::fmt::Write as _;
    let stats = morsa_api::server::stats();
    let _ = writeln!(
        out,
        "# HELP morsa_node_connections_closed_total Connections the server's limits closed, by reason.\n# TYPE morsa_node_connections_closed_total counter"
    );
    for (reason, count) in [
        ("evicted", stats.evicted),
        ("refused", stats.refused),
        ("header_timeout", stats.header_timeouts),
        ("idle_timeout", stats.idle_timeouts),
        ("write_timeout", stats.write_timeouts),
    ] {
        let _ = writeln!(out, "morsa_node_connections_closed_total{{reason=\"{reason}\"}} {count}");
    }
    let _ = writeln!(
        out,
        "# HELP morsa_node_answer_budget_free_bytes Bytes of the answer budget free now.\n# TYPE morsa_node_answer_budget_free_bytes gauge\nmorsa_node_answer_budget_free_bytes {}",
        served.answers.available()
    );
    let _ = writeln!(
        out,
        "# HELP morsa_node_pending_bytes Bytes held for uploads waiting for their registration.\n# TYPE morsa_node_pending_bytes gauge\nmorsa_node_pending_bytes {}",
        served.pending.bytes()
    );
}

impl Node {
    /// The node's view of `blob_id` and how much of its share it holds.
    pub fn blob_status(&self, blob_id: &redstuff::BlobId) -> Result<NodeBlobStatus, NodeError> {
        let info = self.blob_info(blob_id)?;
        let epoch = self.view().epoch();
        let status = match info.status(epoch) {
            Status::Nonexistent => NodeBlobState::Nonexistent,
            Status::Registered => NodeBlobState::Registered,
            Status::Certified => NodeBlobState::Certified,
            Status::Invalid => NodeBlobState::Invalid,
        };
        let shards = self.owned_shards();
        let mut stored_slivers = 0u32;
        for shard in &shards {
            let (primary, secondary) = self.store().sliver_kinds_held(&blob_id.0, *shard)?;
            stored_slivers += u32::from(primary) + u32::from(secondary);
        }
        Ok(NodeBlobStatus {
            status,
            end_epoch: info.end_epoch(epoch),
            epoch,
            metadata_stored: self.store().has_metadata(&blob_id.0)?,
            stored_slivers,
            expected_slivers: 2 * u32::try_from(shards.len()).unwrap_or(u32::MAX),
        })
    }

    /// Identity, epoch and shards.
    pub fn health(&self, uptime_secs: u64) -> Result<NodeHealth, NodeError> {
        let stats = self.store().stats()?;
        let shards = self
            .owned_shards()
            .into_iter()
            .map(|shard| {
                let held = stats.shards.get(&shard);
                ShardHealth {
                    shard: ShardIndex(shard),
                    status: ShardStatus::Active,
                    slivers: held.map_or(0, |held| held.primary_slivers + held.secondary_slivers),
                    bytes: held.map_or(0, |held| held.bytes),
                }
            })
            .collect();
        Ok(NodeHealth {
            node_id: self.id(),
            epoch: self.view().epoch(),
            public_key: self.key().public_key(),
            shards,
            blobs: stats.blobs,
            pending_uploads: 0, // filled in by the server, which holds the buffer
            event_cursor: self.cursor()?.map_or(0, |cursor| cursor + 1),
            uptime_secs,
            repair: morsa_api::node::RepairHealth::default(), // filled in by the server
        })
    }
}

/// Runs the node: serves `served` on `listener` within `limits` and follows the coordinator,
/// until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    served: Arc<Served>,
    limits: &Limits,
    coord: morsa_api::client::CoordClient,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    served.repair.set_coordinator(coord.clone());
    let repair = tokio::spawn(crate::sync::run(Arc::clone(&served.repair), stopped.clone()));
    let follower = tokio::spawn(crate::follower::follow(Arc::clone(&served.node), coord, stopped.clone()));
    let pending =
        tokio::spawn(crate::pending::run(Arc::clone(&served.node), Arc::clone(&served.pending), stopped));
    let app = router(served, limits);
    let result = morsa_api::server::serve(listener, app, limits.serve_limits(), shutdown).await;
    stop.send_replace(true);
    let _ = repair.await;
    let _ = follower.await;
    let _ = pending.await;
    result
}
