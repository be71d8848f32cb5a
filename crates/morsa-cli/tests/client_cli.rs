//! The `morsa` client commands against a local cluster of real processes (coordinator and
//! nodes are `morsa` processes on loopback): byte-identical store and read at every size and
//! across chunks, nodes killed with SIGKILL, a node whose disk corrupts a sliver, range reads,
//! and the exit codes and `--json` output scripts rely on.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use morsa_cluster::{Cluster, ClusterSpec};
use serde_json::Value;

/// Nodes and shards of the test clusters: 7 nodes, so nodes holding up to f shards can fail.
const NODES: usize = 7;
const SHARDS: u16 = 31;

fn cluster(dir: &Path) -> Cluster {
    Cluster::up(ClusterSpec {
        nodes: NODES,
        shards: SHARDS,
        dir: dir.join("cluster"),
        epoch_duration: Duration::from_secs(3600),
        binary: PathBuf::from(env!("CARGO_BIN_EXE_morsa")),
    })
    .unwrap()
}

/// Runs `morsa ARGS` against `cluster`'s client configuration.
fn morsa(cluster: &Cluster, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(args)
        .env("MORSA_CONFIG", cluster.client_config_path())
        .output()
        .unwrap()
}

/// Runs `morsa ARGS`, expects success, and parses its stdout as JSON.
fn morsa_json(cluster: &Cluster, args: &[&str]) -> Value {
    let output = morsa(cluster, args);
    assert!(output.status.success(), "morsa {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("morsa {args:?} printed no JSON ({error}): {output:?}"))
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    morsa_cluster::sample::bytes(len, seed)
}

/// Stores `path` and answers its blob ID.
fn store(cluster: &Cluster, path: &Path) -> String {
    let stored = morsa_json(cluster, &["store", path.to_str().unwrap(), "--json"]);
    stored[0]["blob_id"].as_str().unwrap().to_string()
}

/// Reads `blob_id` into a file and answers its bytes and the JSON summary.
fn read(cluster: &Cluster, dir: &Path, blob_id: &str, extra: &[&str]) -> (Vec<u8>, Value) {
    let out = dir.join(format!("read-{blob_id}"));
    let mut args = vec!["read", blob_id, "--out", out.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let summary = morsa_json(cluster, &args);
    (std::fs::read(&out).unwrap(), summary)
}

/// Indices of nodes holding at most f shards together.
fn up_to_f(cluster: &Cluster) -> Vec<usize> {
    let f = redstuff::EncodingConfig::new(SHARDS).unwrap().f();
    let mut chosen = Vec::new();
    let mut weight = 0;
    for node in cluster.nodes() {
        if weight + node.shards.len() <= f {
            weight += node.shards.len();
            chosen.push(node.index);
        }
    }
    assert!(!chosen.is_empty());
    chosen
}

#[test]
fn files_of_every_size_and_across_chunks_come_back_identical_and_scripts_get_json() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path());
    // Small chunks, so that a 10 MiB file is stored as three chunks and a manifest.
    let config = cluster.client_config_path();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("chunk_size = 4194304\n");
    std::fs::write(&config, text).unwrap();

    for (len, seed) in [(0, 1), (1, 2), ((1 << 20) + 1, 3), (64 << 20, 4), (10 << 20, 5)] {
        let path = dir.path().join(format!("file-{len}"));
        let original = data(len, seed);
        std::fs::write(&path, &original).unwrap();
        let stored = morsa_json(&cluster, &["store", path.to_str().unwrap(), "--json"]);
        let blob_id = stored[0]["blob_id"].as_str().unwrap().to_string();
        assert_eq!(stored[0]["size"], len);
        let expected_chunks = if len > 4 << 20 { len.div_ceil(4 << 20) } else { 0 };
        assert_eq!(stored[0]["chunks"], expected_chunks, "{len} bytes");
        let (back, summary) = read(&cluster, dir.path(), &blob_id, &[]);
        assert_eq!(summary["size"], len);
        assert!(back == original, "{len} bytes came back different");
        if len == 10 << 20 {
            // A range across the first chunk boundary of the chunked file.
            let range = format!("{}-{}", (4 << 20) - 100, (4 << 20) + 100);
            let (part, _) = read(&cluster, dir.path(), &blob_id, &["--range", &range]);
            assert!(part == original[(4 << 20) - 100..(4 << 20) + 100]);
        }
    }

    // Storing the same file again uploads nothing.
    let path = dir.path().join("file-1");
    let again = morsa_json(&cluster, &["store", path.to_str().unwrap(), "--json"]);
    assert_eq!(again[0]["already_stored"], true);

    // Status, listing, extending and deleting, as scripts see them.
    let blob_id = again[0]["blob_id"].as_str().unwrap().to_string();
    let status = morsa_json(&cluster, &["blob-status", &blob_id, "--json"]);
    assert_eq!(status["status"], "certified");
    let listed = morsa_json(&cluster, &["list-blobs", "--json"]);
    assert!(listed.as_array().unwrap().iter().any(|blob| blob["blob_id"] == blob_id.as_str()));
    let end = status["end_epoch"].as_u64().unwrap();
    let extended = morsa_json(&cluster, &["extend", &blob_id, "--epochs", "2", "--json"]);
    assert_eq!(extended["end_epoch"].as_u64().unwrap(), end + 2);
    morsa_json(&cluster, &["delete", &blob_id, "--json"]);
    let status = morsa_json(&cluster, &["blob-status", &blob_id, "--json"]);
    assert_eq!(status["status"], "nonexistent");

    // Errors: one line on stderr, exit code 1.
    let output = morsa(&cluster, &["read", &blob_id, "--out", dir.path().join("x").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not stored"), "{stderr}");
    let output = morsa(&cluster, &["read", "not-a-blob-id"]);
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let health = morsa_json(&cluster, &["health", "--json"]);
    assert_eq!(health["down"], 0);
}

#[test]
fn with_nodes_holding_f_shards_killed_stores_reads_and_ranges_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = cluster(dir.path());
    let original = data(3 << 20, 6);
    let before = dir.path().join("before");
    std::fs::write(&before, &original).unwrap();
    let blob_before = store(&cluster, &before);

    let down = up_to_f(&cluster);
    for index in &down {
        cluster.kill(*index).unwrap();
    }
    // The health check names the nodes that are down and fails.
    let output = morsa(&cluster, &["health", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let health: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(health["down"], down.len());

    let during = dir.path().join("during");
    let written = data(2 << 20, 7);
    std::fs::write(&during, &written).unwrap();
    let stored = morsa_json(&cluster, &["store", during.to_str().unwrap(), "--json"]);
    assert_eq!(stored[0]["nodes_left_behind"].as_array().unwrap().len(), down.len());
    let blob_during = stored[0]["blob_id"].as_str().unwrap().to_string();

    for (blob_id, expected) in [(&blob_before, &original), (&blob_during, &written)] {
        let (back, summary) = read(&cluster, dir.path(), blob_id, &[]);
        assert!(back == *expected);
        assert!(summary["nodes_failed"].as_array().unwrap().len() <= down.len());
        for range in
            [(0, 1), (4000, 8096), (1 << 20, (1 << 20) + 70_000), (expected.len() - 10, expected.len())]
        {
            let text = format!("{}-{}", range.0, range.1);
            let (part, _) = read(&cluster, dir.path(), blob_id, &["--range", &text]);
            assert!(part == expected[range.0..range.1], "range {text} of {blob_id}");
        }
    }
}

#[test]
fn a_node_whose_disk_corrupts_a_sliver_does_not_corrupt_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = cluster(dir.path());
    let original = data(1 << 20, 8);
    let path = dir.path().join("file");
    std::fs::write(&path, &original).unwrap();
    let blob_id = store(&cluster, &path);

    // Flip one byte of every systematic primary sliver one node stores, on disk, while it is
    // stopped. Sliver bytes are found in its database by their content.
    let config = redstuff::EncodingConfig::new(SHARDS).unwrap();
    let encoded = redstuff::encode(config, &original).unwrap();
    let id: redstuff::BlobId = blob_id.parse().unwrap();
    let systematic_rows = |node: &morsa_cluster::NodeInfo| -> Vec<usize> {
        node.shards
            .iter()
            .map(|shard| id.pair_for_shard(usize::from(shard.0), usize::from(SHARDS)))
            .filter(|pair| *pair < config.kp())
            .collect()
    };
    let victim = cluster.nodes().iter().max_by_key(|node| systematic_rows(node).len()).unwrap().index;
    let rows = systematic_rows(&cluster.nodes()[victim]);
    assert!(!rows.is_empty(), "some node holds a systematic sliver");
    cluster.stop(victim).unwrap();
    let database = cluster.dir().join(format!("node{victim}")).join("node.redb");
    let mut bytes = std::fs::read(&database).unwrap();
    for row in &rows {
        let symbols = &encoded.pairs[*row].primary.symbols;
        let probe = &symbols[..64.min(symbols.len())];
        let at =
            bytes.windows(probe.len()).position(|window| window == probe).expect("the sliver is on disk");
        bytes[at + probe.len() / 2] ^= 0xff;
    }
    std::fs::write(&database, &bytes).unwrap();
    cluster.start(victim).unwrap();
    let node_address = cluster.nodes()[victim].url.trim_start_matches("http://").to_string();

    let (back, summary) = read(&cluster, dir.path(), &blob_id, &[]);
    assert!(back == original, "the read is not corrupted");
    // The node refused its damaged slivers (and the client read around it), or served them
    // and the client caught and reported them, or the node rebuilt them from its peers.
    let reported = summary["nodes_failed"].to_string().contains(&node_address)
        || summary["nodes_with_bad_data"].to_string().contains(&node_address);
    let health = morsa_json(&cluster, &["health", "--json"]);
    let node =
        health["nodes"].as_array().unwrap().iter().find(|node| node["address"] == node_address.as_str());
    let detected = node.unwrap()["health"]["repair"]["corrupt_slivers"].as_u64().unwrap_or(0);
    eprintln!(
        "{} slivers damaged on {node_address}; reported: {reported}; node detected {detected}",
        rows.len()
    );
    assert!(reported || detected >= 1, "the damage was neither reported by the read nor found by the node");
    let (again, _) = read(&cluster, dir.path(), &blob_id, &[]);
    assert!(again == original);
}
