//! What cluster to start: how many nodes and shards, where, with which binary; and the
//! checks that refuse a cluster that could not work before any process is started.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::link_shape::LinkShape;

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
    /// Nodes reached through a shaped link (delay, jitter, bandwidth: [`crate::netem`]), by
    /// index; the others are reached directly.
    pub node_links: BTreeMap<usize, LinkShape>,
    /// Failure domains the nodes are spread over, round robin (`zone-0`, `zone-1`, …); 0:
    /// none declared, every node a zone of its own.
    pub zones: usize,
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
    /// A shaped link names a node the cluster does not have.
    #[error("--node-delay/--node-rate name node {index}, but the nodes are 0 to {last}")]
    LinkNode {
        /// The index given.
        index: usize,
        /// The last node's index.
        last: usize,
    },
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
        if let Some(index) = self.node_links.keys().find(|index| **index >= self.nodes) {
            return Err(SpecError::LinkNode { index: *index, last: self.nodes - 1 });
        }
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

/// Why a `--node-delay` or `--node-rate` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {flag} value {text:?}: write {form}")]
pub struct LinkArgError {
    flag: &'static str,
    text: String,
    form: &'static str,
}

/// Reads `I=MS` or `I=MS/JITTER` (`--node-delay`): node `I`, a one-way delay and its jitter
/// in milliseconds.
pub fn parse_node_delay(text: &str) -> Result<(usize, u64, u64), LinkArgError> {
    let error =
        || LinkArgError { flag: "--node-delay", text: text.into(), form: "I=MS or I=MS/JITTER, e.g. 3=30/5" };
    let (index, value) = text.split_once('=').ok_or_else(error)?;
    let index = index.trim().parse().map_err(|_| error())?;
    let (delay, jitter) = value.split_once('/').unwrap_or((value, "0"));
    let delay = delay.trim().parse().map_err(|_| error())?;
    let jitter = jitter.trim().parse().map_err(|_| error())?;
    Ok((index, delay, jitter))
}

/// Reads `I=MBPS` (`--node-rate`): node `I` and its bandwidth in megabits per second.
pub fn parse_node_rate(text: &str) -> Result<(usize, u64), LinkArgError> {
    let error = || LinkArgError { flag: "--node-rate", text: text.into(), form: "I=MBPS, e.g. 9=20" };
    let (index, rate) = text.split_once('=').ok_or_else(error)?;
    let index = index.trim().parse().map_err(|_| error())?;
    let rate: u64 = rate.trim().parse().map_err(|_| error())?;
    if rate == 0 {
        return Err(error());
    }
    Ok((index, rate))
}

/// The shaped links of `--node-delay` and `--node-rate` values, by node.
pub fn node_links(delays: &[(usize, u64, u64)], rates: &[(usize, u64)]) -> BTreeMap<usize, LinkShape> {
    let mut links: BTreeMap<usize, LinkShape> = BTreeMap::new();
    for (index, delay_ms, jitter_ms) in delays {
        let link = links.entry(*index).or_default();
        link.delay_ms = *delay_ms;
        link.jitter_ms = *jitter_ms;
    }
    for (index, mbit) in rates {
        links.entry(*index).or_default().rate_bytes_per_second = Some(LinkShape::mbit_per_second(*mbit));
    }
    links
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
            node_links: BTreeMap::new(),
            zones: 0,
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
        let mut far = spec(4, 12);
        far.node_links.insert(4, LinkShape::default());
        assert_eq!(far.validate(), Err(SpecError::LinkNode { index: 4, last: 3 }));
        let message = spec(5, 4).validate().unwrap_err().to_string();
        assert!(message.contains("--shards (4) must be at least --nodes (5)"), "{message}");
    }

    #[test]
    fn link_arguments_read_as_documented() {
        assert_eq!(parse_node_delay("3=30"), Ok((3, 30, 0)));
        assert_eq!(parse_node_delay("0=120/10"), Ok((0, 120, 10)));
        assert_eq!(parse_node_rate("9=20"), Ok((9, 20)));
        for bad in ["", "3", "=30", "a=30", "3=x", "3=30/", "3=-1"] {
            assert!(parse_node_delay(bad).is_err(), "{bad:?} is refused");
        }
        for bad in ["9", "9=0", "9=1.5", "x=2"] {
            assert!(parse_node_rate(bad).is_err(), "{bad:?} is refused");
        }
        let links = node_links(&[(1, 30, 5), (2, 1, 0)], &[(2, 20), (4, 8)]);
        assert_eq!(links[&1], LinkShape { delay_ms: 30, jitter_ms: 5, rate_bytes_per_second: None });
        assert_eq!(
            links[&2],
            LinkShape { delay_ms: 1, jitter_ms: 0, rate_bytes_per_second: Some(2_500_000) }
        );
        assert_eq!(
            links[&4],
            LinkShape { delay_ms: 0, jitter_ms: 0, rate_bytes_per_second: Some(1_000_000) }
        );
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
