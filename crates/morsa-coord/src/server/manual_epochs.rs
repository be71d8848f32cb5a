//! Epochs advanced on demand, for tests on real processes whose course must not depend on the
//! machine's load. With `[testing] manual_epochs = true` in `coord.toml`,
//! `POST /v1/testing/next-epoch` moves the coordinator's clock forward to the start of the next
//! epoch and submits a tick, which goes the ordinary way: the deadlines then due are applied
//! and logged with that time. The state machine stays pure and a replay gives the same state:
//! it only sees the later time on the log entry, as with any tick. Without the switch the
//! route is refused with 403 `manual_epochs_off`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use morsa_api::ErrorBody;
use morsa_api::coord::SubmitResponse;
use morsa_core::Epoch;

use super::{ApiError, Shared, task_failed};
use crate::{EpochPhase, Input, Prechecked};

/// The time the coordinator stamps on its log entries: the wall clock, plus however far
/// `POST /v1/testing/next-epoch` moved it forward (never, unless manual epochs are on).
#[derive(Debug, Default)]
pub struct Clock {
    manual_epochs: bool,
    ahead_ms: AtomicU64,
}

impl Clock {
    /// The wall clock; the next-epoch route is refused.
    pub fn wall() -> Self {
        Self::default()
    }

    /// The wall clock, moved forward by the next-epoch route when `manual_epochs` is on
    /// (`[testing] manual_epochs` in `coord.toml`).
    pub fn with_manual_epochs(manual_epochs: bool) -> Self {
        Self { manual_epochs, ahead_ms: AtomicU64::new(0) }
    }

    /// Milliseconds since the Unix epoch, as the coordinator counts them.
    pub fn now_ms(&self) -> u64 {
        super::now_ms().saturating_add(self.ahead_ms.load(Ordering::SeqCst))
    }

    /// Moves the clock forward so that it reads at least `time_ms` now.
    fn advance_to(&self, time_ms: u64) {
        let ahead = time_ms.saturating_sub(super::now_ms());
        self.ahead_ms.fetch_max(ahead, Ordering::SeqCst);
    }
}

/// `POST /v1/testing/next-epoch`.
pub(super) async fn post_next_epoch(
    AxumState(shared): AxumState<Arc<Shared>>,
) -> Result<Json<SubmitResponse>, ApiError> {
    if !shared.clock.manual_epochs {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            ErrorBody::new(
                "manual_epochs_off",
                "epochs end only on their deadlines here; a test coordinator advances them with [testing] manual_epochs = true in coord.toml",
            ),
        ));
    }
    let replicated = shared.replica().is_some();
    let ticked = Arc::clone(&shared);
    let outcome = tokio::task::spawn_blocking(move || {
        let next_start = {
            let coordinator = shared.lock();
            let state = coordinator.state();
            // While an epoch change is in progress the next one cannot start (its committee
            // may still be selected, which is not what was asked for).
            let done = state.phase == EpochPhase::Done;
            done.then_some(state.epoch.0.checked_add(1)).flatten().map(|next| state.epoch_start_ms(Epoch(next)))
        };
        let Some(time_ms) = next_start else {
            return Err(ApiError(
                StatusCode::CONFLICT,
                ErrorBody::new(
                    "epoch_change_pending",
                    "the epoch change in progress must be done before the next epoch can start; wait for EpochChangeDone",
                ),
            ));
        };
        shared.clock.advance_to(time_ms);
        tracing::info!(time_ms, "manual epochs: the clock moves forward to the start of the next epoch");
        if replicated {
            return Ok(None);
        }
        shared.submit(Input::Tick, &Prechecked::default()).map(Some).map_err(ApiError::from)
    })
    .await
    .map_err(task_failed)??;
    let (Some(replica), None) = (ticked.replica(), &outcome) else {
        return outcome.map(Json).ok_or_else(|| {
            ApiError(StatusCode::INTERNAL_SERVER_ERROR, ErrorBody::new("internal", "no tick was submitted"))
        });
    };
    // A replica proposes the tick through Raft, stamped with the clock just moved.
    match replica.propose(Input::Tick, Prechecked::default(), ticked.clock.now_ms()).await {
        Ok(applied) => {
            let count = crate::lock(&ticked.coordinator).event_count();
            ticked.waiters.publish(count);
            Ok(Json(super::submit_response(applied)))
        }
        Err(error) => Err(super::replication::propose_error(&ticked, error)),
    }
}
