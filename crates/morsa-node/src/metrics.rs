//! Prometheus metrics of the node, in the text exposition format: requests by route and
//! status with latency histograms and answer bytes, what the store holds per shard, and self-healing (repair
//! backlog, throughput, bytes fetched against bytes rebuilt, scrub progress, margins).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use morsa_api::node::RepairHealth;
use morsa_store::StoreStats;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
    body_bytes: u64,
}

/// Request counters and latencies.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
}

impl Metrics {
    /// Records one answered request whose answer body is `body_bytes` long.
    pub fn record(&self, route: &str, status: u16, latency: Duration, body_bytes: u64) {
        let mut routes = self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stats = routes.entry(route.to_string()).or_default();
        *stats.by_status.entry(status).or_default() += 1;
        stats.body_bytes = stats.body_bytes.saturating_add(body_bytes);
        let seconds = latency.as_secs_f64();
        for (bucket, bound) in stats.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        stats.count += 1;
        stats.sum_seconds += seconds;
    }

    /// Renders every metric; `store` gives the per-shard gauges.
    pub fn render(&self, store: &StoreStats, pending_uploads: u64) -> String {
        let mut out = String::new();
        let routes = self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        out.push_str("# HELP morsa_node_requests_total Requests answered, by route and status.\n");
        out.push_str("# TYPE morsa_node_requests_total counter\n");
        for (route, stats) in routes.iter() {
            for (status, count) in &stats.by_status {
                let _ = writeln!(
                    out,
                    "morsa_node_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
                );
            }
        }
        out.push_str(
            "# HELP morsa_node_response_bytes_total Bytes of answer bodies (what peers fetch for repair included), by route.\n",
        );
        out.push_str("# TYPE morsa_node_response_bytes_total counter\n");
        for (route, stats) in routes.iter() {
            let _ =
                writeln!(out, "morsa_node_response_bytes_total{{route=\"{route}\"}} {}", stats.body_bytes);
        }
        out.push_str("# HELP morsa_node_request_seconds Request latency, by route.\n");
        out.push_str("# TYPE morsa_node_request_seconds histogram\n");
        for (route, stats) in routes.iter() {
            for (bound, count) in BUCKETS.iter().zip(stats.buckets) {
                let _ = writeln!(
                    out,
                    "morsa_node_request_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "morsa_node_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                stats.count
            );
            let _ =
                writeln!(out, "morsa_node_request_seconds_sum{{route=\"{route}\"}} {}", stats.sum_seconds);
            let _ = writeln!(out, "morsa_node_request_seconds_count{{route=\"{route}\"}} {}", stats.count);
        }
        let verification_failures: u64 = routes
            .iter()
            .filter(|(route, _)| route.contains("/slivers/") || route.ends_with("/metadata"))
            .flat_map(|(_, stats)| stats.by_status.iter())
            .filter(|(status, _)| **status == 422)
            .map(|(_, count)| count)
            .sum();
        drop(routes);
        out.push_str(
            "# HELP morsa_node_verification_failures_total Uploads refused for a size or hash mismatch.\n",
        );
        out.push_str("# TYPE morsa_node_verification_failures_total counter\n");
        let _ = writeln!(out, "morsa_node_verification_failures_total {verification_failures}");
        out.push_str("# HELP morsa_node_shard_slivers Slivers stored, by shard.\n# TYPE morsa_node_shard_slivers gauge\n");
        for (shard, stats) in &store.shards {
            let slivers = stats.primary_slivers + stats.secondary_slivers;
            let _ = writeln!(out, "morsa_node_shard_slivers{{shard=\"{shard}\"}} {slivers}");
        }
        out.push_str("# HELP morsa_node_shard_bytes Sliver bytes stored, by shard.\n# TYPE morsa_node_shard_bytes gauge\n");
        for (shard, stats) in &store.shards {
            let _ = writeln!(out, "morsa_node_shard_bytes{{shard=\"{shard}\"}} {}", stats.bytes);
        }
        let _ = writeln!(
            out,
            "# HELP morsa_node_blobs Blobs with stored metadata.\n# TYPE morsa_node_blobs gauge\nmorsa_node_blobs {}",
            store.blobs
        );
        let _ = writeln!(
            out,
            "# HELP morsa_node_pending_uploads Uploads held until their registration arrives.\n# TYPE morsa_node_pending_uploads gauge\nmorsa_node_pending_uploads {pending_uploads}"
        );
        out
    }
}

/// Appends the self-healing metrics to `out`.
pub(crate) fn render_repair(out: &mut String, health: &RepairHealth, metadata_fetched_bytes: u64) {
    let metrics: [(&str, &str, &str, u64); 17] = [
        ("repair_backlog_slivers", "gauge", "Missing slivers queued for repair.", health.backlog_slivers),
        ("repair_backlog_bytes", "gauge", "Estimated bytes of the queued slivers.", health.backlog_bytes),
        ("repair_in_flight_slivers", "gauge", "Slivers being rebuilt now.", health.in_flight_slivers),
        (
            "repair_rebuilt_slivers_total",
            "counter",
            "Slivers rebuilt, verified and stored.",
            health.rebuilt_slivers,
        ),
        ("repair_rebuilt_bytes_total", "counter", "Bytes of rebuilt slivers.", health.rebuilt_bytes),
        (
            "repair_fetched_bytes_total",
            "counter",
            "Bytes of recovery symbols fetched from peers.",
            health.fetched_bytes,
        ),
        (
            "repair_metadata_fetched_bytes_total",
            "counter",
            "Bytes of metadata fetched from peers.",
            metadata_fetched_bytes,
        ),
        (
            "repair_on_demand_slivers_total",
            "counter",
            "Slivers rebuilt for a request.",
            health.on_demand_slivers,
        ),
        ("repair_failed_attempts_total", "counter", "Sliver rebuilds that failed.", health.failed_attempts),
        (
            "repair_given_up_slivers_total",
            "counter",
            "Slivers given up after their last retry.",
            health.given_up_slivers,
        ),
        ("repair_scans_total", "counter", "Full scans for missing slivers.", health.scans),
        (
            "repair_caught_up",
            "gauge",
            "1 once a scan ran and nothing is queued or in flight.",
            u64::from(health.caught_up),
        ),
        ("repair_paused", "gauge", "1 while background repair is paused.", u64::from(health.paused)),
        (
            "repair_inconsistent_blobs_total",
            "counter",
            "Blobs proven inconsistently encoded.",
            health.inconsistent_blobs,
        ),
        ("scrub_slivers_total", "counter", "Stored slivers re-verified.", health.scrubbed_slivers),
        (
            "scrub_corrupt_slivers_total",
            "counter",
            "Damaged slivers found and queued.",
            health.corrupt_slivers,
        ),
        ("scrub_passes_total", "counter", "Full scrub passes.", health.scrub_passes),
    ];
    for (name, kind, help, value) in metrics {
        let _ = writeln!(
            out,
            "# HELP morsa_node_{name} {help}\n# TYPE morsa_node_{name} {kind}\nmorsa_node_{name} {value}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP morsa_node_scrub_bytes_total Stored bytes re-verified.\n# TYPE morsa_node_scrub_bytes_total counter\nmorsa_node_scrub_bytes_total {}",
        health.scrubbed_bytes
    );
    out.push_str(
        "# HELP morsa_node_repair_lowest_margin_shards Smallest known availability margin of a queued blob (shards above n-2f).\n# TYPE morsa_node_repair_lowest_margin_shards gauge\n",
    );
    if let Some(margin) = health.lowest_margin {
        let _ = writeln!(out, "morsa_node_repair_lowest_margin_shards {margin}");
    }
    out.push_str(
        "# HELP morsa_node_repair_suspected_peers Peers caught sending symbols that fail their proofs.\n# TYPE morsa_node_repair_suspected_peers gauge\n",
    );
    let _ = writeln!(out, "morsa_node_repair_suspected_peers {}", health.suspected_peers.len());
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let text = metrics.render(&StoreStats::default(), 0);
        assert!(text.contains("morsa_node_requests_total{route=\"/v1/health\",status=\"200\"} 2"));
        assert!(text.contains("morsa_node_request_seconds_bucket{route=\"/v1/health\",le=\"0.005\"} 1"));
        assert!(text.contains("morsa_node_request_seconds_bucket{route=\"/v1/health\",le=\"0.5\"} 2"));
        assert!(text.contains("morsa_node_verification_failures_total 1"));
        assert!(text.contains("morsa_node_response_bytes_total{route=\"/v1/health\"} 120"));
    }
}
