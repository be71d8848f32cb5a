//! The S3 gateway of `morsa cluster` driven by the clients people run: aws cli (multipart
//! upload, ranged get, head), boto3 (every checksum algorithm, wrong checksums refused,
//! paginated listings), restic (init, backup, check --read-data, restore), and bad input
//! (wrong secret, unknown key, another user's bucket). Each client call is bounded with
//! `timeout`; every process talks to 127.0.0.1 only.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use morsa_cluster::Cluster;

/// Chunk blobs of the test gateways: small, so a few MiB span several chunks.
const CHUNK: usize = 1 << 20;

/// A cluster with its gateway, and the environment its clients use.
struct S3Cluster {
    _cluster: Cluster,
    dir: PathBuf,
    env: HashMap<String, String>,
}

impl S3Cluster {
    /// Starts a 4-node cluster and its gateway (1 MiB chunks); `users` are created before it
    /// starts, besides the cluster's own.
    fn up(dir: &Path, users: &[&str]) -> (Self, Vec<serde_json::Value>) {
        let mut cluster = common::local_cluster(dir, 4, 12);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = cluster.dir().join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = \"gateway\"\nclient_config = \"client.toml\"\nchunk_size = {CHUNK}\n"
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
        (S3Cluster { _cluster: cluster, dir, env }, created)
    }

    /// Runs `program ARGS` (bounded by `timeout`) with the cluster's S3 environment.
    fn run(&self, program: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut command = Command::new("timeout");
        command.arg("180").arg(program).args(args).envs(&self.env).env_remove("AWS_CA_BUNDLE");
        command.env_remove("AWS_PROFILE").current_dir(&self.dir);
        for (name, value) in extra {
            command.env(name, value);
        }
        command.output().unwrap()
    }

    fn ok(&self, program: &str, args: &[&str], extra: &[(&str, &str)]) -> String {
        let output = self.run(program, args, extra);
        assert!(
            output.status.success(),
            "{program} {args:?}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn aws(&self, args: &[&str]) -> String {
        self.ok("aws", args, &[])
    }
}

/// The `export NAME=VALUE` lines of `s3.env`.
fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn aws_cli_uploads_in_parts_reads_ranges_and_bad_credentials_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, users) = S3Cluster::up(dir.path(), &["bob"]);
    // Parts of 5 MiB (S3's smallest), so 12 MiB go up as a three-part upload.
    s3.aws(&["configure", "set", "default.s3.multipart_threshold", "5MB"]);
    s3.aws(&["configure", "set", "default.s3.multipart_chunksize", "5MB"]);
    let original = morsa_cluster::sample::bytes(12 << 20, 11);
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &original).unwrap();
    s3.aws(&["s3", "mb", "s3://backups"]);
    s3.aws(&["s3", "cp", file.to_str().unwrap(), "s3://backups/dir/big.bin", "--only-show-errors"]);
    let back = dir.path().join("back.bin");
    s3.aws(&["s3", "cp", "s3://backups/dir/big.bin", back.to_str().unwrap(), "--only-show-errors"]);
    assert!(std::fs::read(&back).unwrap() == original, "the object came back different");

    let head: serde_json::Value = serde_json::from_str(&s3.aws(&[
        "s3api",
        "head-object",
        "--bucket",
        "backups",
        "--key",
        "dir/big.bin",
    ]))
    .unwrap();
    assert_eq!(head["ContentLength"], original.len());
    let etag = head["ETag"].as_str().unwrap();
    assert!(etag.ends_with("-3\""), "a three-part upload's ETag: {etag}");

    // A range across a chunk boundary (1 MiB chunks) and a part boundary (5 MiB parts).
    let range_out = dir.path().join("range.bin");
    let (start, end) = ((5 << 20) - 1000, (5 << 20) + (1 << 20) + 1000);
    s3.aws(&[
        "s3api",
        "get-object",
        "--bucket",
        "backups",
        "--key",
        "dir/big.bin",
        "--range",
        &format!("bytes={start}-{}", end - 1),
        range_out.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&range_out).unwrap() == original[start..end], "the range came back different");

    // Bad credentials: clear S3 errors, nothing stored, and the gateway keeps serving.
    let small = dir.path().join("small.txt");
    std::fs::write(&small, "nope").unwrap();
    let wrong_secret = s3.run(
        "aws",
        &["s3", "cp", small.to_str().unwrap(), "s3://backups/wrong-secret"],
        &[("AWS_SECRET_ACCESS_KEY", "not-the-secret-0000000000000000000000000")],
    );
    assert!(!wrong_secret.status.success());
    assert!(
        String::from_utf8_lossy(&wrong_secret.stderr).contains("SignatureDoesNotMatch"),
        "{wrong_secret:?}"
    );
    let unknown = s3.run(
        "aws",
        &["s3", "cp", small.to_str().unwrap(), "s3://backups/unknown-key"],
        &[("AWS_ACCESS_KEY_ID", "MKNOSUCHKEY000000000")],
    );
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("InvalidAccessKeyId"), "{unknown:?}");
    // Another user may not touch the bucket.
    let bob = &users[0];
    let bob_env = [
        ("AWS_ACCESS_KEY_ID", bob["access_key_id"].as_str().unwrap()),
        ("AWS_SECRET_ACCESS_KEY", bob["secret_access_key"].as_str().unwrap()),
    ];
    let denied = s3.run("aws", &["s3", "cp", small.to_str().unwrap(), "s3://backups/bob"], &bob_env);
    assert!(String::from_utf8_lossy(&denied.stderr).contains("AccessDenied"), "{denied:?}");
    let listing = s3.aws(&["s3", "ls", "s3://backups", "--recursive"]);
    let keys: Vec<&str> = listing.lines().filter_map(|line| line.split_whitespace().last()).collect();
    assert_eq!(keys, ["dir/big.bin"], "only the good upload is stored");
    let bob_buckets = s3.ok("aws", &["s3", "ls"], &bob_env);
    assert!(!bob_buckets.contains("backups"), "bob sees only his buckets: {bob_buckets}");
}

#[test]
fn boto3_checksums_are_verified_and_listings_paginate() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, _) = S3Cluster::up(dir.path(), &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gateway/boto3_checks.py");
    let out = s3.ok("python3", &[script.to_str().unwrap()], &[]);
    assert!(out.contains("boto3 checks passed"), "{out}");
}

#[test]
fn restic_backs_up_checks_and_restores_a_tree_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, _) = S3Cluster::up(dir.path(), &[]);
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("small/deeper")).unwrap();
    for index in 0..200u64 {
        let sub = if index % 3 == 0 { "small/deeper" } else { "small" };
        let len = usize::try_from(index * 97 % 5000).unwrap();
        std::fs::write(tree.join(sub).join(format!("f{index}")), morsa_cluster::sample::bytes(len, index))
            .unwrap();
    }
    std::fs::write(tree.join("large.bin"), morsa_cluster::sample::bytes(6 << 20, 99)).unwrap();
    let repository = format!("s3:{}/restic", s3.env["AWS_ENDPOINT_URL"]);
    let cache = dir.path().join("restic-cache");
    let env = [("RESTIC_PASSWORD", "test"), ("RESTIC_REPOSITORY", repository.as_str())];
    let cache_arg = format!("--cache-dir={}", cache.display());
    s3.ok("restic", &["init", &cache_arg], &env);
    s3.ok("restic", &["backup", "--quiet", &cache_arg, tree.to_str().unwrap()], &env);
    s3.ok("restic", &["check", "--read-data", &cache_arg], &env);
    let target = dir.path().join("restored");
    s3.ok(
        "restic",
        &["restore", "latest", "--quiet", &cache_arg, "--target", target.to_str().unwrap()],
        &env,
    );
    let restored = target.join(tree.strip_prefix("/").unwrap());
    let diff = Command::new("diff").arg("-r").arg(&tree).arg(&restored).output().unwrap();
    assert!(diff.status.success(), "the restored tree differs: {}", String::from_utf8_lossy(&diff.stdout));
}
