//! `morsa bench coord`: committed transactions per second and commit latency of the
//! coordinator with 1 and with 3 replicas, in the same run, as real `morsa coord run`
//! processes on loopback; and the failover time of the 3-replica group, from the leader's
//! SIGKILL to the next acknowledged write.
//!
//! The load is transfers of 1 from `--clients` funded accounts, each sending its transactions
//! one after the other, so up to `--clients` are waiting at once; the leader proposes the writes
//! waiting together as one Raft entry (group commit, see docs/COORDINATOR.md). Every
//! replica fsyncs its log and state; all share this machine's cores with the client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use morsa_api::client::{ClientError, ClientOptions, CoordClient};
use morsa_api::coord::{Command as CoordCommand, SignedTransaction, Transaction};
use morsa_cluster::ports::{ReservedAddress, reserve_loopback_addresses};
use morsa_core::AccountKey;
use serde::Serialize;

use crate::runtime;

const CHAIN: &str = "bench-coord";
/// Longest a replica may take to start, or the group to elect a leader.
const SETTLE: Duration = Duration::from_secs(30);

/// Options of `morsa bench coord`.
#[derive(Debug, Args)]
pub struct CoordArgs {
    /// Transactions committed per group size.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    transactions: u64,
    /// Accounts sending at once (each waits for its previous transaction).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1000))]
    clients: u64,
    /// Leader kills measured with 3 replicas (the median is reported); 0 skips them.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=100))]
    failovers: u32,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct GroupReport {
    replicas: usize,
    transactions: u64,
    clients: u64,
    tx_per_s: f64,
    latency_median_ms: f64,
    latency_p99_ms: f64,
}

#[derive(Debug, Serialize)]
struct CoordReport {
    groups: Vec<GroupReport>,
    /// Rate with 3 replicas over the rate with 1.
    three_over_one: f64,
    failover_median_s: Option<f64>,
    failover_s: Vec<f64>,
}

/// Runs the benchmark.
pub fn run(args: &CoordArgs) -> anyhow::Result<()> {
    let keys: Vec<AccountKey> = (0..args.clients).map(account_key).collect();
    let mut groups = Vec::new();
    let mut failovers = Vec::new();
    for replicas in [1, 3] {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let mut group = Group::start(dir.path(), replicas, &keys)?;
        groups.push(load(&group, args, &keys)?);
        if replicas == 3 {
            // The first account's next nonces, after its share of the load.
            let first = args.transactions.div_ceil(args.clients);
            for nonce in (first..).take(usize::try_from(args.failovers)?) {
                failovers.push(group.failover(&keys[0], nonce)?);
            }
        }
    }
    failovers.sort_by(f64::total_cmp);
    let report = CoordReport {
        three_over_one: groups[1].tx_per_s / groups[0].tx_per_s,
        groups,
        failover_median_s: failovers.get(failovers.len() / 2).copied(),
        failover_s: failovers,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for group in &report.groups {
        println!(
            "{} replica(s): {:.0} tx/s committed ({} transactions, {} clients); latency median {:.1} ms, p99 {:.1} ms",
            group.replicas,
            group.tx_per_s,
            group.transactions,
            group.clients,
            group.latency_median_ms,
            group.latency_p99_ms
        );
    }
    println!("3 replicas / 1 replica: {:.2}", report.three_over_one);
    if let Some(median) = report.failover_median_s {
        println!(
            "failover (leader SIGKILL to the next acknowledged write): median {median:.2} s of {:?}",
            report.failover_s
        );
    }
    Ok(())
}

fn account_key(index: u64) -> AccountKey {
    let mut seed = [7; 32];
    seed[..8].copy_from_slice(&index.to_le_bytes());
    AccountKey::from_seed(seed)
}

fn transfer(key: &AccountKey, nonce: u64) -> SignedTransaction {
    let command = CoordCommand::Transfer { to: account_key(u64::MAX).id(), amount: 1 };
    Transaction { sender: key.id(), nonce, command }.sign(key, CHAIN)
}

/// Sends `args.transactions` transfers from every key in turn, `args.clients` at once.
fn load(group: &Group, args: &CoordArgs, keys: &[AccountKey]) -> anyhow::Result<GroupReport> {
    let client = group.client()?;
    let per_client = args.transactions.div_ceil(args.clients);
    let started = Instant::now();
    let latencies = runtime()?.block_on(async {
        let mut tasks = Vec::new();
        for key in keys {
            let (client, key) = (client.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                for nonce in 0..per_client {
                    let sent = Instant::now();
                    client.submit_transaction(&transfer(&key, nonce)).await?;
                    latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                }
                Ok::<_, ClientError>(latencies)
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.context("a sender failed")?.context("a transfer was not committed")?);
        }
        anyhow::Ok(all)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut sorted = latencies;
    sorted.sort_by(f64::total_cmp);
    // The value below which `percent` % of the latencies lie.
    let at = |percent: usize| {
        let index = (sorted.len() * percent / 100).min(sorted.len().saturating_sub(1));
        sorted.get(index).copied().unwrap_or(0.0)
    };
    let committed = per_client * args.clients;
    Ok(GroupReport {
        replicas: group.processes.len(),
        transactions: committed,
        clients: args.clients,
        tx_per_s: morsa_core::convert::lossy_f64(committed) / elapsed.max(1e-9),
        latency_median_ms: at(50),
        latency_p99_ms: at(99),
    })
}

/// Replicas of one group, as child processes killed when dropped.
struct Group {
    configs: Vec<PathBuf>,
    urls: Vec<String>,
    processes: Vec<Option<Child>>,
    /// The replicas' addresses, distinct and kept for them while they are down too.
    _reserved: Vec<ReservedAddress>,
}

impl Drop for Group {
    fn drop(&mut self) {
        for child in self.processes.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Group {
    fn start(dir: &Path, replicas: usize, keys: &[AccountKey]) -> anyhow::Result<Self> {
        let genesis = genesis(keys);
        std::fs::write(dir.join("genesis.json"), serde_json::to_vec(&genesis)?)?;
        let reserved = reserve_loopback_addresses(replicas)?;
        let urls: Vec<String> = reserved.iter().map(ReservedAddress::url).collect();
        let members: String =
            (1..).zip(&urls).map(|(id, url)| format!("[[replicas]]\nid = {id}\nurl = \"{url}\"\n")).collect();
        let mut configs = Vec::new();
        for (id, url) in (1..).zip(&urls) {
            let config = dir.join(format!("coord{id}.toml"));
            let text = format!(
                "listen = \"{}\"\ndata_dir = \"coord{id}\"\ngenesis = \"genesis.json\"\nid = {id}\n{members}",
                url.trim_start_matches("http://")
            );
            std::fs::write(&config, text)?;
            configs.push(config);
        }
        let mut group = Self { configs, urls, processes: Vec::new(), _reserved: reserved };
        for index in 0..replicas {
            let child = group.spawn(index)?;
            group.processes.push(Some(child));
        }
        group.leader()?;
        Ok(group)
    }

    fn spawn(&self, index: usize) -> anyhow::Result<Child> {
        let mut child = Command::new(std::env::current_exe().context("cannot find this executable")?)
            .args(["coord", "run", "--config"])
            .arg(&self.configs[index])
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start a coordinator replica")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        match received.recv_timeout(SETTLE) {
            Ok(line) if line.contains("listening on") => Ok(child),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("replica {} did not start within {SETTLE:?}", index + 1)
            }
        }
    }

    /// A client of every live replica, the leader first.
    fn client(&self) -> anyhow::Result<CoordClient> {
        let leader = self.leader()?;
        let mut urls = vec![self.urls[leader].clone()];
        urls.extend(
            self.live().into_iter().filter(|index| *index != leader).map(|index| self.urls[index].clone()),
        );
        Ok(CoordClient::with_urls(&urls, ClientOptions::default())?)
    }

    fn live(&self) -> Vec<usize> {
        (0..self.processes.len()).filter(|index| self.processes[*index].is_some()).collect()
    }

    /// The index of the replica that a majority of the group's replicas report as leader
    /// (one that still believes it leads after a newer leader was elected is not counted),
    /// once there is one.
    fn leader(&self) -> anyhow::Result<usize> {
        let deadline = Instant::now() + SETTLE;
        let majority = self.processes.len() / 2 + 1;
        runtime()?.block_on(async {
            loop {
                let mut votes = std::collections::BTreeMap::<u64, usize>::new();
                for index in self.live() {
                    let client = CoordClient::with_urls(&[&self.urls[index]], ClientOptions::default())?;
                    if let Ok(system) = client.system().await
                        && let Some(leader) = system.replica.and_then(|replica| replica.leader)
                    {
                        *votes.entry(leader).or_default() += 1;
                    }
                }
                if let Some((leader, _)) = votes.into_iter().find(|(_, count)| *count >= majority) {
                    return Ok(usize::try_from(leader)?.saturating_sub(1));
                }
                if Instant::now() > deadline {
                    bail!("no leader within {SETTLE:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    }

    /// Kills the leader, measures the time until transfer `nonce` of `key` is acknowledged by
    /// the survivors, then restarts the killed replica.
    fn failover(&mut self, key: &AccountKey, nonce: u64) -> anyhow::Result<f64> {
        let leader = self.leader()?;
        let survivors: Vec<String> = self
            .live()
            .into_iter()
            .filter(|index| *index != leader)
            .map(|index| self.urls[index].clone())
            .collect();
        let client = CoordClient::with_urls(&survivors, ClientOptions::default())?;
        let transaction = transfer(key, nonce);
        if let Some(mut child) = self.processes[leader].take() {
            child.kill().context("cannot kill the leader")?;
            let _ = child.wait();
        }
        let killed = Instant::now();
        runtime()?.block_on(async {
            loop {
                match client.submit_transaction(&transaction).await {
                    Ok(_) => return Ok(()),
                    // An earlier attempt was committed after all.
                    Err(ClientError::Http { body, .. }) if body.code == "bad_nonce" => return Ok(()),
                    Err(error) if killed.elapsed() > SETTLE => {
                        bail!("no write acknowledged {SETTLE:?} after the leader was killed: {error}")
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })?;
        let elapsed = killed.elapsed().as_secs_f64();
        let child = self.spawn(leader)?;
        self.processes[leader] = Some(child);
        Ok(elapsed)
    }
}

fn genesis(keys: &[AccountKey]) -> morsa_coord::Genesis {
    let accounts =
        keys.iter().map(|key| morsa_coord::GenesisAccount { id: key.id(), balance: 1_000_000_000 }).collect();
    morsa_coord::Genesis::coordinator_only(CHAIN, accounts)
}
