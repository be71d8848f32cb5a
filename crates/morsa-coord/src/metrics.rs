//! Prometheus metrics of the coordinator, on its own [`Registry`] (not the process-wide
//! recorder), so that two coordinators in one process, as in tests, keep their own counts.

use morsa_api::coord::AvailabilityView;
use morsa_core::convert::{lossy_f64, saturating_u64};
use morsa_plumbing::metrics::{Counter, Registry};

use crate::State;

/// Submissions by outcome (`accepted`, or `refused` with the error `code`).
const SUBMISSIONS: &str = "morsa_coord_submissions_total";
const SUBMISSIONS_HELP: &str = "Submissions by outcome.";

/// The server's counters and gauges.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    accepted: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let accepted = registry.counter(SUBMISSIONS, SUBMISSIONS_HELP, &[("outcome", "accepted")]);
        Self { registry, accepted }
    }
}

impl Metrics {
    /// Counts an accepted submission.
    pub fn accepted(&self) {
        self.accepted.increment(1);
    }

    /// Counts a refused submission by error code.
    pub fn refused(&self, code: &'static str) {
        let labels = [("outcome", "refused"), ("code", code)];
        self.registry.counter(SUBMISSIONS, SUBMISSIONS_HELP, &labels).increment(1);
    }

    /// Renders the metrics in the Prometheus text format, with gauges read from `state`,
    /// the event count and the long-polls parked now.
    pub fn render(&self, state: &State, events: u64, parked_polls: usize) -> String {
        let used = state.used.get(&state.epoch).copied().unwrap_or(0);
        for (name, help, value) in [
            ("morsa_coord_epoch", "Current epoch.", u64::from(state.epoch.0)),
            ("morsa_coord_blob_objects", "Live blob objects.", saturating_u64(state.blobs.len())),
            (
                "morsa_coord_invalid_blobs",
                "Blob IDs proven invalid.",
                saturating_u64(state.invalid_blobs.len()),
            ),
            ("morsa_coord_capacity_bytes", "Capacity of the current committee.", state.capacity),
            ("morsa_coord_used_bytes", "Bytes reserved in the current epoch.", used),
            ("morsa_coord_parked_polls", "Long-polls waiting for events.", saturating_u64(parked_polls)),
        ] {
            self.registry.gauge(name, help, &[]).set(lossy_f64(value));
        }
        // The event log only grows: a counter (`rate()` gives events per second).
        self.registry.counter("morsa_coord_events_total", "Events emitted.", &[]).absolute(events);
        self.render_challenges(state);
        self.registry.render()
    }

    /// Sets the challenge gauges: the rounds of this epoch, and per node (label `node`) the
    /// outcome of the last settled epoch it served.
    fn render_challenges(&self, state: &State) {
        let challenges = &state.challenges;
        for (name, help, value) in [
            (
                "morsa_coord_challenge_rounds_started",
                "Challenge rounds started in the current epoch.",
                u64::from(challenges.rounds_started),
            ),
            (
                "morsa_coord_challenge_excluded_nodes",
                "Nodes the next committee selection leaves out for failing challenges.",
                saturating_u64(challenges.excluded.len()),
            ),
        ] {
            self.registry.gauge(name, help, &[]).set(lossy_f64(value));
        }
        for (node, history) in &challenges.history {
            let Some(outcome) = history.back() else { continue };
            let node = node.to_string();
            let labels = [("node", node.as_str())];
            let tally = &outcome.tally;
            for (name, help, value) in [
                (
                    "morsa_coord_challenge_epoch",
                    "Epoch of the node's last settled challenges.",
                    u64::from(outcome.epoch.0),
                ),
                (
                    "morsa_coord_challenge_passed",
                    "Challenges passed in the node's last settled epoch.",
                    tally.passed,
                ),
                (
                    "morsa_coord_challenge_failed",
                    "Challenges failed (caught) in the node's last settled epoch.",
                    tally.failed,
                ),
                (
                    "morsa_coord_challenge_declared",
                    "Challenges failed on declared losses in the node's last settled epoch.",
                    tally.declared,
                ),
                (
                    "morsa_coord_challenge_unaudited",
                    "Challenges of the node no auditor reported on in its last settled epoch.",
                    tally.unaudited,
                ),
                (
                    "morsa_coord_challenge_strikes",
                    "Strikes of the node as auditor in its last settled epoch.",
                    u64::from(tally.strikes),
                ),
                (
                    "morsa_coord_challenge_missed_audits",
                    "Audits the node owed and never reported in its last settled epoch.",
                    u64::from(tally.missed_audits),
                ),
                (
                    "morsa_coord_challenge_phi_ppm",
                    "Failed fraction φ of the node's last settled epoch, parts per million.",
                    outcome.phi_ppm,
                ),
                (
                    "morsa_coord_challenge_reward",
                    "Rewards paid to the node for its last settled epoch.",
                    outcome.reward,
                ),
                (
                    "morsa_coord_challenge_withheld",
                    "Rewards withheld from the node for its last settled epoch.",
                    outcome.withheld,
                ),
                (
                    "morsa_coord_challenge_penalty",
                    "Stake slashed from the node for its last settled epoch.",
                    outcome.penalty,
                ),
                (
                    "morsa_coord_challenge_failing_epochs",
                    "Consecutive settled epochs of the node with φ ≥ 5%.",
                    u64::from(outcome.failing_epochs),
                ),
                (
                    "morsa_coord_challenge_removed",
                    "1 if the node's last settled epoch left it out of the next committee.",
                    u64::from(outcome.removed),
                ),
            ] {
                self.registry.gauge(name, help, &labels).set(lossy_f64(value));
            }
        }
    }
}

/// Upper bounds of the margin histogram's buckets, in shards.
const MARGIN_BUCKETS: [f64; 16] =
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0, 200.0, 500.0];

/// The availability metrics of `view`, rendered afresh (a snapshot: the histogram counts the
/// certified blobs by their margin now, not observations over time).
pub fn render_availability(view: &AvailabilityView) -> String {
    let registry = Registry::with_buckets(&MARGIN_BUCKETS);
    if let Some(margin) = view.min_margin_shards {
        registry
            .gauge(
                "morsa_availability_margin_shards",
                "Smallest availability margin over the certified blobs: shards beyond the n-2f needed that hold its slivers.",
                &[],
            )
            .set(f64::from(margin));
    }
    let histogram = registry.histogram(
        "morsa_availability_blob_margin_shards",
        "Certified blobs by availability margin, now.",
        &[],
    );
    for count in &view.histogram {
        for _ in 0..count.blobs {
            histogram.record(f64::from(count.margin_shards));
        }
    }
    for (name, help, value) in [
        (
            "morsa_availability_unreachable_shards",
            "Shards of committee members whose availability summary is missing or stale.",
            saturating_u64(view.unreachable_shards.len()),
        ),
        (
            "morsa_availability_reporting_nodes",
            "Committee members whose availability summary is recent.",
            saturating_u64(view.nodes.iter().filter(|node| node.reporting).count()),
        ),
        (
            "morsa_availability_degraded_blobs",
            "Certified blobs below the full margin (some shard lacks them).",
            view.histogram
                .iter()
                .filter(|count| count.margin_shards < view.full_margin_shards)
                .map(|count| count.blobs)
                .sum(),
        ),
    ] {
        registry.gauge(name, help, &[]).set(lossy_f64(value));
    }
    registry.render()
}
