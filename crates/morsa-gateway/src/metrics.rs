//! Prometheus metrics of the gateway, served at `GET /metrics`: requests by API, operation
//! and status, bytes received and sent, time to the first byte of reads, and the throughput
//! of whole reads (restores). On the gateway's own [`Registry`], as the node's and the
//! coordinator's are.

use morsa_plumbing::metrics::{Registry, SECONDS_BUCKETS, THROUGHPUT_BUCKETS};

const REQUESTS: (&str, &str) =
    ("morsa_gateway_requests_total", "Requests answered, by API (s3, blob, metrics), operation and status.");
const RECEIVED: (&str, &str) =
    ("morsa_gateway_received_bytes_total", "Bytes of request bodies received, by API and operation.");
const SENT: (&str, &str) =
    ("morsa_gateway_sent_bytes_total", "Bytes of response bodies sent, by API and operation.");
const FIRST_BYTE: (&str, &str) = (
    "morsa_gateway_time_to_first_byte_seconds",
    "Time from a read's request to the first byte of its body, by operation (GetObject, ReadBlob).",
);
const THROUGHPUT: (&str, &str) = (
    "morsa_gateway_restore_throughput_bytes_per_second",
    "Bytes per second of whole reads (200 answers of GetObject and ReadBlob, request to last byte).",
);

/// The gateway's counters and histograms.
#[derive(Debug)]
pub struct GatewayMetrics {
    /// Counters and the time-to-first-byte histogram.
    requests: Registry,
    /// The throughput histogram (its buckets are in bytes per second, not seconds).
    throughput: Registry,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self {
            requests: Registry::with_buckets(&SECONDS_BUCKETS),
            throughput: Registry::with_buckets(&THROUGHPUT_BUCKETS),
        }
    }
}

impl GatewayMetrics {
    /// Counts one request answered with `status`.
    pub fn answered(&self, api: &str, operation: &str, status: u16) {
        let (name, help) = REQUESTS;
        let status = status.to_string();
        let labels = [("api", api), ("operation", operation), ("status", status.as_str())];
        self.requests.counter(name, help, &labels).increment(1);
    }

    /// Counts `bytes` of a request body received.
    pub fn received(&self, api: &str, operation: &str, bytes: u64) {
        let (name, help) = RECEIVED;
        self.requests.counter(name, help, &[("api", api), ("operation", operation)]).increment(bytes);
    }

    /// Counts `bytes` of a response body sent.
    pub fn sent(&self, api: &str, operation: &str, bytes: u64) {
        let (name, help) = SENT;
        self.requests.counter(name, help, &[("api", api), ("operation", operation)]).increment(bytes);
    }

    /// Records a read's time to its first byte.
    pub fn first_byte(&self, operation: &str, seconds: f64) {
        let (name, help) = FIRST_BYTE;
        self.requests.histogram(name, help, &[("operation", operation)]).record(seconds);
    }

    /// Records a whole read's throughput.
    pub fn whole_read(&self, operation: &str, bytes_per_second: f64) {
        let (name, help) = THROUGHPUT;
        self.throughput.histogram(name, help, &[("operation", operation)]).record(bytes_per_second);
    }

    /// Every metric, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = self.requests.render();
        text.push_str(&self.throughput.render());
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_with_their_names_labels_and_buckets() {
        let metrics = GatewayMetrics::default();
        metrics.answered("s3", "GetObject", 200);
        metrics.answered("s3", "GetObject", 200);
        metrics.answered("blob", "ReadBlob", 416);
        metrics.received("s3", "PutObject", 100);
        metrics.sent("s3", "GetObject", 5000);
        metrics.first_byte("GetObject", 0.02);
        metrics.whole_read("GetObject", 2_000_000.0);
        let text = metrics.render();
        for line in [
            "morsa_gateway_requests_total{api=\"s3\",operation=\"GetObject\",status=\"200\"} 2",
            "morsa_gateway_requests_total{api=\"blob\",operation=\"ReadBlob\",status=\"416\"} 1",
            "morsa_gateway_received_bytes_total{api=\"s3\",operation=\"PutObject\"} 100",
            "morsa_gateway_sent_bytes_total{api=\"s3\",operation=\"GetObject\"} 5000",
            "morsa_gateway_time_to_first_byte_seconds_bucket{operation=\"GetObject\",le=\"0.01\"} 0",
            "morsa_gateway_time_to_first_byte_seconds_bucket{operation=\"GetObject\",le=\"0.025\"} 1",
            "morsa_gateway_restore_throughput_bytes_per_second_bucket{operation=\"GetObject\",le=\"1048576\"} 0",
            "morsa_gateway_restore_throughput_bytes_per_second_bucket{operation=\"GetObject\",le=\"4194304\"} 1",
            "# TYPE morsa_gateway_restore_throughput_bytes_per_second histogram",
        ] {
            assert!(text.lines().any(|got| got == line), "{line:?} missing from:\n{text}");
        }
    }
}
