//! Prometheus metrics of the coordinator, in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::State;

/// Counters kept by the server.
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Counts an accepted submission.
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused submission by error code.
    pub fn refused(&self, code: &'static str) {
        let mut refused = self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *refused.entry(code).or_default() += 1;
    }

    /// Renders the metrics with gauges read from `state`.
    pub fn render(&self, state: &State, events: u64) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        };
        gauge("morsa_coord_epoch", "Current epoch.", u64::from(state.epoch.0));
        gauge("morsa_coord_events", "Events emitted.", events);
        gauge("morsa_coord_blob_objects", "Live blob objects.", len(state.blobs.len()));
        gauge("morsa_coord_invalid_blobs", "Blob IDs proven invalid.", len(state.invalid_blobs.len()));
        gauge("morsa_coord_capacity_bytes", "Capacity of the current committee.", state.capacity);
        gauge(
            "morsa_coord_used_bytes",
            "Bytes reserved in the current epoch.",
            state.used.get(&state.epoch).copied().unwrap_or(0),
        );
        let _ = writeln!(
            out,
            "# HELP morsa_coord_submissions_total Submissions by outcome.\n# TYPE morsa_coord_submissions_total counter"
        );
        let _ = writeln!(
            out,
            "morsa_coord_submissions_total{{outcome=\"accepted\"}} {}",
            self.accepted.load(Ordering::Relaxed)
        );
        let refused = self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (code, count) in refused.iter() {
            let _ =
                writeln!(out, "morsa_coord_submissions_total{{outcome=\"refused\",code=\"{code}\"}} {count}");
        }
        out
    }
}

fn len(count: usize) -> u64 {
    u64::try_from(count).unwrap_or(u64::MAX)
}
