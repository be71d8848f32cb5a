//! Signals to processes known only by pid (from `cluster.json`), without unsafe code: through
//! the `kill` command, and `/proc` to tell a live process from a zombie or a stranger.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A signal we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: stop cleanly.
    Term,
    /// SIGKILL: stop now.
    Kill,
    /// SIGSTOP: freeze (the kernel still accepts connections for it; nothing answers them).
    Stop,
    /// SIGCONT: go on after a SIGSTOP.
    Cont,
}

impl Signal {
    fn flag(self) -> &'static str {
        match self {
            Signal::Term => "-TERM",
            Signal::Kill => "-KILL",
            Signal::Stop => "-STOP",
            Signal::Cont => "-CONT",
        }
    }
}

/// Sends `signal` to `pid`; false if the process does not exist or `kill` could not be run.
pub fn send(pid: u32, signal: Signal) -> bool {
    Command::new("kill")
        .arg(signal.flag())
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether `pid` is a live process: it exists and, where `/proc` tells, is not a zombie
/// (a zombie has exited; only its parent has not collected its status yet).
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) if Path::new("/proc/self/stat").exists() => false,
        Err(_) => Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success()),
    }
}

/// Whether `pid`'s command line mentions `needle` (true where `/proc` cannot tell). Guards
/// against signalling an unrelated process that reused the pid of a dead cluster process.
pub fn command_line_mentions(pid: u32, needle: &str) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).contains(needle),
        Err(_) => !Path::new("/proc/self/cmdline").exists(),
    }
}

/// Waits until `pid` is gone, for at most `bound`; true if it is.
pub fn wait_gone(pid: u32, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if !is_alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// How often process state is polled.
pub(crate) const POLL: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signalled_child_is_seen_gone() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(is_alive(pid));
        // Right after the fork the child may not have exec'd `sleep` yet.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !command_line_mentions(pid, "sleep") {
            assert!(Instant::now() < deadline, "the child never showed its command line");
            std::thread::sleep(POLL);
        }
        assert!(!command_line_mentions(pid, "morsa-not-this"));
        assert!(send(pid, Signal::Term));
        // Unreaped, the child is a zombie: already gone for us.
        assert!(wait_gone(pid, Duration::from_secs(10)));
        child.wait().unwrap();
    }
}
