//! The node's HTTP routes, as Walrus's storage node has them. Uploads are verified on blocking
//! threads, at most `max_concurrent_uploads` at a time; every request has a timeout.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use morsa_api::node::{
    BlobIdPath, DeletablePath, NodeBlobState, NodeBlobStatus, NodeErrorCode, NodeHealth, PutSliverQuery,
    ShardHealth, ShardStatus, SliverPath, StoredStatus, routes,
};
use morsa_core::{PersistenceType, ShardIndex};
use tokio::sync::Semaphore;

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

    /// Serves `node` within `limits`; self-healing as `limits.repair` says.
    pub fn new(node: Arc<Node>, limits: &Limits) -> Arc<Self> {
        Arc::new(Self {
            repair: Arc::new(Repairer::new(Arc::clone(&node), limits.repair)),
            node,
            uploads: Semaphore::new(limits.max_concurrent_uploads),
            started: Instant::now(),
            metrics: Metrics::default(),
            pending: Arc::new(PendingBuffer::new(
                limits.pending_buffer_bytes,
                std::time::Duration::from_millis(limits.pending_ttl_ms),
            )),
        })
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
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Reply<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ApiError(NodeErrorCode::Internal, "a worker task failed".into()))?
        .map_err(ApiError::from)
}

/// Runs an upload under the concurrency limit.
async fn upload<T: Send + 'static>(
    served: &Served,
    work: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Reply<T> {
    let _permit = served
        .uploads
        .acquire()
        .await
        .map_err(|_| ApiError(NodeErrorCode::Unavailable, "the node is shutting down".into()))?;
    blocking(work).await
}

pub(crate) fn octets(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}

/// The router with every route. `max_body` bounds uploads (the largest sliver of the system).
pub fn router(served: Arc<Served>, limits: &Limits) -> Router {
    let config = served.node.config();
    let max_body = config.ks() * usize::from(redstuff::MAX_SYMBOL_SIZE) + 1024;
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
        .merge(crate::recovery::routes(config))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&served), track))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout(),
        ))
        .with_state(served)
}

async fn put_metadata(
    State(served): State<Arc<Served>>,
    Path(path): Path<BlobIdPath>,
    Query(query): Query<PutSliverQuery>,
    body: Bytes,
) -> Reply<Response> {
    let node = Arc::clone(&served.node);
    let bytes = body.clone();
    let result = upload(&served, move || node.store_metadata(&path.blob_id, &bytes).map(drop)).await;
    held_if_pending(&served, result, query.pending, path.blob_id, PendingKind::Metadata, body)
}

/// Answers an upload: stored (200), or, when it was refused only because the blob is not
/// registered yet and the caller asked for `?pending=true`, held (202).
fn held_if_pending(
    served: &Served,
    result: Reply<()>,
    pending: bool,
    blob_id: redstuff::BlobId,
    kind: PendingKind,
    body: Bytes,
) -> Reply<Response> {
    match result {
        Ok(()) => Ok(Json(StoredStatus { stored: true }).into_response()),
        Err(ApiError(NodeErrorCode::NotRegistered, _)) if pending => {
            served.pending.hold(blob_id, kind, body.to_vec())?;
            Ok((StatusCode::ACCEPTED, Json(StoredStatus { stored: false })).into_response())
        }
        Err(error) => Err(error),
    }
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
    body: Bytes,
) -> Reply<Response> {
    let node = Arc::clone(&served.node);
    let bytes = body.clone();
    let (blob_id, pair, kind) = (path.blob_id, path.sliver_pair_index, path.sliver_type);
    let result = upload(&served, move || node.store_sliver(&blob_id, pair, kind, bytes)).await;
    held_if_pending(&served, result, query.pending, blob_id, PendingKind::Sliver { pair, kind }, body)
}

async fn get_sliver(State(served): State<Arc<Served>>, Path(path): Path<SliverPath>) -> Reply<Response> {
    let bytes =
        crate::on_demand::sliver(&served.repair, path.blob_id, path.sliver_pair_index, path.sliver_type)
            .await?;
    Ok(octets(bytes))
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

fn set_paused(served: &Served, request: &axum::extract::Request, paused: bool) -> Reply<Response> {
    if !from_loopback(request) {
        return Err(ApiError(
            NodeErrorCode::BadRequest,
            "admin routes answer only callers on the node's own machine (loopback)".into(),
        ));
    }
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

/// Records every request's route, status and latency.
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
    served.metrics.record(&route, response.status().as_u16(), started.elapsed());
    response
}

async fn get_metrics(State(served): State<Arc<Served>>) -> Reply<Response> {
    let node = Arc::clone(&served.node);
    let stats = blocking(move || Ok(node.store().stats()?)).await?;
    let pending = u64::try_from(served.pending.len()).unwrap_or(u64::MAX);
    let mut text = served.metrics.render(&stats, pending);
    crate::metrics::render_repair(&mut text, &served.repair.health(), served.repair.stats());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
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

/// How often held uploads are checked against new registrations.
const PENDING_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs the node: serves `served` on `listener` and follows the coordinator, until
/// `shutdown` resolves.
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
    let pending = tokio::spawn(crate::pending::run(
        Arc::clone(&served.node),
        Arc::clone(&served.pending),
        PENDING_CHECK,
        stopped,
    ));
    let app = router(served, limits).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    stop.send_replace(true);
    let _ = repair.await;
    let _ = follower.await;
    let _ = pending.await;
    result
}
