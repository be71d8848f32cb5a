//! Reads: metadata, slivers (fetched from the previous owner while their shard is being
//! pulled, rebuilt on demand when this node should hold them), what is stored, storage confirmations and the blob's status.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use morsa_api::node::{BlobIdPath, DeletablePath, NodeBlobStatus, SliverPath, StoredStatus};
use morsa_api::server::refusal::ApiPath;
use morsa_core::PersistenceType;

use crate::error::NodeError;
use crate::heal::on_demand;
use crate::http::Served;
use crate::http::reply::{Reply, blocking, octets};
use crate::migrate::read_through;

pub(super) async fn get_metadata(
    State(served): State<Arc<Served>>,
    ApiPath(path): ApiPath<BlobIdPath>,
) -> Reply<Response> {
    let node = Arc::clone(&served.node);
    Ok(octets(blocking(move || node.metadata_bytes(&path.blob_id)).await?))
}

pub(super) async fn get_metadata_status(
    State(served): State<Arc<Served>>,
    ApiPath(path): ApiPath<BlobIdPath>,
) -> Reply<Json<StoredStatus>> {
    let stored = served.node.store().has_metadata(&path.blob_id.0).map_err(NodeError::from)?;
    Ok(Json(StoredStatus { stored }))
}

pub(super) async fn get_sliver(
    State(served): State<Arc<Served>>,
    ApiPath(path): ApiPath<SliverPath>,
) -> Reply<Response> {
    let (blob_id, pair, kind) = (path.blob_id, path.sliver_pair_index, path.sliver_type);
    let node = Arc::clone(&served.node);
    let estimate = blocking(move || {
        let size = node.blob_info(&blob_id)?.size;
        Ok(morsa_core::convert::saturating_usize(node.sliver_bytes_estimate(size)).saturating_add(64))
    })
    .await?;
    let reserved = served.answers.reserve(estimate).await?;
    let bytes = one_sliver(&served, blob_id, pair, kind).await?;
    Ok(reserved.octets(bytes, ()))
}

/// The BCS bytes of the `kind` sliver of pair `pair`: stored, fetched from the previous owner
/// of a shard still being pulled, or rebuilt if this node should hold it.
pub(super) async fn one_sliver(
    served: &Arc<Served>,
    blob_id: redstuff::BlobId,
    pair: u16,
    kind: redstuff::SliverType,
) -> Result<Vec<u8>, NodeError> {
    let mut answers = missing_slivers(served, blob_id, vec![pair], kind).await;
    answers.pop().expect("one answer per pair")
}

/// What [`one_sliver`] answers for each of `pairs`, in order; the slivers that must be rebuilt
/// are rebuilt together (`on_demand::slivers`).
pub(super) async fn missing_slivers(
    served: &Arc<Served>,
    blob_id: redstuff::BlobId,
    pairs: Vec<u16>,
    kind: redstuff::SliverType,
) -> Vec<Result<Vec<u8>, NodeError>> {
    if pairs.is_empty() {
        return Vec::new();
    }
    // A shard still being pulled is held by its previous owner: asked before any rebuild.
    let timeout = Duration::from_millis(served.repair.config.peer_timeout_ms.max(1));
    let mut refused = Vec::new();
    let mut asked = Vec::new();
    for (position, pair) in pairs.iter().enumerate() {
        match read_through::fetch_if_moving(&served.node, blob_id, *pair, kind, timeout).await {
            Ok(()) => asked.push(*pair),
            Err(error) => refused.push((position, error)),
        }
    }
    let mut rebuilt = on_demand::slivers(&served.repair, blob_id, asked, kind).await.into_iter();
    let mut refused = refused.into_iter().peekable();
    (0..pairs.len())
        .map(|position| match refused.next_if(|(at, _)| *at == position) {
            Some((_, error)) => Err(error),
            None => rebuilt.next().expect("one answer per pair asked"),
        })
        .collect()
}

pub(super) async fn get_sliver_status(
    State(served): State<Arc<Served>>,
    ApiPath(path): ApiPath<SliverPath>,
) -> Reply<Json<StoredStatus>> {
    let node = Arc::clone(&served.node);
    let stored =
        blocking(move || match node.sliver_bytes(&path.blob_id, path.sliver_pair_index, path.sliver_type) {
            Ok(_) => Ok(true),
            Err(NodeError::SliverNotStored { .. }) => Ok(false),
            Err(error) => Err(error),
        })
        .await?;
    Ok(Json(StoredStatus { stored }))
}

pub(super) async fn get_permanent_confirmation(
    State(served): State<Arc<Served>>,
    ApiPath(path): ApiPath<BlobIdPath>,
) -> Reply<Json<morsa_api::node::SignedConfirmation>> {
    let node = Arc::clone(&served.node);
    Ok(Json(blocking(move || node.confirmation(&path.blob_id, PersistenceType::Permanent)).await?))
}

pub(super) async fn get_deletable_confirmation(
    State(served): State<Arc<Served>>,
    ApiPath(path): ApiPath<DeletablePath>,
) -> Reply<Json<morsa_api::node::SignedConfirmation>> {
    let node = Arc::clone(&served.node);
    let persistence = PersistenceType::Deletable { object_id: path.object_id };
    Ok(Json(blocking(move || node.confirmation(&path.blob_id, persistence)).await?))
}

pub(super) async fn get_blob_status(
    State(served): State<Arc<Served>>,
    ApiPath(path): ApiPath<BlobIdPath>,
) -> Reply<Json<NodeBlobStatus>> {
    let node = Arc::clone(&served.node);
    Ok(Json(blocking(move || node.blob_status(&path.blob_id)).await?))
}
