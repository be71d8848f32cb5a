//! The replicated coordinator as real `morsa coord run` processes on loopback: a leader
//! SIGKILLed in the middle of a stream of transactions, a group that lost its quorum, a replica
//! restarted on a wiped disk, and Raft messages that must be refused.
//!
//! Transactions are transfers of 1 from one account with consecutive nonces, so the final
//! state says exactly which were applied: the nonce counts them and the balances conserve
//! the supply. A write whose answer was lost (a 5xx or a timeout) is retried with the same
//! signed transaction; if its first attempt was applied after all, the retry is refused as a
//! used nonce, which also counts as applied (once).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Process;
use morsa_api::coord::{AccountInfo, SystemInfo, routes};
use morsa_coord::{Command as CoordCommand, Transaction};
use morsa_core::AccountKey;

const CHAIN: &str = "replicas-test";
/// Longest the group may take to elect a leader or to agree again.
const SETTLE: Duration = Duration::from_secs(30);

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// A group of replicas, each with its own config and data directory in `dir`.
struct Group {
    dir: PathBuf,
    configs: Vec<PathBuf>,
    urls: Vec<String>,
    processes: Vec<Option<Process>>,
    user: AccountKey,
}

impl Group {
    fn start(dir: &Path, replicas: usize, snapshot_every: u64) -> Self {
        let user = AccountKey::from_seed([9; 32]);
        let genesis = common::coord_genesis(CHAIN, &user);
        std::fs::write(dir.join("genesis.json"), serde_json::to_vec(&genesis).unwrap()).unwrap();
        let listeners: Vec<_> =
            (0..replicas).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
        let addresses: Vec<_> = listeners.iter().map(|listener| listener.local_addr().unwrap()).collect();
        drop(listeners);
        let urls: Vec<String> = addresses.iter().map(|address| format!("http://{address}")).collect();
        let members: String = urls
            .iter()
            .enumerate()
            .map(|(index, url)| format!("[[replicas]]\nid = {}\nurl = \"{url}\"\n", index + 1))
            .collect();
        let configs: Vec<PathBuf> = addresses
            .iter()
            .enumerate()
            .map(|(index, address)| {
                let config = dir.join(format!("coord{}.toml", index + 1));
                let text = format!(
                    "listen = \"{address}\"\ndata_dir = \"coord{}\"\ngenesis = \"genesis.json\"\nid = {}\nsnapshot_every = {snapshot_every}\n{members}",
                    index + 1,
                    index + 1
                );
                std::fs::write(&config, text).unwrap();
                config
            })
            .collect();
        let mut group = Self { dir: dir.to_path_buf(), configs, urls, processes: Vec::new(), user };
        group.processes = (0..replicas).map(|index| Some(group.spawn(index))).collect();
        group
    }

    fn spawn(&self, index: usize) -> Process {
        Process::start(&["coord", "run"], &self.configs[index])
    }

    fn restart(&mut self, index: usize) {
        self.processes[index] = Some(self.spawn(index));
    }

    fn kill(&mut self, index: usize) {
        drop(self.processes[index].take());
    }

    /// Sends `signal` (`-STOP`, `-CONT`) to replica `index`.
    fn signal(&self, index: usize, signal: &str) {
        let pid = self.processes[index].as_ref().unwrap().child.id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    }

    fn data(&self, index: usize) -> PathBuf {
        self.dir.join(format!("coord{}", index + 1))
    }

    fn live(&self) -> Vec<usize> {
        (0..self.processes.len()).filter(|index| self.processes[*index].is_some()).collect()
    }

    fn system(&self, index: usize) -> Option<SystemInfo> {
        let answer = http().get(format!("{}{}", self.urls[index], routes::SYSTEM)).send().ok()?;
        answer.json().ok()
    }

    /// The replica the live ones agree leads, once they do.
    fn leader(&self) -> usize {
        let deadline = Instant::now() + SETTLE;
        loop {
            for index in self.live() {
                if let Some(replica) = self.system(index).and_then(|info| info.replica)
                    && replica.role == "leader"
                {
                    return usize::try_from(replica.id - 1).unwrap();
                }
            }
            assert!(Instant::now() < deadline, "no leader within {SETTLE:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every live replica reports the same state hash and event count (and at
    /// least `events` events); returns that answer.
    fn agreed(&self, events: u64) -> SystemInfo {
        let deadline = Instant::now() + SETTLE;
        loop {
            let answers: Vec<_> = self.live().into_iter().map(|index| self.system(index)).collect();
            if let Some(Some(first)) = answers.first()
                && first.event_count >= events
                && answers.iter().all(|answer| {
                    answer.as_ref().is_some_and(|answer| {
                        answer.state_hash == first.state_hash && answer.event_count == first.event_count
                    })
                })
            {
                return first.clone();
            }
            assert!(Instant::now() < deadline, "the replicas did not agree within {SETTLE:?}: {answers:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn signed(&self, nonce: u64) -> morsa_coord::SignedTransaction {
        let command = CoordCommand::Transfer { to: recipient().id(), amount: 1 };
        Transaction { sender: self.user.id(), nonce, command }.sign(&self.user, CHAIN)
    }

    /// Submits transfer `nonce` to the live replicas in turn until one acknowledges it (or
    /// refuses it as already used: an earlier attempt was applied); panics after [`SETTLE`].
    fn transfer(&self, nonce: u64) {
        let signed = self.signed(nonce);
        let deadline = Instant::now() + SETTLE;
        let mut attempt = usize::try_from(nonce).unwrap();
        loop {
            let live = self.live();
            let index = live[attempt % live.len()];
            attempt += 1;
            if let Ok(answer) =
                http().post(format!("{}{}", self.urls[index], routes::TRANSACTIONS)).json(&signed).send()
            {
                let status = answer.status();
                let body: serde_json::Value = answer.json().unwrap_or_default();
                if status.is_success() || (nonce > 0 && body["code"] == "bad_nonce") {
                    return;
                }
                assert!(status.is_server_error(), "transfer {nonce} refused: {status} {body}");
            }
            assert!(Instant::now() < deadline, "transfer {nonce} not acknowledged within {SETTLE:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn account(&self, index: usize, account: &AccountKey) -> AccountInfo {
        let url = format!("{}{}", self.urls[index], morsa_api::coord::account_path(&account.id()));
        http().get(url).send().unwrap().json().unwrap()
    }

    /// Every live replica holds exactly `count` transfers: the nonce, and both balances.
    fn assert_transfers(&self, count: u64) {
        for index in self.live() {
            let sender = self.account(index, &self.user);
            assert_eq!(sender.nonce, count, "replica {} applied each acknowledged transfer once", index + 1);
            assert_eq!(sender.balance, 1_000_000 - count);
            assert_eq!(self.account(index, &recipient()).balance, count, "replica {}", index + 1);
        }
    }
}

fn recipient() -> AccountKey {
    AccountKey::from_seed([10; 32])
}

/// `morsa coord audit --json` of a stopped replica's data directory.
fn audit(data: &Path) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["coord", "audit", "--json", "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "audit of {}: {}",
        data.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn writes_resume_after_the_leader_is_killed_and_every_replica_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let mut group = Group::start(dir.path(), 3, 1000);
    let before = 15;
    for nonce in 0..before {
        group.transfer(nonce);
    }
    let leader = group.leader();
    group.kill(leader);
    let total = 30;
    for nonce in before..total {
        group.transfer(nonce);
    }
    assert_ne!(group.leader(), leader, "another replica leads");
    group.restart(leader);
    let agreed = group.agreed(0);
    group.assert_transfers(total);

    // Stopped, each replica's data audits from genesis to the same state and event head.
    for index in 0..3 {
        group.processes[index].take().unwrap().stop();
    }
    let reports: Vec<_> = (0..3).map(|index| audit(&group.data(index))).collect();
    for report in &reports {
        assert_eq!(report["state_hash"], reports[0]["state_hash"]);
        assert_eq!(report["event_head"], reports[0]["event_head"]);
        assert_eq!(report["state_hash"].as_str(), Some(agreed.state_hash.as_str()));
    }
}

#[test]
fn without_a_quorum_writes_fail_with_no_quorum_and_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut group = Group::start(dir.path(), 3, 1000);
    group.transfer(0);
    group.agreed(0);
    let leader = group.leader();
    let survivor = (leader + 1) % 3;
    group.kill(leader);
    group.kill((leader + 2) % 3);

    let started = Instant::now();
    let answer = http()
        .post(format!("{}{}", group.urls[survivor], routes::TRANSACTIONS))
        .json(&group.signed(1))
        .send()
        .unwrap();
    let status = answer.status();
    let body: serde_json::Value = answer.json().unwrap();
    assert_eq!(status.as_u16(), 503, "{body}");
    assert_eq!(body["code"], "no_quorum", "{body}");
    assert!(started.elapsed() < Duration::from_secs(15), "answered within the bounded wait");

    // The survivor still answers reads from its state.
    assert_eq!(group.account(survivor, &group.user).nonce, 1);
}

#[test]
fn a_replica_on_a_wiped_disk_catches_up_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    // A snapshot every 5 entries: the leader's log soon no longer reaches back to the start.
    let mut group = Group::start(dir.path(), 3, 5);
    let leader = group.leader();
    let wiped = (leader + 1) % 3;
    let total = 30;
    for nonce in 0..total {
        group.transfer(nonce);
    }
    group.kill(wiped);
    std::fs::remove_dir_all(group.data(wiped)).unwrap();
    group.restart(wiped);
    let agreed = group.agreed(0);
    group.assert_transfers(total);
    let info = group.system(wiped).unwrap();
    assert_eq!(info.state_hash, agreed.state_hash);
    assert!(
        info.replica.and_then(|replica| replica.applied_index).is_some_and(|index| index >= total),
        "it applied up to the leader's position"
    );
}

#[test]
fn raft_messages_from_strangers_or_malformed_are_refused_and_the_replica_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let group = Group::start(dir.path(), 1, 1000);
    group.transfer(0);
    let url = &group.urls[0];
    let client = http();

    let garbage = client.post(format!("{url}{}", routes::RAFT_APPEND)).body("{not json").send().unwrap();
    assert_eq!(garbage.status().as_u16(), 400);
    assert_eq!(garbage.json::<serde_json::Value>().unwrap()["code"], "bad_raft_message");

    let stranger = serde_json::json!({
        "vote": {"leader_id": {"term": 99, "node_id": 7}, "committed": false},
        "last_log_id": null,
    });
    let answer = client.post(format!("{url}{}", routes::RAFT_VOTE)).json(&stranger).send().unwrap();
    assert_eq!(answer.status().as_u16(), 403);
    assert_eq!(answer.json::<serde_json::Value>().unwrap()["code"], "unknown_replica");

    let huge = vec![b' '; morsa_coord::raft::MAX_RAFT_BODY_BYTES + 1];
    let answer = client.post(format!("{url}{}", routes::RAFT_SNAPSHOT)).body(huge).send().unwrap();
    assert_eq!(answer.status().as_u16(), 413);

    // Still the leader of its term, still serving.
    group.transfer(1);
    group.assert_transfers(2);
    assert_eq!(group.system(0).unwrap().replica.unwrap().term, 1, "the stranger's term 99 was not taken");
}

#[test]
fn a_write_the_leader_proposed_without_a_quorum_is_commit_unknown_and_applies_at_most_once() {
    let dir = tempfile::tempdir().unwrap();
    let group = Group::start(dir.path(), 3, 1000);
    group.transfer(0);
    group.agreed(0);
    let leader = group.leader();
    let followers = [(leader + 1) % 3, (leader + 2) % 3];
    for follower in followers {
        group.signal(follower, "-STOP");
    }
    let answer = http()
        .post(format!("{}{}", group.urls[leader], routes::TRANSACTIONS))
        .json(&group.signed(1))
        .send()
        .unwrap();
    let status = answer.status();
    let body: serde_json::Value = answer.json().unwrap();
    for follower in followers {
        group.signal(follower, "-CONT");
    }
    // Not 503: a client sends a write answered 503 to another replica, and this one was
    // proposed and may still be committed.
    assert_eq!(status.as_u16(), 504, "{body}");
    assert_eq!(body["code"], "commit_unknown", "{body}");

    // Whether the proposal survives depends on the election that follows. Resending the same
    // signed transaction settles it: applied, or refused as a used nonce; never twice.
    group.transfer(1);
    group.agreed(0);
    group.assert_transfers(2);
}
