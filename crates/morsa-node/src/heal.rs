//! Self-healing: slivers this node lacks of certified blobs (missed uploads, lost or damaged
//! data, shards taken over) are rebuilt from other nodes' recovery symbols, in the background
//! or at once when a request needs them.
//!
//! - `sync`: the scanner and the workers that drain the `repair_queue`; `scrub` re-verifies
//!   stored slivers; `on_demand` rebuilds what a request needs now.
//! - `repairer`: the engine every one of them calls, with `fetch` (symbols from many peers at
//!   once), `peers` (who to ask first) and `throttle` (background bandwidth).
//! - `liveness`: peers that answer nothing for an epoch are reported to the coordinator.
//! - `losses`: blobs a scan or the scrubber found lacking slivers are declared lost to the
//!   coordinator, so that challenges on them cost less while they are rebuilt.
//! - `invalid`: a blob proven inconsistently encoded is certified invalid and reported.
//! - `stats` and `health`: what it has done, for the health route and the metrics.
//! - `availability`: the summaries of what this node lacks, sent to the coordinators, whose
//!   answers (the system-wide margins) order the repair queue.

pub(crate) mod availability;
mod fetch;
mod health;
pub(crate) mod invalid;
mod liveness;
mod losses;
pub(crate) mod on_demand;
mod peers;
mod repair_queue;
mod repairer;
mod scrub;
mod stats;
pub(crate) mod sync;
mod throttle;

pub use repairer::Repairer;
