//! Keeping retained objects stored: every interval, the chunk blobs of each version under a
//! retention still active are paid for (extended) until at least the epoch that starts after
//! its retain-until date, with the client's [`morsa_client::Client::keep_paid_until`] (what
//! `morsa renew` uses). A blob that many versions share is kept for the latest of their dates;
//! the system sells only so many epochs ahead, so a long retention is extended again as epochs
//! pass.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use morsa_api::coord::SystemInfo;
use morsa_client::Client;
use morsa_core::Epoch;

use crate::GatewayError;
use crate::db::{Db, now_ms};

/// The first epoch that starts at or after `until_ms`: a blob whose end epoch is this one is
/// stored until then.
pub fn epoch_covering(system: &SystemInfo, until_ms: u64) -> Epoch {
    let duration = system.epoch_duration_ms.max(1);
    let after_start = until_ms.saturating_sub(system.epoch_start_ms);
    let epochs = after_start.div_ceil(duration);
    Epoch(system.epoch.0.saturating_add(u32::try_from(epochs).unwrap_or(u32::MAX)))
}

/// One pass: extends what retained versions need; answers how many blobs were extended and
/// how many could not be.
pub async fn renew_retained(db: &Arc<Db>, client: &Client) -> Result<(usize, usize), GatewayError> {
    let retained = db.retained_blobs(now_ms())?;
    if retained.is_empty() {
        return Ok((0, 0));
    }
    let system = client.system().await?;
    let wanted: BTreeMap<_, _> = retained
        .into_iter()
        .map(|(blob_id, until_ms)| (blob_id, epoch_covering(&system, until_ms)))
        .collect();
    let renewals = client.keep_paid_until(&wanted).await?;
    let mut failed = 0;
    for renewal in &renewals {
        match &renewal.outcome {
            Ok(end) => {
                tracing::info!(blob_id = %renewal.blob.blob_id, end_epoch = end.0, "retained blob extended")
            }
            Err(error) => {
                failed += 1;
                tracing::warn!(blob_id = %renewal.blob.blob_id, %error, "a retained blob could not be extended");
            }
        }
    }
    Ok((renewals.len() - failed, failed))
}

/// Runs [`renew_retained`] now and every `every`, until the returned task is aborted.
pub fn start(db: Arc<Db>, client: Arc<Client>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = renew_retained(&db, &client).await {
                tracing::warn!(%error, "the retention pass failed; retried at the next interval");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(epoch: u32, start_ms: u64, duration_ms: u64) -> SystemInfo {
        SystemInfo {
            chain_id: "test".into(),
            epoch: Epoch(epoch),
            n_shards: 4,
            epoch_duration_ms: duration_ms,
            epoch_start_ms: start_ms,
            storage_price_per_mib_epoch: 0,
            write_price_per_mib: 0,
            max_epochs_ahead: 50,
            capacity: 0,
            used: 0,
            time_ms: 0,
            event_count: 0,
            state_hash: String::new(),
            replica: None,
            domains: None,
        }
    }

    #[test]
    fn a_retention_is_covered_by_the_epoch_that_starts_after_it() {
        // Epoch 10 runs from 1,000 to 2,000 ms; epoch 12 starts at 3,000.
        let system = system(10, 1_000, 1_000);
        assert_eq!(epoch_covering(&system, 1_500), Epoch(11));
        assert_eq!(epoch_covering(&system, 2_000), Epoch(11), "epoch 11 starts exactly then");
        assert_eq!(epoch_covering(&system, 2_001), Epoch(12));
        assert_eq!(epoch_covering(&system, 500), Epoch(10), "already past");
    }
}
