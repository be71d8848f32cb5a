//! `client.toml`: where the coordinator's replicas are, where storage nodes are when none of
//! them answers, which account pays, and how big chunks are; and the account key file it names.

use std::path::{Path, PathBuf};

use morsa_core::AccountKey;
use morsa_plumbing::file::{self, Access, WriteError};
use morsa_plumbing::{ConfigError, config};
use serde::Deserialize;

use crate::Error;

/// Environment variable naming the client configuration file.
pub const CONFIG_ENV: &str = "MORSA_CONFIG";

/// Default size of the chunks a large file is split into: 1 GiB, so that storing holds at
/// most about five times that in memory.
pub const DEFAULT_CHUNK_SIZE: u64 = 1 << 30;

/// Largest account key file read (64 hex characters and a newline, with room for spaces).
const MAX_KEY_FILE_BYTES: u64 = 1024;

/// Most `node_urls` a configuration may list.
const MAX_NODE_URLS: usize = 1024;

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The client's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Base URLs of the coordinator's replicas, e.g. `["http://127.0.0.1:7000"]`; calls fail
    /// over between them. [`ClientConfig::load`] also accepts the single
    /// `coordinator_url = "..."` and puts it here.
    #[serde(default)]
    pub coordinator_urls: Vec<String>,
    /// The single-URL spelling, folded into `coordinator_urls` by [`ClientConfig::load`].
    #[serde(default)]
    coordinator_url: Option<String>,
    /// Longest one call to a coordinator replica may take before the next is tried, in
    /// milliseconds (default 10 s): what a hung coordinator costs a read.
    #[serde(default = "default_coordinator_timeout_ms")]
    pub coordinator_timeout_ms: u64,
    /// Storage nodes to ask for the committee when no coordinator answers and no committee
    /// is cached yet (`morsa cluster up` writes them). Trusted only as far as a quorum of
    /// them agree.
    #[serde(default)]
    pub node_urls: Vec<String>,
    /// Where the last committee seen is kept, for reads when no coordinator answers
    /// (relative paths are relative to the configuration file; default: beside it, named
    /// after it: `client.toml` keeps `client.committee.json`).
    #[serde(default)]
    pub committee_cache_file: Option<PathBuf>,
    /// The account key file (relative paths are relative to the configuration file). Created
    /// on first use if it does not exist.
    pub account_key_file: PathBuf,
    /// Files larger than this are stored as chunks plus a manifest (bytes; default 1 GiB).
    #[serde(default = "default_chunk_size")]
    pub chunk_size: u64,
    /// Requests in flight to one storage node at a time.
    #[serde(default = "default_per_node_requests")]
    pub max_requests_per_node: usize,
    /// Reads ask a tenth more slivers than they need and ask another node when an answer is
    /// late (default). Off: exactly the slivers needed, another only for one that failed or
    /// was bad: the least traffic, but one slow node slows the whole read.
    #[serde(default = "default_hedged_reads")]
    pub hedged_reads: bool,
    /// Encrypt stored files with the keyring's age recipient (`morsa key init` sets it).
    #[serde(default)]
    pub encrypt: bool,
    /// The keyring file (relative paths are relative to the configuration file; default:
    /// `$MORSA_KEYRING`, else `~/.config/morsa/keyring.json`).
    #[serde(default)]
    pub keyring_file: Option<PathBuf>,
    /// The client's zone (a region or site name). Before a node is measured, a node in the
    /// same zone is assumed near and one in another zone far. Committees carry no node zone
    /// yet: until they do, this changes nothing.
    #[serde(default)]
    pub zone: Option<String>,
    /// Where what reads learn of the nodes' speed is kept between processes (relative paths
    /// are relative to the configuration file; default: `$XDG_CACHE_HOME/morsa/node-scores.json`
    /// or `~/.cache/morsa/node-scores.json`; none if neither variable is set).
    #[serde(default)]
    pub node_scores_file: Option<PathBuf>,
}

fn default_chunk_size() -> u64 {
    DEFAULT_CHUNK_SIZE
}

fn default_coordinator_timeout_ms() -> u64 {
    10_000
}

fn default_per_node_requests() -> usize {
    64
}

fn default_hedged_reads() -> bool {
    true
}

impl ClientConfig {
    /// A configuration with defaults for everything but the coordinator and the key file
    /// (and no committee cache).
    pub fn new(coordinator_url: impl Into<String>, account_key_file: impl Into<PathBuf>) -> Self {
        Self {
            coordinator_urls: vec![coordinator_url.into()],
            coordinator_url: None,
            coordinator_timeout_ms: default_coordinator_timeout_ms(),
            node_urls: Vec::new(),
            committee_cache_file: None,
            account_key_file: account_key_file.into(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_requests_per_node: default_per_node_requests(),
            hedged_reads: default_hedged_reads(),
            encrypt: false,
            keyring_file: None,
            zone: None,
            node_scores_file: None,
        }
    }

    /// Where the configuration is: `explicit` if given, else `$MORSA_CONFIG`, else
    /// `$XDG_CONFIG_HOME/morsa/client.toml` or `~/.config/morsa/client.toml`.
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, Error> {
        if let Some(path) = explicit {
            return Ok(path.to_path_buf());
        }
        if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|path| !path.is_empty()) {
            return Ok(PathBuf::from(path));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|path| !path.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
            .ok_or(Error::NoConfig)?;
        Ok(base.join("morsa").join("client.toml"))
    }

    /// Reads `path`, resolving the key file against its directory.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let invalid = |message: &str| Error::Config(ConfigError::invalid(path, message));
        let mut config: Self = config::load_toml(path, MAX_CONFIG_BYTES).map_err(|error| {
            if error.is_not_found() {
                return Error::Config(ConfigError::invalid(
                    path,
                    format!(
                        "no such file (start a local cluster with `morsa cluster up`, which writes \
                         one, or set {CONFIG_ENV})"
                    ),
                ));
            }
            Error::Config(error)
        })?;
        let list =
            (!config.coordinator_urls.is_empty()).then(|| std::mem::take(&mut config.coordinator_urls));
        config.coordinator_urls = morsa_api::coord::coordinator_urls(config.coordinator_url.take(), list)
            .map_err(|error| invalid(&error.to_string()))?;
        if config.node_urls.len() > MAX_NODE_URLS {
            return Err(invalid(&format!("node_urls lists more than {MAX_NODE_URLS} nodes")));
        }
        if config.coordinator_timeout_ms == 0 {
            return Err(invalid("coordinator_timeout_ms must be positive"));
        }
        if config.chunk_size == 0 {
            return Err(invalid("chunk_size must be positive"));
        }
        if config.max_requests_per_node == 0 {
            return Err(invalid("max_requests_per_node must be at least 1"));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        config.account_key_file = dir.join(&config.account_key_file);
        config.keyring_file = config.keyring_file.map(|keyring| dir.join(keyring));
        let stem =
            path.file_stem().map_or_else(|| "client".into(), |stem| stem.to_string_lossy().into_owned());
        let cache =
            config.committee_cache_file.take().unwrap_or_else(|| format!("{stem}.committee.json").into());
        config.committee_cache_file = Some(dir.join(cache));
        config.node_scores_file =
            config.node_scores_file.map(|file| dir.join(file)).or_else(crate::score_cache::default_path);
        Ok(config)
    }
}

/// Reads the account key at `path`: 64 hex characters of its seed. If the file does not
/// exist, creates it (mode 0600) with a new key; answers whether it did.
pub fn load_or_create_account_key(path: &Path) -> Result<(AccountKey, bool), Error> {
    let context =
        |message: String| Error::Config(ConfigError::invalid(path, format!("account key: {message}")));
    if std::fs::metadata(path).is_ok_and(|metadata| metadata.len() > MAX_KEY_FILE_BYTES) {
        return Err(context(format!("larger than {MAX_KEY_FILE_BYTES} bytes: not a key file")));
    }
    #[cfg(unix)]
    if let Ok(metadata) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(context(format!(
                "others may read it (mode {mode:o}); the key pays for storage and owns the blobs: \
                 `chmod 600 {}`",
                path.display()
            )));
        }
    }
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut seed = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut seed)
                .map_err(|_| context("expected 64 hex characters".into()))?;
            Ok((AccountKey::from_seed(seed), false))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = AccountKey::generate();
            write_account_key(path, &key).map_err(|error| context(error.to_string()))?;
            Ok((key, true))
        }
        Err(error) => Err(context(error.to_string())),
    }
}

/// Writes `key` durably to a new file at `path` (never over an existing one) readable only by
/// its owner, creating missing directories.
pub fn write_account_key(path: &Path, key: &AccountKey) -> Result<(), WriteError> {
    let text = format!("{}\n", hex::encode(key.seed()));
    file::create_new(path, text.as_bytes(), Access::Secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_resolves_its_key_file_and_fills_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.toml");
        std::fs::write(&path, "coordinator_url = \"http://127.0.0.1:1\"\naccount_key_file = \"k.key\"\n")
            .unwrap();
        let config = ClientConfig::load(&path).unwrap();
        assert_eq!(config.account_key_file, dir.path().join("k.key"));
        assert_eq!(config.chunk_size, DEFAULT_CHUNK_SIZE);
        assert_eq!(config.coordinator_urls, ["http://127.0.0.1:1"]);
        assert_eq!(config.committee_cache_file, Some(dir.path().join("client.committee.json")));
        std::fs::write(
            &path,
            "coordinator_urls = [\"http://127.0.0.1:1\", \"http://127.0.0.1:2\"]\n\
             node_urls = [\"http://127.0.0.1:3\"]\naccount_key_file = \"k.key\"\n",
        )
        .unwrap();
        let config = ClientConfig::load(&path).unwrap();
        assert_eq!(config.coordinator_urls, ["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        assert_eq!(config.node_urls, ["http://127.0.0.1:3"]);
    }

    #[test]
    fn bad_configs_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.toml");
        for (text, expected) in [
            ("coordinator_url = \"ftp://x\"\naccount_key_file = \"k\"\n", "http://"),
            (
                "coordinator_url = \"http://x\"\ncoordinator_urls = [\"http://y\"]\naccount_key_file = \"k\"\n",
                "not both",
            ),
            ("account_key_file = \"k\"\n", "coordinator_url"),
            ("coordinator_url = \"http://x\"\naccount_key_file = \"k\"\nchunk_size = 0\n", "chunk_size"),
            ("coordinator_url = \"http://x\"\naccount_key_file = \"k\"\ncolour = 1\n", "colour"),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = ClientConfig::load(&path).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
        let error = ClientConfig::load(&dir.path().join("missing.toml")).unwrap_err().to_string();
        assert!(error.contains("morsa cluster up"), "{error}");
    }

    #[test]
    fn the_first_use_creates_a_private_key_that_later_uses_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("account.key");
        let (key, created) = load_or_create_account_key(&path).unwrap();
        assert!(created);
        let (again, created) = load_or_create_account_key(&path).unwrap();
        assert!(!created);
        assert_eq!(key.id(), again.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let error = load_or_create_account_key(&path).unwrap_err().to_string();
            assert!(
                error.contains("others may read it (mode 644)") && error.contains("chmod 600"),
                "{error}"
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(&path, "not hex\n").unwrap();
        assert!(load_or_create_account_key(&path).unwrap_err().to_string().contains("64 hex"));
        std::fs::write(&path, vec![b'a'; 4096]).unwrap();
        assert!(load_or_create_account_key(&path).unwrap_err().to_string().contains("not a key file"));
    }
}
