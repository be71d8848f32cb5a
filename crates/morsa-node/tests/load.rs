#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
//! The node under 500 clients that ask for recovery batches and never read the answers (each
//! answer is about 4 MiB for a ~100 KiB request). Its memory must stay within the answer budget
//! plus a fixed allowance (docs/NODE.md, "Limits"), its health probes must still answer, and it
//! must cut the non-readers after the write timeout. Alone in its binary, so that the process's
//! resident memory is this test's.

mod hardened;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use morsa_api::node::{MAX_RECOVERY_BATCH, RecoveryBatchRequest, RecoveryItem, routes};
use morsa_node::Limits;
use redstuff::SliverType;
use tokio::io::AsyncWriteExt;

/// Clients that never read.
const CLIENTS: usize = 500;
/// Loopback source addresses they come from (127.0.0.1 to .50): ten per caller.
const CALLERS: u8 = 50;
/// The answer budget of the node under test.
const BUDGET: u64 = 32 << 20;
/// What the process may grow by beyond the budget: connection buffers, requests being read,
/// one expanded sliver per recovery task, allocator slack.
const ALLOWANCE: u64 = 64 << 20;

/// The process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_clients_that_never_read_cannot_grow_the_node_past_its_budget() {
    let limits = Limits {
        answer_buffer_bytes: BUDGET,
        max_recovery_answer_bytes: 4 << 20,
        max_recovery_answers_per_caller: 8,
        write_timeout_ms: 1500,
        request_timeout_ms: 120_000,
        ..Limits::default()
    };
    let running = hardened::start(limits, 8000).await;
    let (address, blob_id) = (running.address, *running.encoded.metadata.blob_id());
    // A full batch over the blob: every item is answered with ten symbols and their proofs.
    let items = (0..MAX_RECOVERY_BATCH)
        .map(|item| RecoveryItem {
            blob_id,
            target_sliver: u16::try_from(item % usize::from(hardened::N)).unwrap(),
            target_type: if item % 2 == 0 { SliverType::Primary } else { SliverType::Secondary },
            max_symbols: None,
        })
        .collect();
    let body = serde_json::to_vec(&RecoveryBatchRequest { items }).unwrap();
    let mut request = format!(
        "POST {} HTTP/1.1\r\nhost: node\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        routes::RECOVERY_SYMBOLS_BATCH,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let request = Arc::new(request);

    // Resident memory, sampled until the flood is over.
    let baseline = rss();
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (Arc::clone(&peak), Arc::clone(&sampling));
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let over = |peak: &AtomicU64| peak.load(Ordering::Relaxed).saturating_sub(baseline) > BUDGET + ALLOWANCE;

    let mut streams = Vec::with_capacity(CLIENTS);
    for client in 0..CLIENTS {
        let caller = u8::try_from(client % usize::from(CALLERS)).unwrap() + 1;
        let stream = hardened::connect_from(address, caller).await;
        let request = Arc::clone(&request);
        // Writing may block once the node stops reading; the clients never read.
        let (reader, mut writer) = stream.into_split();
        tokio::spawn(async move {
            let _ = writer.write_all(&request).await;
            // Keep the write half open: the request is complete, the client just never reads.
            std::future::pending::<()>().await;
        });
        streams.push(reader);
        assert!(!over(&peak), "the node grew past its bound while clients connected");
    }

    // While they wait, health probes answer.
    let health = tokio::time::timeout(Duration::from_secs(10), running.client.health()).await;
    assert!(matches!(health, Ok(Ok(_))), "a health probe failed during the flood: {health:?}");

    // The node cuts non-readers after the write timeout, which frees their answers for the
    // next ones: wait until 24 have been cut (three rounds of the budget).
    let cut_before = morsa_api::server::stats().write_timeouts;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let cut = morsa_api::server::stats().write_timeouts - cut_before;
        if cut >= 24 {
            break;
        }
        assert!(Instant::now() < deadline, "only {cut} non-reading clients were cut within a minute");
        let grown = peak.load(Ordering::Relaxed).saturating_sub(baseline);
        assert!(!over(&peak), "the node grew past its bound: {} MiB above idle", grown >> 20);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(streams);
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let grown = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    assert!(grown <= BUDGET + ALLOWANCE, "the node grew {} MiB above idle", grown >> 20);
    eprintln!(
        "resident memory grew at most {} MiB above idle with {CLIENTS} non-reading clients",
        grown >> 20
    );
}
