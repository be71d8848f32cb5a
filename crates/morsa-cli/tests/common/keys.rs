//! Running `morsa` as a user on a machine of its own: a HOME of its own (so its own keyring),
//! passphrases from the environment, and a small scrypt work factor so that tests are quick.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The keyring passphrase every test machine uses.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// A user's machine: its HOME, and the client configuration it uses (if any).
pub struct Machine {
    pub home: PathBuf,
    pub config: PathBuf,
}

impl Machine {
    /// A machine with HOME `home` using the client configuration `config`.
    pub fn new(home: &Path, config: &Path) -> Self {
        std::fs::create_dir_all(home).unwrap();
        Self { home: home.to_path_buf(), config: config.to_path_buf() }
    }

    /// Where `morsa key` keeps the keyring on this machine by default.
    pub fn keyring(&self) -> PathBuf {
        self.home.join(".config").join("morsa").join("keyring.json")
    }

    /// A `morsa ARGS` command on this machine.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_morsa"));
        command
            .args(args)
            .env("HOME", &self.home)
            .env("MORSA_CONFIG", &self.config)
            .env("MORSA_KEY_PASSPHRASE", PASSPHRASE)
            .env("MORSA_KEY_WORK_FACTOR", "10")
            .env_remove("MORSA_KEYRING")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("MORSA_SHARE_PASSPHRASE");
        command
    }

    /// Runs `morsa ARGS` with `stdin` as its input.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        run_with_input(self.command(args), stdin)
    }

    /// Runs `morsa ARGS`, expects success, answers stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args, "");
        assert!(output.status.success(), "morsa {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }
}

/// Runs `command` with `stdin` as its input and waits for it.
pub fn run_with_input(mut command: Command, stdin: &str) -> Output {
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // A command that refuses before reading its input closes the pipe: that is its answer.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => panic!("writing stdin: {error}"),
        _ => {}
    }
    child.wait_with_output().unwrap()
}

/// Asserts that `output` failed with exit code 1 and a message containing `expected`.
pub fn assert_fails(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "exit code; stderr: {stderr}");
    assert!(stderr.contains(expected), "expected {expected:?} in: {stderr}");
}
