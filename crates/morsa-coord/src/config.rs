//! `coord.toml`: where the coordinator listens, keeps its log, and finds its genesis; and,
//! when it is one replica of several, its ID and the group's.
//!
//! ```toml
//! listen = "127.0.0.1:7001"
//! data_dir = "coord1"
//! genesis = "genesis.json"
//! id = 1                 # this replica (default 1)
//! snapshot_every = 1000  # entries between snapshots (default 1000)
//! admin_token_file = "admin.token"  # authorizes membership changes (none: refused)
//! [availability]
//! stale_after_ms = 30000 # a node's availability summary counts this long (default 30 s)
//! [[replicas]]           # the initial group; none: this replica alone
//! id = 1
//! url = "http://127.0.0.1:7001"
//! [[replicas]]
//! id = 2
//! url = "http://127.0.0.1:7002"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use morsa_plumbing::ConfigError;
use morsa_plumbing::config;
use serde::Deserialize;

use crate::Genesis;

/// The coordinator's configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordConfig {
    /// Address to listen on, e.g. `127.0.0.1:7000`.
    pub listen: SocketAddr,
    /// Directory of the command log (relative paths are relative to the config file).
    pub data_dir: PathBuf,
    /// The genesis file, JSON (relative paths are relative to the config file).
    pub genesis: PathBuf,
    /// This replica's ID in the group.
    #[serde(default = "default_id")]
    pub id: u64,
    /// The initial replica group. Empty: this replica alone, at `http://{listen}`. A replica
    /// added later with `morsa coord add-replica` is not in its own list.
    #[serde(default)]
    pub replicas: Vec<ReplicaAddress>,
    /// Applied entries between two snapshots; the Raft log keeps as many behind the last one.
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
    /// The file holding the admin token that authorizes adding and removing replicas
    /// (`morsa coord add-replica`); relative to the config file. None: membership changes
    /// are refused by this replica.
    #[serde(default)]
    pub admin_token_file: Option<PathBuf>,
    /// The system-wide availability margin (`[availability]`).
    #[serde(default)]
    pub availability: AvailabilityConfig,
    /// Switches for tests; all off when the section is left out.
    #[serde(default)]
    pub testing: Testing,
}

/// `[availability]` in `coord.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityConfig {
    /// How long a node's availability summary counts; a member whose latest is older is not
    /// reporting, and its shards count as lost for every blob. Nodes send one every
    /// `repair.report_interval_ms` (10 s by default): keep this a few times longer.
    #[serde(default = "default_stale_after_ms")]
    pub stale_after_ms: u64,
}

impl Default for AvailabilityConfig {
    fn default() -> Self {
        Self { stale_after_ms: default_stale_after_ms() }
    }
}

fn default_stale_after_ms() -> u64 {
    u64::try_from(crate::availability::DEFAULT_STALE_AFTER.as_millis()).unwrap_or(u64::MAX)
}

/// `[testing]` in `coord.toml`: switches that only tests turn on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Testing {
    /// Serve `POST /v1/testing/next-epoch`, which moves the coordinator's clock forward to the
    /// start of the next epoch (see `server::manual_epochs`). Off: the route is refused.
    #[serde(default)]
    pub manual_epochs: bool,
}

/// A replica of the initial group.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaAddress {
    /// Its ID (unique in the group).
    pub id: u64,
    /// Its URL, e.g. `http://127.0.0.1:7001`.
    pub url: String,
}

fn default_id() -> u64 {
    1
}

fn default_snapshot_every() -> u64 {
    1000
}

/// Name of the command log's file in the data directory.
pub const LOG_FILE: &str = "coord-log.redb";

/// Largest configuration or genesis file read.
const MAX_FILE_BYTES: u64 = 16 << 20;

impl CoordConfig {
    /// Reads `path`, resolving relative paths against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = config::load_toml(path, MAX_FILE_BYTES)?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.data_dir = base.join(&config.data_dir);
        config.genesis = base.join(&config.genesis);
        config.admin_token_file = config.admin_token_file.map(|file| base.join(file));
        Ok(config)
    }

    /// The command log's file.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE)
    }

    /// The Raft log's file.
    pub fn raft_log_path(&self) -> PathBuf {
        self.data_dir.join(crate::raft::RAFT_LOG_FILE)
    }

    /// The initial group as (ID, URL): the listed replicas, or this one alone.
    pub fn initial_replicas(&self) -> Vec<(u64, String)> {
        if self.replicas.is_empty() {
            return vec![(self.id, format!("http://{}", self.listen))];
        }
        self.replicas
            .iter()
            .map(|replica| (replica.id, replica.url.trim_end_matches('/').to_owned()))
            .collect()
    }
}

impl Genesis {
    /// Reads a genesis JSON file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = config::read_limited(path, MAX_FILE_BYTES)?;
        serde_json::from_str(&text).map_err(|error| ConfigError::invalid(path, error.to_string()))
    }
}
