//! The real `morsa coord run` process: killed with SIGKILL in the middle of a stream of
//! transactions, restarted on the same data, it has applied every acknowledged transaction,
//! and its state hash equals a fresh replay of its log.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::{Process, STARTUP};

use morsa_api::coord::{AccountInfo, SystemInfo, routes};
use morsa_coord::{Command as CoordCommand, Coordinator, Input, LogEntry, Transaction, apply};
use morsa_core::AccountKey;

const CHAIN: &str = "restart-test";

fn start(config: &Path) -> (Process, String) {
    let process = Process::start(&["coord", "run"], config);
    let url = process.url.clone();
    (process, url)
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

#[test]
fn acknowledged_transactions_survive_sigkill_and_replay_to_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let user = AccountKey::from_seed([9; 32]);
    let (config, genesis) = common::write_coord_files(dir.path(), CHAIN, &user);

    let (server, url) = start(&config);
    let recipient = AccountKey::from_seed([10; 32]).id();
    let (acks, acked) = mpsc::channel();
    let submitter = {
        let (url, user) = (url.clone(), user.clone());
        std::thread::spawn(move || {
            let client = client();
            for nonce in 0..500u64 {
                let command = CoordCommand::Transfer { to: recipient, amount: 1 };
                let signed = Transaction { sender: user.id(), nonce, command }.sign(&user, CHAIN);
                let response = client.post(format!("{url}{}", routes::TRANSACTIONS)).json(&signed).send();
                match response {
                    Ok(response) if response.status().is_success() => {
                        if acks.send(nonce).is_err() {
                            return;
                        }
                    }
                    _ => return, // the server is gone
                }
            }
        })
    };
    // Kill the server in the middle of the stream.
    let mut last_ack = None;
    for _ in 0..40 {
        last_ack = Some(acked.recv_timeout(STARTUP).expect("transactions are acknowledged"));
    }
    drop(server); // SIGKILL, then wait
    submitter.join().unwrap();
    while let Ok(nonce) = acked.try_recv() {
        last_ack = Some(nonce);
    }
    let acknowledged = last_ack.unwrap() + 1;

    let (server, url) = start(&config);
    let client = client();
    let account: AccountInfo = client
        .get(format!("{url}{}", morsa_api::coord::account_path(&user.id())))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(account.nonce >= acknowledged, "{} acknowledged, {} applied", acknowledged, account.nonce);
    assert!(
        account.nonce <= acknowledged + 1,
        "at most the one transaction in flight was applied unacknowledged"
    );
    assert_eq!(account.balance, 1_000_000 - account.nonce);
    let system: SystemInfo = client.get(format!("{url}{}", routes::SYSTEM)).send().unwrap().json().unwrap();
    // A model of what the transfers did: the recipient holds one unit per applied transaction.
    let received: AccountInfo = client
        .get(format!("{url}{}", morsa_api::coord::account_path(&recipient)))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(received.balance, account.nonce);

    // Independently of the log: genesis plus exactly the transactions this test sent, applied
    // afresh, is the state the restarted server holds (its clock aside: the entries' times
    // are the server's, so the fresh state takes the server's last time).
    let mut fresh = genesis.initial_state().unwrap();
    for nonce in 0..account.nonce {
        let command = CoordCommand::Transfer { to: recipient, amount: 1 };
        let signed = Transaction { sender: user.id(), nonce, command }.sign(&user, CHAIN);
        let entry = LogEntry { time_ms: genesis.genesis_time_ms, input: Input::Transaction(signed) };
        apply(&mut fresh, &entry).unwrap();
    }
    assert_eq!(fresh.event_count, system.event_count);
    fresh.time_ms = system.time_ms;
    assert_eq!(hex(&fresh.hash()), system.state_hash, "the restarted state is genesis plus what was sent");

    // Stop it gracefully and replay its log here.
    server.stop();
    let replayed = Coordinator::open(&genesis, &dir.path().join("data").join("coord-log.redb")).unwrap();
    assert_eq!(hex(&replayed.state().hash()), system.state_hash);
    assert!(dir.path().join("data").join("genesis.json").exists(), "the data directory keeps its genesis");
    drop(replayed);

    // The audit command replays the same log from the data directory alone.
    let output = Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["coord", "audit", "--json", "--data"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["state_hash"], system.state_hash.as_str());
    assert_eq!(report["entries"], account.nonce);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
