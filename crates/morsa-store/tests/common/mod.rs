//! The child-process machinery shared by the crash tests.
//!
//! A crash test re-executes its own binary as a *writer* child process, selected by an
//! environment variable (which carries the directory of the database) and the name of a test
//! that does nothing in a normal run. The writer prints `ack <n>` on a line of its own once write
//! `n` has returned, i.e. once it is acknowledged. The parent reads those lines, `SIGKILL`s the
//! writer in the middle of its loop and gets every acknowledgement printed before it died; the
//! test then reopens the database and checks it against them.

use std::io::{BufRead, BufReader, StdoutLock, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// A round that has not seen its acknowledgements by then fails.
const ROUND_TIMEOUT: Duration = Duration::from_secs(60);

/// How the parent starts a writer child.
pub struct Writer {
    /// The name of the writer "test", used as the child's exact test filter.
    pub test: &'static str,
    /// The environment variable that makes that test a writer; it carries the database's
    /// directory.
    pub dir_env: &'static str,
}

/// In the writer child: the database's directory, or `None` in a normal test run (where the
/// writer test must do nothing).
pub fn writer_dir(writer: &Writer) -> Option<PathBuf> {
    std::env::var_os(writer.dir_env).map(PathBuf::from)
}

/// In the writer child: prints acknowledgements to the parent.
pub struct Acknowledger(StdoutLock<'static>);

impl Acknowledger {
    /// Starts acknowledging; `None` if the parent is already gone.
    pub fn start() -> Option<Self> {
        let mut stdout = std::io::stdout().lock();
        // End the line the test harness may have begun ("test crash_writer ... "), so that every
        // acknowledgement starts a line of its own.
        stdout.write_all(b"\n").ok()?;
        Some(Self(stdout))
    }

    /// Acknowledges writes `acknowledged`, in one write of whole lines. Call it only after the
    /// writes returned: what the parent reads is durable. Returns `false` if the parent is gone.
    pub fn ack(&mut self, acknowledged: impl IntoIterator<Item = u64>) -> bool {
        let lines: String = acknowledged.into_iter().map(|n| format!("ack {n}\n")).collect();
        self.0.write_all(lines.as_bytes()).is_ok() && self.0.flush().is_ok()
    }
}

/// In the parent: runs one writer on the database in `dir`, with the extra environment `envs`,
/// until it has acknowledged at least `wanted` writes, `SIGKILL`s it, and returns every
/// acknowledgement it printed before dying, in order.
pub fn crash_after_acks(writer: &Writer, dir: &Path, envs: &[(&str, String)], wanted: usize) -> Vec<u64> {
    let mut child = Command::new(std::env::current_exe().expect("the test binary's path"));
    child
        .args([writer.test, "--exact", "--nocapture", "--test-threads=1"])
        .env(writer.dir_env, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, value) in envs {
        child.env(name, value);
    }
    let mut child = child.spawn().expect("start the writer");
    let stdout = child.stdout.take().expect("the writer's stdout is piped");
    let mut child = KillOnDrop(child);

    let (sender, receiver) = mpsc::sync_channel(1024);
    let reader = thread::spawn(move || forward_acknowledgements(stdout, sender));

    let deadline = Instant::now() + ROUND_TIMEOUT;
    let mut acknowledged = Vec::new();
    while acknowledged.len() < wanted {
        match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(n) => acknowledged.push(n),
            Err(RecvTimeoutError::Timeout) => {
                panic!("the writer acknowledged only {} writes in {ROUND_TIMEOUT:?}", acknowledged.len())
            }
            Err(RecvTimeoutError::Disconnected) => panic!(
                "the writer exited after {} acknowledgements (its stderr is above)",
                acknowledged.len()
            ),
        }
    }

    let status = child.kill();
    assert!(!status.success(), "the writer was killed, not finished: {status}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "the writer died of SIGKILL: {status}");
    }
    // Whatever it printed before dying was acknowledged too: the pipe holds it until read.
    acknowledged.extend(receiver.iter());
    reader.join().expect("the reader thread");
    acknowledged
}

/// Kills the child when dropped, so a failing test never leaves a writer behind.
struct KillOnDrop(Child);

impl KillOnDrop {
    /// Crashes the child now (`SIGKILL` on Unix) and reaps it.
    fn kill(&mut self) -> ExitStatus {
        // An error means it already exited; `wait` below tells how.
        let _ = self.0.kill();
        self.0.wait().expect("reap the writer")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads the writer's acknowledgements on a thread (so the parent can time out) and sends them
/// on. Only complete lines count: a line cut by the kill was never acknowledged.
fn forward_acknowledgements(stdout: ChildStdout, sender: mpsc::SyncSender<u64>) {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let Some(n) = line.strip_suffix('\n').and_then(|line| line.strip_prefix("ack ")) else {
            continue; // The test harness's own output.
        };
        let n = n.parse().expect("the writer prints numbers");
        if sender.send(n).is_err() {
            return;
        }
    }
}
