//! Strangers' traffic does not slow transactions: on a real socket, the median latency of a
//! transaction while `/v1/system`, parked long-polls and forged node reports are flooded at
//! the rates of the adversarial review (issue #10) stays within twice the median measured
//! idle, in the same test.
//!
//! A timing assertion, which tests otherwise avoid: the issue requires this one. It compares
//! medians of many samples taken in the same run against a generous 2x bound, and it checks
//! that the floods really ran at their rates, so that a slow machine cannot pass it vacuously.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{CHAIN, World};
use morsa_api::client::CoordClient;
use morsa_coord::server::{MAX_PARKED_POLLS_PER_ADDRESS, Shared, serve};
use morsa_coord::{Command, Coordinator, GenesisAccount, NodeReport, NodeReportKind, Transaction};

/// Accounts in the state: enough that hashing the state is real work (tens of milliseconds).
const ACCOUNTS: u32 = 150_000;
/// Rounds of an idle block then a loaded block: interleaved, so that a change in the
/// machine's own load hits both alike.
const ROUNDS: usize = 3;
/// Each block lasts at least this long and holds at least [`MIN_SAMPLES`] transactions.
const MIN_BLOCK: Duration = Duration::from_millis(1500);
/// See [`MIN_BLOCK`].
const MIN_SAMPLES: usize = 40;
/// `/v1/system` requests per second.
const SYSTEM_RATE: u64 = 38;
/// Forged node reports per second.
const REPORT_RATE: u64 = 780;
/// Long-polls parked during the load (from one address, so within its bound).
const PARKED_POLLS: usize = MAX_PARKED_POLLS_PER_ADDRESS - 4;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Sends sequential transfers from user 0 for at least [`MIN_BLOCK`] and [`MIN_SAMPLES`];
/// their latencies.
async fn transfers(client: &CoordClient, world: &World, nonce: &mut u64) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let started = Instant::now();
    while latencies.len() < MIN_SAMPLES || started.elapsed() < MIN_BLOCK {
        let command = Command::Transfer { to: world.users[2].id(), amount: 1 };
        let signed =
            Transaction { sender: world.users[0].id(), nonce: *nonce, command }.sign(&world.users[0], CHAIN);
        let sent = Instant::now();
        client.submit_transaction(&signed).await.unwrap();
        latencies.push(sent.elapsed());
        *nonce += 1;
    }
    latencies
}

/// Requests of a flood: sent, and answered.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    answered: AtomicU64,
}

impl Counts {
    fn get(&self) -> (u64, u64) {
        (self.sent.load(Ordering::Relaxed), self.answered.load(Ordering::Relaxed))
    }
}

/// Runs `send` `rate` times a second while `on`, with at most `in_flight` outstanding.
fn flood<F, Fut>(rate: u64, in_flight: usize, on: Arc<AtomicBool>, send: F) -> Arc<Counts>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let counts = Arc::new(Counts::default());
    let counter = Arc::clone(&counts);
    tokio::spawn(async move {
        let slots = Arc::new(tokio::sync::Semaphore::new(in_flight));
        let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        loop {
            ticks.tick().await;
            if !on.load(Ordering::Relaxed) {
                continue;
            }
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else { continue };
            counter.sent.fetch_add(1, Ordering::Relaxed);
            let (request, counter) = (send(), Arc::clone(&counter));
            tokio::spawn(async move {
                request.await;
                counter.answered.fetch_add(1, Ordering::Relaxed);
                drop(slot);
            });
        }
    });
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_keep_their_latency_under_a_flood_of_strangers_requests() {
    let mut world = World::new(4, 10);
    world.genesis.genesis_time_ms = morsa_coord::server::now_ms();
    world.genesis.epoch_duration_ms = 3_600_000;
    world.genesis.accounts.extend((0..ACCOUNTS).map(|index| {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&index.to_le_bytes());
        id[31] = 0xee;
        GenesisAccount { id: morsa_core::AccountId(id), balance: 1 }
    }));
    let dir = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::open(&world.genesis, &dir.path().join("log.redb")).unwrap();
    let shared = Shared::new(coordinator);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (shutdown, shutdown_signal) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, shared, async move {
        let _ = shutdown_signal.await;
    }));
    let client = CoordClient::new(&format!("http://{address}")).unwrap();
    let mut nonce = 0;

    let on = Arc::new(AtomicBool::new(false));
    let systems = {
        let client = client.clone();
        flood(SYSTEM_RATE, 512, Arc::clone(&on), move || {
            let client = client.clone();
            async move {
                let _ = client.system().await;
            }
        })
    };
    // Signed by another member over the right message: well-formed, and wrong.
    let member = world.state.committee.members[0].node_id;
    let epoch = world.state.epoch;
    let forger = &world.node_keys[(world.node_index(&member) + 1) % world.node_keys.len()];
    let forged = NodeReport {
        node: member,
        report: NodeReportKind::EpochSyncDone { epoch },
        signature: forger.sign(&morsa_core::epoch_sync_done_message(epoch, &member)),
    };
    // Forged reports answered with anything but a refusal for their signature or the flood's
    // rate (a panic in a flood task would not fail the test, so they are counted).
    let misjudged = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let reports = {
        let (client, misjudged) = (client.clone(), Arc::clone(&misjudged));
        flood(REPORT_RATE, 2048, Arc::clone(&on), move || {
            let (client, forged, misjudged) = (client.clone(), forged.clone(), Arc::clone(&misjudged));
            async move {
                let answer = match client.submit_node_report(&forged).await {
                    Ok(_) => "accepted".to_string(),
                    Err(error) => match error.code() {
                        Some("bad_node_signature" | "rate_limited" | "busy") => return,
                        Some(code) => code.to_string(),
                        // Not answered (cut off at shutdown, or timed out): neither accepted
                        // nor wrongly refused.
                        None => return,
                    },
                };
                *misjudged.lock().unwrap().entry(answer).or_default() += 1;
            }
        })
    };

    // Warm up (connections, caches, the first state hash).
    let _ = client.system().await.unwrap();
    for _ in 0..5 {
        let command = Command::Transfer { to: world.users[2].id(), amount: 1 };
        let signed = Transaction { sender: world.users[0].id(), nonce, command }.sign(&world.users[0], CHAIN);
        client.submit_transaction(&signed).await.unwrap();
        nonce += 1;
    }
    let (mut idle, mut loaded) = (Vec::new(), Vec::new());
    let (mut seconds, mut systems_sent, mut reports_sent) = (0.0, 0, 0);
    for _ in 0..ROUNDS {
        idle.extend(transfers(&client, &world, &mut nonce).await);

        let polls: Vec<_> = (0..PARKED_POLLS)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.events(None, 30_000, 10).await })
            })
            .collect();
        on.store(true, Ordering::Relaxed);
        // Measure once the floods run: a second's worth of reports has gone out.
        let warm = reports.get().0 + REPORT_RATE / 4;
        let deadline = Instant::now() + Duration::from_secs(5);
        while reports.get().0 < warm {
            assert!(Instant::now() < deadline, "the report flood does not start");
            tokio::task::yield_now().await;
        }
        let (systems_before, reports_before, started) = (systems.get().0, reports.get().0, Instant::now());
        loaded.extend(transfers(&client, &world, &mut nonce).await);
        seconds += started.elapsed().as_secs_f64();
        systems_sent += systems.get().0 - systems_before;
        reports_sent += reports.get().0 - reports_before;
        on.store(false, Ordering::Relaxed);
        for poll in &polls {
            assert!(!poll.is_finished(), "the polls stayed parked through the load");
        }
        for poll in polls {
            poll.abort();
        }
    }
    let _ = shutdown.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;

    let (idle, loaded) = (median(idle), median(loaded));
    let per_second = |sent: u64| f64::from(u32::try_from(sent).unwrap()) / seconds;
    let (system_rate, report_rate) = (per_second(systems_sent), per_second(reports_sent));
    let (systems_answered, reports_answered) = (systems.get().1, reports.get().1);
    eprintln!(
        "transaction p50 idle {idle:?}, under load {loaded:?} ({seconds:.1} s loaded); /v1/system {system_rate:.0}/s \
         ({systems_answered} answered), forged reports {report_rate:.0}/s ({reports_answered} answered), \
         {PARKED_POLLS} parked polls"
    );
    let misjudged = misjudged.lock().unwrap();
    assert!(
        misjudged.is_empty(),
        "forged reports are refused as forged or over the rate, not: {misjudged:?}"
    );
    let target = |rate: u64| 0.8 * f64::from(u32::try_from(rate).unwrap());
    assert!(system_rate >= target(SYSTEM_RATE), "the system flood ran at its rate: {system_rate:.0}/s");
    assert!(report_rate >= target(REPORT_RATE), "the report flood ran at its rate: {report_rate:.0}/s");
    assert!(
        loaded <= idle * 2,
        "transaction p50 went from {idle:?} idle to {loaded:?} under load: more than twice"
    );
}
