//! The shape of a node's link in a local cluster (delay, jitter, bandwidth): what a cluster's
//! spec asks for and what [`crate::netem`] applies, kept apart from both so that neither
//! depends on the other for it.

use serde::{Deserialize, Serialize};

/// How a link to one node behaves, in each direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkShape {
    /// One-way delay added to every byte, in milliseconds.
    pub delay_ms: u64,
    /// Up to this many more milliseconds, uniformly at random, per chunk.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Bandwidth of each direction in bytes per second (shared by the node's connections);
    /// `None`: unlimited.
    #[serde(default)]
    pub rate_bytes_per_second: Option<u64>,
}

impl LinkShape {
    /// Bytes per second of `mbit` megabits per second.
    pub fn mbit_per_second(mbit: u64) -> u64 {
        mbit.saturating_mul(125_000)
    }
}

impl std::fmt::Display for LinkShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "delay {} ms", self.delay_ms)?;
        if self.jitter_ms > 0 {
            write!(f, " (+0..{} ms jitter)", self.jitter_ms)?;
        }
        match self.rate_bytes_per_second {
            Some(rate) => write!(f, ", {} kbit/s", rate.saturating_mul(8) / 1000),
            None => write!(f, ", unlimited bandwidth"),
        }
    }
}
