//! A group of coordinator replicas as real `morsa coord run` processes on loopback, and a
//! stream of transfers to check what they applied.
//!
//! Transactions are transfers of 1 from one account with consecutive nonces, so the final
//! state says exactly which were applied: the nonce counts them and the balances conserve
//! the supply. A write whose answer was lost (a 5xx or a timeout) is retried with the same
//! signed transaction; if its first attempt was applied after all, the retry is refused as a
//! used nonce, which also counts as applied (once).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use morsa_api::coord::{AccountInfo, SystemInfo, routes};
use morsa_cluster::ports::{ReservedAddress, reserve_loopback_addresses};
use morsa_coord::{Command as CoordCommand, Transaction};
use morsa_core::AccountKey;

use super::Process;

pub const CHAIN: &str = "replicas-test";
/// Longest the group may take to elect a leader or to agree again.
pub const SETTLE: Duration = Duration::from_secs(30);

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// A group of replicas, each with its own config and data directory in `dir`.
pub struct Group {
    pub dir: PathBuf,
    pub configs: Vec<PathBuf>,
    pub urls: Vec<String>,
    pub processes: Vec<Option<Process>>,
    pub user: AccountKey,
    /// The `[[replicas]]` of the initial group, as every config lists them.
    members: String,
    snapshot_every: u64,
    /// The replicas' addresses, kept for them while they are down too.
    reserved: Vec<ReservedAddress>,
}

/// The admin token every replica of a [`Group`] is configured with (file `admin.token`).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";
/// Name of the admin token's file in the group's directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

impl Group {
    /// Starts `replicas` replicas (IDs 1..=replicas) taking a snapshot every `snapshot_every`
    /// entries, each with the admin token [`ADMIN_TOKEN`].
    pub fn start(dir: &Path, replicas: usize, snapshot_every: u64) -> Self {
        let user = AccountKey::from_seed([9; 32]);
        let genesis = super::coord_genesis(CHAIN, &user);
        std::fs::write(dir.join("genesis.json"), serde_json::to_vec(&genesis).unwrap()).unwrap();
        std::fs::write(dir.join(ADMIN_TOKEN_FILE), format!("{ADMIN_TOKEN}\n")).unwrap();
        let reserved = reserve_loopback_addresses(replicas).unwrap();
        let urls: Vec<String> = reserved.iter().map(ReservedAddress::url).collect();
        let members: String = urls
            .iter()
            .enumerate()
            .map(|(index, url)| format!("[[replicas]]\nid = {}\nurl = \"{url}\"\n", index + 1))
            .collect();
        let mut group = Self {
            dir: dir.to_path_buf(),
            configs: Vec::new(),
            urls: Vec::new(),
            processes: Vec::new(),
            user,
            members,
            snapshot_every,
            reserved,
        };
        for url in urls {
            group.write_config(url);
        }
        group.processes = (0..replicas).map(|index| Some(group.spawn(index))).collect();
        group
    }

    /// Writes the config of the next replica (ID = its index + 1), listening at `url`, with
    /// an empty data directory; it lists the initial group.
    fn write_config(&mut self, url: String) {
        let index = self.configs.len();
        let config = self.dir.join(format!("coord{}.toml", index + 1));
        let text = format!(
            "listen = \"{}\"\ndata_dir = \"coord{}\"\ngenesis = \"genesis.json\"\nid = {}\nsnapshot_every = {}\nadmin_token_file = \"{ADMIN_TOKEN_FILE}\"\n{}[testing]\nmanual_epochs = true\n",
            url.trim_start_matches("http://"),
            index + 1,
            index + 1,
            self.snapshot_every,
            self.members
        );
        std::fs::write(&config, text).unwrap();
        self.configs.push(config);
        self.urls.push(url);
    }

    /// Starts one more replica (ID = its index + 1) with an empty data directory, configured
    /// as a joining replica is: it lists the initial group, which does not include it, so it
    /// waits as a learner-to-be until the leader adds it. Answers its index.
    pub fn start_joining(&mut self) -> usize {
        let reserved = reserve_loopback_addresses(1).unwrap().remove(0);
        self.write_config(reserved.url());
        self.reserved.push(reserved);
        let index = self.configs.len() - 1;
        self.processes.push(Some(self.spawn(index)));
        index
    }

    pub fn spawn(&self, index: usize) -> Process {
        Process::start(&["coord", "run"], &self.configs[index])
    }

    pub fn restart(&mut self, index: usize) {
        self.processes[index] = Some(self.spawn(index));
    }

    pub fn kill(&mut self, index: usize) {
        drop(self.processes[index].take());
    }

    /// Sends `signal` (`-STOP`, `-CONT`) to replica `index`.
    pub fn signal(&self, index: usize, signal: &str) {
        let pid = self.processes[index].as_ref().unwrap().child.id().to_string();
        assert!(std::process::Command::new("kill").args([signal, &pid]).status().unwrap().success());
    }

    pub fn data(&self, index: usize) -> PathBuf {
        self.dir.join(format!("coord{}", index + 1))
    }

    pub fn live(&self) -> Vec<usize> {
        (0..self.processes.len()).filter(|index| self.processes[*index].is_some()).collect()
    }

    pub fn system(&self, index: usize) -> Option<SystemInfo> {
        system_at(&self.urls[index])
    }

    /// The replica the live ones agree leads, once they do.
    pub fn leader(&self) -> usize {
        let live: Vec<&str> = self.live().into_iter().map(|index| self.urls[index].as_str()).collect();
        let id = leader_at(&live);
        usize::try_from(id - 1).unwrap()
    }

    /// Waits until every live replica reports the same state hash and event count (and at
    /// least `events` events); returns that answer.
    pub fn agreed(&self, events: u64) -> SystemInfo {
        let live: Vec<&str> = self.live().into_iter().map(|index| self.urls[index].as_str()).collect();
        agreed_at(&live, events)
    }

    pub fn signed(&self, nonce: u64) -> morsa_coord::SignedTransaction {
        let command = CoordCommand::Transfer { to: recipient().id(), amount: 1 };
        Transaction { sender: self.user.id(), nonce, command }.sign(&self.user, CHAIN)
    }

    /// Submits transfer `nonce` to the live replicas in turn until one acknowledges it (or
    /// refuses it as already used: an earlier attempt was applied); panics after [`SETTLE`].
    pub fn transfer(&self, nonce: u64) {
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

    /// Starts the next epoch on the leader (`POST /v1/testing/next-epoch`): a tick that emits
    /// events (transfers emit none). The leader's own ticker may apply the tick first, so the
    /// answer's events are not counted here: wait for them with [`Group::agreed`].
    pub fn next_epoch(&self) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let url = format!("{}{}", self.urls[self.leader()], routes::NEXT_EPOCH);
            if http().post(url).send().is_ok_and(|answer| answer.status().is_success()) {
                return;
            }
            assert!(Instant::now() < deadline, "the next epoch did not start within {SETTLE:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn account(&self, index: usize, account: &AccountKey) -> AccountInfo {
        let url = format!("{}{}", self.urls[index], morsa_api::coord::account_path(&account.id()));
        http().get(url).send().unwrap().json().unwrap()
    }

    /// Every live replica holds exactly `count` transfers: the nonce, and both balances.
    pub fn assert_transfers(&self, count: u64) {
        for index in self.live() {
            let sender = self.account(index, &self.user);
            assert_eq!(sender.nonce, count, "replica {} applied each acknowledged transfer once", index + 1);
            assert_eq!(sender.balance, 1_000_000 - count);
            assert_eq!(self.account(index, &recipient()).balance, count, "replica {}", index + 1);
        }
    }
}

/// `GET /v1/system` of the replica at `url`, if it answers.
pub fn system_at(url: &str) -> Option<SystemInfo> {
    let answer = http().get(format!("{url}{}", routes::SYSTEM)).send().ok()?;
    answer.json().ok()
}

/// The ID of the replica that one of the replicas at `urls` reports as itself leading, once
/// one does (within [`SETTLE`]).
pub fn leader_at(urls: &[&str]) -> u64 {
    let deadline = Instant::now() + SETTLE;
    loop {
        for url in urls {
            if let Some(replica) = system_at(url).and_then(|info| info.replica)
                && replica.role == "leader"
            {
                return replica.id;
            }
        }
        assert!(Instant::now() < deadline, "no leader within {SETTLE:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every replica at `urls` reports the same state hash and event count (and at
/// least `events` events); returns that answer.
pub fn agreed_at(urls: &[&str], events: u64) -> SystemInfo {
    let deadline = Instant::now() + SETTLE;
    loop {
        let answers: Vec<_> = urls.iter().map(|url| system_at(url)).collect();
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

/// `morsa coord audit --json ARGS` (`--data DIR`, or `--url URL --genesis FILE`): passes, and
/// answers its report.
pub fn audit(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["coord", "audit", "--json"])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "audit {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `morsa coord audit --json --data DATA` of a stopped replica's data directory.
pub fn audit_data(data: &Path) -> serde_json::Value {
    audit(&["--data".as_ref(), data.as_os_str()])
}

pub fn recipient() -> AccountKey {
    AccountKey::from_seed([10; 32])
}
