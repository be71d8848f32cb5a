//! Keeping the blobs objects name stored: every interval, one pass of the client's
//! [`morsa_client::Client::keep_paid_until`] (what `morsa renew` uses) over
//!
//! - the chunk blobs of each version under a retention still active, until at least the epoch
//!   that starts after its retain-until date (a blob that many versions share is kept for the
//!   latest of their dates; the system sells only so many epochs ahead, so a long retention is
//!   extended again as epochs pass);
//! - every other chunk blob a current object, a version or an uploaded part names, once it has
//!   half of the gateway's `epochs` or less left: it is paid again until `epochs` epochs after
//!   the current one. So a blob is extended about once every `epochs / 2` epochs while anything
//!   names it, and is left to expire once nothing does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use morsa_api::coord::SystemInfo;
use morsa_client::Client;
use morsa_core::Epoch;
use redstuff::BlobId;

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

/// The end epoch a named blob without retention is paid until: `epochs` after the current
/// one (as far as the system sells ahead).
fn renewed_end(system: &SystemInfo, epochs: u32) -> Epoch {
    Epoch(system.epoch.0.saturating_add(epochs.saturating_add(1).min(system.max_epochs_ahead)))
}

/// Whether a named blob without retention ending at `end` is due for renewal: it has half of
/// `epochs` (rounded down) or less left after the current epoch.
fn due(system: &SystemInfo, epochs: u32, end: Epoch) -> bool {
    end.0 <= system.epoch.0.saturating_add(1).saturating_add(epochs / 2)
}

/// What one pass asks for: each blob's wanted end epoch. `retained` are the retained blobs
/// with their retain-until dates, `named` the blobs the namespace names with their current
/// end epochs (the account's longest-lived object of each).
pub fn wanted_ends(
    system: &SystemInfo,
    epochs: u32,
    retained: BTreeMap<BlobId, u64>,
    named: &BTreeMap<BlobId, Epoch>,
) -> BTreeMap<BlobId, Epoch> {
    let mut wanted: BTreeMap<BlobId, Epoch> = named
        .iter()
        .filter(|(_, end)| due(system, epochs, **end))
        .map(|(blob_id, _)| (*blob_id, renewed_end(system, epochs)))
        .collect();
    for (blob_id, until_ms) in retained {
        let until = epoch_covering(system, until_ms);
        let entry = wanted.entry(blob_id).or_insert(until);
        *entry = (*entry).max(until);
    }
    wanted
}

/// One pass: extends what retained versions and named blobs need (`epochs`: what the gateway
/// pays a chunk for); answers how many blobs were extended and how many could not be.
pub async fn renew_blobs(db: &Arc<Db>, client: &Client, epochs: u32) -> Result<(usize, usize), GatewayError> {
    let retained = db.retained_blobs(now_ms())?;
    let referenced = db.referenced_blobs()?;
    if retained.is_empty() && referenced.is_empty() {
        return Ok((0, 0));
    }
    let system = client.system().await?;
    let named = current_ends(client, &referenced).await?;
    let wanted = wanted_ends(&system, epochs, retained, &named);
    if wanted.is_empty() {
        return Ok((0, 0));
    }
    let renewals = client.keep_paid_until(&wanted).await?;
    let mut failed = 0;
    for renewal in &renewals {
        match &renewal.outcome {
            Ok(end) => tracing::info!(blob_id = %renewal.blob.blob_id, end_epoch = end.0, "blob extended"),
            Err(error) => {
                failed += 1;
                tracing::warn!(blob_id = %renewal.blob.blob_id, %error, "a blob could not be extended");
            }
        }
    }
    Ok((renewals.len() - failed, failed))
}

/// The end epoch of each of `blobs` the account holds certified (its longest-lived object).
async fn current_ends(
    client: &Client,
    blobs: &BTreeSet<BlobId>,
) -> Result<BTreeMap<BlobId, Epoch>, GatewayError> {
    let mut ends = BTreeMap::new();
    if blobs.is_empty() {
        return Ok(ends);
    }
    for blob in client.list_blobs().await? {
        if blob.certified_epoch.is_none() || blob.invalid || !blobs.contains(&blob.blob_id) {
            continue;
        }
        let end = ends.entry(blob.blob_id).or_insert(blob.end_epoch);
        *end = (*end).max(blob.end_epoch);
    }
    Ok(ends)
}

/// Runs [`renew_blobs`] now and every `every`, until the returned task is aborted.
pub fn start(db: Arc<Db>, client: Arc<Client>, epochs: u32, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = renew_blobs(&db, &client, epochs).await {
                tracing::warn!(%error, "the renewal pass failed; retried at the next interval");
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
            nodes: Vec::new(),
        }
    }

    fn blob(seed: u8) -> BlobId {
        BlobId::from_root(1, &[seed; 32])
    }

    #[test]
    fn named_blobs_are_renewed_once_half_their_epochs_are_left_and_retained_ones_to_their_date() {
        // Epoch 10 runs from 1,000 to 2,000 ms; the gateway pays chunks for 4 epochs.
        let system = system(10, 1_000, 1_000);
        let named: BTreeMap<_, _> = [(blob(1), Epoch(14)), (blob(2), Epoch(13)), (blob(3), Epoch(12))].into();
        let wanted = wanted_ends(&system, 4, BTreeMap::new(), &named);
        assert_eq!(wanted, [(blob(2), Epoch(15)), (blob(3), Epoch(15))].into(), "13 and 12 are due, 14 not");
        // A retained blob is kept to its date, or longer if it is also named and due.
        let retained: BTreeMap<_, _> = [(blob(1), 20_500), (blob(3), 1_500)].into();
        let wanted = wanted_ends(&system, 4, retained, &named);
        assert_eq!(wanted, [(blob(1), Epoch(30)), (blob(2), Epoch(15)), (blob(3), Epoch(15))].into());
        // One epoch of payment: a blob ending after the current epoch is renewed at once.
        assert_eq!(wanted_ends(&system, 1, BTreeMap::new(), &named).len(), 0);
        let ending: BTreeMap<_, _> = [(blob(4), Epoch(11))].into();
        assert_eq!(wanted_ends(&system, 1, BTreeMap::new(), &ending), [(blob(4), Epoch(12))].into());
        // Never past what the system sells ahead (50 epochs here).
        assert_eq!(renewed_end(&system, 80), Epoch(60));
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
