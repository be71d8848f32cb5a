//! Network-aware reads with the real binary, on local clusters whose nodes sit behind our
//! shaped links (`morsa cluster up --node-delay/--node-rate`, `cluster slow`):
//! - ten nodes at 1, 30 and 120 ms, one of the fast ones thin (20 Mbit/s): once the nodes
//!   are known (one `health --latency`, kept in the cache dir for the next processes), reads
//!   of 1 MiB and 16 MiB use no sliver of a 120 ms node, and 16 MiB reads none of the thin one;
//!   the probe found the thin link (a probe counts only a thin link's figure), so even the first read, a
//!   16 MiB one, asks it for nothing from the start (unmeasured, it would look as fast as
//!   the other 1 ms nodes and be asked for three or four 1.2 MB slivers);
//! - a node made slow in the middle of a series of reads stops being used within a few
//!   reads, and is used again once it recovers;
//! - a stalled node (SIGSTOP: the kernel accepts, nothing answers), asked first for the
//!   metadata by blind reads, is hedged around, so reads finish long before a request to it
//!   would time out (30 s);
//! - nodes in two declared zones (`cluster up --zones 2`) and a client with a `zone` in its
//!   client.toml and no score cache: `health --latency` shows every node's zone and the prior
//!   it gets, and blind reads (nothing measured) ask the nodes of the client's zone first,
//!   for the metadata and for every sliver they do not send as a hedge. The client's zone is
//!   the one the committee's first member is not in: without zones every node would tie at
//!   the same prior and the first member would be asked first.
//!
//! Every read's bytes are compared with the file stored, every sliver used was verified (the
//! client uses no other), and which nodes served comes from `read --json`. Nothing here
//! asserts a duration; the bounds are generous limits on a hung read.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use morsa_cluster::ClusterState;
use morsa_cluster::pids::{self, Signal};
use serde_json::Value;

/// Bound on a cluster's start-up (ten debug-built nodes on a busy 2-core machine).
const STARTUP: Duration = Duration::from_secs(180);
/// Bound on one read: far above a hedge delay, far below the 30 s a request to a stalled node
/// takes to time out.
const READ_BOUND: Duration = Duration::from_secs(20);

/// One cluster at a time: they are ten processes each.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `morsa cluster up` as a child; on drop it is stopped and every process it recorded killed.
struct Cluster {
    supervisor: Child,
    dir: PathBuf,
    /// The cache directory the reads share (their node scores).
    cache: PathBuf,
    _lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        common::stop_cluster_up(&mut self.supervisor, &self.dir);
    }
}

impl Cluster {
    fn up(root: &Path, nodes: usize, shards: u16, links: &[&str]) -> Self {
        let dir = root.join("cluster");
        let mut supervisor = Command::new(env!("CARGO_BIN_EXE_morsa"))
            .args([
                "cluster",
                "up",
                "--no-gateway",
                "--nodes",
                &nodes.to_string(),
                "--shards",
                &shards.to_string(),
            ])
            .args(links)
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = common::stdout_lines(&mut supervisor);
        let cluster = Cluster { supervisor, dir, cache: root.join("cache"), _lines: lines };
        let deadline = Instant::now() + STARTUP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = cluster._lines.recv_timeout(left).expect("the cluster comes up");
            if line.starts_with("cluster is up") {
                return cluster;
            }
        }
    }

    /// `morsa args` with the client configuration at `config`.
    fn morsa_as(&self, config: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_morsa"))
            .args(args)
            .env("MORSA_CONFIG", config)
            .env("XDG_CACHE_HOME", &self.cache)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> Output {
        self.ok_as(&self.dir.join("client.toml"), args)
    }

    fn ok_as(&self, config: &Path, args: &[&str]) -> Output {
        let output = self.morsa_as(config, args);
        assert!(output.status.success(), "morsa {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        output
    }

    /// The node addresses (as the committee lists them), by index.
    fn addresses(&self) -> Vec<String> {
        let state = ClusterState::load(&self.dir).unwrap();
        state.nodes.iter().map(|node| node.info.url.trim_start_matches("http://").to_string()).collect()
    }

    fn node_pid(&self, index: usize) -> u32 {
        ClusterState::load(&self.dir).unwrap().nodes[index].pid.unwrap()
    }

    /// Stores `len` bytes of a pattern from `root`; answers the file and its blob ID.
    fn store(&self, root: &Path, len: usize, seed: u8) -> (PathBuf, String) {
        let path = root.join(format!("blob-{len}-{seed}"));
        let data: Vec<u8> =
            (0..len).map(|i| u8::try_from((i * 31 + usize::from(seed)) % 251).unwrap()).collect();
        std::fs::write(&path, data).unwrap();
        let output = self.ok(&["store", "--json", "--epochs", "2", path.to_str().unwrap()]);
        let stored: Value = serde_json::from_slice(&output.stdout).unwrap();
        let blob_id = stored[0]["blob_id"].as_str().unwrap_or_else(|| panic!("{stored}")).to_string();
        (path, blob_id)
    }

    /// Reads `blob_id` back, checks it equals `original` and took less than [`READ_BOUND`];
    /// answers the report of its sliver requests.
    fn read(&self, blob_id: &str, original: &Path) -> Value {
        self.read_as(&self.dir.join("client.toml"), blob_id, original)
    }

    /// [`Cluster::read`] with the client configuration at `config`.
    fn read_as(&self, config: &Path, blob_id: &str, original: &Path) -> Value {
        let out = original.with_extension("read");
        let started = Instant::now();
        let output = self.ok_as(config, &["read", blob_id, "--json", "--out", out.to_str().unwrap()]);
        let took = started.elapsed();
        assert!(took < READ_BOUND, "a read took {took:?}");
        assert!(std::fs::read(&out).unwrap() == std::fs::read(original).unwrap(), "the bytes read back");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["nodes_with_bad_data"], serde_json::json!([]));
        report["slivers"].clone()
    }
}

/// The addresses of the nodes whose slivers a read used.
fn used(slivers: &Value) -> Vec<String> {
    requests(slivers, "used")
}

/// The addresses of the nodes whose requests ended with `outcome`.
fn requests(slivers: &Value, outcome: &str) -> Vec<String> {
    slivers["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|request| request["outcome"] == outcome)
        .map(|request| request["node"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn reads_avoid_slow_and_thin_nodes_once_they_are_known() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = tempfile::tempdir().unwrap();
    // Nodes 0-3 at 1 ms (node 3 thin: 20 Mbit/s), 4-6 at 30 ms, 7-9 at 120 ms; four shards
    // each (n = 40, so that 16 MiB is one blob): a read needs 14 of the 40 primary slivers.
    let delays = ["0=1", "1=1", "2=1", "3=1", "4=30", "5=30", "6=30", "7=120", "8=120", "9=120"];
    let mut links: Vec<&str> = delays.iter().flat_map(|delay| ["--node-delay", delay]).collect();
    links.extend(["--node-rate", "3=20"]);
    let cluster = Cluster::up(root.path(), 10, 40, &links);
    let addresses = cluster.addresses();
    let slow: Vec<&String> = addresses[7..].iter().collect();
    let thin = &addresses[3];
    let small = cluster.store(root.path(), 1 << 20, 1);
    let large = cluster.store(root.path(), 16 << 20, 2);

    // One probe of every node, kept in the cache directory: the reads (new processes each)
    // start from it.
    let probe: Value =
        serde_json::from_slice(&cluster.ok(&["health", "--latency", "--json"]).stdout).unwrap();
    assert_eq!(probe["nodes"].as_array().unwrap().len(), 10, "{probe}");
    let saved = std::fs::read_to_string(cluster.cache.join("morsa/node-scores.json")).unwrap();
    assert!(saved.contains("\"samples\""), "the estimates were kept: {saved}");
    let bandwidth = |address: &String| {
        let nodes = probe["nodes"].as_array().unwrap();
        let node = nodes.iter().find(|node| node["address"] == address.as_str()).unwrap();
        node["score"]["bandwidth_mbit"].as_f64()
    };
    let thin_link = bandwidth(thin).unwrap_or_else(|| panic!("the probe found the thin link: {probe}"));
    assert!(
        addresses
            .iter()
            .filter(|address| *address != thin)
            .all(|address| bandwidth(address).is_none_or(|other| other > thin_link)),
        "the thin link is the only one flagged, or the thinnest: {probe}"
    );

    for (read, (file, blob_id)) in [&large, &small, &small, &large, &large].into_iter().enumerate() {
        let slivers = cluster.read(blob_id, file);
        if read == 0 {
            let asked = slivers["requests"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|request| request["node"] == thin.as_str() && request["hedge"] == false)
                .count();
            assert_eq!(asked, 0, "the first read asked the thin node from the start: {slivers}");
        }
        let used = used(&slivers);
        let served = requests(&slivers, "used").len();
        // Slivers come in batches, one per node: the batch that completes the 14 a read needs
        // may bring a few more, which the decode uses too; two blobs would be 28.
        assert!((14..28).contains(&served), "one blob, the 14 slivers it needs used: {slivers}");
        assert!(used.iter().all(|node| !slow.contains(&node)), "no 120 ms node served: {slivers}");
        if file == &large.0 {
            assert!(!used.contains(thin), "the 20 Mbit/s node served no 16 MiB read: {slivers}");
        }
    }
}

/// A 5-node cluster (two shards a node: a read needs 4 of 10 primary slivers) with a stored
/// blob, one of whose serving nodes is made slow and left out by reads (asserted); answers the
/// cluster, the blob (file, ID) and the slow node's index.
fn slow_node_left_out(root: &std::path::Path) -> (Cluster, (std::path::PathBuf, String), usize) {
    let links: Vec<String> =
        (0..5).flat_map(|index| ["--node-delay".to_string(), format!("{index}=1")]).collect();
    let links: Vec<&str> = links.iter().map(String::as_str).collect();
    let cluster = Cluster::up(root, 5, 10, &links);
    let addresses = cluster.addresses();
    let (file, blob_id) = cluster.store(root, 256 * 1024, 3);
    let dir = cluster.dir.to_str().unwrap().to_string();

    // Warm up; a node that served a systematic sliver turns slow (when it recovers, reads
    // prefer that sliver again among near ties: no decoding).
    let first = cluster.read(&blob_id, &file);
    let systematic = first["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|request| request["outcome"] == "used" && request["systematic"] == true)
        .unwrap_or_else(|| panic!("a systematic sliver served the first read: {first}"));
    let victim = addresses.iter().position(|address| *address == systematic["node"]).unwrap();
    cluster.ok(&["cluster", "slow", "--dir", &dir, "--node", &victim.to_string(), "--delay", "200"]);
    let mut clean_streak = 0;
    for _ in 0..8 {
        let slivers = cluster.read(&blob_id, &file);
        clean_streak = if used(&slivers).contains(&addresses[victim]) { 0 } else { clean_streak + 1 };
        if clean_streak == 3 {
            break;
        }
    }
    assert_eq!(clean_streak, 3, "within 8 reads, three in a row without the slow node");
    (cluster, (file, blob_id), victim)
}

#[test]
fn a_node_that_turns_slow_is_left_out() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = tempfile::tempdir().unwrap();
    slow_node_left_out(root.path());
}

#[test]
fn a_node_that_recovers_is_taken_back() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = tempfile::tempdir().unwrap();
    let (cluster, (file, blob_id), victim) = slow_node_left_out(root.path());
    let addresses = cluster.addresses();
    let dir = cluster.dir.to_str().unwrap().to_string();
    // It recovers: a probe of the node not heard from for a while finds it fast again.
    cluster.ok(&["cluster", "slow", "--dir", &dir, "--node", &victim.to_string(), "--delay", "1"]);
    // A node is probed once it has not been heard from for a few seconds (wall clock), so
    // this is bounded by time, not by a count of (fast) reads. Taken back means chosen from
    // the start of a read, not reached by a hedge when another node was late (a loaded
    // machine makes those, and they would measure the node by luck).
    let (mut back, mut last) = (false, Value::Null);
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        last = cluster.read(&blob_id, &file);
        let chosen = last["requests"].as_array().unwrap().iter().any(|request| {
            request["node"] == addresses[victim].as_str()
                && request["hedge"] == false
                && request["outcome"] == "used"
        });
        if chosen {
            back = true;
            break;
        }
    }
    assert!(back, "the recovered node is chosen again within 90 s of reads; last: {last}");
}

#[test]
fn a_stalled_node_is_hedged_around() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = tempfile::tempdir().unwrap();
    let cluster = Cluster::up(root.path(), 5, 10, &[]);
    let addresses = cluster.addresses();
    let (file, blob_id) = cluster.store(root.path(), 256 * 1024, 4);
    // A blind read (no cache: every score is the prior) asks the committee's first member for
    // the metadata first; that node freezes: connections to it are accepted by the kernel and
    // never answered.
    let first = cluster.read(&blob_id, &file)["metadata_asked"][0].as_str().unwrap().to_string();
    let stalled = addresses.iter().position(|address| *address == first).unwrap();
    assert!(pids::send(cluster.node_pid(stalled), Signal::Stop));
    for read in 0..3 {
        // Each read starts blind again, so each must get past the stalled node.
        let _ = std::fs::remove_dir_all(&cluster.cache);
        let slivers = cluster.read(&blob_id, &file);
        assert_eq!(slivers["metadata_asked"][0], first.as_str(), "read {read}: {slivers}");
        assert_ne!(slivers["metadata_from"], first.as_str(), "read {read}: {slivers}");
        assert!(!used(&slivers).contains(&first), "read {read}: the stalled node served nothing");
        assert!(
            !requests(&slivers, "failed").contains(&first),
            "read {read}: its requests were cancelled, not waited for until they failed: {slivers}"
        );
    }
    assert!(pids::send(cluster.node_pid(stalled), Signal::Cont));
}

/// Each node of `health --latency --json`: its address, declared zone and prior.
fn zones_and_priors(health: &Value) -> Vec<(String, Option<String>, String)> {
    health["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            (
                node["address"].as_str().unwrap().to_string(),
                node["zone"].as_str().map(str::to_string),
                node["score"]["prior"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_blind_client_reads_from_its_own_zone_first() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = tempfile::tempdir().unwrap();
    // Five nodes over ten shards in zones zone-0 (nodes 0, 2, 4) and zone-1 (nodes 1, 3):
    // committee selection gives each zone five shards, and a read needs four slivers.
    let cluster = Cluster::up(root.path(), 5, 10, &["--zones", "2"]);
    let blobs: Vec<(PathBuf, String)> =
        (0..2).map(|seed| cluster.store(root.path(), 200 * 1024, 10 + seed)).collect();

    // The committee as clients see it, in committee order: every node with the zone declared
    // for it, and the unknown prior for a client that has no zone.
    let health = |config: &Path| -> Vec<(String, Option<String>, String)> {
        let output = cluster.ok_as(config, &["health", "--latency", "--json"]);
        zones_and_priors(&serde_json::from_slice(&output.stdout).unwrap())
    };
    let plain = health(&cluster.dir.join("client.toml"));
    let zone_of: std::collections::BTreeMap<String, String> = plain
        .iter()
        .map(|(address, zone, _)| {
            (
                address.clone(),
                zone.clone().unwrap_or_else(|| panic!("zones are carried to clients: {plain:?}")),
            )
        })
        .collect();
    assert_eq!(zone_of.len(), 5);
    assert!(plain.iter().all(|(_, _, prior)| prior == "unknown"), "a client without a zone: {plain:?}");
    let first_members_zone = plain[0].1.clone().unwrap();
    let own_zone = if first_members_zone == "zone-0" { "zone-1" } else { "zone-0" };

    // The same client in the other zone than the committee's first member.
    let config = cluster.dir.join("client-zoned.toml");
    let text = std::fs::read_to_string(cluster.dir.join("client.toml")).unwrap();
    std::fs::write(&config, format!("zone = \"{own_zone}\"\n{text}")).unwrap();
    let zoned = health(&config);
    for (address, zone, prior) in &zoned {
        let expected = if zone.as_deref() == Some(own_zone) { "same_zone" } else { "other_zone" };
        assert_eq!(prior, expected, "{address} in {zone:?}: {zoned:?}");
    }
    let text = String::from_utf8(cluster.ok_as(&config, &["health", "--latency"]).stdout).unwrap();
    assert!(text.contains("same zone 2ms") && text.contains("other zone 60ms"), "{text}");

    let near = |address: &str| zone_of.get(address).map(String::as_str) == Some(own_zone);
    for (file, blob_id) in &blobs {
        // Nothing measured: no score cache.
        let _ = std::fs::remove_dir_all(&cluster.cache);
        let slivers = cluster.read_as(&config, blob_id, file);
        let asked_first = slivers["metadata_asked"][0].as_str().unwrap();
        assert!(near(asked_first), "the metadata was asked of a node in {own_zone} first: {slivers}");
        let chosen: Vec<&str> = slivers["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|request| request["hedge"] == false)
            .map(|request| request["node"].as_str().unwrap())
            .collect();
        assert!(!chosen.is_empty(), "{slivers}");
        assert!(
            chosen.iter().all(|node| near(node)),
            "every sliver chosen (not hedged) from {own_zone}: {slivers}"
        );
        assert!(used(&slivers).iter().any(|node| near(node)), "{slivers}");
    }
}
