//! Prometheus metrics through the `metrics` facade and the Prometheus exporter, on a
//! [`Registry`] its owner keeps: never the process-wide recorder, so that two servers in one
//! process (tests start several) each report their own numbers.
//!
//! ```
//! use morsa_plumbing::metrics::Registry;
//! let registry = Registry::new();
//! registry.counter("requests_total", "Requests answered.", &[("route", "/v1/health")]).increment(2);
//! registry.gauge("queued", "Items queued now.", &[]).set(3.0);
//! let text = registry.render();
//! assert!(text.contains("# TYPE requests_total counter\n"));
//! assert!(text.contains("requests_total{route=\"/v1/health\"} 2\n"));
//! assert!(text.contains("queued 3\n"));
//! ```

pub use metrics::{Counter, Gauge, Histogram};
use metrics::{Key, KeyName, Label, Metadata, Recorder as _};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

/// Upper bounds of time-to-first-byte buckets, in seconds (1 ms to 30 s): the gateway's and
/// the drills' histograms share them, so that their quantiles compare.
pub const SECONDS_BUCKETS: [f64; 13] =
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Upper bounds of restore-throughput buckets, in bytes per second (256 KiB/s to 1 GiB/s).
pub const THROUGHPUT_BUCKETS: [f64; 7] =
    [262_144.0, 1_048_576.0, 4_194_304.0, 16_777_216.0, 67_108_864.0, 268_435_456.0, 1_073_741_824.0];

/// Where registrations come from (the exporter ignores it; the facade asks for one).
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The metrics of one server, rendered in the Prometheus text format. A metric is described
/// (its `# HELP` line) by the first registration of its name.
pub struct Registry {
    recorder: PrometheusRecorder,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// A registry whose histograms render as summaries (none of ours uses them).
    pub fn new() -> Self {
        Self { recorder: PrometheusBuilder::new().build_recorder() }
    }

    /// A registry whose histograms render as Prometheus histograms with these cumulative
    /// bucket upper bounds (`le`), plus `+Inf`. An empty `bounds` falls back to [`Registry::new`].
    pub fn with_buckets(bounds: &[f64]) -> Self {
        match PrometheusBuilder::new().set_buckets(bounds) {
            Ok(builder) => Self { recorder: builder.build_recorder() },
            Err(_) => Self::new(),
        }
    }

    /// The counter `name` with `labels`, registered (at zero) if new.
    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Counter {
        self.recorder.describe_counter(KeyName::from_const_str(name), None, help.into());
        self.recorder.register_counter(&key(name, labels), &METADATA)
    }

    /// The gauge `name` with `labels`, registered (at zero) if new.
    pub fn gauge(&self, name: &'static str, help: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        self.recorder.describe_gauge(KeyName::from_const_str(name), None, help.into());
        self.recorder.register_gauge(&key(name, labels), &METADATA)
    }

    /// The histogram `name` with `labels`, registered if new.
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Histogram {
        self.recorder.describe_histogram(KeyName::from_const_str(name), None, help.into());
        self.recorder.register_histogram(&key(name, labels), &METADATA)
    }

    /// Every metric registered, in the Prometheus text format.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels.iter().map(|(key, value)| Label::new(*key, value.to_string())).collect();
    Key::from_parts(name, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_registry_counts_its_own() {
        let (first, second) = (Registry::new(), Registry::new());
        first.counter("hits_total", "Hits.", &[]).increment(1);
        second.counter("hits_total", "Hits.", &[]).increment(5);
        assert!(first.render().contains("hits_total 1\n"), "{}", first.render());
        assert!(second.render().contains("hits_total 5\n"), "{}", second.render());
    }

    #[test]
    fn histograms_fall_in_cumulative_buckets_in_label_order() {
        let registry = Registry::with_buckets(&[0.01, 1.0]);
        let latency = registry.histogram("seconds", "Latency.", &[("route", "/a"), ("kind", "b")]);
        latency.record(0.005);
        latency.record(0.5);
        let text = registry.render();
        for line in [
            "# HELP seconds Latency.",
            "# TYPE seconds histogram",
            "seconds_bucket{route=\"/a\",kind=\"b\",le=\"0.01\"} 1",
            "seconds_bucket{route=\"/a\",kind=\"b\",le=\"1\"} 2",
            "seconds_bucket{route=\"/a\",kind=\"b\",le=\"+Inf\"} 2",
            "seconds_sum{route=\"/a\",kind=\"b\"} 0.505",
            "seconds_count{route=\"/a\",kind=\"b\"} 2",
        ] {
            assert!(text.lines().any(|got| got == line), "{line:?} missing from:\n{text}");
        }
    }
}
