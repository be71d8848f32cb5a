//! Recovery symbols and inconsistency proofs: what the node sends a peer that rebuilds a lost
//! sliver, and its signed attestation when a peer proves a blob was encoded inconsistently.
//!
//! A target is named by its **sliver index** and type, as
//! [`VerifiedMetadata::rebuild_sliver`] takes it, never by its pair index. Towards primary
//! sliver `i` the node sends cell `i` of every secondary sliver it holds (proven at leaf `i` of
//! that sliver's tree); towards secondary sliver `j`, cell `j` of every primary sliver it holds.
//!
//! Answering means re-encoding each held sliver to all `n` cells and building its Merkle tree
//! ([`SliverExpansion`]): the CPU-heavy part. A request expands each held sliver once, even when
//! a batch asks several targets of the same blob, and holds one expansion at a time, so its
//! memory is one expanded sliver plus its answer. Expansions are also checked against the
//! metadata hash they must have (a free checksum): a stored sliver that fails is logged and
//! left out, since a peer would refuse its symbol anyway.

use std::collections::HashMap;
use std::num::NonZero;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use morsa_api::ErrorBody;
use morsa_api::node::{
    BlobIdPath, InconsistencyProofPath, InvalidBlobAttestation, MAX_JSON_REQUEST_BYTES, MAX_RECOVERY_BATCH,
    MAX_RECOVERY_BATCH_RESPONSE_BYTES, NodeErrorCode, RecoveryBatchItem, RecoveryBatchQuery,
    RecoveryBatchRequest, RecoveryBatchResponse, RecoveryItem, RecoveryOutcome, RecoverySymbolsQuery,
    inconsistency_proof_limit, routes,
};
use morsa_store::StoreError;
use redstuff::wire::{from_bcs, recovery_symbol_limit, sliver_limit, to_bcs};
use redstuff::{
    BlobId, InconsistencyProof, RecoverySymbol, Sliver, SliverExpansion, SliverType, VerifiedMetadata,
};
use tokio::sync::Semaphore;

use crate::error::NodeError;
use crate::node::Node;
use crate::server::{ApiError, Served};

/// Recovery requests worked on at once, per core; more wait. The work is CPU-bound, so more
/// would only add memory (each holds an expanded sliver and its answer).
const RECOVERY_TASKS_PER_CORE: usize = 2;

/// Upper bound of the BCS length prefix of a sequence.
const SEQUENCE_PREFIX: usize = 5;

impl Node {
    /// This node's recovery symbols towards sliver `target_sliver` (a sliver index, not a pair
    /// index) of `target_type`: one from each sliver of the other type it holds of `blob_id`, in
    /// the order of its shards, each proven at leaf `target_sliver` of its source's tree.
    ///
    /// Refuses targets not below `n`, blobs it has not seen registered, expired or invalid
    /// blobs, and blobs of which it holds no sliver of the source type.
    pub fn recovery_symbols(
        &self,
        blob_id: &BlobId,
        target_sliver: u16,
        target_type: SliverType,
    ) -> Result<Vec<RecoverySymbol>, NodeError> {
        check_target(self, target_sliver)?;
        let sources = sources(self, blob_id, target_type.orthogonal())?;
        let mut answers = symbols_towards(self, &sources, &[usize::from(target_sliver)])?;
        Ok(answers.pop().expect("one answer per target"))
    }

    /// Answers a batch: one item per asked item, in order, each with the symbols
    /// [`Node::recovery_symbols`] would send or the error it would answer. Items are admitted in
    /// order while the BCS answer stays within [`MAX_RECOVERY_BATCH_RESPONSE_BYTES`] (counting
    /// each symbol at its largest size); from the first one that does not fit, the rest are
    /// `over_budget`, except that an item too large for any answer is `too_large`. Each held
    /// sliver is expanded once, however many items target its blob.
    pub fn recovery_batch(&self, request: &RecoveryBatchRequest) -> Result<RecoveryBatchResponse, NodeError> {
        self.recovery_batch_within(request, MAX_RECOVERY_BATCH_RESPONSE_BYTES)
    }

    /// [`Node::recovery_batch`] with an answer of at most `max_bytes` (and never more than
    /// [`MAX_RECOVERY_BATCH_RESPONSE_BYTES`]): the node's own, smaller bound on what one request
    /// may make it hold.
    pub fn recovery_batch_within(
        &self,
        request: &RecoveryBatchRequest,
        max_bytes: usize,
    ) -> Result<RecoveryBatchResponse, NodeError> {
        let budget = max_bytes.min(MAX_RECOVERY_BATCH_RESPONSE_BYTES);
        let items = &request.items;
        if items.len() > MAX_RECOVERY_BATCH {
            return Err(NodeError::BadRequest(format!(
                "a recovery batch may ask for at most {MAX_RECOVERY_BATCH} items, not {}",
                items.len()
            )));
        }
        let plan = Plan::new(self, items, budget);
        let mut symbols: Vec<Option<Vec<RecoverySymbol>>> = vec![None; items.len()];
        for group in plan.groups.iter().filter(|group| !group.members.is_empty()) {
            let targets: Vec<usize> =
                group.members.iter().map(|member| usize::from(items[*member].target_sliver)).collect();
            let answers = symbols_towards(self, &group.sources, &targets)?;
            for (member, mut answer) in group.members.iter().zip(answers) {
                if let Some(most) = items[*member].max_symbols {
                    answer.truncate(usize::from(most));
                }
                symbols[*member] = Some(answer);
            }
        }
        let items = items
            .iter()
            .zip(plan.planned)
            .zip(&mut symbols)
            .map(|((item, planned), symbols)| RecoveryBatchItem {
                blob_id: item.blob_id,
                target_sliver: item.target_sliver,
                target_type: item.target_type,
                outcome: match planned {
                    Planned::Symbols => {
                        RecoveryOutcome::Symbols(symbols.take().expect("admitted items are answered"))
                    }
                    Planned::Refused(body) => RecoveryOutcome::Error(body),
                },
            })
            .collect();
        let response = RecoveryBatchResponse { items };
        debug_assert!(response.encoded_len() <= budget);
        Ok(response)
    }

    /// Checks an inconsistency proof (BCS) whose target is a `kind` sliver of `blob_id` against
    /// the stored metadata and, if it holds, signs the attestation that the blob is invalid in
    /// the current epoch. A proof that does not hold is a bad request, with the reason.
    ///
    /// The blob's status is not checked: only its metadata is needed, and attesting a blob that
    /// is already invalid or expired is harmless.
    pub fn attest_inconsistency(
        &self,
        blob_id: &BlobId,
        kind: SliverType,
        proof_bytes: &[u8],
    ) -> Result<InvalidBlobAttestation, NodeError> {
        let metadata = self.verified_metadata(blob_id)?;
        let limit = inconsistency_proof_limit(self.config(), metadata.symbol_size());
        let proof: InconsistencyProof =
            from_bcs(proof_bytes, limit).map_err(|error| NodeError::BadRequest(error.to_string()))?;
        if proof.target_kind != kind {
            return Err(NodeError::BadRequest(format!(
                "the proof rebuilds a {} sliver but was sent for {kind} slivers; send it to the {} route",
                proof.target_kind, proof.target_kind
            )));
        }
        proof.verify(&metadata).map_err(|error| {
            NodeError::BadRequest(format!("the inconsistency proof does not hold: {error}"))
        })?;
        let epoch = self.view().epoch();
        tracing::warn!(
            blob_id = %blob_id,
            target_kind = %kind,
            target_index = proof.target_index,
            "verified an inconsistency proof; attesting the blob is invalid"
        );
        Ok(InvalidBlobAttestation::sign(self.key(), epoch, *blob_id))
    }
}

/// Refuses a target index that is not below `n`.
fn check_target(node: &Node, target_sliver: u16) -> Result<(), NodeError> {
    let n = node.config().n_shards();
    if usize::from(target_sliver) >= n {
        return Err(NodeError::BadRequest(format!(
            "target sliver {target_sliver} is out of range for {n} shards (it is a sliver index, not a pair index)"
        )));
    }
    Ok(())
}

/// One held sliver that symbols come from.
#[derive(Debug, Clone, Copy)]
struct Source {
    /// The shard it is stored under.
    shard: u16,
    /// Its sliver index.
    index: u16,
}

/// The slivers of one kind this node holds of one blob, with the blob's metadata.
struct Sources {
    blob_id: BlobId,
    kind: SliverType,
    metadata: VerifiedMetadata,
    slivers: Vec<Source>,
}

/// Lists the `kind` slivers the node holds of `blob_id`, in the order of its shards.
fn sources(node: &Node, blob_id: &BlobId, kind: SliverType) -> Result<Sources, NodeError> {
    node.require_live(blob_id)?;
    let metadata = node.verified_metadata(blob_id)?;
    let n = node.config().n_shards();
    let mut slivers = Vec::new();
    for shard in node.owned_shards() {
        if node.store().has_sliver(&blob_id.0, shard, crate::node::kind_of(kind))? {
            let pair = blob_id.pair_for_shard(usize::from(shard), n);
            let index = match kind {
                SliverType::Primary => pair,
                SliverType::Secondary => redstuff::secondary_index_of_pair(pair, n),
            };
            slivers.push(Source { shard, index: u16::try_from(index).expect("sliver indices are below n") });
        }
    }
    if slivers.is_empty() {
        return Err(NodeError::NotFound(format!(
            "this node holds no {kind} sliver of {blob_id}; ask the nodes of other shards"
        )));
    }
    Ok(Sources { blob_id: *blob_id, kind, metadata, slivers })
}

/// The symbols towards each of `targets` (indices below `n`), expanding each source once.
fn symbols_towards(
    node: &Node,
    sources: &Sources,
    targets: &[usize],
) -> Result<Vec<Vec<RecoverySymbol>>, NodeError> {
    let mut answers = vec![Vec::with_capacity(sources.slivers.len()); targets.len()];
    for source in &sources.slivers {
        let Some(expansion) = expand(node, sources, *source)? else { continue };
        for (answer, target) in answers.iter_mut().zip(targets) {
            answer.push(expansion.recovery_symbol(*target).expect("targets are below n"));
        }
    }
    Ok(answers)
}

/// Reads and expands one held sliver, checking the expansion's root against the metadata.
/// `None` if it is gone (deleted since it was listed) or damaged, which is logged.
fn expand(node: &Node, sources: &Sources, source: Source) -> Result<Option<SliverExpansion>, NodeError> {
    let Sources { blob_id, kind, metadata, .. } = sources;
    #[cfg(test)]
    tests::EXPANSIONS.with(|count| count.set(count.get() + 1));
    let unusable = |reason: &dyn std::fmt::Display| {
        tracing::error!(
            blob_id = %blob_id, shard = source.shard, %kind, %reason,
            "a stored sliver is unusable; sending no symbol from it"
        );
        Ok(None)
    };
    let bytes = match node.store().get_sliver(&blob_id.0, source.shard, crate::node::kind_of(*kind)) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(error @ StoreError::CorruptSliver { .. }) => return unusable(&error),
        Err(error) => return Err(error.into()),
    };
    let sliver: Sliver = match from_bcs(&bytes, sliver_limit(node.config(), *kind, metadata.symbol_size())) {
        Ok(sliver) => sliver,
        Err(error) => return unusable(&error),
    };
    if sliver.index != source.index {
        return unusable(&format!("it is sliver {}, not {}", sliver.index, source.index));
    }
    let expansion = match SliverExpansion::new(metadata, *kind, &sliver) {
        Ok(expansion) => expansion,
        Err(error) => return unusable(&error),
    };
    if metadata.sliver_hash(*kind, usize::from(source.index)) != Some(&expansion.root()) {
        return unusable(&"it does not match its hash in the metadata");
    }
    Ok(Some(expansion))
}

/// What a batch item will be answered with.
enum Planned {
    /// Its group's symbols.
    Symbols,
    /// An error body.
    Refused(ErrorBody),
}

/// The admitted items asking for symbols from the same held slivers.
struct Group {
    sources: Sources,
    /// Positions of the admitted items, in request order.
    members: Vec<usize>,
}

/// A batch's answer decided in request order within the byte budget, before any expansion.
struct Plan {
    planned: Vec<Planned>,
    groups: Vec<Group>,
}

impl Plan {
    fn new(node: &Node, items: &[RecoveryItem], budget: usize) -> Self {
        let over_budget = NodeErrorCode::OverBudget
            .body("no room was left in this answer for the item; ask for it again in another batch");
        let too_large = NodeErrorCode::TooLarge
            .body("the item's symbols alone are over a batch answer's limit; ask for them with GET recovery symbols");
        // Room kept for refusing every item still to come.
        let refusal_len =
            items.first().map_or(0, |item| item_len(item, &over_budget).max(item_len(item, &too_large)));
        let mut plan = Self { planned: Vec::with_capacity(items.len()), groups: Vec::new() };
        let mut group_of: HashMap<(BlobId, SliverType), Result<usize, ErrorBody>> = HashMap::new();
        let mut used = SEQUENCE_PREFIX;
        let mut stopped = false;
        for (position, item) in items.iter().enumerate() {
            if stopped {
                plan.planned.push(Planned::Refused(over_budget.clone()));
                continue;
            }
            let group = check_target(node, item.target_sliver).map_err(|error| body(&error)).and_then(|()| {
                let key = (item.blob_id, item.target_type.orthogonal());
                group_of
                    .entry(key)
                    .or_insert_with(|| {
                        let sources = sources(node, &item.blob_id, key.1).map_err(|error| body(&error))?;
                        plan.groups.push(Group { sources, members: Vec::new() });
                        Ok(plan.groups.len() - 1)
                    })
                    .clone()
            });
            let (planned, len) = match group {
                Ok(group) => (Ok(group), symbols_item_bound(item, &plan.groups[group].sources)),
                Err(body) => {
                    let len = item_len(item, &body);
                    (Err(body), len)
                }
            };
            let reserved = (items.len() - position - 1) * refusal_len;
            if used + len + reserved <= budget {
                used += len;
                plan.planned.push(match planned {
                    Ok(group) => {
                        plan.groups[group].members.push(position);
                        Planned::Symbols
                    }
                    Err(body) => Planned::Refused(body),
                });
            } else {
                stopped = true;
                let alone = SEQUENCE_PREFIX + len > budget;
                plan.planned.push(Planned::Refused(if alone {
                    too_large.clone()
                } else {
                    over_budget.clone()
                }));
            }
        }
        plan
    }
}

/// The error body a batch item carries for `error`.
fn body(error: &NodeError) -> ErrorBody {
    error.code().body(error.to_string())
}

/// Exact BCS length of an item refused with `body`.
fn item_len(item: &RecoveryItem, body: &ErrorBody) -> usize {
    encoded_len(item, RecoveryOutcome::Error(body.clone()))
}

/// Upper bound of the BCS length of an item answered from `sources`: every symbol at its
/// largest size.
fn symbols_item_bound(item: &RecoveryItem, sources: &Sources) -> usize {
    let symbol = recovery_symbol_limit(sources.metadata.config(), sources.metadata.symbol_size());
    encoded_len(item, RecoveryOutcome::Symbols(Vec::new())) + SEQUENCE_PREFIX + sources.slivers.len() * symbol
}

fn encoded_len(item: &RecoveryItem, outcome: RecoveryOutcome) -> usize {
    let answer = RecoveryBatchItem {
        blob_id: item.blob_id,
        target_sliver: item.target_sliver,
        target_type: item.target_type,
        outcome,
    };
    bcs::serialized_size(&answer).expect("batch items have no maps")
}

/// Bounds the requests doing recovery work at once.
#[derive(Clone)]
struct RecoveryWork(Arc<Semaphore>);

/// The recovery routes: [`routes::RECOVERY_SYMBOLS`], [`routes::RECOVERY_SYMBOLS_BATCH`] and
/// [`routes::INCONSISTENCY_PROOF`], to be merged into the node's router before its layers (so
/// its timeout and metrics apply). At most two requests per core do recovery work at once;
/// inconsistency proofs have their own bound (`max_concurrent_proofs`), so that a flood of
/// them cannot hold up peers' repairs. Answers hold part of the node's answer budget until they
/// are written, and a batch answer one caller's count too, both taken before the request's
/// body is read.
pub fn routes() -> Router<Arc<Served>> {
    let cores = std::thread::available_parallelism().map_or(1, NonZero::get);
    let work = RecoveryWork(Arc::new(Semaphore::new(cores * RECOVERY_TASKS_PER_CORE)));
    Router::new()
        .route(routes::RECOVERY_SYMBOLS, get(get_recovery_symbols))
        .route(routes::RECOVERY_SYMBOLS_BATCH, post(post_recovery_batch))
        .route(routes::INCONSISTENCY_PROOF, post(post_inconsistency_proof))
        .layer(Extension(work))
}

/// A refused path, query or body, as an [`ErrorBody`] rather than axum's plain text.
fn rejected(status: StatusCode, text: String) -> ApiError {
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
        NodeErrorCode::TooLarge
    } else {
        NodeErrorCode::BadRequest
    };
    ApiError(code, text)
}

/// Runs `work` on a blocking thread, at most [`RECOVERY_TASKS_PER_CORE`] per core at once.
async fn recovery_work<T: Send + 'static>(
    served: &Served,
    limit: &RecoveryWork,
    work: impl FnOnce(&Node) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = limit
        .0
        .acquire()
        .await
        .map_err(|_| ApiError(NodeErrorCode::Unavailable, "the node is shutting down".into()))?;
    let node = Arc::clone(served.node());
    tokio::task::spawn_blocking(move || work(&node))
        .await
        .map_err(|_| ApiError(NodeErrorCode::Internal, "a worker task failed".into()))?
        .map_err(ApiError::from)
}

#[tracing::instrument(skip_all)]
async fn get_recovery_symbols(
    State(served): State<Arc<Served>>,
    Extension(limit): Extension<RecoveryWork>,
    path: Result<Path<BlobIdPath>, PathRejection>,
    query: Result<Query<RecoverySymbolsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(path) = path.map_err(|rejection| rejected(rejection.status(), rejection.body_text()))?;
    let Query(query) = query.map_err(|rejection| rejected(rejection.status(), rejection.body_text()))?;
    crate::on_demand::rebuild_sources(served.repair(), path.blob_id, query.target_type).await?;
    let reserved = served.answers.reserve(served.max_recovery_answer).await?;
    let bytes = recovery_work(&served, &limit, move |node| {
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
    query: Result<Query<RecoveryBatchQuery>, QueryRejection>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| rejected(rejection.status(), rejection.body_text()))?;
    // The caller's share and the answer's memory first, the body after.
    let caller = match served.callers.enter(caller_of(&request)) {
        Ok(caller) => caller,
        Err(error) => {
            let body = Some(request.into_body());
            return crate::server::answer_after_draining(Err(error.into()), body, MAX_JSON_REQUEST_BYTES)
                .await;
        }
    };
    let max_answer = served.max_recovery_answer;
    let reserved = served.answers.reserve(max_answer).await?;
    let body = crate::server::read_body(request.into_body(), MAX_JSON_REQUEST_BYTES).await?;
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
    let bytes = recovery_work(&served, &limit, move |node| {
        let mut response = node.recovery_batch_within(&request, max_answer)?;
        // Sources this node should hold but lacks are queued for repair, not rebuilt while the
        // peer waits (see `on_demand`).
        let mut asked: Vec<(BlobId, SliverType)> =
            request.items.iter().map(|item| (item.blob_id, item.target_type)).collect();
        asked.sort_unstable_by_key(|(blob_id, kind)| (*blob_id, *kind == SliverType::Primary));
        asked.dedup();
        crate::on_demand::queue_sources(&repair, &asked);
        if !query.proofs {
            strip_proofs(&mut response);
        }
        Ok(to_bcs(&response))
    })
    .await?;
    Ok(reserved.octets(bytes, caller))
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
    let limit = crate::server::blocking(move || {
        let metadata = node.verified_metadata(&blob_id)?;
        Ok(inconsistency_proof_limit(node.config(), metadata.symbol_size()))
    })
    .await?;
    Ok((permit, limit))
}

/// Empties every symbol's proof (the answer to `proofs=false`).
fn strip_proofs(response: &mut RecoveryBatchResponse) {
    for item in &mut response.items {
        if let RecoveryOutcome::Symbols(symbols) = &mut item.outcome {
            for symbol in symbols {
                symbol.proof.path = Vec::new();
            }
        }
    }
}

#[tracing::instrument(skip_all)]
async fn post_inconsistency_proof(
    State(served): State<Arc<Served>>,
    path: Result<Path<InconsistencyProofPath>, PathRejection>,
    request: axum::extract::Request,
) -> Result<axum::Json<InvalidBlobAttestation>, ApiError> {
    let Path(path) = path.map_err(|rejection| rejected(rejection.status(), rejection.body_text()))?;
    // A proof slot, and the blob's metadata (which bounds the proof), before the body.
    let mut body = Some(request.into_body());
    let (_permit, limit) = match admit_proof(&served, path.blob_id).await {
        Ok(admitted) => admitted,
        Err(error) => {
            let most = inconsistency_proof_limit(served.node().config(), redstuff::MAX_SYMBOL_SIZE);
            return crate::server::answer_after_draining(Err(error), body.take(), most).await;
        }
    };
    let body = crate::server::read_body(body.take().expect("the body is unread"), limit).await?;
    let node = Arc::clone(served.node());
    let attestation =
        crate::server::blocking(move || node.attest_inconsistency(&path.blob_id, path.sliver_type, &body))
            .await?;
    Ok(axum::Json(attestation))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use morsa_api::coord::{Event, EventRecord};
    use morsa_core::{BlsSecretKey, Committee, CommitteeMember, Epoch, NodeId, ObjectId, ShardIndex};
    use morsa_store::NodeStore;

    use super::*;
    use crate::node::View;

    thread_local! {
        /// Slivers expanded on this thread: the work a batch must not repeat.
        pub(super) static EXPANSIONS: Cell<usize> = const { Cell::new(0) };
    }

    /// Slivers expanded by `work` on this thread.
    fn expansions_of<T>(work: impl FnOnce() -> T) -> (usize, T) {
        let before = EXPANSIONS.with(Cell::get);
        let result = work();
        (EXPANSIONS.with(Cell::get) - before, result)
    }

    #[test]
    fn a_batch_expands_each_held_sliver_once() {
        // A node holding shards 0..5 of 10, and a blob it stores all of its share of.
        let key = BlsSecretKey::from_seed([1; 32]);
        let member = CommitteeMember {
            node_id: NodeId::from_public_key(&key.public_key()),
            public_key: key.public_key(),
            address: "127.0.0.1:1".into(),
            shards: (0..5).map(ShardIndex).collect(),
        };
        let committee = Committee { epoch: Epoch(1), n_shards: 10, members: vec![member] };
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(&dir.path().join("node.redb")).unwrap();
        let node = Node::new(key, store, View { committee, next: None }).unwrap();
        let encoded = redstuff::encode(node.config(), &[0x5a; 3000]).unwrap();
        let blob_id = *encoded.metadata.blob_id();
        let registered = Event::BlobRegistered {
            blob_id,
            object: ObjectId([0; 32]),
            size: 3000,
            encoded_size: 1,
            end_epoch: Epoch(5),
            deletable: false,
            epoch: Epoch(1),
        };
        node.apply_events(&[EventRecord::new(0, 0, registered, [0; 32])]).unwrap();
        let metadata = redstuff::MetadataWithId { blob_id, metadata: encoded.metadata.metadata().clone() };
        node.store_metadata(&blob_id, &to_bcs(&metadata)).unwrap();
        for shard in 0..5 {
            let pair = u16::try_from(blob_id.pair_for_shard(shard, 10)).unwrap();
            let slivers = &encoded.pairs[usize::from(pair)];
            node.store_sliver(&blob_id, pair, SliverType::Primary, to_bcs(&slivers.primary).into()).unwrap();
            node.store_sliver(&blob_id, pair, SliverType::Secondary, to_bcs(&slivers.secondary).into())
                .unwrap();
        }

        let (expanded, symbols) = expansions_of(|| node.recovery_symbols(&blob_id, 3, SliverType::Primary));
        assert_eq!((expanded, symbols.unwrap().len()), (5, 5));
        // Twenty items on one blob, both kinds, some asked twice: each of the ten held slivers
        // is expanded once.
        let items = (0..20)
            .map(|position: u16| RecoveryItem {
                blob_id,
                target_sliver: position % 7,
                target_type: if position.is_multiple_of(2) {
                    SliverType::Primary
                } else {
                    SliverType::Secondary
                },
                max_symbols: None,
            })
            .collect();
        let (expanded, response) = expansions_of(|| node.recovery_batch(&RecoveryBatchRequest { items }));
        assert_eq!(expanded, 10);
        for item in response.unwrap().items {
            let RecoveryOutcome::Symbols(symbols) = item.outcome else { panic!("{:?}", item.outcome) };
            assert_eq!(symbols.len(), 5);
            for symbol in &symbols {
                encoded
                    .metadata
                    .verify_recovery_symbol(item.target_type, usize::from(item.target_sliver), symbol)
                    .unwrap();
            }
        }
    }
}
