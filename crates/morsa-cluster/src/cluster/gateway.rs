//! The cluster's S3 gateway: a `morsa gateway run` process in front of the cluster, with one
//! user whose key pair is written to `DIR/s3.env` for aws cli, restic, rclone and boto3, and
//! a keyring of its own (`DIR/gateway.keyring`, its passphrase in `DIR/gateway.passphrase`)
//! that it encrypts every object with.

use std::ffi::OsString;

use morsa_gateway::{Db, GatewayConfig};
use morsa_plumbing::file::{self, Access};

use super::Cluster;
use crate::error::ClusterError;
use crate::layout;
use crate::ports::reserve_loopback_addresses;
use crate::process::{Launch, Process};
use crate::state::GatewayState;

/// The user `morsa cluster up` creates for `DIR/s3.env`.
pub const GATEWAY_USER: &str = "admin";

/// scrypt work factor of the gateway's keyring: its passphrase is 32 random bytes, so a slow
/// key derivation would add nothing but start-up time.
const KEYRING_WORK_FACTOR: u8 = 10;

impl Cluster {
    /// Creates the gateway's keyring (`DIR/gateway.keyring`, locked with a random passphrase
    /// written to `DIR/gateway.passphrase`) unless it exists. [`Cluster::start_gateway`] calls
    /// it; a `gateway.toml` written by hand turns encryption on with
    /// [`morsa_gateway::encryption_toml`]`(GATEWAY_KEYRING, GATEWAY_PASSPHRASE)`.
    pub fn ensure_gateway_keyring(&self) -> Result<(), ClusterError> {
        let keyring = self.spec.dir.join(layout::GATEWAY_KEYRING);
        if keyring.exists() {
            return Ok(());
        }
        let passphrase = self.spec.dir.join(layout::GATEWAY_PASSPHRASE);
        morsa_gateway::encryption::create_unattended_keyring(&keyring, &passphrase, Some(KEYRING_WORK_FACTOR))
            .map_err(ClusterError::GatewayKeys)
    }

    /// Starts the cluster's S3 gateway: writes `DIR/gateway.toml` (objects encrypted with the
    /// keyring [`Cluster::ensure_gateway_keyring`] creates), creates user
    /// [`GATEWAY_USER`] and `DIR/s3.env` with its keys, starts `morsa gateway run` and waits
    /// until it listens. Answers its URL.
    pub fn start_gateway(&mut self) -> Result<String, ClusterError> {
        if self.shut_down {
            return Err(ClusterError::ShutDown);
        }
        let dir = self.spec.dir.clone();
        let config_path = dir.join(layout::GATEWAY_CONFIG);
        self.ensure_gateway_keyring()?;
        if !config_path.exists() {
            let reserved = reserve_loopback_addresses(1)?.remove(0);
            let address = reserved.address();
            self.reserved.push(reserved);
            let text = morsa_gateway::gateway_toml(
                address,
                layout::GATEWAY_DATA,
                layout::CLIENT_CONFIG,
                layout::GATEWAY_KEYRING,
                layout::GATEWAY_PASSPHRASE,
            );
            file::create_new(&config_path, text.as_bytes(), Access::Shared)?;
        }
        let log = dir.join(layout::gateway_log());
        let failed =
            |reason: String| ClusterError::Process { name: "gateway".into(), reason, log: log.clone() };
        let config = GatewayConfig::load(&config_path).map_err(|error| failed(error.to_string()))?;
        let url = format!("http://{}", config.listen);
        let env_path = dir.join(layout::S3_ENV);
        if !env_path.exists() {
            let db = Db::open(&config.database_path()).map_err(|error| failed(error.to_string()))?;
            let user = db.create_user(GATEWAY_USER).map_err(|error| failed(error.to_string()))?;
            drop(db);
            let text = layout::s3_env(&user.access_key_id, &user.secret_access_key, &url, &config.region);
            file::create_new(&env_path, text.as_bytes(), Access::Secret)?;
        }
        let mut process = Process::new(Launch {
            name: "gateway".into(),
            binary: self.spec.binary.clone(),
            args: ["gateway", "run", "--config"]
                .iter()
                .map(OsString::from)
                .chain([config_path.into()])
                .collect(),
            dir,
            log: log.clone(),
        });
        let announced = process.start()?;
        if announced != url {
            return Err(failed(format!("listens on {announced}, not {url}")));
        }
        self.gateway = Some((process, url.clone()));
        self.save_state()?;
        Ok(url)
    }

    /// The gateway's URL, if it was started.
    pub fn gateway_url(&self) -> Option<&str> {
        self.gateway.as_ref().map(|(_, url)| url.as_str())
    }

    /// `DIR/s3.env`: `export` lines for the gateway's endpoint and the user's keys.
    pub fn s3_env_path(&self) -> std::path::PathBuf {
        self.spec.dir.join(layout::S3_ENV)
    }

    /// The gateway in `cluster.json`.
    pub(super) fn gateway_state(&mut self) -> Option<GatewayState> {
        let (process, url) = self.gateway.as_mut()?;
        Some(GatewayState { url: url.clone(), pid: process.pid(), log: process.launch.log.clone() })
    }
}
