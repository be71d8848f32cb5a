//! Real `morsa` processes for tests: started on loopback, killed when dropped.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

pub mod churn;
pub mod keys;
pub mod metrics_doc;
pub mod replicas;
pub mod supervisor;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use morsa_cluster::pids::{self, Signal};

/// How long a process may take to announce its address.
pub const STARTUP: Duration = Duration::from_secs(30);

/// Polls `check` every 50 ms until it answers `Some`, for at most `within`; panics naming
/// `what` if it never does.
pub fn eventually<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process frozen with SIGSTOP (it takes connections and answers nothing) until dropped,
/// when it is thawed with SIGCONT, also if the test fails, so that its cluster stops cleanly.
pub struct Frozen(u32);

impl Frozen {
    pub fn new(pid: u32) -> Self {
        let status = std::process::Command::new("kill").args(["-STOP", &pid.to_string()]).status().unwrap();
        assert!(status.success(), "kill -STOP {pid}");
        Self(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-CONT", &self.0.to_string()]).status();
    }
}

/// The lines `child` prints on stdout (piped), read on a thread of their own so that the
/// child never blocks on a full pipe.
pub fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}

/// A running `morsa` process; SIGKILLed and reaped when dropped.
pub struct Process {
    pub child: Child,
    pub url: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Starts `morsa ARGS... --config CONFIG` and waits for its "… listening on URL" line.
    pub fn start(args: &[&str], config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_morsa"))
            .args(args)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let received = stdout_lines(&mut child);
        let mut process = Self { child, url: String::new() };
        let line = received.recv_timeout(STARTUP).expect("the process announces its address");
        process.url = line.split(" listening on ").nth(1).expect("an announcement line").to_string();
        process
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "exits cleanly on SIGTERM: {exit:?}");
    }
}

/// Writes a lone coordinator's files into `dir`: `genesis.json` ([`coord_genesis`]) and a
/// `coord.toml` listening on a free loopback port; answers the config's path and the genesis.
pub fn write_coord_files(
    dir: &Path,
    chain: &str,
    user: &morsa_core::AccountKey,
) -> (std::path::PathBuf, morsa_coord::Genesis) {
    let genesis = coord_genesis(chain, user);
    std::fs::write(dir.join("genesis.json"), serde_json::to_vec(&genesis).unwrap()).unwrap();
    let config = dir.join("coord.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\ngenesis = \"genesis.json\"\n")
        .unwrap();
    (config, genesis)
}

/// A genesis of four nodes (seeded keys, unreachable addresses), 10 shards, hour-long epochs,
/// and `user` funded with 1,000,000, for tests of the coordinator alone.
pub fn coord_genesis(chain: &str, user: &morsa_core::AccountKey) -> morsa_coord::Genesis {
    morsa_coord::Genesis::coordinator_only(
        chain,
        vec![morsa_coord::GenesisAccount { id: user.id(), balance: 1_000_000 }],
    )
}

/// A local cluster of `nodes` real processes sharing `shards` shards, in `dir/cluster`, with
/// an hour-long epoch (no epoch change during a test).
pub fn local_cluster(dir: &Path, nodes: usize, shards: u16) -> morsa_cluster::Cluster {
    local_cluster_with(dir, 1, nodes, shards)
}

/// [`local_cluster`] with `coordinators` coordinator replicas.
pub fn local_cluster_with(
    dir: &Path,
    coordinators: usize,
    nodes: usize,
    shards: u16,
) -> morsa_cluster::Cluster {
    morsa_cluster::Cluster::up(morsa_cluster::ClusterSpec {
        coordinators,
        nodes,
        shards,
        dir: dir.join("cluster"),
        epoch_duration: Duration::from_secs(3600),
        binary: std::path::PathBuf::from(env!("CARGO_BIN_EXE_morsa")),
        node_links: Default::default(),
        zones: 0,
    })
    .unwrap()
}

/// Runs the real `morsa ARGS` with the client configuration `config`.
pub fn morsa_with(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_morsa")).args(args).env("MORSA_CONFIG", config).output().unwrap()
}

/// Runs `morsa ARGS` with `config`, expects success, and parses its stdout as JSON.
pub fn morsa_json_with(config: &Path, args: &[&str]) -> serde_json::Value {
    let output = morsa_with(config, args);
    assert!(output.status.success(), "morsa {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("morsa {args:?} printed no JSON ({error}): {output:?}"))
}

/// Runs `morsa ARGS` with the client configuration `config`, SIGKILLing it if it runs longer
/// than `bound` (and failing the test then): a command that hangs is a failure, not a wait.
pub fn morsa_bounded(config: &Path, args: &[&str], bound: Duration) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(args)
        .env("MORSA_CONFIG", config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(bound) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            pids::send(pid, Signal::Kill);
            panic!("morsa {args:?} did not finish within {bound:?}");
        }
    }
}

/// Stops a `morsa cluster up` started by a test: resumes its recorded children (a test may
/// have stopped some), asks the supervisor to stop them (SIGTERM, then SIGKILL after 30 s),
/// and kills any recorded child of the cluster at `dir` still running.
pub fn stop_cluster_up(supervisor: &mut Child, dir: &Path) {
    let recorded = morsa_cluster::ClusterState::load(dir).map(|state| state.child_pids()).unwrap_or_default();
    for pid in &recorded {
        pids::send(*pid, Signal::Cont);
    }
    if supervisor.try_wait().ok().flatten().is_none() {
        pids::send(supervisor.id(), Signal::Term);
        if !pids::wait_gone(supervisor.id(), Duration::from_secs(30)) {
            let _ = supervisor.kill();
        }
        let _ = supervisor.wait();
    }
    let needle = dir.to_string_lossy().into_owned();
    for pid in recorded {
        if pids::is_alive(pid) && pids::command_line_mentions(pid, &needle) {
            pids::send(pid, Signal::Kill);
        }
    }
}
