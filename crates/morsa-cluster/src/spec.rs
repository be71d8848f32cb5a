//! What cluster to start: how many nodes and shards, where, with which binary; and the
//! checks that refuse a cluster that could not work before any process is started.

use std::path::PathBuf;
use std::time::Duration;

/// Most storage nodes of a local cluster: each is a process with its own database, and the
/// machine is one host.
pub const MAX_NODES: usize = 100;

/// Most coordinator replicas of a local cluster.
pub const MAX_COORDINATORS: usize = 7;

/// Fewest shards (the erasure code needs `n ≥ 4`).
pub const MIN_SHARDS: u16 = 4;

/// The cluster [`crate::Cluster::up`] starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Storage nodes, `1..=MAX_NODES`.
    pub nodes: usize,
    /// Coordinator replicas (one Raft group), `1..=MAX_COORDINATORS`.
    pub coordinators: usize,
    /// Shards `n`: at least [`MIN_SHARDS`] and at least `nodes` (every node gets a shard).
    pub shards: u16,
    /// The cluster's directory: keys, configs, data and logs. It must not exist or be empty.
    pub dir: PathBuf,
    /// Length of an epoch (whole milliseconds, at least 1 ms).
    pub epoch_duration: Duration,
    /// The `morsa` executable started as coordinator and nodes.
    pub binary: PathBuf,
}

/// Why a [`ClusterSpec`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// `nodes` is 0 or over [`MAX_NODES`].
    #[error("--nodes must be between 1 and {MAX_NODES}, not {0}")]
    Nodes(usize),
    /// `coordinators` is 0 or over [`MAX_COORDINATORS`].
    #[error("--coordinators must be between 1 and {MAX_COORDINATORS}, not {0}")]
    Coordinators(usize),
    /// `shards` is under [`MIN_SHARDS`].
    #[error("--shards must be at least {MIN_SHARDS}, not {0}")]
    TooFewShards(u16),
    /// Fewer shards than nodes: some node would hold none.
    #[error("--shards ({shards}) must be at least --nodes ({nodes}) so that every node holds a shard")]
    ShardsBelowNodes {
        /// Shards asked for.
        shards: u16,
        /// Nodes asked for.
        nodes: usize,
    },
    /// The epoch is shorter than a millisecond or longer than `u64` milliseconds.
    #[error("the epoch duration must be at least 1ms and fit in u64 milliseconds, not {0:?}")]
    EpochDuration(Duration),
    /// The binary does not exist.
    #[error("the morsa binary {0} does not exist")]
    Binary(PathBuf),
}

impl ClusterSpec {
    /// Checks the numbers and that the binary exists.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.nodes == 0 || self.nodes > MAX_NODES {
            return Err(SpecError::Nodes(self.nodes));
        }
        if self.coordinators == 0 || self.coordinators > MAX_COORDINATORS {
            return Err(SpecError::Coordinators(self.coordinators));
        }
        if self.shards < MIN_SHARDS {
            return Err(SpecError::TooFewShards(self.shards));
        }
        if usize::from(self.shards) < self.nodes {
            return Err(SpecError::ShardsBelowNodes { shards: self.shards, nodes: self.nodes });
        }
        self.epoch_duration_ms()?;
        if !self.binary.is_file() {
            return Err(SpecError::Binary(self.binary.clone()));
        }
        Ok(())
    }

    /// The epoch length in milliseconds, as the genesis holds it.
    pub fn epoch_duration_ms(&self) -> Result<u64, SpecError> {
        u64::try_from(self.epoch_duration.as_millis())
            .ok()
            .filter(|ms| *ms > 0)
            .ok_or(SpecError::EpochDuration(self.epoch_duration))
    }
}

/// Why a duration such as `90s` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: write a whole number and a unit, one of ms, s, m, h (e.g. 500ms, 90s, 1h)")]
pub struct DurationError(pub String);

/// Reads `500ms`, `90s`, `10m` or `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let error = || DurationError(text.to_string());
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(error)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| error())?;
    let seconds = |factor: u64| number.checked_mul(factor).map(Duration::from_secs);
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        _ => None,
    }
    .ok_or_else(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(nodes: usize, shards: u16) -> ClusterSpec {
        ClusterSpec {
            nodes,
            coordinators: 1,
            shards,
            dir: PathBuf::from("cluster"),
            epoch_duration: Duration::from_secs(3600),
            // Any file that exists stands in for the binary.
            binary: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
        }
    }

    #[test]
    fn good_specs_pass() {
        spec(1, 4).validate().unwrap();
        spec(4, 12).validate().unwrap();
        spec(7, 7).validate().unwrap();
        spec(MAX_NODES, 1000).validate().unwrap();
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        assert_eq!(spec(0, 12).validate(), Err(SpecError::Nodes(0)));
        assert_eq!(spec(MAX_NODES + 1, 1000).validate(), Err(SpecError::Nodes(MAX_NODES + 1)));
        assert_eq!(spec(1, 3).validate(), Err(SpecError::TooFewShards(3)));
        assert_eq!(spec(5, 4).validate(), Err(SpecError::ShardsBelowNodes { shards: 4, nodes: 5 }));
        let short = ClusterSpec { epoch_duration: Duration::from_micros(10), ..spec(4, 12) };
        assert!(matches!(short.validate(), Err(SpecError::EpochDuration(_))));
        let missing = ClusterSpec { binary: PathBuf::from("/nonexistent/morsa"), ..spec(4, 12) };
        assert!(matches!(missing.validate(), Err(SpecError::Binary(_))));
        let message = spec(5, 4).validate().unwrap_err().to_string();
        assert!(message.contains("--shards (4) must be at least --nodes (5)"), "{message}");
    }

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "h", "90", "1.5h", "-1s", "1d", "1 h x", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} is refused");
        }
    }
}
