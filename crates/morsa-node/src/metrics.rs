//! Prometheus metrics of the node, in the text exposition format: requests by route and
//! status with latency histograms, and what the store holds per shard.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use morsa_store::StoreStats;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

/// Request counters and latencies.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
}

impl Metrics {
    /// Records one answered request.
    pub fn record(&self, route: &str, status: u16, latency: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stats = routes.entry(route.to_string()).or_default();
        *stats.by_status.entry(status).or_default() += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.record("/v1/health", 200, Duration::from_millis(3));
        metrics.record("/v1/health", 200, Duration::from_millis(300));
        metrics.record(
            "/v1/blobs/{blob_id}/slivers/{sliver_pair_index}/{sliver_type}",
            422,
            Duration::from_millis(1),
        );
        let text = metrics.render(&StoreStats::default(), 0);
        assert!(text.contains("morsa_node_requests_total{route=\"/v1/health\",status=\"200\"} 2"));
        assert!(text.contains("morsa_node_request_seconds_bucket{route=\"/v1/health\",le=\"0.005\"} 1"));
        assert!(text.contains("morsa_node_request_seconds_bucket{route=\"/v1/health\",le=\"0.5\"} 2"));
        assert!(text.contains("morsa_node_verification_failures_total 1"));
    }
}
