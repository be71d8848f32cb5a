//! The `morsa` client commands against a local cluster of real processes (coordinator and
//! nodes are `morsa` processes on loopback): byte-identical store and read at every size and
//! across chunks, nodes killed with SIGKILL, a node whose disk corrupts a sliver, range reads,
//! a node that serves a wrong sliver, a node frozen with SIGSTOP (reads and stores go around it), many files stored at once
//! with one of them missing, and the exit codes and `--json` output scripts rely on.
#![allow(clippy::unwrap_used)]

mod common;
// The lying-node proxy of the client's tests, shared rather than copied.
#[path = "../../morsa-client/tests/suite/common/proxy.rs"]
mod proxy;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use morsa_cluster::Cluster;
use serde_json::Value;

/// Nodes and shards of the test clusters: 7 nodes, so nodes holding up to f shards can fail.
const NODES: usize = 7;
const SHARDS: u16 = 31;

fn cluster(dir: &Path) -> Cluster {
    common::local_cluster(dir, NODES, SHARDS)
}

/// Runs `morsa ARGS` against `cluster`'s client configuration.
fn morsa(cluster: &Cluster, args: &[&str]) -> Output {
    common::morsa_with(&cluster.client_config_path(), args)
}

/// Runs `morsa ARGS`, expects success, and parses its stdout as JSON.
fn morsa_json(cluster: &Cluster, args: &[&str]) -> Value {
    common::morsa_json_with(&cluster.client_config_path(), args)
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

/// The account's nonce at the coordinator: it grows with every transaction the client sends.
fn account_nonce(cluster: &Cluster) -> u64 {
    let info = morsa_json(cluster, &["info", "--json"]);
    info["account"]["nonce"].as_u64().unwrap_or_else(|| panic!("no account nonce in {info}"))
}

/// Per node, the requests it answered on the routes a store uses (metadata, slivers,
/// confirmations), from its metrics.
fn store_requests(cluster: &Cluster) -> Vec<u64> {
    use morsa_api::node::routes;
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let labels: Vec<String> =
        [routes::METADATA, routes::SLIVER, routes::PERMANENT_CONFIRMATION, routes::DELETABLE_CONFIRMATION]
            .iter()
            .map(|route| format!("morsa_node_requests_total{{route=\"{route}\","))
            .collect();
    cluster
        .nodes()
        .iter()
        .map(|node| {
            let text = http.get(format!("{}/metrics", node.url)).send().unwrap().text().unwrap();
            text.lines()
                .filter(|line| labels.iter().any(|label| line.starts_with(label.as_str())))
                .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
                .sum()
        })
        .collect()
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

    // Storing the same file again uploads nothing: the client sends no transaction (the
    // account's nonce stays) and no node is asked to store anything.
    let path = dir.path().join("file-1");
    let (nonce, requests) = (account_nonce(&cluster), store_requests(&cluster));
    let again = morsa_json(&cluster, &["store", path.to_str().unwrap(), "--json"]);
    assert_eq!(again[0]["already_stored"], true);
    assert_eq!(account_nonce(&cluster), nonce, "no transaction was sent");
    assert_eq!(store_requests(&cluster), requests, "no node was sent metadata or slivers");

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
    assert!(output.stdout.is_empty(), "nothing on stdout: {output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not stored"), "{stderr}");
    assert!(!dir.path().join("x").exists(), "no output file for a failed read");
    // Usage errors: exit code 2, a message naming the bad value on stderr, nothing on stdout.
    for args in [&["read", "not-a-blob-id"][..], &["read", &blob_id, "--range", "9-3"], &["store"]] {
        let output = morsa(&cluster, args);
        assert_eq!(output.status.code(), Some(2), "{args:?} is a usage error");
        assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout: {output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        let named = match args.get(1) {
            Some(&"not-a-blob-id") => "not-a-blob-id",
            Some(_) => "9-3",
            None => "<FILE>",
        };
        assert!(stderr.contains(named), "{args:?}: the message names {named}: {stderr}");
    }
    let health = morsa_json(&cluster, &["health", "--json"]);
    assert_eq!(health["down"], 0);
}

#[test]
fn many_files_at_once_are_all_stored_in_order_and_a_missing_one_is_named_and_fails_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path());
    // The largest first, so that later files finish first and the order has to be restored.
    let sizes = [3 << 20, 1, 70_000, 0, 300_000, 5_000];
    let mut args: Vec<String> = vec!["store".into(), "--jobs".into(), "4".into()];
    let mut files = Vec::new();
    for (index, len) in sizes.into_iter().enumerate() {
        let path = dir.path().join(format!("many-{index}"));
        let original = data(len, 100 + u64::try_from(index).unwrap());
        std::fs::write(&path, &original).unwrap();
        args.push(path.to_str().unwrap().to_string());
        files.push((path, original));
        if index == 2 {
            args.push(dir.path().join("no-such-file").to_str().unwrap().to_string());
        }
    }
    let missing = dir.path().join("no-such-file").display().to_string();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let config = cluster.client_config_path();

    let output = common::morsa_bounded(&config, &args, Duration::from_secs(180));
    assert_eq!(output.status.code(), Some(1), "a missing file fails the command: {output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.lines().any(|line| line.starts_with(&format!("error: storing {missing}"))),
        "the missing file's error names it: {stderr}"
    );
    let last = stderr.lines().last().unwrap();
    assert!(last.contains("1 of 7 files could not be stored") && last.contains(&missing), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), files.len(), "one line per stored file: {stdout}");
    for ((path, original), line) in files.iter().zip(&lines) {
        let prefix = format!("stored {}: blob ID ", path.display());
        let blob_id = line.strip_prefix(&prefix).unwrap_or_else(|| panic!("{line} is not for {path:?}"));
        let blob_id = blob_id.split(' ').next().unwrap();
        let (back, _) = read(&cluster, dir.path(), blob_id, &[]);
        assert!(back == *original, "{} came back different", path.display());
    }

    // Scripts get one entry per argument, in order, the missing file's with its error.
    let output = common::morsa_bounded(&config, &[&args[..], &["--json"]].concat(), Duration::from_secs(180));
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let entries: Value = serde_json::from_slice(&output.stdout).unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), files.len() + 1);
    let named: Vec<&str> = entries.iter().map(|entry| entry["file"].as_str().unwrap()).collect();
    assert_eq!(named, args[3..].to_vec(), "in the order given");
    for entry in entries {
        if entry["file"] == missing.as_str() {
            assert!(entry["error"].as_str().unwrap().contains(&missing), "{entry}");
        } else {
            assert_eq!(entry["already_stored"], true, "{entry}");
        }
    }
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
    // Every copy of each sliver in the file is damaged (the database may hold older pages
    // with the same bytes), so that the one the node reads is.
    for row in &rows {
        let symbols = &encoded.pairs[*row].primary.symbols;
        let probe = symbols[..64.min(symbols.len())].to_vec();
        let mut found = 0;
        let mut at = 0;
        while let Some(offset) = bytes[at..].windows(probe.len()).position(|window| window == probe) {
            bytes[at + offset + probe.len() / 2] ^= 0xff;
            at += offset + probe.len();
            found += 1;
        }
        assert!(found > 0, "sliver {row} is on disk");
    }
    std::fs::write(&database, &bytes).unwrap();
    cluster.start(victim).unwrap();
    let node_address = cluster.nodes()[victim].url.clone();

    // The read asks for the systematic slivers first, so for every damaged one: the node
    // finds it damaged, counts it, and rebuilds it from its peers before answering.
    let (back, summary) = read(&cluster, dir.path(), &blob_id, &[]);
    assert!(back == original, "the read is not corrupted");
    assert_eq!(summary["nodes_with_bad_data"].as_array().unwrap().len(), 0, "the node served no bad data");
    assert_eq!(
        summary["nodes_failed"].as_array().unwrap().len(),
        0,
        "the node answered every sliver: {summary}"
    );
    // Counted as found, even where the read finished first (a hedge around the slow node won
    // and cancelled its request): the node's own work goes on.
    let corrupt_found = || {
        let health = morsa_json(&cluster, &["health", "--json"]);
        let node = health["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|node| node["address"].as_str().is_some_and(|address| node_address.ends_with(address)))
            .cloned();
        node.unwrap()["health"]["repair"]["corrupt_slivers"].as_u64().unwrap()
    };
    let expected = u64::try_from(rows.len()).unwrap();
    common::eventually(
        &format!("the node counts {expected} damaged slivers"),
        Duration::from_secs(30),
        || (corrupt_found() >= expected).then_some(()),
    );
    let (again, summary) = read(&cluster, dir.path(), &blob_id, &[]);
    assert!(again == original);
    assert_eq!(summary["nodes_with_bad_data"].as_array().unwrap().len(), 0);
}

/// A committee member whose answers go through a proxy that flips a byte of every sliver it
/// serves (the coordinator's committee answer is rewritten to list the proxy). The client's
/// own verification faces the bad slivers: `morsa read` reports the node by name, on stderr
/// and in its JSON summary, and the file comes back byte-identical from the other nodes.
#[test]
fn a_node_serving_wrong_slivers_is_named_by_the_read_and_read_around() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path());
    let original = data(1 << 20, 9);
    let path = dir.path().join("file");
    std::fs::write(&path, &original).unwrap();
    let blob_id = store(&cluster, &path);
    let id: redstuff::BlobId = blob_id.parse().unwrap();

    // The holder of primary sliver 0: a systematic sliver, which every read asks for first.
    let shard = id.shard_for_pair(0, usize::from(SHARDS));
    let victim = cluster
        .nodes()
        .iter()
        .find(|node| node.shards.iter().any(|held| usize::from(held.0) == shard))
        .unwrap();
    let victim_address = victim.url.trim_start_matches("http://").to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let liar = runtime.block_on(proxy::Proxy::start(&victim_address));
    liar.lie_on_sliver_reads(proxy::Lie::WrongSliver);
    let coordinator =
        runtime.block_on(proxy::Proxy::start(cluster.coordinator_url().trim_start_matches("http://")));
    let (from, to) = (format!("\"{victim_address}\""), format!("\"{}\"", liar.address));
    coordinator.lie(
        proxy::Route::Committee,
        proxy::Lie::Rewrite(std::sync::Arc::new(move |body: &[u8]| {
            String::from_utf8(body.to_vec()).unwrap().replace(&from, &to).into_bytes()
        })),
    );
    let config = cluster.dir().join("client-via-liar.toml");
    let text = std::fs::read_to_string(cluster.client_config_path()).unwrap();
    // Without hedging the read asks exactly the `kp` systematic slivers, the liar's among
    // them, and needs every one: it cannot finish around the liar before its answer is in
    // (with hedging it could, and then there would be no bad sliver to report).
    let text = text.replace(cluster.coordinator_url(), &format!("http://{}", coordinator.address));
    std::fs::write(&config, format!("{text}\nhedged_reads = false\n")).unwrap();

    let out = dir.path().join("read-back");
    let output = Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["read", &blob_id, "--out", out.to_str().unwrap(), "--json"])
        .env("MORSA_CONFIG", &config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(std::fs::read(&out).unwrap() == original, "the read is byte-identical");
    assert!(
        !coordinator.seen(proxy::Route::Committee).is_empty(),
        "the client read the committee via the proxy"
    );
    assert!(liar.lied() > 0, "the read asked the liar for a sliver");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let named = summary["nodes_with_bad_data"].as_array().unwrap();
    assert!(!named.is_empty(), "the bad slivers are reported: {summary}");
    assert!(
        named.iter().all(|node| node == liar.address.as_str()),
        "only the lying node is named: {summary}"
    );
    let requests = summary["slivers"]["requests"].as_array().unwrap();
    assert!(
        summary["slivers"]["hedges"] == 0 && requests.iter().all(|request| request["outcome"] != "cancelled"),
        "without hedging no sliver is asked for beyond those needed: {summary}"
    );
    assert!(
        stderr.lines().any(|line| line.starts_with("warning: node") && line.contains(&liar.address)),
        "a warning names the node: {stderr}"
    );
}

/// `morsa store` while a node takes connections and answers nothing (frozen with SIGSTOP): the
/// others certify the file, the uploads to the hung node are given up after four times what
/// the store took (at least 5 s; the command used to wait a minute for them before exiting),
/// and the warning names the node left to rebuild its slivers.
#[test]
fn a_store_with_a_hung_node_ends_without_waiting_for_it_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = cluster(dir.path());
    let hung = cluster.nodes()[0].url.clone();
    let frozen = common::Frozen::new(cluster.state().nodes[0].pid.unwrap());
    let path = dir.path().join("file");
    let original = data(1 << 20, 12);
    std::fs::write(&path, &original).unwrap();
    // A bound below the minute the command used to wait: past it the test fails.
    let output = common::morsa_bounded(
        &cluster.client_config_path(),
        &["store", path.to_str().unwrap(), "--json"],
        Duration::from_secs(40),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let address = hung.trim_start_matches("http://");
    assert!(
        stderr.lines().any(|line| line.starts_with("warning: a node did not get its slivers") && line.contains(address)),
        "the warning names {address}: {stderr}"
    );
    drop(frozen);
    let stored: Value = serde_json::from_slice(&output.stdout).unwrap();
    let blob_id = stored[0]["blob_id"].as_str().unwrap().to_string();
    let (back, _) = read(&cluster, dir.path(), &blob_id, &[]);
    assert!(back == original);
}

/// A node process frozen with SIGSTOP (it accepts connections but never answers): a read
/// asks other nodes instead of waiting for it, so it finishes with nothing failed (had it
/// waited, the requests would have timed out and the node would be named as failed).
#[test]
fn reads_ask_other_nodes_while_one_is_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = cluster(dir.path());
    let original = data(1 << 20, 10);
    let path = dir.path().join("file");
    std::fs::write(&path, &original).unwrap();
    let blob_id = store(&cluster, &path);
    let id: redstuff::BlobId = blob_id.parse().unwrap();

    // Freeze the holder of primary sliver 0, which every read asks for first.
    let shard = id.shard_for_pair(0, usize::from(SHARDS));
    let frozen = cluster
        .nodes()
        .iter()
        .position(|node| node.shards.iter().any(|held| usize::from(held.0) == shard))
        .unwrap();
    let thaw = common::Frozen::new(cluster.state().nodes[frozen].pid.unwrap());

    let (back, summary) = read(&cluster, dir.path(), &blob_id, &[]);
    assert!(back == original, "the read is byte-identical");
    assert_eq!(summary["nodes_failed"].as_array().unwrap().len(), 0, "nothing was waited for: {summary}");
    drop(thaw);
    let (again, _) = read(&cluster, dir.path(), &blob_id, &[]);
    assert!(again == original);
}
