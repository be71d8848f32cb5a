//! `morsa cluster` with the real binary: `up` starts a coordinator and 4 nodes on loopback as
//! separate processes, every node is healthy and the shards are all held exactly once; a node
//! is killed and restarted with the same shards; `down` stops every process and the
//! supervisor exits 0. Everything is cleaned up even when an assertion fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::eventually;
use common::supervisor::Supervisor;
use morsa_api::node::NodeHealth;
use morsa_cluster::NodeState;
use morsa_cluster::pids;

const MORSA: &str = env!("CARGO_BIN_EXE_morsa");
/// Longest a test waits for a cluster's state to change.
const WAIT: Duration = Duration::from_secs(30);
const NODES: usize = 4;
const SHARDS: u16 = 12;
/// `morsa cluster up` with this test's cluster size and `extra` options.
fn start_cluster(dir: &Path, extra: &[&str]) -> Supervisor {
    let size = ["--nodes", &NODES.to_string(), "--shards", &SHARDS.to_string()].map(String::from);
    let args: Vec<&str> = size.iter().map(String::as_str).chain(extra.iter().copied()).collect();
    Supervisor::start(dir, &args)
}

/// `morsa ARGS…`, to completion.
fn morsa(args: &[&str], dir: &Path) -> Output {
    Command::new(MORSA).args(args).arg("--dir").arg(dir).stdin(Stdio::null()).output().unwrap()
}

fn succeeds(args: &[&str], dir: &Path) -> String {
    let output = morsa(args, dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "morsa {args:?} failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// The one error line of a failing `morsa ARGS…` (exit code 1).
fn fails(args: &[&str], dir: &Path) -> String {
    let output = morsa(args, dir);
    assert_eq!(output.status.code(), Some(1), "morsa {args:?} fails with exit code 1");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

fn health(url: &str) -> Result<NodeHealth, reqwest::Error> {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    client.get(format!("{url}/v1/health")).send()?.error_for_status()?.json()
}

fn shard_numbers(node: &NodeState) -> Vec<u16> {
    node.info.shards.iter().map(|shard| shard.0).collect()
}

#[test]
fn a_cluster_comes_up_survives_a_killed_node_and_goes_down() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cluster");
    let supervisor = start_cluster(&dir, &[]);
    let state = supervisor.state();
    assert!(state.running);
    assert_eq!(state.nodes.len(), NODES);
    assert!(state.control_url.is_some());
    // The control API answers only its token, never a web page: a `down` without the token,
    // or with it and an Origin header, is refused and the cluster keeps running.
    let token_file = dir.join(morsa_cluster::control::TOKEN_FILE);
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(&token_file).unwrap();
    let control = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let down = format!("{}{}", state.control_url.as_deref().unwrap(), morsa_cluster::control::routes::DOWN);
    let refused = control.post(&down).header("content-type", "text/plain").send().unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let refused =
        control.post(&down).bearer_auth(token.trim()).header("origin", "http://evil.example").send().unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    // Malformed requests are refused in the API's JSON, not axum's plain text.
    let base = state.control_url.as_deref().unwrap();
    for (method, path, status) in [
        (reqwest::Method::POST, "/v1/nodes/first/kill", 400),
        (reqwest::Method::POST, "/v1/nodes/1/link", 415),
        (reqwest::Method::POST, "/v1/no-such-route", 404),
        (reqwest::Method::GET, morsa_cluster::control::routes::DOWN, 405),
    ] {
        let answer = control
            .request(method.clone(), format!("{base}{path}"))
            .bearer_auth(token.trim())
            .send()
            .unwrap();
        assert_eq!(answer.status().as_u16(), status, "{method} {path}");
        let body: morsa_cluster::control::ControlAnswer =
            answer.json().unwrap_or_else(|error| panic!("{method} {path}: not the API's JSON: {error}"));
        assert!(body.error.is_some_and(|error| !error.is_empty()), "{method} {path}");
    }
    assert_eq!(
        state.child_pids().len(),
        NODES + 2,
        "every process (and the gateway) is recorded with its pid"
    );
    let gateway = state.gateway.as_ref().expect("cluster up starts an S3 gateway");
    let s3_env = std::fs::read_to_string(dir.join("s3.env")).unwrap();
    assert!(s3_env.contains(&format!("export AWS_ENDPOINT_URL={}\n", gateway.url)), "{s3_env}");
    assert!(s3_env.contains("export AWS_SECRET_ACCESS_KEY="), "{s3_env}");

    // Every node is healthy as the node recorded, and together they hold every shard once.
    let mut held = Vec::new();
    for node in &state.nodes {
        let health = health(&node.info.url).unwrap();
        assert_eq!(health.node_id, node.info.node_id);
        let shards: Vec<u16> = health.shards.iter().map(|shard| shard.shard.0).collect();
        assert_eq!(
            shards,
            shard_numbers(node),
            "node {} holds the shards cluster.json lists",
            node.info.index
        );
        held.extend(shards);
    }
    held.sort_unstable();
    assert_eq!(held, (0..SHARDS).collect::<Vec<_>>(), "all shards, each exactly once");

    // The client's files, in the format the client reads.
    let client = std::fs::read_to_string(dir.join("client.toml")).unwrap();
    let node_urls: Vec<String> = state.nodes.iter().map(|node| format!("\"{}\"", node.info.url)).collect();
    assert_eq!(
        client,
        format!(
            "coordinator_url = \"{}\"\naccount_key_file = \"account.key\"\nnode_urls = [{}]\n",
            state.coordinator.url,
            node_urls.join(", ")
        )
    );
    let key = std::fs::read_to_string(dir.join("account.key")).unwrap();
    assert!(key.len() == 65 && key.ends_with('\n') && key[..64].bytes().all(|b| b.is_ascii_hexdigit()));
    let mode = std::fs::metadata(dir.join("account.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(supervisor.output.iter().any(|line| line.contains("MORSA_CONFIG=")), "{:#?}", supervisor.output);

    // A second cluster in the same directory, and bad node indices, are refused in one line.
    let in_use = fails(&["cluster", "up", "--nodes", "4", "--shards", "12"], &dir);
    assert!(in_use.contains("holds a running cluster"), "{in_use}");
    let no_node = fails(&["cluster", "kill", "--node", "9"], &dir);
    assert!(no_node.contains("there is no node 9"), "{no_node}");

    // Kill node 1: it stops answering, the others still do.
    let killed_pid = state.nodes[1].pid.unwrap();
    succeeds(&["cluster", "kill", "--node", "1"], &dir);
    eventually("node 1 refuses connections", WAIT, || {
        { health(&state.nodes[1].info.url).is_err_and(|error| error.is_connect()) }.then_some(())
    });
    assert!(!pids::is_alive(killed_pid));
    for node in state.nodes.iter().filter(|node| node.info.index != 1) {
        health(&node.info.url).unwrap();
    }
    assert_eq!(supervisor.state().nodes[1].pid, None);
    let again = fails(&["cluster", "kill", "--node", "1"], &dir);
    assert!(again.contains("node 1 is not running"), "{again}");

    // Start it again: same address, same identity, same shards.
    succeeds(&["cluster", "start", "--node", "1"], &dir);
    let restarted = health(&state.nodes[1].info.url).unwrap();
    assert_eq!(restarted.node_id, state.nodes[1].info.node_id);
    let shards: Vec<u16> = restarted.shards.iter().map(|shard| shard.shard.0).collect();
    assert_eq!(shards, shard_numbers(&state.nodes[1]));
    let after_restart = supervisor.state();
    assert!(after_restart.nodes[1].pid.is_some_and(|pid| pid != killed_pid));

    // Down: the supervisor exits 0 and no process of the cluster is left.
    let mut recorded = after_restart.child_pids();
    recorded.push(after_restart.supervisor_pid);
    succeeds(&["cluster", "down"], &dir);
    let mut supervisor = supervisor;
    let mut exit = None;
    eventually("the supervisor exits", WAIT, || {
        {
            exit = supervisor.child.try_wait().unwrap();
            exit.is_some()
        }
        .then_some(())
    });
    assert!(exit.unwrap().success(), "the supervisor exits 0: {exit:?}");
    for pid in recorded {
        assert!(!pids::is_alive(pid), "pid {pid} is gone");
    }
    assert!(!supervisor.state().running);
    let down_again = succeeds(&["cluster", "down"], &dir);
    assert!(down_again.contains("not running"), "{down_again}");
}

/// The role replica `url` reports in `/v1/system`, if it answers.
fn role(url: &str) -> Option<String> {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let system: morsa_api::coord::SystemInfo =
        client.get(format!("{url}/v1/system")).send().ok()?.json().ok()?;
    system.replica.map(|replica| replica.role)
}

#[test]
fn a_cluster_of_three_coordinator_replicas_survives_its_leader_killed() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cluster");
    let supervisor = start_cluster(&dir, &["--coordinators", "3", "--no-gateway"]);
    let state = supervisor.state();
    let urls: Vec<String> = state.coordinators.iter().map(|replica| replica.url.clone()).collect();
    assert_eq!(urls.len(), 3);
    assert_eq!(state.coordinator.url, urls[0], "\"coordinator\" stays the first replica");
    assert!(state.coordinators.iter().all(|replica| replica.pid.is_some()));

    // `morsa health` lists every replica with its role: once the group settled, one leader
    // and two followers.
    eventually("morsa health shows a leader and two followers", WAIT, || {
        {
            let output = Command::new(MORSA)
                .args(["health", "--json"])
                .env("MORSA_CONFIG", dir.join("client.toml"))
                .output()
                .unwrap();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            let health: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            let mut roles: Vec<String> = health["coordinators"]
                .as_array()
                .unwrap()
                .iter()
                .map(|replica| replica["role"].as_str().unwrap_or("none").to_owned())
                .collect();
            roles.sort();
            roles == ["follower", "follower", "leader"]
        }
        .then_some(())
    });

    let leader = (0..3).find(|index| role(&urls[*index]).as_deref() == Some("leader")).unwrap();
    succeeds(&["cluster", "kill", "--coordinator", &leader.to_string()], &dir);
    assert_eq!(supervisor.state().coordinators[leader].pid, None);
    let again = fails(&["cluster", "kill", "--coordinator", &leader.to_string()], &dir);
    assert!(again.contains(&format!("coordinator replica {leader} is not running")), "{again}");
    eventually("another replica leads", WAIT, || {
        { (0..3).any(|index| index != leader && role(&urls[index]).as_deref() == Some("leader")) }
            .then_some(())
    });

    succeeds(&["cluster", "start", "--coordinator", &leader.to_string()], &dir);
    eventually("the restarted replica follows", WAIT, || {
        (role(&urls[leader]).as_deref() == Some("follower")).then_some(())
    });

    // The admin token `cluster up` wrote, named in cluster.json and in its output, lets the
    // operator shrink the group: the restarted follower is removed.
    let token = state.coordinator_admin_token_file.clone().expect("cluster.json names the admin token");
    assert_eq!(token, dir.canonicalize().unwrap().join("coord-admin.token"));
    assert_eq!(std::fs::metadata(&token).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(
        supervisor.output.iter().any(|line| line.starts_with("coordinator admin token")
            && line.contains(token.to_str().unwrap())),
        "the output names the admin token: {:#?}",
        supervisor.output
    );
    let removed = u64::try_from(leader + 1).unwrap();
    let survivor = &urls[(leader + 1) % 3];
    let output = Command::new(MORSA)
        .args(["coord", "remove-replica", "--coordinator", survivor, "--id", &removed.to_string(), "--json"])
        .arg("--admin-token-file")
        .arg(&token)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "remove-replica failed: {}", String::from_utf8_lossy(&output.stderr));
    let group: morsa_api::coord::Membership = serde_json::from_slice(&output.stdout).unwrap();
    let ids: Vec<u64> = group.replicas.iter().map(|member| member.id).collect();
    assert_eq!(ids.len(), 2, "the group shrank to two: {ids:?}");
    assert!(!ids.contains(&removed), "replica {removed} is gone: {ids:?}");
    eventually("the other replicas see a group of two", WAIT, || {
        {
            let client =
                reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
            let system: Option<morsa_api::coord::SystemInfo> =
                client.get(format!("{survivor}/v1/system")).send().ok().and_then(|answer| answer.json().ok());
            system.and_then(|system| system.replica).is_some_and(|replica| replica.replicas.len() == 2)
        }
        .then_some(())
    });
    succeeds(&["cluster", "down"], &dir);
}

#[test]
fn an_impossible_cluster_is_refused_before_anything_starts() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cluster");
    let message = fails(&["cluster", "up", "--nodes", "5", "--shards", "4"], &dir);
    assert!(message.contains("--shards (4) must be at least --nodes (5)"), "{message}");
    assert!(!dir.exists(), "nothing was created");
    let message = fails(&["cluster", "kill", "--node", "0"], &dir);
    assert!(message.contains("cluster.json"), "{message}");
}
