//! Prometheus metrics of the node: requests by route and status with latency histograms and
//! answer bytes, what the store holds per shard, and self-healing (repair backlog, throughput,
//! bytes fetched against bytes rebuilt, scrub progress, margins) and the low-priority pool its
//! background work runs on.
//!
//! Requests are counted as they are answered, on the node's own [`Registry`] (not the
//! process-wide recorder, so that nodes sharing a process count their own). What the node holds
//! and has done is read at each scrape ([`Now`]) into a fresh registry, so that what no longer
//! exists (a shard given away, a margin once nothing is queued) is no longer shown.

use std::time::Duration;

use morsa_api::node::{DiskHealth, MigrationHealth, RepairHealth, ShardStatus};
use morsa_api::server::ServeStats;
use morsa_core::convert::lossy_f64;
use morsa_plumbing::metrics::{Counter, Registry};
use morsa_store::StoreStats;

use crate::blocking::BackgroundCounts;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

const REQUESTS: (&str, &str) = ("morsa_node_requests_total", "Requests answered, by route and status.");
const RESPONSE_BYTES: (&str, &str) = (
    "morsa_node_response_bytes_total",
    "Bytes of answer bodies (what peers fetch for repair included), by route.",
);
const LATENCY: (&str, &str) = ("morsa_node_request_seconds", "Request latency, by route.");
const READ_BATCH_SLIVERS: (&str, &str) = (
    "morsa_node_read_batch_slivers_total",
    "Slivers asked for in batched reads, by outcome (served, refused).",
);
const VERIFICATION_FAILURES: (&str, &str) =
    ("morsa_node_verification_failures_total", "Uploads refused for a size or hash mismatch.");

/// Request counters and latencies.
#[derive(Debug)]
pub struct Metrics {
    requests: Registry,
    verification_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Registry::with_buckets(&BUCKETS);
        let (name, help) = VERIFICATION_FAILURES;
        let verification_failures = requests.counter(name, help, &[]);
        Self { requests, verification_failures }
    }
}

/// What the node holds and has done, read at a scrape.
pub(crate) struct Now<'a> {
    /// What the store holds.
    pub store: &'a StoreStats,
    /// Uploads held until their registration arrives, and their bytes.
    pub pending_uploads: u64,
    pub pending_bytes: u64,
    /// The self-healing engine's health and the metadata bytes it fetched.
    pub repair: &'a RepairHealth,
    pub metadata_fetched_bytes: u64,
    /// Connections the server's limits closed.
    pub connections: &'a ServeStats,
    /// Bytes of the answer budget free now.
    pub answer_budget_free_bytes: u64,
    /// Every shard owned or kept for its new owner, with its state.
    pub shard_states: &'a [(u16, ShardStatus)],
    /// Shard migration's counters.
    pub migration: &'a MigrationHealth,
    /// What the node did for storage challenges.
    pub challenges: ChallengeCounts,
    /// What the low-priority pool of background work did.
    pub background: BackgroundCounts,
    /// The filesystem of the database, if the system can say.
    pub disk: Option<DiskHealth>,
}

/// What the node did for storage challenges (see `challenge`), read at a scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ChallengeCounts {
    /// Challenges this node answered to its auditors.
    pub answered: u64,
    /// Audits of other nodes it made and reported.
    pub audits: u64,
    /// Challenges those audits covered.
    pub audited_challenges: u64,
    /// Of those, the ones failed (not answered in time, or answered wrong).
    pub failures_found: u64,
    /// Disputes it submitted against failures reported of it.
    pub disputes: u64,
    /// Recovery-symbol requests (or batch items) refused because their sliver was challenged.
    pub recovery_refused: u64,
}

impl Metrics {
    /// Records one answered request whose answer body is `body_bytes` long.
    pub fn record(&self, route: &str, status: u16, latency: Duration, body_bytes: u64) {
        let status_text = status.to_string();
        let (name, help) = REQUESTS;
        self.requests.counter(name, help, &[("route", route), ("status", &status_text)]).increment(1);
        let (name, help) = RESPONSE_BYTES;
        self.requests.counter(name, help, &[("route", route)]).increment(body_bytes);
        let (name, help) = LATENCY;
        self.requests.histogram(name, help, &[("route", route)]).record(latency.as_secs_f64());
        let verified_upload = route.contains("/slivers/") || route.ends_with("/metadata");
        if status == 422 && verified_upload {
            self.verification_failures.increment(1);
        }
    }

    /// Records one batched read's answer: slivers served and refused.
    pub fn record_read_batch(&self, served: u64, refused: u64) {
        let (name, help) = READ_BATCH_SLIVERS;
        for (outcome, count) in [("served", served), ("refused", refused)] {
            self.requests.counter(name, help, &[("outcome", outcome)]).increment(count);
        }
    }

    /// Renders every metric: the requests counted so far, then what `now` says.
    pub(crate) fn render(&self, now: &Now<'_>) -> String {
        let mut text = self.requests.render();
        text.push_str(&render_now(now));
        text
    }
}

/// The metrics read at a scrape, on a registry of their own.
fn render_now(now: &Now<'_>) -> String {
    let registry = Registry::new();
    for (shard, stats) in &now.store.shards {
        let shard = shard.to_string();
        let slivers = stats.primary_slivers + stats.secondary_slivers;
        let labels = [("shard", shard.as_str())];
        registry
            .gauge("morsa_node_shard_slivers", "Slivers stored, by shard.", &labels)
            .set(lossy_f64(slivers));
        registry
            .gauge("morsa_node_shard_bytes", "Sliver bytes stored, by shard.", &labels)
            .set(lossy_f64(stats.bytes));
    }
    let repair = now.repair;
    let gauges: [(&'static str, &'static str, u64); 10] = [
        ("morsa_node_blobs", "Blobs with stored metadata.", now.store.blobs),
        ("morsa_node_pending_uploads", "Uploads held until their registration arrives.", now.pending_uploads),
        (
            "morsa_node_pending_bytes",
            "Bytes held for uploads waiting for their registration.",
            now.pending_bytes,
        ),
        (
            "morsa_node_answer_budget_free_bytes",
            "Bytes of the answer budget free now.",
            now.answer_budget_free_bytes,
        ),
        ("morsa_node_repair_backlog_slivers", "Missing slivers queued for repair.", repair.backlog_slivers),
        ("morsa_node_repair_backlog_bytes", "Estimated bytes of the queued slivers.", repair.backlog_bytes),
        ("morsa_node_repair_in_flight_slivers", "Slivers being rebuilt now.", repair.in_flight_slivers),
        (
            "morsa_node_repair_caught_up",
            "1 once a scan ran and nothing is queued or in flight.",
            u64::from(repair.caught_up),
        ),
        ("morsa_node_repair_paused", "1 while background repair is paused.", u64::from(repair.paused)),
        (
            "morsa_node_repair_suspected_peers",
            "Peers caught sending symbols that fail their proofs.",
            morsa_core::convert::saturating_u64(repair.suspected_peers.len()),
        ),
    ];
    for (name, help, value) in gauges {
        registry.gauge(name, help, &[]).set(lossy_f64(value));
    }
    if let Some(margin) = repair.lowest_margin {
        let help = "Smallest known availability margin of a queued blob (shards above n-2f).";
        registry.gauge("morsa_node_repair_lowest_margin_shards", help, &[]).set(f64::from(margin));
    }
    if let Some(disk) = now.disk {
        for (name, help, value) in [
            (
                "morsa_node_disk_free_bytes",
                "Bytes the node may still write on its database's filesystem.",
                disk.free_bytes,
            ),
            ("morsa_node_disk_total_bytes", "Size of the database's filesystem.", disk.total_bytes),
            (
                "morsa_node_disk_reserve_bytes",
                "Free bytes the node keeps; under them it refuses uploads (insufficient_storage).",
                disk.reserve_bytes,
            ),
        ] {
            registry.gauge(name, help, &[]).set(lossy_f64(value));
        }
    }
    let counters: [(&'static str, &'static str, u64); 15] = [
        (
            "morsa_node_repair_rebuilt_slivers_total",
            "Slivers rebuilt, verified and stored.",
            repair.rebuilt_slivers,
        ),
        ("morsa_node_repair_rebuilt_bytes_total", "Bytes of rebuilt slivers.", repair.rebuilt_bytes),
        (
            "morsa_node_repair_fetched_bytes_total",
            "Bytes of recovery symbols fetched from peers.",
            repair.fetched_bytes,
        ),
        (
            "morsa_node_repair_metadata_fetched_bytes_total",
            "Bytes of metadata fetched from peers.",
            now.metadata_fetched_bytes,
        ),
        (
            "morsa_node_repair_on_demand_slivers_total",
            "Slivers rebuilt for a request.",
            repair.on_demand_slivers,
        ),
        ("morsa_node_repair_failed_attempts_total", "Sliver rebuilds that failed.", repair.failed_attempts),
        (
            "morsa_node_repair_given_up_slivers_total",
            "Slivers given up after their last retry.",
            repair.given_up_slivers,
        ),
        ("morsa_node_repair_scans_total", "Full scans for missing slivers.", repair.scans),
        (
            "morsa_node_repair_inconsistent_blobs_total",
            "Blobs proven inconsistently encoded.",
            repair.inconsistent_blobs,
        ),
        ("morsa_node_scrub_slivers_total", "Stored slivers re-verified.", repair.scrubbed_slivers),
        (
            "morsa_node_scrub_corrupt_slivers_total",
            "Damaged slivers found and queued.",
            repair.corrupt_slivers,
        ),
        ("morsa_node_scrub_passes_total", "Full scrub passes.", repair.scrub_passes),
        (
            "morsa_node_unresponsive_reported_total",
            "Reports that a committee member answers nothing, taken by the coordinator.",
            repair.unresponsive_reported,
        ),
        (
            "morsa_node_losses_declared_total",
            "Blobs declared lost to the coordinator (found lacking slivers by a scan or the scrubber).",
            repair.losses_declared,
        ),
        ("morsa_node_scrub_bytes_total", "Stored bytes re-verified.", repair.scrubbed_bytes),
    ];
    for (name, help, value) in counters {
        registry.counter(name, help, &[]).absolute(value);
    }
    render_migration(&registry, now);
    render_challenges(&registry, &now.challenges);
    render_background(&registry, &now.background);
    let connections = now.connections;
    for (reason, count) in [
        ("evicted", connections.evicted),
        ("refused", connections.refused),
        ("header_timeout", connections.header_timeouts),
        ("idle_timeout", connections.idle_timeouts),
        ("write_timeout", connections.write_timeouts),
    ] {
        let help = "Connections the server's limits closed, by reason.";
        registry.counter("morsa_node_connections_closed_total", help, &[("reason", reason)]).absolute(count);
    }
    registry.render()
}

/// What the node did for storage challenges.
fn render_challenges(registry: &Registry, counts: &ChallengeCounts) {
    let counters: [(&'static str, &'static str, u64); 6] = [
        ("morsa_node_challenges_answered_total", "Challenges answered to auditors.", counts.answered),
        ("morsa_node_challenge_audits_total", "Audits of other nodes made and reported.", counts.audits),
        (
            "morsa_node_challenge_audited_total",
            "Challenges of other nodes this node audited.",
            counts.audited_challenges,
        ),
        (
            "morsa_node_challenge_failures_found_total",
            "Audited challenges failed (not answered in time, or answered wrong).",
            counts.failures_found,
        ),
        (
            "morsa_node_challenge_disputes_total",
            "Disputes submitted against reported failures.",
            counts.disputes,
        ),
        (
            "morsa_node_challenge_recovery_refused_total",
            "Recovery-symbol requests refused because their sliver is challenged in the open round.",
            counts.recovery_refused,
        ),
    ];
    for (name, help, value) in counters {
        registry.counter(name, help, &[]).absolute(value);
    }
}

/// The low-priority pool of background work.
fn render_background(registry: &Registry, counts: &BackgroundCounts) {
    let help = "Nice value added to the threads of background work (0: they run at the node's priority).";
    registry.gauge("morsa_node_background_nice", help, &[]).set(f64::from(counts.nice));
    let help = "Jobs of background work (rebuilds, answers to peers' recovery requests, scrubbing, shard pulls) run on the low-priority pool.";
    registry.counter("morsa_node_background_jobs_total", help, &[]).absolute(counts.jobs);
    let help = "Microseconds background jobs waited for a thread of the low-priority pool.";
    registry.counter("morsa_node_background_wait_microseconds_total", help, &[]).absolute(counts.waited_us);
}

/// Shards by state, and what migration pulled and served.
fn render_migration(registry: &Registry, now: &Now<'_>) {
    for state in
        [ShardStatus::Active, ShardStatus::ActiveSync, ShardStatus::ActiveRecover, ShardStatus::LockedToMove]
    {
        let count = now.shard_states.iter().filter(|(_, status)| *status == state).count();
        let name = serde_json::to_value(state)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default();
        registry
            .gauge(
                "morsa_node_shards",
                "Shards owned or kept for their new owner, by state.",
                &[("state", name.as_str())],
            )
            .set(lossy_f64(morsa_core::convert::saturating_u64(count)));
    }
    let migration = now.migration;
    let counters: [(&'static str, &'static str, u64); 11] = [
        (
            "morsa_node_migration_pages_pulled_total",
            "Shard pages pulled from previous owners (over the node's lifetime).",
            migration.pages_pulled_total,
        ),
        (
            "morsa_node_migration_pages_pulled_process_total",
            "Shard pages pulled by this process.",
            migration.pages_pulled,
        ),
        (
            "morsa_node_migration_slivers_pulled_total",
            "Slivers pulled, verified and stored.",
            migration.slivers_pulled,
        ),
        ("morsa_node_migration_bytes_pulled_total", "Bytes of slivers pulled.", migration.bytes_pulled),
        (
            "morsa_node_migration_page_bytes_received_total",
            "Bytes of shard pages received.",
            migration.page_bytes_received,
        ),
        (
            "morsa_node_migration_slivers_left_to_recovery_total",
            "Slivers a pull left to recovery.",
            migration.slivers_left_to_recovery,
        ),
        (
            "morsa_node_migration_shards_fallen_back_total",
            "Gained shards left to recovery as a whole.",
            migration.shards_fallen_back,
        ),
        (
            "morsa_node_migration_pages_served_total",
            "Shard pages served to new owners.",
            migration.pages_served,
        ),
        ("morsa_node_migration_pages_refused_total", "Shard page requests refused.", migration.pages_refused),
        (
            "morsa_node_migration_shards_released_total",
            "Moved shards deleted after their grace epoch.",
            migration.shards_released,
        ),
        (
            "morsa_node_migration_slivers_read_through_total",
            "Slivers of shards being pulled that reads fetched from the previous owner.",
            migration.slivers_read_through,
        ),
    ];
    for (name, help, value) in counters {
        registry.counter(name, help, &[]).absolute(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(metrics: &Metrics, repair: &RepairHealth) -> String {
        let (store, connections) = (StoreStats::default(), ServeStats::default());
        let now = Now {
            store: &store,
            pending_uploads: 0,
            pending_bytes: 0,
            repair,
            metadata_fetched_bytes: 0,
            connections: &connections,
            answer_budget_free_bytes: 0,
            shard_states: &[(3, ShardStatus::ActiveSync), (4, ShardStatus::Active)],
            migration: &MigrationHealth { pages_pulled_total: 5, ..MigrationHealth::default() },
            challenges: ChallengeCounts { audits: 2, failures_found: 3, ..ChallengeCounts::default() },
            background: BackgroundCounts { nice: 10, jobs: 6, waited_us: 250 },
            disk: Some(DiskHealth { free_bytes: 5 << 30, total_bytes: 100 << 30, reserve_bytes: 1 << 30 }),
        };
        metrics.render(&now)
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|got| got == line)
    }

    #[test]
    fn latencies_fall_in_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.record("/v1/health", 200, Duration::from_millis(3), 100);
        metrics.record("/v1/health", 200, Duration::from_millis(300), 20);
        metrics.record(
            "/v1/blobs/{blob_id}/slivers/{sliver_pair_index}/{sliver_type}",
            422,
            Duration::from_millis(1),
            0,
        );
        let text = render(&metrics, &RepairHealth::default());
        assert!(text.contains("morsa_node_requests_total{route=\"/v1/health\",status=\"200\"} 2"));
        assert!(text.contains("morsa_node_request_seconds_bucket{route=\"/v1/health\",le=\"0.005\"} 1"));
        assert!(text.contains("morsa_node_request_seconds_bucket{route=\"/v1/health\",le=\"0.5\"} 2"));
        assert!(text.contains("morsa_node_verification_failures_total 1"));
        assert!(text.contains("morsa_node_response_bytes_total{route=\"/v1/health\"} 120"));
    }

    #[test]
    fn metrics_keep_their_names_types_and_labels() {
        let metrics = Metrics::default();
        metrics.record("/v1/health", 404, Duration::from_millis(3), 7);
        let repair = RepairHealth {
            rebuilt_bytes: 42,
            caught_up: true,
            lowest_margin: Some(2),
            losses_declared: 4,
            ..RepairHealth::default()
        };
        let text = render(&metrics, &repair);
        for line in [
            "# TYPE morsa_node_requests_total counter",
            "morsa_node_requests_total{route=\"/v1/health\",status=\"404\"} 1",
            "# TYPE morsa_node_response_bytes_total counter",
            "morsa_node_response_bytes_total{route=\"/v1/health\"} 7",
            "# TYPE morsa_node_request_seconds histogram",
            "morsa_node_request_seconds_bucket{route=\"/v1/health\",le=\"+Inf\"} 1",
            "morsa_node_request_seconds_count{route=\"/v1/health\"} 1",
            "# TYPE morsa_node_verification_failures_total counter",
            "morsa_node_verification_failures_total 0",
            "# HELP morsa_node_blobs Blobs with stored metadata.",
            "# TYPE morsa_node_blobs gauge",
            "morsa_node_blobs 0",
            "# TYPE morsa_node_repair_rebuilt_bytes_total counter",
            "morsa_node_repair_rebuilt_bytes_total 42",
            "# TYPE morsa_node_repair_caught_up gauge",
            "morsa_node_repair_caught_up 1",
            "morsa_node_repair_lowest_margin_shards 2",
            "# TYPE morsa_node_scrub_bytes_total counter",
            "# TYPE morsa_node_losses_declared_total counter",
            "morsa_node_losses_declared_total 4",
            "# TYPE morsa_node_connections_closed_total counter",
            "morsa_node_connections_closed_total{reason=\"write_timeout\"} 0",
            "# TYPE morsa_node_answer_budget_free_bytes gauge",
            "morsa_node_pending_bytes 0",
            "morsa_node_shards{state=\"active_sync\"} 1",
            "morsa_node_shards{state=\"locked_to_move\"} 0",
            "morsa_node_migration_pages_pulled_total 5",
            "# TYPE morsa_node_challenge_audits_total counter",
            "morsa_node_challenge_audits_total 2",
            "morsa_node_challenge_failures_found_total 3",
            "morsa_node_challenges_answered_total 0",
            "# TYPE morsa_node_background_nice gauge",
            "morsa_node_background_nice 10",
            "# TYPE morsa_node_background_jobs_total counter",
            "morsa_node_background_jobs_total 6",
            "morsa_node_background_wait_microseconds_total 250",
            "# TYPE morsa_node_disk_free_bytes gauge",
            "morsa_node_disk_free_bytes 5368709120",
            "morsa_node_disk_total_bytes 107374182400",
            "morsa_node_disk_reserve_bytes 1073741824",
        ] {
            assert!(has_line(&text, line), "{line:?} missing from:\n{text}");
        }
        let text = render(&metrics, &RepairHealth::default());
        assert!(!text.contains("morsa_node_repair_lowest_margin_shards"), "no margin is known:\n{text}");
    }
}
