//! Prometheus metrics of the coordinator, through the `metrics` facade and the Prometheus
//! exporter's text format.
//!
//! Each server has its own recorder (not the process-wide one), so that two coordinators in
//! one process, as in tests, keep their own counts.

use metrics::{Counter, Gauge, Key, Label, Metadata, Recorder as _};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use crate::State;

/// Submissions by outcome (`accepted`, or `refused` with the error `code`).
const SUBMISSIONS: &str = "morsa_coord_submissions_total";

/// The gauges, each with its help text.
const GAUGES: [(&str, &str); 7] = [
    (EPOCH, "Current epoch."),
    (EVENTS, "Events emitted."),
    (BLOB_OBJECTS, "Live blob objects."),
    (INVALID_BLOBS, "Blob IDs proven invalid."),
    (CAPACITY, "Capacity of the current committee."),
    (USED, "Bytes reserved in the current epoch."),
    (PARKED_POLLS, "Long-polls waiting for events."),
];
const EPOCH: &str = "morsa_coord_epoch";
const EVENTS: &str = "morsa_coord_events";
const BLOB_OBJECTS: &str = "morsa_coord_blob_objects";
const INVALID_BLOBS: &str = "morsa_coord_invalid_blobs";
const CAPACITY: &str = "morsa_coord_capacity_bytes";
const USED: &str = "morsa_coord_used_bytes";
const PARKED_POLLS: &str = "morsa_coord_parked_polls";

/// Where metric registrations come from (the exporter ignores it; the facade asks for one).
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The server's counters and gauges.
pub struct Metrics {
    recorder: PrometheusRecorder,
    accepted: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        recorder.describe_counter(SUBMISSIONS.into(), None, "Submissions by outcome.".into());
        for (name, help) in GAUGES {
            recorder.describe_gauge(name.into(), None, help.into());
        }
        let accepted = submissions(&recorder, vec![Label::new("outcome", "accepted")]);
        Self { recorder, accepted }
    }
}

impl Metrics {
    /// Counts an accepted submission.
    pub fn accepted(&self) {
        self.accepted.increment(1);
    }

    /// Counts a refused submission by error code.
    pub fn refused(&self, code: &'static str) {
        let labels = vec![Label::new("outcome", "refused"), Label::new("code", code)];
        submissions(&self.recorder, labels).increment(1);
    }

    /// Renders the metrics in the Prometheus text format, with gauges read from `state`,
    /// the event count and the long-polls parked now.
    pub fn render(&self, state: &State, events: u64, parked_polls: usize) -> String {
        let used = state.used.get(&state.epoch).copied().unwrap_or(0);
        for (name, value) in [
            (EPOCH, u64::from(state.epoch.0)),
            (EVENTS, events),
            (BLOB_OBJECTS, morsa_core::convert::saturating_u64(state.blobs.len())),
            (INVALID_BLOBS, morsa_core::convert::saturating_u64(state.invalid_blobs.len())),
            (CAPACITY, state.capacity),
            (USED, used),
            (PARKED_POLLS, morsa_core::convert::saturating_u64(parked_polls)),
        ] {
            self.gauge(name).set(morsa_core::convert::lossy_f64(value));
        }
        self.recorder.handle().render()
    }

    fn gauge(&self, name: &'static str) -> Gauge {
        self.recorder.register_gauge(&Key::from_static_name(name), &METADATA)
    }
}

fn submissions(recorder: &PrometheusRecorder, labels: Vec<Label>) -> Counter {
    recorder.register_counter(&Key::from_parts(SUBMISSIONS, labels), &METADATA)
}
