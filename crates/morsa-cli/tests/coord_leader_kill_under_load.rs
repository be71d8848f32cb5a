//! A local cluster of three coordinator replicas and five storage nodes under load from two
//! clients (each the real `morsa` binary in a loop, each with an account of its own): every
//! blob a client stored is read back at once and its bytes checked against their hash. In
//! the middle the leading replica is SIGKILLed. Stores resume by themselves through the
//! survivors; every acknowledged store reads back afterwards and is recorded exactly once
//! (one certified object per blob, on every replica); once the killed replica is back, every
//! replica reports the same state, and `morsa coord audit` of each (running, then stopped)
//! passes and agrees.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::replicas::{agreed_at, audit, audit_data, http, leader_at};
use morsa_api::coord::{AccountBlobs, routes};
use morsa_coord::{Command as CoordCommand, Transaction};
use morsa_core::AccountKey;
use morsa_core::hash::{Digest, domain_hash};

/// Longest one `morsa` command may take; a store or read that hangs fails the test.
const COMMAND_BOUND: Duration = Duration::from_secs(90);
/// Longest the clients may take to acknowledge the stores the test waits for.
const PROGRESS_BOUND: Duration = Duration::from_secs(240);
/// Acknowledged stores each client makes before the kill, and again after it.
const STORES_PER_PHASE: usize = 2;

fn digest(bytes: &[u8]) -> Digest {
    domain_hash(b"morsa-test/content", &[bytes])
}

/// One store a client saw acknowledged.
#[derive(Debug, Clone)]
struct Acknowledged {
    blob_id: String,
    digest: Digest,
    /// Whether the store began after the leader was killed.
    after_kill: bool,
}

/// A client: a thread storing new blobs with `config` in a loop, reading each acknowledged
/// one back and checking its hash, until told to stop.
struct Client {
    config: PathBuf,
    account: AccountKey,
    acknowledged: Arc<Mutex<Vec<Acknowledged>>>,
    failed: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Client {
    fn start(
        name: &str,
        config: PathBuf,
        account: AccountKey,
        killed: &Arc<AtomicBool>,
        stop: &Arc<AtomicBool>,
    ) -> Self {
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let work = config.with_file_name(format!("{name}-files"));
        std::fs::create_dir_all(&work).unwrap();
        let thread = {
            let (config, acknowledged, failed) =
                (config.clone(), Arc::clone(&acknowledged), Arc::clone(&failed));
            let (killed, stop, seed) =
                (Arc::clone(killed), Arc::clone(stop), u64::from(name.as_bytes()[0]) << 32);
            std::thread::spawn(move || {
                let mut round = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    round += 1;
                    let bytes = morsa_cluster::sample::bytes(
                        3_000 + usize::try_from(round).unwrap() * 7,
                        seed + round,
                    );
                    let path = work.join(format!("blob-{round}"));
                    std::fs::write(&path, &bytes).unwrap();
                    let after_kill = killed.load(Ordering::SeqCst);
                    let output = common::morsa_bounded(
                        &config,
                        &["store", path.to_str().unwrap(), "--json"],
                        COMMAND_BOUND,
                    );
                    if !output.status.success() {
                        // Not acknowledged (a write in the failover window may fail): the
                        // next round tries a new blob, after a pause.
                        failed.lock().unwrap().push(String::from_utf8_lossy(&output.stderr).into_owned());
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
                    let blob_id = json[0]["blob_id"].as_str().unwrap().to_owned();
                    let stored = Acknowledged { blob_id, digest: digest(&bytes), after_kill };
                    read_back(&config, &stored, &work);
                    acknowledged.lock().unwrap().push(stored);
                }
            })
        };
        Self { config, account, acknowledged, failed, thread: Some(thread) }
    }

    fn acknowledged(&self) -> Vec<Acknowledged> {
        self.acknowledged.lock().unwrap().clone()
    }

    fn count(&self, after_kill: bool) -> usize {
        self.acknowledged().iter().filter(|stored| stored.after_kill == after_kill).count()
    }

    /// Whether the thread ended (it only ends by panicking until told to stop).
    fn ended(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    fn join(&mut self) {
        if let Some(thread) = self.thread.take()
            && let Err(panic) = thread.join()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Reads `stored` back with `config` and checks the bytes' hash.
fn read_back(config: &Path, stored: &Acknowledged, work: &Path) {
    let out = work.join(format!("read-{}", stored.blob_id));
    let output = common::morsa_bounded(
        config,
        &["read", &stored.blob_id, "--out", out.to_str().unwrap()],
        COMMAND_BOUND,
    );
    assert!(
        output.status.success(),
        "acknowledged blob {} does not read back with {}: {}",
        stored.blob_id,
        config.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(digest(&bytes), stored.digest, "blob {} read back different bytes", stored.blob_id);
    std::fs::remove_file(out).unwrap();
}

/// Waits until `done` holds for every client, failing early if a client thread panicked.
fn wait_for(clients: &mut [Client], what: &str, done: impl Fn(&Client) -> bool) {
    let deadline = Instant::now() + PROGRESS_BOUND;
    while !clients.iter().all(&done) {
        if clients.iter().any(Client::ended) {
            clients.iter_mut().for_each(Client::join);
            panic!("a client stopped before {what}");
        }
        let failures: Vec<String> =
            clients.iter().flat_map(|client| client.failed.lock().unwrap().clone()).collect();
        assert!(
            Instant::now() < deadline,
            "not {what} within {PROGRESS_BOUND:?}; failed stores: {failures:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Moves half the cluster user's balance to `to`, through any replica (followers forward).
fn fund(urls: &[&str], user: &AccountKey, to: &AccountKey) {
    let account: morsa_api::coord::AccountInfo = http()
        .get(format!("{}{}", urls[0], morsa_api::coord::account_path(&user.id())))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let command = CoordCommand::Transfer { to: to.id(), amount: morsa_cluster::USER_BALANCE / 2 };
    let signed =
        Transaction { sender: user.id(), nonce: account.nonce, command }.sign(user, morsa_cluster::CHAIN_ID);
    let answer = http().post(format!("{}{}", urls[0], routes::TRANSACTIONS)).json(&signed).send().unwrap();
    assert!(answer.status().is_success(), "funding the second client: {}", answer.text().unwrap_or_default());
}

/// Every acknowledged store of `client` is one certified blob object of its account on the
/// replica at `url`: none lost, none registered twice.
fn assert_recorded_once(url: &str, client: &Client) {
    let page: AccountBlobs = http()
        .get(format!("{url}{}", morsa_api::coord::account_blobs_path(&client.account.id())))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(!page.more, "one page holds the test's blobs");
    for stored in client.acknowledged() {
        let objects: Vec<_> =
            page.blobs.iter().filter(|object| object.blob_id.to_string() == stored.blob_id).collect();
        assert_eq!(
            objects.len(),
            1,
            "blob {} of {} on {url}: {objects:?}",
            stored.blob_id,
            client.config.display()
        );
        assert!(objects[0].certified_epoch.is_some(), "blob {} is certified on {url}", stored.blob_id);
    }
}

#[test]
fn two_clients_keep_storing_and_reading_through_a_leader_kill_and_every_replica_agrees() {
    let root = tempfile::tempdir().unwrap();
    let mut cluster = common::local_cluster_with(root.path(), 3, 5, 10);
    let urls: Vec<String> = cluster.coordinator_urls().to_vec();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();

    // Two clients with accounts of their own (one account's nonces would make them collide).
    let first_config = cluster.client_config_path();
    let (user, _) = morsa_client::load_or_create_account_key(&cluster.account_key_path()).unwrap();
    let second_config = cluster.dir().join("client-second.toml");
    let second_key_path = cluster.dir().join("account-second.key");
    let (second, created) = morsa_client::load_or_create_account_key(&second_key_path).unwrap();
    assert!(created);
    let text = std::fs::read_to_string(&first_config).unwrap();
    let mut lines: Vec<String> =
        text.lines().filter(|line| !line.starts_with("account_key_file")).map(str::to_owned).collect();
    lines.push(format!("account_key_file = \"{}\"", second_key_path.display()));
    std::fs::write(&second_config, lines.join("\n") + "\n").unwrap();
    fund(&urls, &user, &second);

    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = [
        Client::start("a", first_config, user, &killed, &stop),
        Client::start("b", second_config, second, &killed, &stop),
    ];
    wait_for(&mut clients, "storing before the kill", |client| client.count(false) >= STORES_PER_PHASE);

    let leader = usize::try_from(leader_at(&urls) - 1).unwrap();
    cluster.kill_coordinator(leader).unwrap();
    killed.store(true, Ordering::SeqCst);
    // Writes resume by themselves: nothing is restarted until both clients stored again.
    wait_for(&mut clients, "storing again after the kill", |client| client.count(true) >= STORES_PER_PHASE);
    stop.store(true, Ordering::SeqCst);
    clients.iter_mut().for_each(Client::join);
    // Stores may fail in the failover window (not acknowledged, so not checked); say why.
    let failures: Vec<String> =
        clients.iter().flat_map(|client| client.failed.lock().unwrap().clone()).collect();
    eprintln!(
        "replica {leader} killed; stores acknowledged {:?}; failed: {failures:#?}",
        clients.each_ref().map(|client| client.acknowledged().len())
    );

    // Every acknowledged store reads back, the old leader still down.
    for client in &clients {
        let work = client.config.with_file_name("final-reads");
        std::fs::create_dir_all(&work).unwrap();
        for stored in client.acknowledged() {
            read_back(&client.config, &stored, &work);
        }
    }

    // The killed replica catches up; then every replica holds the same state and records
    // each acknowledged store once.
    cluster.restart_coordinator(leader).unwrap();
    let agreed = agreed_at(&urls, 0);
    for url in &urls {
        for client in &clients {
            assert_recorded_once(url, client);
        }
    }

    // Audited while running, every replica replays to the same state and event head.
    let genesis = cluster.dir().join("genesis.json");
    let running: Vec<serde_json::Value> = urls
        .iter()
        .map(|url| audit(&["--url".as_ref(), url.as_ref(), "--genesis".as_ref(), genesis.as_os_str()]))
        .collect();
    let acknowledged: usize = clients.iter().map(|client| client.acknowledged().len()).sum();
    for report in &running {
        assert_eq!(report["state_compared"], true, "the group was quiet during the audit: {report}");
        assert_eq!(report["state_hash"].as_str(), Some(agreed.state_hash.as_str()), "{report}");
        assert_eq!(report["event_head"], running[0]["event_head"], "{report}");
        assert_eq!(report["events"], agreed.event_count, "{report}");
        assert!(
            report["certified_blobs"].as_u64().unwrap() >= u64::try_from(acknowledged).unwrap(),
            "{report}"
        );
    }

    // Stopped, each replica's data audits to the same state and event head too.
    for index in 0..urls.len() {
        cluster.stop_coordinator(index).unwrap();
    }
    for (index, served) in running.iter().enumerate() {
        let config = cluster.dir().join(morsa_cluster::layout::coord_config(index));
        let data = morsa_coord::CoordConfig::load(&config).unwrap().data_dir;
        let report = audit_data(&data);
        assert_eq!(report["state_hash"], served["state_hash"], "replica {index}: {report}");
        assert_eq!(report["event_head"], served["event_head"], "replica {index}: {report}");
    }
}
