//! What shard migration has done since the process started, for health and metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use morsa_api::node::MigrationHealth;

/// Counters of shard migration.
#[derive(Debug, Default)]
pub(crate) struct MigrationStats {
    pub pages_pulled: AtomicU64,
    pub slivers_pulled: AtomicU64,
    pub bytes_pulled: AtomicU64,
    pub page_bytes_received: AtomicU64,
    pub slivers_left_to_recovery: AtomicU64,
    pub shards_fallen_back: AtomicU64,
    pub pages_served: AtomicU64,
    pub pages_refused: AtomicU64,
    pub shards_released: AtomicU64,
    pub slivers_read_through: AtomicU64,
}

/// Adds `amount` to `counter`.
pub(crate) fn add(counter: &AtomicU64, amount: u64) {
    counter.fetch_add(amount, Ordering::Relaxed);
}

impl MigrationStats {
    /// The counters as health reports them, with the lifetime page count `pages_pulled_total`.
    pub fn health(&self, pages_pulled_total: u64) -> MigrationHealth {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        MigrationHealth {
            pages_pulled_total,
            pages_pulled: load(&self.pages_pulled),
            slivers_pulled: load(&self.slivers_pulled),
            bytes_pulled: load(&self.bytes_pulled),
            page_bytes_received: load(&self.page_bytes_received),
            slivers_left_to_recovery: load(&self.slivers_left_to_recovery),
            shards_fallen_back: load(&self.shards_fallen_back),
            pages_served: load(&self.pages_served),
            pages_refused: load(&self.pages_refused),
            shards_released: load(&self.shards_released),
            slivers_read_through: load(&self.slivers_read_through),
        }
    }
}
