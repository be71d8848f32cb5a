//! One supervised `morsa` process: started with its output in a log, its URL read from its
//! first line, stopped with SIGTERM (then SIGKILL) or killed, and killed when dropped.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::ClusterError;
use crate::pids::{self, POLL, Signal};

/// How long a process may take to print its `… listening on URL` line.
pub const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(30);

/// How the process is started.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// `coordinator` or `node I`, for messages.
    pub name: String,
    /// The `morsa` binary.
    pub binary: PathBuf,
    /// Arguments, e.g. `node run --config DIR/node0.toml`.
    pub args: Vec<OsString>,
    /// Working directory.
    pub dir: PathBuf,
    /// The log, appended to across restarts.
    pub log: PathBuf,
}

/// A process that may be running.
#[derive(Debug)]
pub(crate) struct Process {
    pub launch: Launch,
    child: Option<Child>,
}

impl Process {
    /// Not started yet.
    pub fn new(launch: Launch) -> Self {
        Self { launch, child: None }
    }

    fn error(&self, reason: impl Into<String>) -> ClusterError {
        ClusterError::Process {
            name: self.launch.name.clone(),
            reason: reason.into(),
            log: self.launch.log.clone(),
        }
    }

    /// Starts the process and returns the URL it announces.
    pub fn start(&mut self) -> Result<String, ClusterError> {
        let launch = &self.launch;
        let log = File::options()
            .create(true)
            .append(true)
            .open(&launch.log)
            .map_err(ClusterError::io(format!("cannot open {}", launch.log.display())))?;
        let stderr = log.try_clone().map_err(ClusterError::io("cannot share the log file"))?;
        let mut command = Command::new(&launch.binary);
        command
            .args(&launch.args)
            .current_dir(&launch.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .env("NO_COLOR", "1")
            // Its own process group: a Ctrl-C in the terminal reaches the supervisor only,
            // which then stops the nodes before the coordinator.
            .process_group(0);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        let mut child = command
            .spawn()
            .map_err(|error| self.error(format!("cannot run {}: {error}", launch.binary.display())))?;
        let stdout = child.stdout.take();
        self.child = Some(child);
        let stdout = stdout.ok_or_else(|| self.error("its stdout was not captured"))?;
        let (announce, announced) = mpsc::channel();
        std::thread::spawn(move || forward_output(stdout, log, &announce));
        let line = match announced.recv_timeout(ANNOUNCE_TIMEOUT) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.kill();
                return Err(self.error(format!("did not announce its address within {ANNOUNCE_TIMEOUT:?}")));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = self.wait_exit(Duration::from_secs(5));
                self.kill();
                let status = status.map_or_else(|| "closed its output".to_string(), |s| s.to_string());
                return Err(self.error(format!("exited before listening ({status})")));
            }
        };
        match line.split_once(" listening on ") {
            Some((_, url)) => Ok(url.trim().to_string()),
            None => {
                self.kill();
                Err(self.error(format!("printed {line:?} instead of its address")))
            }
        }
    }

    /// The pid, while running.
    pub fn pid(&mut self) -> Option<u32> {
        self.is_running().then(|| self.child.as_ref().map(Child::id)).flatten()
    }

    /// Whether the process is running (reaping it if it has exited).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => match child.try_wait() {
                Ok(None) => true,
                Ok(Some(_)) | Err(_) => {
                    self.child = None;
                    false
                }
            },
            None => false,
        }
    }

    /// SIGKILLs and reaps the process, if running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Fails only if it has already exited, which is what we want.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `bound`; then SIGKILLs. Returns whether it exited cleanly
    /// (status 0 on SIGTERM) and how, for messages; `None` if it was not running.
    pub fn terminate(&mut self, bound: Duration) -> Option<Result<(), String>> {
        let pid = self.pid()?;
        pids::send(pid, Signal::Term);
        let outcome = match self.wait_exit(bound) {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(format!("{} exited with {status}", self.launch.name)),
            None => Err(format!("{} did not stop within {bound:?} and was killed", self.launch.name)),
        };
        self.kill();
        Some(outcome)
    }

    /// Waits up to `bound` for the process to exit; its status if it did.
    fn wait_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        let child = self.child.as_mut()?;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends the first line of `stdout` to `announce`, then copies everything (that line too)
/// into the log until the process closes its output.
fn forward_output(stdout: std::process::ChildStdout, mut log: File, announce: &mpsc::Sender<String>) {
    use std::io::Write as _;
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    if reader.read_line(&mut first).is_ok_and(|read| read > 0) {
        let _ = log.write_all(first.as_bytes());
        let _ = announce.send(first.trim_end().to_string());
        let _ = std::io::copy(&mut reader, &mut log);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str, log: PathBuf) -> Process {
        Process::new(Launch {
            name: "test".into(),
            binary: "sh".into(),
            args: vec!["-c".into(), script.into()],
            dir: std::env::temp_dir(),
            log,
        })
    }

    #[test]
    fn the_announced_url_is_read_and_output_logged() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("test.log");
        let mut process = shell("echo 'node listening on http://127.0.0.1:1'; echo more; exec sleep 30", log);
        assert_eq!(process.start().unwrap(), "http://127.0.0.1:1");
        assert!(process.is_running());
        let pid = process.pid().unwrap();
        // `sleep` dies of SIGTERM: not a clean exit.
        let exit = process.terminate(Duration::from_secs(10)).unwrap().unwrap_err();
        assert!(exit.contains("exited with") && exit.contains("SIGTERM"), "{exit}");
        assert!(!process.is_running());
        assert!(pids::wait_gone(pid, Duration::from_secs(1)));
        let text = std::fs::read_to_string(dir.path().join("test.log")).unwrap();
        assert!(text.starts_with("node listening on http://127.0.0.1:1\nmore\n"), "{text:?}");
    }

    #[test]
    fn a_process_that_exits_early_is_reported_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut process = shell("echo 'cannot listen' >&2; exit 3", dir.path().join("test.log"));
        let message = process.start().unwrap_err().to_string();
        assert!(message.contains("exited before listening"), "{message}");
        assert!(message.contains("test.log"), "{message}");
        let log = std::fs::read_to_string(dir.path().join("test.log")).unwrap();
        assert_eq!(log, "cannot listen\n");
    }
}
