//! A `morsa cluster` with its gateway, for the tests that drive the gateway with real
//! clients (`gateway_clients.rs`, `gateway_blob_api.rs`); included with `#[path]` next to
//! `common`.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use morsa_cluster::Cluster;

use crate::common;

/// Chunk blobs of the test gateways: small, so a few MiB span several chunks.
pub const CHUNK: usize = 1 << 20;

/// A cluster with its gateway, and the environment its clients use.
pub struct S3Cluster {
    pub cluster: Cluster,
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
    /// The gateway's address, kept for it while it is down too.
    _reserved: morsa_cluster::ports::ReservedAddress,
}

impl S3Cluster {
    /// Starts a 4-node cluster and its gateway (1 MiB chunks); `users` are created before it
    /// starts, besides the cluster's own.
    pub fn up(dir: &Path, users: &[&str]) -> (Self, Vec<serde_json::Value>) {
        Self::up_with(dir, users, "")
    }

    /// As [`S3Cluster::up`], with `extra` appended to the gateway's `gateway.toml`. The
    /// gateway encrypts objects with the keyring `morsa cluster` makes for it, as `morsa
    /// cluster up` sets it up.
    pub fn up_with(dir: &Path, users: &[&str], extra: &str) -> (Self, Vec<serde_json::Value>) {
        let mut cluster = common::local_cluster(dir, 4, 12);
        let reserved = morsa_cluster::ports::reserve_loopback_addresses(1).unwrap().remove(0);
        let port = reserved.address().port();
        let config = cluster.dir().join("gateway.toml");
        let encryption = morsa_gateway::encryption_toml(
            morsa_cluster::layout::GATEWAY_KEYRING,
            morsa_cluster::layout::GATEWAY_PASSPHRASE,
        );
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = \"gateway\"\nclient_config = \"client.toml\"\nchunk_size = {CHUNK}\n{encryption}{extra}"
            ),
        )
        .unwrap();
        let created = users
            .iter()
            .map(|name| {
                common::morsa_json_with(
                    &cluster.client_config_path(),
                    &["gateway", "key", "create", name, "--json", "--config", config.to_str().unwrap()],
                )
            })
            .collect();
        cluster.start_gateway().unwrap();
        let env = parse_env(&std::fs::read_to_string(cluster.s3_env_path()).unwrap());
        assert_eq!(env["AWS_ENDPOINT_URL"], cluster.gateway_url().unwrap());
        let dir = dir.to_path_buf();
        // Clients must not read this machine's AWS configuration.
        let aws_config = dir.join("aws-config");
        std::fs::write(&aws_config, "[default]\n").unwrap();
        let mut env = env;
        env.insert("AWS_CONFIG_FILE".into(), aws_config.display().to_string());
        env.insert("AWS_SHARED_CREDENTIALS_FILE".into(), dir.join("aws-credentials").display().to_string());
        (S3Cluster { cluster, dir, env, _reserved: reserved }, created)
    }

    /// The gateway's base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        self.env["AWS_ENDPOINT_URL"].clone()
    }

    /// Runs `program ARGS` (bounded by `timeout`) with the cluster's S3 environment, without
    /// `AWS_CA_BUNDLE` (the gateway speaks plain HTTP on loopback).
    pub fn run(&self, program: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut command = Command::new("timeout");
        command.arg("180").arg(program).args(args).envs(&self.env).env_remove("AWS_CA_BUNDLE");
        command.env_remove("AWS_PROFILE").current_dir(&self.dir);
        for (name, value) in extra {
            command.env(name, value);
        }
        command.output().unwrap()
    }

    /// [`S3Cluster::run`], expecting success; its stdout.
    pub fn ok(&self, program: &str, args: &[&str], extra: &[(&str, &str)]) -> String {
        let output = self.run(program, args, extra);
        assert!(
            output.status.success(),
            "{program} {args:?}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    pub fn aws(&self, args: &[&str]) -> String {
        self.ok("aws", args, &[])
    }

    /// The gateway's current `AGE-SECRET-KEY-1...`, written to a file for `age -d -i`.
    pub fn gateway_identity_file(&self) -> PathBuf {
        let cluster_dir = self.cluster.dir();
        let passphrase =
            std::fs::read_to_string(cluster_dir.join(morsa_cluster::layout::GATEWAY_PASSPHRASE)).unwrap();
        let keyring = cluster_dir.join(morsa_cluster::layout::GATEWAY_KEYRING);
        let output = Command::new(env!("CARGO_BIN_EXE_morsa"))
            .args(["key", "age-identity", "--keyring", keyring.to_str().unwrap()])
            .env("MORSA_KEY_PASSPHRASE", passphrase.trim_end())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let path = self.dir.join("gateway-identity.txt");
        std::fs::write(&path, &output.stdout).unwrap();
        path
    }
}

/// The `export NAME=VALUE` lines of `s3.env`.
pub fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}
