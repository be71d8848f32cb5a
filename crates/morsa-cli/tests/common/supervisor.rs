//! `morsa cluster up` running as a child of a test; on drop it is stopped and every process it
//! recorded is killed, so a failing test leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use morsa_cluster::ClusterState;
use morsa_cluster::pids::{self, Signal};

/// Bound on a whole start-up (debug-built nodes on a busy 2-core machine).
pub const CLUSTER_STARTUP: Duration = Duration::from_secs(120);

/// A running `morsa cluster up`.
pub struct Supervisor {
    pub child: Child,
    pub dir: PathBuf,
    /// What it printed so far.
    pub output: Vec<String>,
    /// Its stdout, line by line; kept so the reader thread keeps draining it.
    pub lines: mpsc::Receiver<String>,
}

impl Supervisor {
    /// `morsa cluster up ARGS… --dir DIR`, once it printed "cluster is up".
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_morsa"))
            .args(["cluster", "up"])
            .args(args)
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let received = super::stdout_lines(&mut child);
        let mut supervisor = Self { child, dir: dir.to_path_buf(), output: Vec::new(), lines: received };
        let deadline = Instant::now() + CLUSTER_STARTUP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // On failure, dropping `supervisor` stops whatever was started.
            let line = supervisor.lines.recv_timeout(left).unwrap_or_else(|error| {
                panic!("cluster up did not finish ({error}); it printed {:#?}", supervisor.output)
            });
            let up = line.starts_with("cluster is up");
            supervisor.output.push(line);
            if up {
                return supervisor;
            }
        }
    }

    /// The cluster's recorded state.
    pub fn state(&self) -> ClusterState {
        ClusterState::load(&self.dir).unwrap()
    }

    /// The client configuration `cluster up` wrote.
    pub fn client_config(&self) -> PathBuf {
        self.dir.join(morsa_cluster::layout::CLIENT_CONFIG)
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let recorded = ClusterState::load(&self.dir).map(|state| state.child_pids()).unwrap_or_default();
        if self.child.try_wait().ok().flatten().is_none() {
            pids::send(self.child.id(), Signal::Term);
            if !pids::wait_gone(self.child.id(), Duration::from_secs(30)) {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
        let needle = self.dir.canonicalize().unwrap_or_default().to_string_lossy().into_owned();
        for pid in recorded {
            if pids::is_alive(pid) && pids::command_line_mentions(pid, &needle) {
                pids::send(pid, Signal::Kill);
            }
        }
    }
}
