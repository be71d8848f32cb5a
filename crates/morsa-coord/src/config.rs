//! `coord.toml`: where the coordinator listens, keeps its log, and finds its genesis.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
}

/// Name of the command log's file in the data directory.
pub const LOG_FILE: &str = "coord-log.redb";

/// Largest configuration or genesis file read.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Why a configuration or genesis file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is over the size limit.
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The TOML is invalid or a field is missing, unknown or malformed.
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// What toml says, naming the field.
        message: String,
    },
    /// The genesis JSON is invalid.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What serde_json says.
        message: String,
    },
}

fn read_limited(path: &Path) -> Result<String, ConfigError> {
    let read_error = |source| ConfigError::Read { path: path.to_path_buf(), source };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_FILE_BYTES {
        return Err(ConfigError::TooLarge { path: path.to_path_buf() });
    }
    std::fs::read_to_string(path).map_err(read_error)
}

impl CoordConfig {
    /// Reads `path`, resolving relative paths against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_limited(path)?;
        let mut config: Self = toml::from_str(&text).map_err(|error| ConfigError::Toml {
            path: path.to_path_buf(),
            message: error.message().to_string(),
        })?;
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
        let text = read_limited(path)?;
        serde_json::from_str(&text)
            .map_err(|error| ConfigError::Json { path: path.to_path_buf(), message: error.to_string() })
    }
}
