//! `morsa quickstart`, the README's first command, run as a user runs it (the real binary,
//! default settings): it stores the 16 MiB sample, reads it back, kills nodes holding up to f
//! shards and the leading one of its three coordinator replicas, reads it again through the
//! survivors, names the new leader, prints a summary and stops every process it started.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use morsa_cluster::ClusterState;
use morsa_cluster::pids::{self, Signal};

/// Kills whatever the cluster in `dir` recorded, if the test fails before quickstart did.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(state) = ClusterState::load(&self.0) else { return };
        let needle = self.0.to_string_lossy().into_owned();
        for pid in state.child_pids() {
            if pids::is_alive(pid) && pids::command_line_mentions(pid, &needle) {
                pids::send(pid, Signal::Kill);
            }
        }
    }
}

#[test]
fn quickstart_stores_reads_survives_f_failures_and_stops_everything() {
    let root = tempfile::tempdir().unwrap();
    let keep = root.path().join("cluster");
    let _cleanup = Cleanup(keep.clone());
    let output = Command::new(env!("CARGO_BIN_EXE_morsa"))
        .arg("quickstart")
        .arg("--keep")
        .arg(&keep)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));

    // Every step, in order.
    let mut at = 0;
    for step in [
        "1/5 starting a local cluster",
        "2/5 storing",
        "3/5 reading it back",
        "4/5 killing",
        "5/5 reading it again",
    ] {
        let found =
            stdout[at..].find(step).unwrap_or_else(|| panic!("no step {step:?} after byte {at}: {stdout}"));
        at += found + step.len();
    }
    assert_eq!(stdout.matches("    identical, read in").count(), 2, "both reads byte-identical: {stdout}");

    // The blob ID printed is the ID of the sample's bytes (one blob at 70 shards).
    let sample = root.path().join("sample.bin");
    std::fs::write(&sample, morsa_cluster::sample::bytes(16 << 20, 1)).unwrap();
    let id = Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["blob-id", sample.to_str().unwrap(), "--n-shards", "70", "--json"])
        .output()
        .unwrap();
    let id: serde_json::Value = serde_json::from_slice(&id.stdout).unwrap();
    let blob_id = id["blob_id"].as_str().unwrap();
    let summary_id = stdout.lines().rfind(|line| line.trim_start().starts_with("blob ID ")).unwrap();
    assert!(summary_id.trim_end().ends_with(blob_id), "{summary_id} is the ID of the sample {blob_id}");
    assert!(stdout.contains(&format!("blob ID {blob_id} certified in")), "{stdout}");

    // Nodes holding at most f = 23 of the 70 shards, and at least one, were down.
    let down = stdout.lines().find(|line| line.trim_start().starts_with("nodes down")).unwrap();
    let words: Vec<&str> = down.split_whitespace().collect();
    let (nodes, shards): (usize, usize) =
        (words[2].parse().unwrap(), words[5].trim_start_matches('(').parse().unwrap());
    assert!(nodes >= 1 && (1..=23).contains(&shards), "{down}");

    let state = ClusterState::load(&keep).unwrap();
    assert_eq!(state.nodes.len(), 7);
    assert_eq!(state.coordinators.len(), 3, "three coordinator replicas by default");
    assert!(stdout.contains("coordinator leader"), "the leader was killed too: {stdout}");
    assert_nothing_left_running(&keep);
}

/// Nothing the quickstart started is left running: no process mentions the cluster's
/// directory.
fn assert_nothing_left_running(keep: &std::path::Path) {
    let state = ClusterState::load(keep).unwrap();
    assert!(!state.running, "the cluster is recorded as stopped");
    let needle = keep.to_string_lossy().into_owned();
    let left: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| pids::is_alive(*pid) && pids::command_line_mentions(*pid, &needle))
        .collect();
    assert!(left.is_empty(), "processes {left:?} of the cluster are still running");
}

#[test]
fn quickstart_kills_the_leading_coordinator_replica_too_and_names_its_successor() {
    let root = tempfile::tempdir().unwrap();
    let keep = root.path().join("cluster");
    let _cleanup = Cleanup(keep.clone());
    let sample = root.path().join("small.bin");
    std::fs::write(&sample, morsa_cluster::sample::bytes(1 << 20, 2)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["quickstart", "--nodes", "4", "--shards", "12"])
        .arg(&sample)
        .arg("--keep")
        .arg(&keep)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("1/5 starting a local cluster: 3 coordinator replicas and 4 storage nodes"),
        "{stdout}"
    );

    // The failure step kills the leader with the nodes, and the read after it is identical.
    let killing = stdout.lines().find(|line| line.starts_with("4/5 killing")).unwrap();
    let old: usize = killing
        .split("the leading coordinator replica ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the failure step names the leader it kills: {killing}"))
        .parse()
        .unwrap();
    let after_kill = &stdout[stdout.find("5/5 reading it again").unwrap()..];
    assert!(after_kill.contains("    identical, read in"), "the read after the kill is identical: {stdout}");

    // The summary names the killed leader and a different, elected one.
    let summary = stdout.lines().find(|line| line.trim_start().starts_with("coordinator leader")).unwrap();
    let words: Vec<&str> = summary.split_whitespace().collect();
    assert_eq!(words[3].trim_end_matches(','), old.to_string(), "{summary}");
    let new: usize = words[6].parse().unwrap();
    assert!(new != old && new < 3, "{summary}");
    assert!(after_kill.contains(&format!("coordinator replica {new} was elected leader")), "{stdout}");

    let state = ClusterState::load(&keep).unwrap();
    assert_eq!(state.coordinators.len(), 3);
    assert_nothing_left_running(&keep);

    // Two replicas would have no majority left after the kill: refused before anything starts.
    let refused = root.path().join("refused");
    let output = Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["quickstart", "--coordinators", "2", "--keep"])
        .arg(&refused)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("no majority"), "{stderr}");
    assert!(!refused.exists(), "nothing was created");

    // A lone coordinator: nothing to elect, no leader killed.
    let lone = root.path().join("lone");
    let _cleanup = Cleanup(lone.clone());
    let output = Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["quickstart", "--coordinators", "1", "--nodes", "4", "--shards", "12"])
        .arg(&sample)
        .arg("--keep")
        .arg(&lone)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("1/5 starting a local cluster: a coordinator and 4 storage nodes"), "{stdout}");
    assert!(!stdout.contains("coordinator leader"), "{stdout}");
    assert_eq!(stdout.matches("    identical, read in").count(), 2, "{stdout}");
    assert_nothing_left_running(&lone);
}
