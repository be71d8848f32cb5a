//! The client commands' promises, with the real binary against a local cluster of real
//! processes run by `morsa cluster up`: `read --out` replaces its target only with a complete
//! file and leaves no temporary file behind (after a failure or an interrupt too), `read
//! --json` reports time to first byte and throughput, `store --force` uploads again,
//! `--permanent` blobs cannot be deleted, `morsa info` shows the system the coordinator runs,
//! `renew` and `drill` (also `--with-failures`) do what they say and export it as metrics,
//! every metric exported is documented in docs/METRICS.md, and `morsa cluster stop` stops one
//! node cleanly, keeping its data for `cluster start`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use morsa_cluster::ClusterState;
use morsa_cluster::pids;
use serde_json::Value;

const NODES: usize = 4;
const SHARDS: u16 = 12;
/// Bound on the cluster's start-up (debug-built processes on a busy 2-core machine).
const STARTUP: Duration = Duration::from_secs(120);

/// `morsa cluster up` as a child; on drop it is stopped and every process it recorded is
/// killed, so that a failing test leaves nothing behind.
struct Cluster {
    supervisor: Child,
    dir: PathBuf,
    /// Its stdout, kept so that the reader thread keeps draining it.
    _lines: std::sync::mpsc::Receiver<String>,
}

impl Cluster {
    fn state(&self) -> ClusterState {
        ClusterState::load(&self.dir).unwrap()
    }

    fn client_config_path(&self) -> PathBuf {
        self.dir.join("client.toml")
    }

    /// Node URLs (`http://127.0.0.1:port`) and shard counts.
    fn nodes(&self) -> Vec<(String, usize)> {
        self.state().nodes.iter().map(|node| (node.info.url.clone(), node.info.shards.len())).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        common::stop_cluster_up(&mut self.supervisor, &self.dir);
    }
}

fn cluster(dir: &Path) -> Cluster {
    let dir = dir.join("cluster");
    let mut supervisor = Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["cluster", "up", "--nodes", &NODES.to_string(), "--shards", &SHARDS.to_string()])
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = common::stdout_lines(&mut supervisor);
    let cluster = Cluster { supervisor, dir, _lines: lines };
    let deadline = Instant::now() + STARTUP;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = cluster._lines.recv_timeout(left).expect("the cluster comes up");
        if line.starts_with("cluster is up") {
            return cluster;
        }
    }
}

fn morsa(cluster: &Cluster, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(args)
        .env("MORSA_CONFIG", cluster.client_config_path())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The body of a successful `GET url`, if it answers.
fn get(url: &str) -> Option<Vec<u8>> {
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    Some(http.get(url).send().ok()?.error_for_status().ok()?.bytes().ok()?.to_vec())
}

/// The node's health report, if it answers.
fn health(url: &str) -> Option<Value> {
    serde_json::from_slice(&get(&format!("{url}/v1/health"))?).ok()
}

fn morsa_json(cluster: &Cluster, args: &[&str]) -> Value {
    let output = morsa(cluster, args);
    assert!(output.status.success(), "morsa {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("morsa {args:?} printed no JSON ({error}): {output:?}"))
}

/// The one error line of a failing command (exit code 1, nothing on stdout).
fn fails(cluster: &Cluster, args: &[&str]) -> String {
    let output = morsa(cluster, args);
    assert_eq!(output.status.code(), Some(1), "morsa {args:?} fails: {output:?}");
    assert!(output.stdout.is_empty(), "morsa {args:?}: nothing on stdout: {output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// The value of the unlabelled gauge `name` in Prometheus text `text`.
fn gauge(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|line| line.split_whitespace().next() == Some(name));
    let value =
        line.and_then(|line| line.split_whitespace().nth(1)).unwrap_or_else(|| panic!("{name} in:\n{text}"));
    value.parse().unwrap()
}

fn nonce(cluster: &Cluster) -> u64 {
    morsa_json(cluster, &["info", "--json"])["account"]["nonce"].as_u64().unwrap()
}

/// Names of the entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The cluster's nodes stopped with SIGSTOP, continued (SIGCONT) when dropped.
struct Stopped(Vec<u32>);

impl Stopped {
    fn nodes(cluster: &Cluster) -> Self {
        let pids: Vec<u32> = cluster.state().nodes.iter().filter_map(|node| node.pid).collect();
        assert_eq!(pids.len(), NODES);
        for pid in &pids {
            assert!(Command::new("kill").args(["-STOP", &pid.to_string()]).status().unwrap().success());
        }
        Self(pids)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = Command::new("kill").args(["-CONT", &pid.to_string()]).status();
        }
    }
}

/// Waits up to `bound` for `child` to exit (killing it after).
fn wait_exit(child: &mut Child, bound: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the process did not exit within {bound:?}: {:?}", child.wait());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn client_commands_keep_their_promises() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path());
    let original = morsa_cluster::sample::bytes(300_000, 31);
    let file = dir.path().join("file");
    std::fs::write(&file, &original).unwrap();
    let file = file.to_str().unwrap();

    // `info` shows the system and the committee the cluster was started with.
    let info = morsa_json(&cluster, &["info", "--json"]);
    assert_eq!(info["system"]["n_shards"], SHARDS);
    let members = info["committee"]["current"]["members"].as_array().unwrap();
    assert_eq!(members.len(), NODES);
    for (url, shards) in cluster.nodes() {
        let address = url.trim_start_matches("http://");
        let member = members.iter().find(|member| member["address"] == address).unwrap();
        assert_eq!(member["shards"].as_array().unwrap().len(), shards, "{address}");
    }
    let nonce_at_start = info["account"]["nonce"].as_u64().unwrap();
    let text = morsa(&cluster, &["info"]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    for (url, _) in cluster.nodes() {
        assert!(text.contains(url.trim_start_matches("http://")), "{text}");
    }

    let stored = morsa_json(&cluster, &["store", file, "--json"]);
    let blob_id = stored[0]["blob_id"].as_str().unwrap().to_string();
    let object = stored[0]["object"].as_str().unwrap().to_string();
    assert!(nonce(&cluster) > nonce_at_start, "storing sends transactions");

    // `read --out` over an existing file: replaced by the whole blob, and nothing else is
    // left in the directory.
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let target = out_dir.join("target");
    std::fs::write(&target, b"what was there before").unwrap();
    let output = morsa(&cluster, &["read", &blob_id, "--out", target.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty(), "the data goes to the file, not stdout");
    assert!(std::fs::read(&target).unwrap() == original);
    assert_eq!(entries(&out_dir), ["target"], "no temporary file is left behind");
    // A read that fails leaves the target as it was and no temporary file.
    std::fs::write(&target, b"what was there before").unwrap();
    let unknown = redstuff::BlobId::from_root(10, &[9; 32]).to_string();
    let error = fails(&cluster, &["read", &unknown, "--out", target.to_str().unwrap()]);
    assert!(error.contains("not stored"), "{error}");
    assert_eq!(std::fs::read(&target).unwrap(), b"what was there before", "the target is untouched");
    assert_eq!(entries(&out_dir), ["target"], "no temporary file is left behind");
    // A read interrupted (SIGINT) while it waits for nodes that do not answer (all stopped
    // with SIGSTOP): the target stays as it was and the temporary file is removed.
    {
        let stopped = Stopped::nodes(&cluster);
        let mut reader = Command::new(env!("CARGO_BIN_EXE_morsa"))
            .args(["read", &blob_id, "--out", target.to_str().unwrap()])
            .env("MORSA_CONFIG", cluster.client_config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while entries(&out_dir).len() < 2 {
            assert!(reader.try_wait().unwrap().is_none(), "the read waits for the stopped nodes");
            assert!(Instant::now() < deadline, "the read opened no temporary file");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(Command::new("kill").args(["-INT", &reader.id().to_string()]).status().unwrap().success());
        let exit = wait_exit(&mut reader, Duration::from_secs(30));
        drop(stopped);
        assert!(!exit.success(), "an interrupted read fails: {exit:?}");
        assert_eq!(std::fs::read(&target).unwrap(), b"what was there before", "the target is untouched");
        assert_eq!(entries(&out_dir), ["target"], "the temporary file of an interrupted read is removed");
    }
    // `read --json` says how long the first byte took and the throughput, for the bytes it
    // wrote.
    let summary = morsa_json(&cluster, &["read", &blob_id, "--out", target.to_str().unwrap(), "--json"]);
    assert!(std::fs::read(&target).unwrap() == original);
    assert_eq!(summary["size"].as_u64(), Some(u64::try_from(original.len()).unwrap()), "{summary}");
    let (ttfb, seconds) = (summary["ttfb_seconds"].as_f64().unwrap(), summary["seconds"].as_f64().unwrap());
    assert!(0.0 < ttfb && ttfb <= seconds, "{summary}");
    let rate = summary["bytes_per_second"].as_f64().unwrap();
    let size = f64::from(u32::try_from(original.len()).unwrap());
    assert!((rate * seconds - size).abs() <= size * 0.01, "bytes/s times seconds is the size: {summary}");
    // Without --out the data goes to stdout, byte-identical.
    let output = morsa(&cluster, &["read", &blob_id]);
    assert!(output.status.success());
    assert!(output.stdout == original);

    // Storing again uploads nothing, unless forced: then a new object is paid for and
    // certified (the account sends transactions again).
    let before = nonce(&cluster);
    let again = morsa_json(&cluster, &["store", file, "--json"]);
    assert_eq!(again[0]["already_stored"], true);
    assert_eq!(nonce(&cluster), before);
    let forced = morsa_json(&cluster, &["store", file, "--force", "--json"]);
    assert_eq!(forced[0]["already_stored"], false);
    assert_eq!(forced[0]["blob_id"], blob_id.as_str());
    let forced_object = forced[0]["object"].as_str().unwrap();
    assert_ne!(forced_object, object, "a new blob object");
    assert!(nonce(&cluster) > before, "the forced store sent transactions");
    let status = morsa_json(&cluster, &["blob-status", &blob_id, "--json"]);
    let objects: Vec<&str> = status["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|object| object["object"].as_str().unwrap())
        .collect();
    assert!(objects.contains(&object.as_str()) && objects.contains(&forced_object), "{status}");

    // A permanent blob cannot be deleted; it stays certified.
    let permanent_file = dir.path().join("permanent");
    let permanent_data = morsa_cluster::sample::bytes(5000, 32);
    std::fs::write(&permanent_file, &permanent_data).unwrap();
    let permanent =
        morsa_json(&cluster, &["store", permanent_file.to_str().unwrap(), "--permanent", "--json"]);
    let permanent_id = permanent[0]["blob_id"].as_str().unwrap().to_string();
    let status = morsa_json(&cluster, &["blob-status", &permanent_id, "--json"]);
    assert_eq!(status["status"], "certified");
    assert_eq!(status["permanent"], true, "{status}");
    let error = fails(&cluster, &["delete", &permanent_id]);
    assert!(error.starts_with("error: "), "{error}");
    let status = morsa_json(&cluster, &["blob-status", &permanent_id, "--json"]);
    assert_eq!(status["status"], "certified", "still stored after the refused delete");
    let output = morsa(&cluster, &["read", &permanent_id]);
    assert!(output.status.success() && output.stdout == permanent_data);
    // A deletable one can.
    morsa_json(&cluster, &["delete", &blob_id, "--json"]);
    let status = morsa_json(&cluster, &["blob-status", &blob_id, "--json"]);
    assert_eq!(status["status"], "nonexistent");

    // `renew`: extends exactly the certified objects that end within the window, by the
    // epochs asked, and `list-blobs --expiring-within` lists the same ones beforehand.
    let mut short = Vec::new();
    for (epochs, seed) in [("1", 41), ("2", 42), ("5", 43)] {
        let path = dir.path().join(format!("renew-{epochs}"));
        std::fs::write(&path, morsa_cluster::sample::bytes(1000, seed)).unwrap();
        let stored = morsa_json(&cluster, &["store", path.to_str().unwrap(), "--epochs", epochs, "--json"]);
        short.push(stored[0]["object"].as_str().unwrap().to_string());
    }
    let info = morsa_json(&cluster, &["info", "--json"]);
    let epoch = info["system"]["epoch"].as_u64().unwrap();
    let ends = |listing: &Value| -> std::collections::BTreeMap<String, u64> {
        listing
            .as_array()
            .unwrap()
            .iter()
            .map(|blob| (blob["object"].as_str().unwrap().to_string(), blob["end_epoch"].as_u64().unwrap()))
            .collect()
    };
    let before = ends(&morsa_json(&cluster, &["list-blobs", "--json"]));
    let due: std::collections::BTreeSet<String> =
        before.iter().filter(|(_, end)| **end <= epoch + 2).map(|(object, _)| object.clone()).collect();
    assert!(due.contains(&short[0]) && due.contains(&short[1]) && !due.contains(&short[2]), "{before:?}");
    let listed = ends(&morsa_json(&cluster, &["list-blobs", "--expiring-within", "2", "--json"]));
    assert_eq!(listed.keys().cloned().collect::<std::collections::BTreeSet<_>>(), due);
    let renew_metrics = dir.path().join("renew.prom");
    let renew_metrics_arg = renew_metrics.to_str().unwrap();
    let renewed = morsa_json(
        &cluster,
        &["renew", "--before", "2", "--epochs", "3", "--metrics", renew_metrics_arg, "--json"],
    );
    let text = std::fs::read_to_string(&renew_metrics).unwrap();
    assert_eq!(gauge(&text, "morsa_renew_blobs_renewed"), f64::from(u32::try_from(due.len()).unwrap()));
    assert_eq!(gauge(&text, "morsa_renew_blobs_failed"), 0.0);
    assert_eq!(gauge(&text, "morsa_renew_blobs_expiring"), 0.0, "nothing is left to lapse:\n{text}");
    assert_eq!(renewed["failed"], 0, "{renewed}");
    let renewed_objects: std::collections::BTreeSet<String> = renewed["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|blob| blob["object"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(renewed_objects, due);
    let after = ends(&morsa_json(&cluster, &["list-blobs", "--json"]));
    for (object, end) in &before {
        let expected = if due.contains(object) { end + 3 } else { *end };
        assert_eq!(after[object], expected, "object {object}");
    }
    // Paid to the limit, a renewal fails, says why, and exits 1.
    let max_ahead = info["system"]["max_epochs_ahead"].as_u64().unwrap().to_string();
    morsa_json(&cluster, &["renew", "--before", &max_ahead, "--epochs", &max_ahead, "--json"]);
    let output =
        morsa(&cluster, &["renew", "--before", &max_ahead, "--epochs", "1", "--metrics", renew_metrics_arg]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("as far ahead as the system sells"), "{stdout}");
    // ... and its metrics say that what failed will lapse unless renewed.
    let text = std::fs::read_to_string(&renew_metrics).unwrap();
    let failed = gauge(&text, "morsa_renew_blobs_failed");
    assert!(failed > 0.0, "{text}");
    assert_eq!(gauge(&text, "morsa_renew_blobs_expiring"), failed, "{text}");

    // `drill`: restores every certified blob whole and at ranges, and says so in its JSON
    // report, its HTML page and its metrics; a blob that cannot be restored fails the drill
    // (exit 1), named in the report, while the others still pass.
    let reports = dir.path().join("drill");
    std::fs::create_dir(&reports).unwrap();
    let (report, html, metrics) = (reports.join("r.json"), reports.join("r.html"), reports.join("m.prom"));
    let drill = |extra: &[&str]| {
        let mut args = vec!["drill", "--ranges", "2", "--seed", "7", "--report", report.to_str().unwrap()];
        args.extend_from_slice(&["--html", html.to_str().unwrap(), "--metrics", metrics.to_str().unwrap()]);
        args.extend_from_slice(extra);
        morsa(&cluster, &args)
    };
    let output = drill(&["--all"]);
    assert!(output.status.success(), "{output:?}");
    let certified: std::collections::BTreeSet<String> = morsa_json(&cluster, &["list-blobs", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|blob| !blob["certified_epoch"].is_null())
        .map(|blob| blob["blob_id"].as_str().unwrap().to_string())
        .collect();
    let passed: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let drilled: std::collections::BTreeSet<String> = passed["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|blob| {
            assert_eq!(blob["ok"], true, "{blob}");
            assert_eq!(blob["ranges"].as_array().unwrap().len(), 2, "{blob}");
            blob["blob_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(drilled, certified);
    assert_eq!(passed["failed"], 0);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(certified.iter().all(|blob_id| page.contains(blob_id.as_str())), "the page names every blob");
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(text.contains("morsa_drill_success 1"));
    // Every restored blob is one observation of each histogram.
    let restored = f64::from(u32::try_from(certified.len()).unwrap());
    assert_eq!(gauge(&text, "morsa_drill_time_to_first_byte_seconds_count"), restored, "{text}");
    assert_eq!(gauge(&text, "morsa_drill_restore_throughput_bytes_per_second_count"), restored, "{text}");
    let list = reports.join("blobs.txt");
    let kept = certified.iter().next().unwrap().clone();
    std::fs::write(&list, format!("{kept}\n# a blob nobody stored:\n{unknown}\n")).unwrap();
    let output = drill(&["--blobs", list.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains(&unknown), "{output:?}");
    let failed: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!((failed["passed"].as_u64(), failed["failed"].as_u64()), (Some(1), Some(1)), "{failed}");
    assert_eq!(failed["blobs"][1]["blob_id"], unknown.as_str());
    assert_eq!(failed["blobs"][1]["ok"], false);
    assert!(std::fs::read_to_string(&metrics).unwrap().contains("morsa_drill_success 0"));

    // `drill --with-failures` reads as if the nodes of f shards were gone (n = 12: f = 3, one
    // node of three shards), names them, and still restores every blob.
    let output = drill(&["--all", "--with-failures"]);
    assert!(output.status.success(), "{output:?}");
    let with_failures: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(with_failures["failed"], 0, "{with_failures}");
    assert_eq!(with_failures["passed"].as_u64(), Some(u64::try_from(certified.len()).unwrap()));
    let failures = &with_failures["with_failures"];
    assert_eq!(
        (failures["tolerated_shards"].as_u64(), failures["excluded_shards"].as_u64()),
        (Some(3), Some(3))
    );
    let nodes = cluster.nodes();
    let excluded_nodes = |failures: &Value| -> Vec<usize> {
        failures["excluded_nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|node| {
                let address = node["address"].as_str().unwrap();
                nodes.iter().position(|(url, _)| url.trim_start_matches("http://") == address).unwrap()
            })
            .collect()
    };
    let excluded = excluded_nodes(failures);
    assert_eq!(excluded.iter().map(|index| nodes[*index].1).sum::<usize>(), 3, "{failures}");
    let drill_metrics = std::fs::read_to_string(&metrics).unwrap();
    assert_eq!(gauge(&drill_metrics, "morsa_drill_excluded_shards"), 3.0);
    // The exclusion is real: with two other nodes stopped (6 shards, more than f and at most
    // 2f) the 6 left are the n - 2f a read needs, and a plain drill passes; leaving out the
    // excluded node too leaves 3, and the same drill with failures (same seed, same node)
    // fails for every blob.
    let others: Vec<usize> = (0..NODES).filter(|index| !excluded.contains(index)).take(2).collect();
    let dir_arg = cluster.dir.to_str().unwrap().to_string();
    for index in &others {
        let output = morsa(&cluster, &["cluster", "stop", "--node", &index.to_string(), "--dir", &dir_arg]);
        assert!(output.status.success(), "{output:?}");
    }
    let output = drill(&["--all"]);
    assert!(output.status.success(), "n - 2f shards restore every blob: {output:?}");
    let output = drill(&["--all", "--with-failures"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let failed: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(excluded_nodes(&failed["with_failures"]), excluded, "the seed picks the same node");
    assert_eq!(failed["failed"].as_u64(), Some(u64::try_from(certified.len()).unwrap()), "{failed}");
    for index in &others {
        let output = morsa(&cluster, &["cluster", "start", "--node", &index.to_string(), "--dir", &dir_arg]);
        assert!(output.status.success(), "{output:?}");
    }

    // Every metric the coordinator, the nodes, the drill and the renewals export is in
    // docs/METRICS.md, with its type.
    let documented = common::metrics_doc::documented();
    let mut sources = vec![
        (format!("{}/metrics", cluster.state().coordinator.url), None),
        ("the drill's textfile".to_string(), Some(std::fs::read_to_string(&metrics).unwrap())),
        ("the renewal's textfile".to_string(), Some(std::fs::read_to_string(&renew_metrics).unwrap())),
    ];
    sources.extend(nodes.iter().map(|(url, _)| (format!("{url}/metrics"), None)));
    for (source, text) in sources {
        let text =
            text.unwrap_or_else(|| String::from_utf8(get(&source).expect("metrics are served")).unwrap());
        let exported = common::metrics_doc::exported(&text);
        assert!(!exported.is_empty(), "{source}:\n{text}");
        let wrong = common::metrics_doc::mismatches(&exported, &documented);
        assert!(wrong.is_empty(), "{source}: {wrong:#?}");
    }

    // `cluster stop`: the node exits cleanly on SIGTERM (the command fails otherwise) and
    // stops answering; started again, it serves what it stored.
    let (url, _) = cluster.nodes()[1].clone();
    let pid = cluster.state().nodes[1].pid.unwrap();
    let metadata = get(&format!("{url}/v1/blobs/{permanent_id}/metadata")).expect("node 1 has the metadata");
    let output = morsa(&cluster, &["cluster", "stop", "--node", "1", "--dir", &dir_arg]);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8(output.stdout).unwrap().contains("node 1 stopped"));
    assert!(!pids::is_alive(pid), "the node's process is gone");
    assert!(health(&url).is_none(), "the stopped node does not answer");
    assert_eq!(cluster.state().nodes[1].pid, None);
    let again = morsa(&cluster, &["cluster", "stop", "--node", "1", "--dir", &dir_arg]);
    assert_eq!(again.status.code(), Some(1), "a stopped node cannot be stopped again");
    let output = morsa(&cluster, &["cluster", "start", "--node", "1", "--dir", &dir_arg]);
    assert!(output.status.success(), "{output:?}");
    let kept = get(&format!("{url}/v1/blobs/{permanent_id}/metadata"));
    assert!(kept == Some(metadata), "its data is kept");
    let output = morsa(&cluster, &["cluster", "down", "--dir", &dir_arg]);
    assert!(output.status.success(), "{output:?}");
}
