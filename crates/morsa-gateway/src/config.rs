//! `gateway.toml`: where the gateway listens, where its database is, which Morsa client
//! configuration it stores with, whether and with which keyring it encrypts objects, and its
//! limits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use morsa_plumbing::ConfigError;
use serde::Deserialize;

use crate::GatewayError;

/// Default size of the chunk blobs an object is cut into: 16 MiB. A chunk's encoding is
/// about 4.5 times its size at n = 1000 and is held while it is stored, so this sets the
/// gateway's memory per chunk in flight (docs/PERFORMANCE.md, S3 gateway).
pub const DEFAULT_CHUNK_SIZE: u64 = 16 << 20;

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The gateway's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on, e.g. `127.0.0.1:9000`.
    pub listen: SocketAddr,
    /// Directory of the gateway's database (users and namespace); relative paths are relative
    /// to the configuration file.
    pub data_dir: PathBuf,
    /// The Morsa client configuration the gateway stores and reads with (its account pays).
    pub client_config: PathBuf,
    /// The region clients sign for (default `us-east-1`).
    #[serde(default = "default_region")]
    pub region: String,
    /// Largest chunk blob of an object, in bytes (default 16 MiB; capped by the largest blob).
    #[serde(default = "default_chunk_size")]
    pub chunk_size: u64,
    /// Chunk buffers held at once across all requests (each until its chunk is certified):
    /// memory is bounded by this times the chunk size, plus `max_encoding_bytes`. Default 4.
    #[serde(default = "default_chunk_buffers")]
    pub max_chunk_buffers: usize,
    /// Bytes of blob encodings held at once across every store: a chunk's encoding (about 4.5
    /// times its bytes at n = 1000) is held from its encoding until its last upload ends, after
    /// it is certified, and a chunk is encoded only once its encoding fits. Default: a full
    /// chunk's encoding per chunk buffer (about 300 MiB for 4 buffers of 16 MiB at n = 1000).
    #[serde(default)]
    pub max_encoding_bytes: Option<u64>,
    /// Bodies (single PUTs and parts) smaller than this many bytes are packed several to a
    /// blob with the small bodies stored at the same time (default 1 MiB; 0: never). See
    /// [`crate::packer`].
    #[serde(default = "default_pack_threshold")]
    pub pack_threshold: u64,
    /// Epochs each chunk blob is paid for when stored (default 5).
    #[serde(default = "default_epochs")]
    pub epochs: u32,
    /// Seconds between namespace snapshots stored on Morsa (taken only when the namespace
    /// changed; default 300; 0: only at shutdown). See [`crate::snapshot`].
    #[serde(default = "default_snapshot_interval")]
    pub snapshot_interval: u64,
    /// Seconds between passes that extend the chunk blobs of objects under Object Lock
    /// retention until the retention ends (default 3600; 0: never). See [`crate::retention`].
    #[serde(default = "default_retention_interval")]
    pub retention_renew_interval: u64,
    /// The Walrus-style HTTP API (`/v1/blobs`): who may store through it.
    #[serde(default)]
    pub blob_api: crate::blob_api::BlobApiConfig,
    /// Encrypt every object's chunk blobs with age to the keyring's current recipient
    /// (default true). `false` stores new objects in plaintext; encrypted objects stored
    /// before still read if a keyring is named. See [`crate::encryption`].
    #[serde(default = "default_encrypt")]
    pub encrypt: bool,
    /// The keyring the gateway encrypts to and decrypts with (relative paths are relative to
    /// this file; default: the client configuration's `keyring_file`, then `$MORSA_KEYRING`,
    /// then `~/.config/morsa/keyring.json`).
    #[serde(default)]
    pub keyring_file: Option<PathBuf>,
    /// A file holding the keyring's passphrase (its first line; relative paths are relative
    /// to this file). Without it the passphrase is `$MORSA_KEY_PASSPHRASE`.
    #[serde(default)]
    pub passphrase_file: Option<PathBuf>,
}

fn default_encrypt() -> bool {
    true
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_chunk_size() -> u64 {
    DEFAULT_CHUNK_SIZE
}

fn default_chunk_buffers() -> usize {
    4
}

/// Default [`GatewayConfig::pack_threshold`]: 1 MiB.
pub const DEFAULT_PACK_THRESHOLD: u64 = 1 << 20;

fn default_pack_threshold() -> u64 {
    DEFAULT_PACK_THRESHOLD
}

fn default_epochs() -> u32 {
    5
}

fn default_retention_interval() -> u64 {
    3600
}

fn default_snapshot_interval() -> u64 {
    300
}

impl GatewayConfig {
    /// Reads `path`, resolving relative paths against its directory.
    pub fn load(path: &Path) -> Result<Self, GatewayError> {
        let context = |message: String| GatewayError::Config(ConfigError::invalid(path, message).to_string());
        let mut config: Self = morsa_plumbing::config::load_toml(path, MAX_CONFIG_BYTES)
            .map_err(|error| GatewayError::Config(error.to_string()))?;
        if config.chunk_size == 0 {
            return Err(context("chunk_size must be positive".into()));
        }
        if config.max_chunk_buffers == 0 {
            return Err(context("max_chunk_buffers must be at least 1".into()));
        }
        if config.max_encoding_bytes == Some(0) {
            return Err(context("max_encoding_bytes must be positive".into()));
        }
        if config.epochs == 0 {
            return Err(context("epochs must be at least 1".into()));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        config.data_dir = base.join(&config.data_dir);
        config.client_config = base.join(&config.client_config);
        config.keyring_file = config.keyring_file.map(|keyring| base.join(keyring));
        config.passphrase_file = config.passphrase_file.map(|passphrase| base.join(passphrase));
        Ok(config)
    }

    /// Time between periodic snapshots, if they are on.
    pub fn snapshot_every(&self) -> Option<std::time::Duration> {
        (self.snapshot_interval > 0).then(|| std::time::Duration::from_secs(self.snapshot_interval))
    }

    /// Time between retention renewal passes, if they are on.
    pub fn retention_renew_every(&self) -> Option<std::time::Duration> {
        (self.retention_renew_interval > 0)
            .then(|| std::time::Duration::from_secs(self.retention_renew_interval))
    }

    /// The database file: `DATA_DIR/gateway.redb`.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("gateway.redb")
    }
}

/// The text of a `gateway.toml` (what `morsa cluster up` writes): objects are encrypted (the
/// default) with the keyring `keyring_file`, unlocked with the passphrase in
/// `passphrase_file`.
pub fn gateway_toml(
    listen: SocketAddr,
    data_dir: &str,
    client_config: &str,
    keyring_file: &str,
    passphrase_file: &str,
) -> String {
    format!(
        "listen = \"{listen}\"\ndata_dir = \"{data_dir}\"\nclient_config = \"{client_config}\"\n{}",
        encryption_toml(keyring_file, passphrase_file)
    )
}

/// The lines of a `gateway.toml` that turn encryption on with the keyring `keyring_file`,
/// unlocked with the passphrase in `passphrase_file`.
pub fn encryption_toml(keyring_file: &str, passphrase_file: &str) -> String {
    format!("encrypt = true\nkeyring_file = \"{keyring_file}\"\npassphrase_file = \"{passphrase_file}\"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_fills_defaults_and_resolves_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        let text = gateway_toml("127.0.0.1:9000".parse().unwrap(), "gw", "client.toml", "k.json", "pass");
        std::fs::write(&path, text).unwrap();
        let config = GatewayConfig::load(&path).unwrap();
        assert_eq!(config.data_dir, dir.path().join("gw"));
        assert_eq!(config.client_config, dir.path().join("client.toml"));
        assert!(config.encrypt);
        assert_eq!(config.keyring_file, Some(dir.path().join("k.json")));
        assert_eq!(config.passphrase_file, Some(dir.path().join("pass")));
        assert_eq!(config.chunk_size, DEFAULT_CHUNK_SIZE);
        assert_eq!(config.pack_threshold, DEFAULT_PACK_THRESHOLD);
        assert_eq!(config.region, "us-east-1");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\ndata_dir = \"d\"\nclient_config = \"c\"\nchunk_size = 0\n",
        )
        .unwrap();
        assert!(GatewayConfig::load(&path).unwrap_err().to_string().contains("chunk_size"));
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\ndata_dir = \"d\"\nclient_config = \"c\"\n").unwrap();
        let config = GatewayConfig::load(&path).unwrap();
        assert!(config.encrypt, "objects are encrypted unless the configuration says otherwise");
        assert_eq!(config.keyring_file, None);
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\ndata_dir = \"d\"\nclient_config = \"c\"\ncolour = 1\n",
        )
        .unwrap();
        assert!(GatewayConfig::load(&path).unwrap_err().to_string().contains("colour"));
    }
}
