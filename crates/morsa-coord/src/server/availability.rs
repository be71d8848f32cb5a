//! `/v1/availability`: nodes' summaries of the slivers they lack in, the system-wide margin
//! out (see `crate::availability`). Every replica answers from its own soft state: nothing
//! is forwarded to the leader or logged.
//!
//! A summary costs one BLS check. It goes through the same bounds as node reports: the
//! shared verification budget and stage, failures counted per client address, and then a
//! budget per node of its own ([`SUMMARY_BURST`], one more per [`SUMMARY_REFILL_MS`]).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use morsa_api::ErrorBody;
use morsa_api::coord::{AvailabilityAnswer, AvailabilityView, MAX_LISTED_BLOBS, SignedAvailability};
use morsa_api::server::refusal::ApiJson;
use morsa_core::Committee;
use redstuff::BlobId;

use super::{ApiError, ClientAddress, FAILED_REPORT_REFILL_MS, Shared, busy, task_failed, too_many};

/// Summaries a node may send at once, and the interval in which it earns one more.
pub const SUMMARY_BURST: u32 = 16;
/// See [`SUMMARY_BURST`].
pub const SUMMARY_REFILL_MS: u32 = 250;

fn refused(status: StatusCode, code: &str, message: String) -> ApiError {
    ApiError(status, ErrorBody::new(code, message))
}

/// `POST`: verifies and keeps a node's summary; answers the margins of the blobs it lists.
pub(super) async fn post_availability(
    AxumState(shared): AxumState<Arc<Shared>>,
    ClientAddress(from): ClientAddress,
    ApiJson(signed): ApiJson<SignedAvailability>,
) -> Result<Json<AvailabilityAnswer>, ApiError> {
    let summary = &signed.summary;
    if summary.listed() > MAX_LISTED_BLOBS {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "summary_too_long",
            format!("a summary lists at most {MAX_LISTED_BLOBS} blobs, not {}", summary.listed()),
        ));
    }
    if from.is_some_and(|address| !shared.failed_reports.has(&address)) {
        return Err(too_many(
            "rate_limited",
            format!(
                "too many reports from this address failed verification; it may send one per {FAILED_REPORT_REFILL_MS} ms"
            ),
        ));
    }
    let committee = shared.lock().state().committee.clone();
    if summary.epoch != committee.epoch {
        return Err(refused(
            StatusCode::CONFLICT,
            "wrong_epoch",
            format!("the summary is of {}, the current epoch is {}", summary.epoch, committee.epoch),
        ));
    }
    let Some(member) = committee.member_by_node(&summary.node) else {
        return Err(refused(
            StatusCode::NOT_FOUND,
            "unknown_node",
            format!("node {} is not in the committee of {}", summary.node, committee.epoch),
        ));
    };
    if !shared.report_verifications.take(&()) {
        return Err(busy("node reports"));
    }
    let key = committee.members[member].public_key;
    let permit = shared.report_verifiers.enter().await.map_err(|_| busy("node reports"))?;
    let (signed, verified) = tokio::task::spawn_blocking(move || {
        let verified = key.verify(&signed.summary.message(), &signed.signature).is_ok();
        (signed, verified)
    })
    .await
    .map_err(task_failed)?;
    drop(permit);
    if !verified {
        if let Some(address) = from {
            shared.failed_reports.take(&address);
        }
        return Err(refused(
            StatusCode::UNAUTHORIZED,
            "bad_node_signature",
            "the summary's signature does not verify with the node's key".to_owned(),
        ));
    }
    let summary = signed.summary;
    if !shared.summary_budgets.take(&summary.node) {
        return Err(too_many(
            "rate_limited",
            format!(
                "node {} sent more than {SUMMARY_BURST} summaries in a short time; it may send one per {SUMMARY_REFILL_MS} ms",
                summary.node
            ),
        ));
    }
    let listed: Vec<BlobId> = summary.shards.iter().flat_map(|shard| shard.blobs.iter().copied()).collect();
    let now = Instant::now();
    shared
        .availability
        .record(summary, now)
        .map_err(|error| refused(StatusCode::CONFLICT, "stale_summary", error.to_string()))?;
    let losses = shared.availability.losses(&committee, now);
    let mut margins = losses.margins(&listed);
    margins.sort_by_key(|margin| margin.blob_id);
    margins.dedup_by_key(|margin| margin.blob_id);
    Ok(Json(AvailabilityAnswer { margins }))
}

/// `GET`: the system-wide margin as this replica sees it.
pub(super) async fn get_availability(
    AxumState(shared): AxumState<Arc<Shared>>,
) -> Result<Json<AvailabilityView>, ApiError> {
    let view = tokio::task::spawn_blocking(move || view(&shared)).await.map_err(task_failed)?;
    view.map(Json)
        .map_err(|error| refused(StatusCode::INTERNAL_SERVER_ERROR, "system_view_failed", error.to_string()))
}

/// The view now. The certified blobs come from the state's copy behind `/v1/system`, so that
/// walking every blob object never holds the coordinator's lock. Blocking.
pub(super) fn view(shared: &Shared) -> Result<AvailabilityView, crate::ViewError> {
    let (committee, certified): (Committee, Vec<BlobId>) = shared.view.certified_blobs()?;
    Ok(shared.availability.losses(&committee, Instant::now()).view(&committee, &certified))
}
