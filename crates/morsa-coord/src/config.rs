//! `coord.toml`: where the coordinator listens, keeps its log, and finds its genesis.

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
    /// Switches for tests; all off when the section is left out.
    #[serde(default)]
    pub testing: Testing,
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
        Ok(config)
    }

    /// The command log's file.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE)
    }
}

impl Genesis {
    /// Reads a genesis JSON file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = config::read_limited(path, MAX_FILE_BYTES)?;
        serde_json::from_str(&text).map_err(|error| ConfigError::invalid(path, error.to_string()))
    }
}
