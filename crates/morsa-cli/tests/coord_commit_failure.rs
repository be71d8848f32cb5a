//! The real `morsa coord run` process when its command log cannot be written: the write that
//! failed is answered 503, never acknowledged, and the process exits (with an error, not a
//! signal) so that a restart replays the log; the restarted coordinator holds exactly the
//! acknowledged transactions.
//!
//! The failure is real I/O: the running process's file-size limit is lowered below its log's
//! size (`prlimit`), so redb's next page write fails with EFBIG (SIGXFSZ is ignored, as the
//! process inherits from `sh`'s `trap`), as it would on a full disk.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Process, STARTUP, stdout_lines};
use morsa_api::coord::{AccountInfo, routes};
use morsa_coord::{Command as CoordCommand, Transaction};
use morsa_core::AccountKey;

const CHAIN: &str = "commit-failure-test";

/// `morsa coord run --config CONFIG` under `sh`, which ignores SIGXFSZ for it; returns the
/// child (stdout and stderr piped) and its URL.
fn start_ignoring_sigxfsz(config: &std::path::Path) -> (Child, String) {
    let mut child = Command::new("sh")
        .args(["-c", "trap '' XFSZ; exec \"$0\" coord run --config \"$1\""])
        .arg(env!("CARGO_BIN_EXE_morsa"))
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = stdout_lines(&mut child).recv_timeout(STARTUP).expect("the coordinator announces its address");
    let url = line.split(" listening on ").nth(1).expect("an announcement line").to_string();
    (child, url)
}

/// Waits up to 15 s for `child` to exit.
fn exit_of(child: &mut Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn a_log_write_that_fails_is_not_acknowledged_and_the_coordinator_stops() {
    let dir = tempfile::tempdir().unwrap();
    let user = AccountKey::from_seed([9; 32]);
    let (config, _) = common::write_coord_files(dir.path(), CHAIN, &user);
    let (mut child, url) = start_ignoring_sigxfsz(&config);
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let submit = |nonce: u64| transfer(&http, &url, &user, nonce);
    let acknowledged = 3;
    for nonce in 0..acknowledged {
        assert!(submit(nonce).status().is_success(), "transfer {nonce} is acknowledged");
    }

    // From now on every write to the log's file fails, as on a full disk.
    let limited = Command::new("prlimit")
        .args(["--pid", &child.id().to_string(), "--fsize=1:1"])
        .status()
        .expect("prlimit (util-linux) is installed");
    assert!(limited.success());
    let refused = submit(acknowledged);
    let status = refused.status();
    let body: serde_json::Value = refused.json().unwrap();
    assert_eq!(status.as_u16(), 503, "a write that could not be made durable is not acknowledged: {body}");
    assert_eq!(body["code"], "unavailable", "{body}");

    let exit = exit_of(&mut child).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the coordinator kept running after a failed commit")
    });
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(exit.code().is_some_and(|code| code != 0), "it exits with an error, not a signal: {exit:?}");
    assert!(stderr.contains("a log commit failed"), "it says why it stopped: {stderr}");

    // Restarted on the same log (without the limit), it holds what was acknowledged.
    let server = Process::start(&["coord", "run"], &config);
    let account: AccountInfo = http
        .get(format!("{}{}", server.url, morsa_api::coord::account_path(&user.id())))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(account.nonce, acknowledged, "the acknowledged transfers, and not the refused one");
    assert_eq!(account.balance, 1_000_000 - acknowledged);
    assert!(transfer(&http, &server.url, &user, acknowledged).status().is_success(), "it goes on");
}

/// Submits a transfer of 1 from `user` with `nonce`.
fn transfer(
    http: &reqwest::blocking::Client,
    url: &str,
    user: &AccountKey,
    nonce: u64,
) -> reqwest::blocking::Response {
    let command = CoordCommand::Transfer { to: AccountKey::from_seed([10; 32]).id(), amount: 1 };
    let signed = Transaction { sender: user.id(), nonce, command }.sign(user, CHAIN);
    http.post(format!("{url}{}", routes::TRANSACTIONS)).json(&signed).send().unwrap()
}
