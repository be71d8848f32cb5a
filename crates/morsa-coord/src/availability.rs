//! The system-wide availability margin, put together from the nodes' summaries of the slivers
//! they lack (see `morsa_api::coord::AvailabilitySummary`).
//!
//! **Soft state, per replica.** Each replica keeps, in memory, the latest verified summary of
//! every node that sent it one; nodes send theirs to every replica. Nothing here is logged or
//! replicated: the summaries describe the nodes' disks, not the system's agreed state, and two
//! replicas may differ for the moment between two summaries. A restarted replica starts empty.
//!
//! **Lost shards.** A member of the current committee whose latest summary is older than
//! `stale_after` (or of another epoch), or that sent none although this replica has run for
//! `stale_after`, is *not reporting*: its shards count as lost for every blob. A reporting
//! member's shard is lost for the blobs it lists as lacking a sliver. A blob's margin is
//! `n − kp − |lost shards|`, floored at 0.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use morsa_api::coord::{
    AtRiskBlob, AvailabilitySummary, AvailabilityView, BlobMargin, MAX_AT_RISK_BLOBS, MarginCount,
    NodeAvailability,
};
use morsa_core::{Committee, NodeId};
use redstuff::BlobId;

use crate::{State, lock};

/// How long a node's summary counts when `coord.toml` does not say.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(30);

/// The latest summaries (see the module docs).
#[derive(Debug)]
pub struct Availability {
    stale_after: Duration,
    started: Instant,
    latest: Mutex<HashMap<NodeId, Received>>,
}

#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    summary: AvailabilitySummary,
}

/// Why a summary is not kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryError {
    /// The node sent a newer one already.
    #[error("a newer summary of node {0} is held (this one is a replay or out of order)")]
    Older(NodeId),
}

/// What the margins are computed from: the committee, the lost shards and which blobs lack
/// which shard.
#[derive(Debug, Clone)]
pub struct Losses {
    n_shards: u16,
    needed: u16,
    unreachable: BTreeSet<u16>,
    missing: HashMap<BlobId, BTreeSet<u16>>,
    nodes: Vec<NodeAvailability>,
    unlisted: u64,
}

impl Availability {
    /// An empty store; summaries count for `stale_after`.
    pub fn new(stale_after: Duration) -> Self {
        Self { stale_after, started: Instant::now(), latest: Mutex::new(HashMap::new()) }
    }

    /// Keeps `summary` (its signature checked by the caller) unless a newer one is held.
    pub fn record(&self, summary: AvailabilitySummary, now: Instant) -> Result<(), SummaryError> {
        let mut latest = lock(&self.latest);
        if let Some(held) = latest.get(&summary.node)
            && held.summary.time_ms >= summary.time_ms
        {
            return Err(SummaryError::Older(summary.node));
        }
        latest.insert(summary.node, Received { at: now, summary });
        Ok(())
    }

    /// The losses under `committee` at `now`.
    pub fn losses(&self, committee: &Committee, now: Instant) -> Losses {
        let latest = lock(&self.latest);
        let config = redstuff::EncodingConfig::new(committee.n_shards).ok();
        let needed = config.map_or(committee.n_shards, |config| {
            u16::try_from(config.kp()).expect("kp is below n, which is a u16")
        });
        let warmed_up = now.saturating_duration_since(self.started) >= self.stale_after;
        let mut losses = Losses {
            n_shards: committee.n_shards,
            needed,
            unreachable: BTreeSet::new(),
            missing: HashMap::new(),
            nodes: Vec::new(),
            unlisted: 0,
        };
        for member in &committee.members {
            let shards: BTreeSet<u16> = member.shards.iter().map(|shard| shard.0).collect();
            let received = latest.get(&member.node_id);
            let fresh = received.filter(|received| {
                received.summary.epoch == committee.epoch
                    && now.saturating_duration_since(received.at) < self.stale_after
            });
            let mut missing_blobs = 0;
            match fresh {
                Some(received) => {
                    for shard in received.summary.shards.iter().filter(|shard| shards.contains(&shard.shard))
                    {
                        missing_blobs += shard.missing_blobs;
                        let listed = morsa_core::convert::saturating_u64(shard.blobs.len());
                        losses.unlisted += shard.missing_blobs.saturating_sub(listed);
                        for blob_id in &shard.blobs {
                            losses.missing.entry(*blob_id).or_default().insert(shard.shard);
                        }
                    }
                }
                None if received.is_some() || warmed_up => losses.unreachable.extend(&shards),
                None => {}
            }
            losses.nodes.push(NodeAvailability {
                node_id: member.node_id,
                shards: u16::try_from(shards.len()).unwrap_or(u16::MAX),
                reporting: fresh.is_some(),
                last_report_ms: received.map(|received| {
                    u64::try_from(now.saturating_duration_since(received.at).as_millis()).unwrap_or(u64::MAX)
                }),
                missing_blobs,
            });
        }
        losses
    }
}

impl Losses {
    /// Margin of a blob that lacks nothing.
    pub fn full_margin(&self) -> u32 {
        u32::from(self.n_shards.saturating_sub(self.needed))
    }

    /// The shards lost for `blob_id`.
    fn lost(&self, blob_id: &BlobId) -> BTreeSet<u16> {
        let mut lost = self.unreachable.clone();
        if let Some(missing) = self.missing.get(blob_id) {
            lost.extend(missing);
        }
        lost
    }

    /// `blob_id`'s margin (see the module docs).
    pub fn margin(&self, blob_id: &BlobId) -> u32 {
        let lost = u32::try_from(self.lost(blob_id).len()).unwrap_or(u32::MAX);
        self.full_margin().saturating_sub(lost)
    }

    /// The margins of `blob_ids`.
    pub fn margins<'a>(&self, blob_ids: impl IntoIterator<Item = &'a BlobId>) -> Vec<BlobMargin> {
        blob_ids
            .into_iter()
            .map(|blob_id| BlobMargin { blob_id: *blob_id, margin_shards: self.margin(blob_id) })
            .collect()
    }

    /// The view over the certified blobs `certified`, in epoch `committee.epoch`.
    pub fn view(&self, committee: &Committee, certified: &[BlobId]) -> AvailabilityView {
        let full = self.full_margin();
        let mut histogram: BTreeMap<u32, u64> = BTreeMap::new();
        let mut at_risk: Vec<(u32, BlobId)> = Vec::new();
        for blob_id in certified {
            let margin = self.margin(blob_id);
            *histogram.entry(margin).or_default() += 1;
            if margin < full {
                at_risk.push((margin, *blob_id));
            }
        }
        at_risk.sort_unstable();
        at_risk.truncate(MAX_AT_RISK_BLOBS);
        AvailabilityView {
            epoch: committee.epoch,
            n_shards: self.n_shards,
            needed_shards: self.needed,
            full_margin_shards: full,
            unreachable_shards: self.unreachable.iter().copied().collect(),
            nodes: self.nodes.clone(),
            certified_blobs: morsa_core::convert::saturating_u64(certified.len()),
            min_margin_shards: histogram.keys().next().copied(),
            histogram: histogram
                .into_iter()
                .map(|(margin_shards, blobs)| MarginCount { margin_shards, blobs })
                .collect(),
            at_risk: at_risk
                .into_iter()
                .map(|(margin_shards, blob_id)| AtRiskBlob {
                    blob_id,
                    margin_shards,
                    lost_shards: self.lost(&blob_id).into_iter().collect(),
                })
                .collect(),
            unlisted_missing_blobs: self.unlisted,
        }
    }
}

impl State {
    /// Blob IDs with a certified object that has not expired, and not proven invalid.
    pub fn certified_blob_ids(&self) -> Vec<BlobId> {
        self.blob_objects
            .iter()
            .filter(|(blob_id, _)| !self.invalid_blobs.contains_key(*blob_id))
            .filter(|(_, objects)| {
                objects
                    .iter()
                    .filter_map(|object| self.blobs.get(object))
                    .any(|blob| blob.certified.is_some() && blob.storage.end > self.epoch)
            })
            .map(|(blob_id, _)| *blob_id)
            .collect()
    }
}

#[cfg(test)]
mod tests;
