//! What the committee-change tests share: polling with a deadline, a cluster whose epochs end
//! when the test asks, and a steady load of writes and byte-compared reads that runs through
//! a test and records every failure.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use morsa_client::{Client, ClientConfig, StoreOptions};
use morsa_cluster::{Cluster, ClusterSpec};
use redstuff::BlobId;

use super::eventually;

/// `nodes` nodes over `shards` shards, in a temporary directory (kept alive by the answer),
/// every node a zone of its own; epochs end only when the test asks
/// (`[testing] manual_epochs`), so a test's course does not depend on the machine's load.
pub fn manual_cluster(nodes: usize, shards: u16) -> (tempfile::TempDir, Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::up_with_manual_epochs(ClusterSpec {
        coordinators: 1,
        nodes,
        shards,
        dir: dir.path().join("cluster"),
        // Longer than any test: the epoch ends when the test asks.
        epoch_duration: Duration::from_secs(3600),
        binary: PathBuf::from(env!("CARGO_BIN_EXE_morsa")),
        node_links: Default::default(),
        zones: 0,
    })
    .unwrap();
    (dir, cluster)
}

/// A client configuration for an account of its own, funded from the account of the cluster
/// in `cluster_dir` (whose coordinator is at `coordinator_url`): a load on it never races
/// the test's own transactions for a nonce.
pub fn funded_account_config(cluster_dir: &Path, coordinator_url: &str, name: &str) -> PathBuf {
    use morsa_api::coord::{Command, Transaction};
    let key_file = cluster_dir.join(format!("{name}.key"));
    let (key, _) = morsa_client::load_or_create_account_key(&key_file).unwrap();
    let funder =
        morsa_client::load_or_create_account_key(&cluster_dir.join(morsa_cluster::layout::ACCOUNT_KEY))
            .unwrap()
            .0;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let coord = morsa_api::client::CoordClient::new(coordinator_url).unwrap();
    let nonce = runtime.block_on(coord.account(&funder.id())).unwrap().nonce;
    let transfer = Command::Transfer { to: key.id(), amount: 1_000_000_000_000 };
    let signed =
        Transaction { sender: funder.id(), nonce, command: transfer }.sign(&funder, morsa_cluster::CHAIN_ID);
    runtime.block_on(coord.submit_transaction(&signed)).unwrap();
    let config = cluster_dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!("coordinator_url = \"{coordinator_url}\"\naccount_key_file = {key_file:?}\n"),
    )
    .unwrap();
    config
}

/// What a [`SteadyLoad`] did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Blobs stored (and certified), with their bytes.
    pub stored: Vec<(BlobId, Vec<u8>)>,
    /// Reads that gave back the stored bytes.
    pub reads: usize,
    /// Every failed store or read, or read that gave back other bytes.
    pub failures: Vec<String>,
}

/// A client on a thread of its own that, until finished, stores a small blob (if writing)
/// and reads back one blob it knows, compared byte for byte, in turn.
pub struct SteadyLoad {
    stop: Arc<AtomicBool>,
    writing: Arc<AtomicBool>,
    /// Stores and reads that succeeded so far.
    progress: Arc<[AtomicUsize; 2]>,
    thread: Option<JoinHandle<LoadReport>>,
}

impl SteadyLoad {
    /// Starts the load through the client configuration at `config`; `known` blobs are read
    /// too. It writes (if `writes`) until [`SteadyLoad::stop_writing`].
    pub fn start(config: &Path, known: Vec<(BlobId, Vec<u8>)>, writes: bool) -> Self {
        let config = ClientConfig::load(config).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writing = Arc::new(AtomicBool::new(writes));
        let progress: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let (stop_flag, writing_flag) = (Arc::clone(&stop), Arc::clone(&writing));
        let counters = Arc::clone(&progress);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let client = runtime.block_on(Client::connect(&config)).unwrap();
            let options = StoreOptions { epochs: 50, ..StoreOptions::default() };
            let mut report = LoadReport::default();
            let mut blobs = known;
            let mut round: u64 = 0;
            while !stop_flag.load(Ordering::Acquire) {
                round += 1;
                if writing_flag.load(Ordering::Acquire) {
                    let data = morsa_cluster::sample::bytes(
                        4_000 + usize::try_from(round % 7).unwrap() * 1_500,
                        round,
                    );
                    match runtime.block_on(client.store_blob(data.clone(), &options)) {
                        Ok(stored) => {
                            blobs.push((stored.blob_id, data.clone()));
                            report.stored.push((stored.blob_id, data));
                            counters[0].fetch_add(1, Ordering::AcqRel);
                        }
                        Err(error) => report.failures.push(format!("store {round}: {error:#}")),
                    }
                }
                let Some((blob_id, data)) = blobs.get(usize::try_from(round).unwrap() % blobs.len().max(1))
                else {
                    continue;
                };
                match runtime.block_on(client.read_blob(blob_id)) {
                    Ok(read) if read.data == *data => {
                        report.reads += 1;
                        counters[1].fetch_add(1, Ordering::AcqRel);
                    }
                    Ok(_) => report.failures.push(format!("read of {blob_id}: other bytes")),
                    Err(error) => report.failures.push(format!("read of {blob_id}: {error:#}")),
                }
                // Paced, not synchronised: a debug cluster on two shared cores has no room
                // for a client spinning at full speed.
                std::thread::sleep(Duration::from_millis(100));
            }
            report
        });
        Self { stop, writing, progress, thread: Some(thread) }
    }

    /// Stores and reads that succeeded so far.
    pub fn progress(&self) -> (usize, usize) {
        (self.progress[0].load(Ordering::Acquire), self.progress[1].load(Ordering::Acquire))
    }

    /// Waits (at most `within`) until `stores` more stores and `reads` more reads than now
    /// have succeeded: the load went on through whatever happened meanwhile.
    pub fn wait_for_more(&self, stores: usize, reads: usize, within: Duration) {
        let (stored, read) = self.progress();
        eventually("the steady load makes progress", within, || {
            let (now_stored, now_read) = self.progress();
            (now_stored >= stored + stores && now_read >= read + reads).then_some(())
        });
    }

    /// From now on the load only reads.
    pub fn stop_writing(&self) {
        self.writing.store(false, Ordering::Release);
    }

    /// Stops the load and answers what it did.
    pub fn finish(mut self) -> LoadReport {
        self.stop.store(true, Ordering::Release);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for SteadyLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
