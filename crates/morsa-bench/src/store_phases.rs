//! Where stores' time went, phase by phase: the medians of `morsa_client::StoreTimings`.

use std::time::Duration;

use morsa_client::StoreTimings;
use serde::Serialize;

/// The median of each phase over some stores, in milliseconds (each median on its own, so
/// they need not add up to the median store).
#[derive(Debug, Serialize)]
pub(crate) struct PhasesMs {
    /// Waiting for room among the encodings held by the client's other stores.
    queued: f64,
    /// Reading the epoch.
    epoch: f64,
    encode: f64,
    /// Asking whether the blob is stored already.
    status: f64,
    /// Reserving storage and registering the blob (two transactions).
    register: f64,
    /// Metadata and sliver uploads until a quorum of confirmations.
    upload: f64,
    /// The certificate's transaction.
    certify: f64,
}

impl PhasesMs {
    /// The medians of `timings`' phases.
    pub(crate) fn median_of(timings: &[StoreTimings]) -> Self {
        let phase = |pick: fn(&StoreTimings) -> Duration| {
            let mut ms: Vec<f64> = timings.iter().map(|timing| pick(timing).as_secs_f64() * 1e3).collect();
            ms.sort_by(f64::total_cmp);
            ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN)
        };
        Self {
            queued: phase(|timing| timing.queued),
            epoch: phase(|timing| timing.epoch),
            encode: phase(|timing| timing.encode),
            status: phase(|timing| timing.status),
            register: phase(|timing| timing.register),
            upload: phase(|timing| timing.upload),
            certify: phase(|timing| timing.certify),
        }
    }
}

impl std::fmt::Display for PhasesMs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "queued {:.0} ms, epoch {:.0}, encode {:.0}, status {:.0}, register {:.0}, upload to quorum {:.0}, certify {:.0}",
            self.queued, self.epoch, self.encode, self.status, self.register, self.upload, self.certify
        )
    }
}
