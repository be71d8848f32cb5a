//! Reads with the coordinator gone: a real local cluster (five nodes), the real `morsa`
//! binary, the coordinator first stopped (SIGSTOP: hung, it accepts connections and never
//! answers) and then killed. Certified blobs (a single blob, and a file of several chunks,
//! whole and in ranges) still read back, from a client that has only its cached committee and
//! from one that has none and asks the nodes its configuration lists; each such read says so
//! on stderr (one line) and in its JSON. Every configuration lists a dead coordinator URL
//! first: clients and a node fail over to the live one while it runs. Then every node is
//! killed and restarted with no coordinator at all: each starts from the committee saved in
//! its store, and the blobs still read back.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use morsa_cluster::pids::{self, Signal};

/// Chunks of the stored file.
const CHUNK: usize = 16 << 10;
/// Longest one `morsa` command may take; a read that hangs on the coordinator fails the test.
const COMMAND_BOUND: Duration = Duration::from_secs(90);
/// The warning a read without a coordinator prints.
const WARNING: &str = "warning: read without a coordinator";

/// Runs `morsa ARGS` with `config`, killing it if it runs longer than [`COMMAND_BOUND`].
fn morsa(config: &Path, args: &[&str]) -> Output {
    common::morsa_bounded(config, args, COMMAND_BOUND)
}

/// Reads `blob_id` (bytes `range`, if given) with `config` into a file; answers the bytes, the
/// JSON summary and the warning lines on stderr.
fn read(config: &Path, blob_id: &str, range: Option<&str>) -> (Vec<u8>, serde_json::Value, usize) {
    let out = config.with_file_name(format!("read-{}", range.unwrap_or("all")));
    let mut args = vec!["read", blob_id, "--json", "--out", out.to_str().unwrap()];
    if let Some(range) = range {
        args.extend(["--range", range]);
    }
    let output = morsa(config, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "morsa read {blob_id} {range:?} with {}: {stderr}", config.display());
    let warnings = stderr.lines().filter(|line| line.contains(WARNING)).count();
    (std::fs::read(&out).unwrap(), serde_json::from_slice(&output.stdout).unwrap(), warnings)
}

/// Asserts that the read gave `expected`, without a coordinator, saying so once.
fn assert_read_without_coordinator(read: (Vec<u8>, serde_json::Value, usize), expected: &[u8], what: &str) {
    let (data, json, warnings) = read;
    assert!(data == expected, "{what}: {} bytes read back different", data.len());
    assert_eq!(json["without_coordinator"], true, "{what}: {json}");
    assert_eq!(warnings, 1, "{what}: one warning line");
}

/// A URL nothing listens on, reserved for as long as the tests run: no other test's process
/// can come to listen there.
fn closed_port() -> String {
    static CLOSED: std::sync::LazyLock<morsa_cluster::ports::ReservedAddress> =
        std::sync::LazyLock::new(|| morsa_cluster::ports::reserve_loopback_addresses(1).unwrap().remove(0));
    CLOSED.url()
}

/// A client configuration in its own directory `name`, for the cluster's coordinator (after a
/// dead URL) and account key, with `extra` lines.
fn client_config(root: &Path, cluster: &morsa_cluster::Cluster, name: &str, extra: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "coordinator_urls = [\"{}\", \"{}\"]\naccount_key_file = \"{}\"\n\
         coordinator_timeout_ms = 2000\nchunk_size = {CHUNK}\n{extra}",
        closed_port(),
        cluster.coordinator_url(),
        cluster.account_key_path().display(),
    );
    let path = dir.join("client.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn store(config: &Path, path: &Path) -> String {
    let output = morsa(config, &["store", path.to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "store: {}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    json[0]["blob_id"].as_str().unwrap().to_owned()
}

#[test]
fn certified_blobs_read_back_with_the_coordinator_hung_and_then_killed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut cluster = common::local_cluster(root, 5, 10);
    // A node whose first coordinator URL is dead starts (it needs the committee) and follows
    // through the second.
    let node_config = cluster.nodes()[0].config.clone();
    let text = std::fs::read_to_string(&node_config).unwrap().replace(
        &format!("coordinator_url = \"{}\"", cluster.coordinator_url()),
        &format!("coordinator_urls = [\"{}\", \"{}\"]", closed_port(), cluster.coordinator_url()),
    );
    assert!(text.contains("coordinator_urls"), "{text}");
    std::fs::write(&node_config, text).unwrap();
    cluster.kill(0).unwrap();
    cluster.start(0).unwrap();
    let node_urls: Vec<String> = cluster.nodes().iter().map(|node| format!("\"{}\"", node.url)).collect();
    // Knows the nodes only through the committee it caches while the coordinator answers.
    let cached = client_config(root, &cluster, "cached", "");
    // Has no cache when the coordinator is gone: asks the nodes its configuration lists.
    let fresh = client_config(root, &cluster, "fresh", &format!("node_urls = [{}]\n", node_urls.join(", ")));
    // Has neither.
    let lost = client_config(root, &cluster, "lost", "");

    let single = morsa_cluster::sample::bytes(10_000, 1);
    let file = morsa_cluster::sample::bytes(3 * CHUNK + 777, 2);
    std::fs::write(root.join("single"), &single).unwrap();
    std::fs::write(root.join("file"), &file).unwrap();
    let single_id = store(&cached, &root.join("single"));
    let file_id = store(&cached, &root.join("file"));

    // With the coordinator up (behind a dead first URL), a read is an ordinary one.
    let (data, json, warnings) = read(&cached, &single_id, None);
    assert!(data == single);
    assert_eq!((json["without_coordinator"].clone(), warnings), (serde_json::json!(false), 0), "{json}");
    assert!(root.join("cached/client.committee.json").exists(), "the client keeps the committee it saw");
    assert!(!root.join("lost/client.committee.json").exists());

    let coordinator = cluster.state().coordinator.pid.expect("the coordinator runs");
    assert!(Command::new("kill").args(["-STOP", &coordinator.to_string()]).status().unwrap().success());
    assert_read_without_coordinator(read(&cached, &single_id, None), &single, "hung, cached, whole blob");
    assert_read_without_coordinator(read(&fresh, &file_id, None), &file, "hung, no cache, chunked file");

    assert!(pids::send(coordinator, Signal::Kill));
    assert_read_without_coordinator(
        read(&cached, &file_id, Some("16000-40000")),
        &file[16000..40000],
        "killed, cached, a range across chunks",
    );
    assert_read_without_coordinator(read(&fresh, &single_id, None), &single, "killed, no cache, whole blob");
    assert_read_without_coordinator(
        read(&fresh, &single_id, Some("100-5000")),
        &single[100..5000],
        "killed, no cache, a range",
    );
    // A blob no node has seen certified is not read: the nodes say it is not stored.
    std::fs::write(root.join("never"), b"never stored").unwrap();
    let never =
        morsa(&fresh, &["blob-id", root.join("never").to_str().unwrap(), "--n-shards", "10", "--json"]);
    let never: serde_json::Value = serde_json::from_slice(&never.stdout).unwrap();
    let out = root.join("never-read");
    let output = morsa(&fresh, &["read", never["blob_id"].as_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not stored"), "{output:?}");
    // The nodes' committee was cached by the fresh client.
    assert!(root.join("fresh/client.committee.json").exists());

    // Neither a cache nor node URLs: the error says what is missing and names the coordinator.
    let output = morsa(&lost, &["read", &single_id, "--out", root.join("lost/out").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("no coordinator answered") && stderr.contains("node_urls"), "{stderr}");
    // A write needs a coordinator, and says so.
    let output = morsa(&fresh, &["store", root.join("single").to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("coordinator"), "{output:?}");

    // Every node crashes and restarts while no coordinator runs: each starts from the
    // committee in its own store and serves what it stored (`start` waits until it answers).
    let deadline = std::time::Instant::now() + COMMAND_BOUND;
    while cluster.is_coordinator_running(0) {
        assert!(std::time::Instant::now() < deadline, "the killed coordinator is still recorded as running");
        std::thread::sleep(Duration::from_millis(20));
    }
    for index in 0..cluster.nodes().len() {
        cluster.kill(index).unwrap();
    }
    for index in 0..cluster.nodes().len() {
        cluster
            .start(index)
            .unwrap_or_else(|error| panic!("node {index} restarts without a coordinator: {error}"));
    }
    let log = std::fs::read_to_string(&cluster.nodes()[2].log).unwrap();
    assert!(log.contains("starting from the committee saved in the store"), "node 2 says how it started");
    // A client with a cached committee, and one that asks the restarted nodes for theirs.
    assert_read_without_coordinator(read(&cached, &file_id, None), &file, "nodes restarted, cached");
    let after = client_config(root, &cluster, "after", &format!("node_urls = [{}]\n", node_urls.join(", ")));
    assert_read_without_coordinator(read(&after, &single_id, None), &single, "nodes restarted, no cache");
    assert_read_without_coordinator(
        read(&after, &file_id, Some("100-20000")),
        &file[100..20000],
        "nodes restarted, no cache, a range",
    );
}
