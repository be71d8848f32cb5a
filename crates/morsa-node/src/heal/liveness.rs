//! Dead peers: a member of the committee that answers nothing for a whole epoch is reported
//! to the coordinator (`NodeUnresponsive`, signed by this node), once per epoch per subject.
//! Reports from members holding validity weight keep the subject out of the next committee
//! selection, and its shards move to others (docs/COORDINATOR.md, "Dead nodes").
//!
//! The peers are those the repairer ranks (`heal::peers`): every probe interval each is asked
//! for its health, and any answer, to a probe or to a repair call, counts as a sign of life.
//! A peer is silent from the first probe it left unanswered; silent for
//! `[repair] unresponsive_after_ms` (by default one epoch), it is reported. A member that
//! misses its epoch-sync report needs no report: the coordinator sees that itself.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use morsa_api::client::CoordClient;
use morsa_api::coord::{NodeReport, NodeReportKind};
use morsa_core::{Epoch, NodeId};
use tokio::sync::watch;

use crate::heal::repairer::Repairer;
use crate::heal::stats::add;

/// Shortest and longest pause between two rounds of probes.
const MIN_PROBE_INTERVAL: Duration = Duration::from_millis(500);
const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(30);
/// Longest a probe waits for its answer.
const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before asking an unreachable coordinator for the epoch length again.
const SYSTEM_RETRY: Duration = Duration::from_secs(2);

/// Probes the peers and reports the silent ones until `stop` turns true.
pub(crate) async fn run(repairer: Arc<Repairer>, mut stop: watch::Receiver<bool>) {
    let Some(coord) = repairer.coord.get().cloned() else { return };
    let silence = tokio::select! {
        silence = silence(&repairer, &coord) => silence,
        _ = stop.changed() => return,
    };
    let interval = (silence / 8).clamp(MIN_PROBE_INTERVAL, MAX_PROBE_INTERVAL);
    let timeout = interval.min(MAX_PROBE_TIMEOUT);
    let mut reported: BTreeSet<(Epoch, NodeId)> = BTreeSet::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        let committee = repairer.node.view().committee.clone();
        if committee.member_by_node(&repairer.node.id()).is_none() {
            continue; // only members report
        }
        repairer.peers.probe_all(&committee, timeout).await;
        reported.retain(|(epoch, _)| *epoch >= committee.epoch);
        for subject in repairer.peers.silent_for(silence) {
            if reported.insert((committee.epoch, subject))
                && !report(&repairer, &coord, committee.epoch, subject).await
            {
                // Not taken for a passing reason: asked again next round.
                reported.remove(&(committee.epoch, subject));
            }
        }
    }
}

/// How long a peer must be silent to be reported: `unresponsive_after_ms`, or one epoch as
/// the coordinator answers it (asked until it answers).
async fn silence(repairer: &Repairer, coord: &CoordClient) -> Duration {
    if repairer.config.unresponsive_after_ms > 0 {
        return Duration::from_millis(repairer.config.unresponsive_after_ms);
    }
    loop {
        match coord.system().await {
            Ok(system) => return Duration::from_millis(system.epoch_duration_ms.max(1)),
            Err(error) => tracing::debug!(%error, "cannot read the epoch length yet"),
        }
        tokio::time::sleep(SYSTEM_RETRY).await;
    }
}

/// Sends one `NodeUnresponsive` report; answers false if it may be taken when sent again.
async fn report(repairer: &Repairer, coord: &CoordClient, epoch: Epoch, subject: NodeId) -> bool {
    let node = &repairer.node;
    let report = NodeReport {
        node: node.id(),
        report: NodeReportKind::NodeUnresponsive { subject, epoch },
        signature: node.key().sign(&morsa_core::node_unresponsive_message(epoch, &subject)),
    };
    match coord.submit_node_report(&report).await {
        Ok(_) => {
            tracing::warn!(node = %subject, epoch = epoch.0, "reported a peer that answers nothing");
            add(&repairer.stats.unresponsive_reported, 1);
            true
        }
        Err(error) if crate::report::worth_retrying(&error) => {
            tracing::debug!(%error, node = %subject, "cannot report an unresponsive peer yet");
            false
        }
        Err(error) => {
            tracing::warn!(%error, node = %subject, "the coordinator refused an unresponsive-peer report");
            true
        }
    }
}
