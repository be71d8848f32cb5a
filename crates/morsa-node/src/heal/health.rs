//! The self-healing part of the node's health: the queue, the counters and the peers.

use std::sync::atomic::{AtomicU64, Ordering};

use morsa_api::node::RepairHealth;

use crate::heal::repairer::Repairer;

impl Repairer {
    /// The self-healing part of the node's health.
    pub fn health(&self) -> RepairHealth {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let stats = self.stats();
        let queue = self.queue();
        let health = RepairHealth {
            paused: self.is_paused(),
            caught_up: false,
            scans: load(&stats.scans),
            backlog_slivers: morsa_core::convert::saturating_u64(queue.len()),
            backlog_bytes: queue.bytes(),
            in_flight_slivers: morsa_core::convert::saturating_u64(queue.in_flight()),
            rebuilt_slivers: load(&stats.rebuilt_slivers),
            rebuilt_bytes: load(&stats.rebuilt_bytes),
            fetched_bytes: load(&stats.fetched_bytes),
            on_demand_slivers: load(&stats.on_demand),
            failed_attempts: load(&stats.failed),
            given_up_slivers: queue.given_up,
            lowest_margin: queue.lowest_margin(),
            suspected_peers: Vec::new(),
            inconsistent_blobs: load(&stats.inconsistent),
            scrubbed_slivers: load(&stats.scrubbed_slivers),
            scrubbed_bytes: load(&stats.scrubbed_bytes),
            corrupt_slivers: load(&stats.corrupt),
            scrub_passes: load(&stats.scrub_passes),
            unresponsive_reported: load(&stats.unresponsive_reported),
            losses_declared: self.losses.declared_count(),
        };
        drop(queue);
        RepairHealth { caught_up: self.caught_up(), suspected_peers: self.peers().suspected(), ..health }
    }
}
