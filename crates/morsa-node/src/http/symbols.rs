//! The routes peers use to rebuild and to prove: recovery symbols (one target, or a batch) and
//! inconsistency proofs. The work itself is the node's (`node::recovery_symbols`,
//! `node::recovery_batch`, `node::attestation`); here it is admitted, bounded and answered.

use std::num::NonZero;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use morsa_api::node::{
    BlobIdPath, InconsistencyProofPath, InvalidBlobAttestation, MAX_JSON_REQUEST_BYTES, MAX_RECOVERY_BATCH,
    NodeErrorCode, RecoveryBatchQuery, RecoveryBatchRequest, RecoveryOutcome, RecoverySymbolsQuery,
    inconsistency_proof_limit, routes,
};
use morsa_api::server::refusal::{ApiPath, ApiQuery};
use redstuff::wire::to_bcs;
use redstuff::{BlobId, SliverType};
use tokio::sync::Semaphore;

use crate::blocking::Priority;
use crate::error::NodeError;
use crate::heal::on_demand;
use crate::http::Served;
use crate::http::reply::{ApiError, answer_after_draining, blocking, read_body};
use crate::node::{Node, SymbolForm};

/// Recovery requests worked on at once, per core; more wait. The work is CPU-bound, so more
/// would only add memory (each holds an expanded sliver and its answer).
const RECOVERY_TASKS_PER_CORE: usize = 2;

/// Bounds the requests doing recovery work at once: background batches, and apart from them
/// those a read waits for (`waiting`), so that these never queue behind low-priority work.
#[derive(Clone)]
struct RecoveryWork {
    background: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
}

/// The recovery routes: [`routes::RECOVERY_SYMBOLS`], [`routes::RECOVERY_SYMBOLS_BATCH`] and
/// [`routes::INCONSISTENCY_PROOF`], to be merged into the node's router before its layers (so
/// its timeout and metrics apply). At most two requests per core do recovery work at once, and
/// two more per core of those a read waits for;
/// inconsistency proofs have their own bound (`max_concurrent_proofs`), so that a flood of
/// them cannot hold up peers' repairs. Answers hold part of the node's answer budget until they
/// are written, and a batch answer one caller's count too, both taken before the request's
/// body is read.
pub(super) fn routes() -> Router<Arc<Served>> {
    let cores = std::thread::available_parallelism().map_or(1, NonZero::get);
    let work = RecoveryWork {
        background: Arc::new(Semaphore::new(cores * RECOVERY_TASKS_PER_CORE)),
        waiting: Arc::new(Semaphore::new(cores * RECOVERY_TASKS_PER_CORE)),
    };
    Router::new()
        .route(routes::RECOVERY_SYMBOLS, get(get_recovery_symbols))
        .route(routes::RECOVERY_SYMBOLS_BATCH, post(post_recovery_batch))
        .route(routes::INCONSISTENCY_PROOF, post(post_inconsistency_proof))
        .layer(Extension(work))
}

/// Runs `work` at `priority`: on the node's low-priority pool for background work (answering
/// a peer's recovery request is background work, reads and uploads go first, unless the peer
/// says a read waits for it), at most [`RECOVERY_TASKS_PER_CORE`] per core at once of each.
async fn recovery_work<T: Send + 'static>(
    served: &Served,
    limit: &RecoveryWork,
    priority: Priority,
    work: impl FnOnce(&Node) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, ApiError> {
    let permits = match priority {
        Priority::Background => &limit.background,
        Priority::Serving => &limit.waiting,
    };
    let _permit = permits.acquire().await.map_err(|_| NodeError::ShuttingDown)?;
    let node = Arc::clone(served.node());
    Ok(served.repair().background.run_at(priority, move || work(&node)).await?)
}

#[tracing::instrument(skip_all)]
async fn get_recovery_symbols(
    State(served): State<Arc<Served>>,
    Extension(limit): Extension<RecoveryWork>,
    ApiPath(path): ApiPath<BlobIdPath>,
    ApiQuery(query): ApiQuery<RecoverySymbolsQuery>,
) -> Result<Response, ApiError> {
    if served.rounds.is_challenged(&path.blob_id, query.target_type, query.target_sliver) {
        crate::challenge::count_refused(&served.rounds, 1);
        return Err(ApiError(NodeErrorCode::Challenged, challenged_message()));
    }
    on_demand::rebuild_sources(served.repair(), path.blob_id, query.target_type).await?;
    let reserved = served.answers.reserve(served.max_recovery_answer).await?;
    let bytes = recovery_work(&served, &limit, Priority::Background, move |node| {
        let symbols = node.recovery_symbols(&path.blob_id, query.target_sliver, query.target_type)?;
        Ok(to_bcs(&symbols))
    })
    .await?;
    Ok(reserved.octets(bytes, ()))
}

/// The caller's IP address, when the server recorded it.
fn caller_of(request: &axum::extract::Request) -> Option<std::net::IpAddr> {
    request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip())
}

#[tracing::instrument(skip_all)]
async fn post_recovery_batch(
    State(served): State<Arc<Served>>,
    Extension(limit): Extension<RecoveryWork>,
    ApiQuery(query): ApiQuery<RecoveryBatchQuery>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    // The caller's share and the answer's memory first, the body after.
    let caller = match served.callers.enter(caller_of(&request)) {
        Ok(caller) => caller,
        Err(error) => {
            let body = Some(request.into_body());
            return answer_after_draining(Err(error.into()), body, MAX_JSON_REQUEST_BYTES).await;
        }
    };
    let max_answer = served.max_recovery_answer;
    let reserved = served.answers.reserve(max_answer).await?;
    let body = read_body(request.into_body(), MAX_JSON_REQUEST_BYTES).await?;
    let request: RecoveryBatchRequest = serde_json::from_slice(&body).map_err(|error| {
        ApiError(NodeErrorCode::BadRequest, format!("the body is not a recovery batch request: {error}"))
    })?;
    drop(body);
    if request.items.len() > MAX_RECOVERY_BATCH {
        return Err(ApiError(
            NodeErrorCode::TooLarge,
            format!(
                "a recovery batch may ask for at most {MAX_RECOVERY_BATCH} items, not {}; split it",
                request.items.len()
            ),
        ));
    }
    let repair = Arc::clone(served.repair());
    let rounds = Arc::clone(&served.rounds);
    let priority = if query.waiting { Priority::Serving } else { Priority::Background };
    let bytes = recovery_work(&served, &limit, priority, move |node| {
        let form = SymbolForm::asked(query.proofs, query.blocks);
        let mut response = node.recovery_batch_within(&request, max_answer, form)?;
        refuse_challenged(&rounds, &mut response);
        // Sources this node should hold but lacks are queued for repair, not rebuilt while the
        // peer waits (see `on_demand`).
        let mut asked: Vec<(BlobId, SliverType)> =
            request.items.iter().map(|item| (item.blob_id, item.target_type)).collect();
        asked.sort_unstable_by_key(|(blob_id, kind)| (*blob_id, *kind == SliverType::Primary));
        asked.dedup();
        on_demand::queue_sources(&repair, &asked);
        Ok(to_bcs(&response))
    })
    .await?;
    Ok(reserved.octets(bytes, caller))
}

fn challenged_message() -> String {
    "the sliver is challenged in the open challenge round: its recovery symbols are served once the round closes; ask again later"
        .to_owned()
}

/// Replaces the answers of items whose target sliver is challenged in the open round by the
/// error `challenged` (never larger than the symbols it replaces by more than the error text,
/// which the answer budget's margin for refusals covers).
fn refuse_challenged(
    rounds: &crate::challenge::Rounds,
    response: &mut morsa_api::node::RecoveryBatchResponse,
) {
    let mut refused = 0;
    for item in &mut response.items {
        if rounds.is_challenged(&item.blob_id, item.target_type, item.target_sliver) {
            item.outcome = RecoveryOutcome::Error(NodeErrorCode::Challenged.body(challenged_message()));
            refused += 1;
        }
    }
    crate::challenge::count_refused(rounds, refused);
}

/// A proof slot, and the largest proof of `blob_id` (whose metadata must be stored).
async fn admit_proof(
    served: &Served,
    blob_id: BlobId,
) -> Result<(tokio::sync::SemaphorePermit<'_>, usize), ApiError> {
    let permit = served.proofs.try_acquire().map_err(|_| {
        ApiError(
            NodeErrorCode::Unavailable,
            "the node is verifying as many proofs as it takes at once; retry later".into(),
        )
    })?;
    let node = Arc::clone(served.node());
    let limit = blocking(move || {
        let metadata = node.verified_metadata(&blob_id)?;
        Ok(inconsistency_proof_limit(node.config(), metadata.symbol_size()))
    })
    .await?;
    Ok((permit, limit))
}

#[tracing::instrument(skip_all)]
async fn post_inconsistency_proof(
    State(served): State<Arc<Served>>,
    ApiPath(path): ApiPath<InconsistencyProofPath>,
    request: axum::extract::Request,
) -> Result<axum::Json<InvalidBlobAttestation>, ApiError> {
    // A proof slot, and the blob's metadata (which bounds the proof), before the body.
    let mut body = Some(request.into_body());
    let (_permit, limit) = match admit_proof(&served, path.blob_id).await {
        Ok(admitted) => admitted,
        Err(error) => {
            let most = inconsistency_proof_limit(served.node().config(), redstuff::MAX_SYMBOL_SIZE);
            return answer_after_draining(Err(error), body.take(), most).await;
        }
    };
    let body = read_body(body.take().expect("the body is unread"), limit).await?;
    let node = Arc::clone(served.node());
    let attestation =
        served.background(move || node.attest_inconsistency(&path.blob_id, path.sliver_type, &body)).await?;
    Ok(axum::Json(attestation))
}
