//! The counters of self-healing since the start (see `morsa_api::node::RepairHealth`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of self-healing since the start (see `morsa_api::node::RepairHealth`).
#[derive(Debug, Default)]
pub struct RepairStats {
    /// Slivers rebuilt and stored.
    pub rebuilt_slivers: AtomicU64,
    /// Their bytes.
    pub rebuilt_bytes: AtomicU64,
    /// Bytes of symbol answers fetched for them.
    pub fetched_bytes: AtomicU64,
    /// Bytes of metadata fetched from peers.
    pub metadata_bytes: AtomicU64,
    /// Slivers rebuilt on demand.
    pub on_demand: AtomicU64,
    /// Failed attempts.
    pub failed: AtomicU64,
    /// Full scans done.
    pub scans: AtomicU64,
    /// Blobs proven inconsistent.
    pub inconsistent: AtomicU64,
    /// Invalid-blob reports the coordinator accepted.
    pub invalidations_reported: AtomicU64,
    /// Slivers re-verified by the scrubber.
    pub scrubbed_slivers: AtomicU64,
    /// Their bytes.
    pub scrubbed_bytes: AtomicU64,
    /// Damaged slivers found.
    pub corrupt: AtomicU64,
    /// Full scrub passes.
    pub scrub_passes: AtomicU64,
    /// Unresponsive-peer reports the coordinator took.
    pub unresponsive_reported: AtomicU64,
}

/// Adds `value` to `counter`.
pub(crate) fn add(counter: &AtomicU64, value: usize) {
    counter.fetch_add(morsa_core::convert::saturating_u64(value), Ordering::Relaxed);
}
