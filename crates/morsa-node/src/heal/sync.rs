//! Blob sync and background repair: finds the slivers this node lacks of certified blobs and
//! rebuilds them, throttled, most at risk first.
//!
//! - **Scans.** At start (a node that was down catches up on events first, then finds every
//!   missing sliver it owns) and every `scan_interval_ms`, every certified blob is checked for
//!   missing slivers of the owned shards, which are queued due at once (and their blobs
//!   declared lost to the coordinator: `losses`). A scan is also run when
//!   the queue dropped work for lack of room.
//! - **Certifications.** A blob certified by an event the follower just applied is checked
//!   right away, but its missing slivers wait out a grace period (`grace_ms`) counted from the
//!   event's time: clients may still be uploading. A blob certified before this process
//!   started (the node was down or restarting) is due at once.
//! - **Workers.** `concurrency` workers take up to `batch_slivers` due slivers at a time and
//!   rebuild them together ([`Repairer::rebuild`]); failures come back with backoff.
//!
//! Pausing stops the workers and the scrubber between rounds; scans and the queue continue.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::heal::repair_queue::{Job, Missing};
use crate::heal::repairer::Repairer;
use crate::heal::scrub;
use morsa_plumbing::now_ms;

/// Longest a worker sleeps before looking at the queue again.
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// Runs the scanner and the workers until `stop` turns true.
pub async fn run(repairer: Arc<Repairer>, stop: watch::Receiver<bool>) {
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(scan_loop(Arc::clone(&repairer), stop.clone()));
    for _ in 0..repairer.config.concurrency.max(1) {
        tasks.spawn(work_loop(Arc::clone(&repairer), stop.clone()));
    }
    tasks.spawn(crate::heal::availability::run(Arc::clone(&repairer), stop.clone()));
    tasks.spawn(crate::heal::liveness::run(Arc::clone(&repairer), stop.clone()));
    if let Some(coord) = repairer.coord.get().cloned() {
        let (declaring, stop) = (Arc::clone(&repairer), stop.clone());
        tasks.spawn(async move {
            crate::heal::losses::run(&declaring.node, &declaring.losses, &coord, stop).await;
        });
    }
    tasks.spawn(scrub::run(Arc::clone(&repairer), stop));
    while tasks.join_next().await.is_some() {}
}

/// Queues every missing sliver of every certified blob, due now, ordered by the system-wide
/// margins the coordinators answer the summary of what was found.
pub async fn scan(repairer: &Repairer) {
    let node = Arc::clone(&repairer.node);
    match repairer.background.run(move || node.scan_missing()).await {
        Ok(found) => {
            repairer.replace_missing(found.iter().map(|(blob_id, _, _)| *blob_id).collect());
            repairer.losses.note(found.iter().map(|(blob_id, _, _)| *blob_id));
            repairer.exchange_before_queueing().await;
            let now = Instant::now();
            let mut queue = repairer.queue();
            let mut added = 0;
            for (blob_id, missing, bytes) in found {
                added += queue.push(blob_id, missing, now, bytes);
            }
            drop(queue);
            repairer.stats.scans.fetch_add(1, Ordering::Relaxed);
            repairer.scanned.store(true, Ordering::Release);
            if added > 0 {
                tracing::info!(slivers = added, "found missing slivers of certified blobs");
                repairer.wake.notify_waiters();
            }
        }
        Err(error) => tracing::error!(%error, "cannot scan for missing slivers"),
    }
}

async fn scan_loop(repairer: Arc<Repairer>, mut stop: watch::Receiver<bool>) {
    let interval = Duration::from_millis(repairer.config.scan_interval_ms);
    let mut next_scan = Instant::now();
    loop {
        if *stop.borrow() {
            return;
        }
        let dropped_before = repairer.queue().dropped;
        if Instant::now() >= next_scan {
            scan(&repairer).await;
            next_scan = Instant::now() + interval;
        }
        let (certified, overflowed) = repairer.node.certified_inbox().take();
        if overflowed {
            next_scan = Instant::now();
        }
        let mut found = Vec::new();
        for (blob_id, time_ms) in certified {
            let node = Arc::clone(&repairer.node);
            let Ok((missing, bytes)) = repairer.background.run(move || node.missing_of(&blob_id)).await
            else {
                continue;
            };
            if !missing.is_empty() {
                let grace = grace_left(time_ms, repairer.started_ms, now_ms(), repairer.config.grace_ms);
                found.push((blob_id, missing, grace, bytes));
            }
        }
        if !found.is_empty() {
            repairer.note_missing(found.iter().map(|(blob_id, _, _, _)| *blob_id));
            // Blobs due at once (certified while this node was away) are ordered by the
            // system-wide view from their first attempt.
            if found.iter().any(|(_, _, grace, _)| grace.is_zero()) {
                repairer.exchange_before_queueing().await;
            }
            let now = Instant::now();
            let mut queue = repairer.queue();
            for (blob_id, missing, grace, bytes) in found {
                queue.push(blob_id, missing, now + grace, bytes);
            }
            drop(queue);
            repairer.wake.notify_waiters();
        }
        // Work was dropped for lack of room: look again once the queue has drained a bit.
        if repairer.queue().dropped > dropped_before {
            next_scan = next_scan.min(Instant::now() + interval / 10);
        }
        let wait = next_scan.saturating_duration_since(Instant::now());
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = repairer.node.certified_inbox().notify.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

/// What is left at `now_ms` of the grace period of a blob certified at `time_ms`: none if it
/// was certified before this process started at `started_ms` (its uploads to this node, if
/// any, were lost with the old process).
fn grace_left(time_ms: u64, started_ms: u64, now_ms: u64, grace_ms: u64) -> Duration {
    if time_ms < started_ms {
        return Duration::ZERO;
    }
    Duration::from_millis(time_ms.saturating_add(grace_ms).saturating_sub(now_ms).min(grace_ms))
}

async fn work_loop(repairer: Arc<Repairer>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let jobs = if repairer.is_paused() {
            Vec::new()
        } else {
            repairer.queue().take_due(Instant::now(), repairer.config.batch_slivers)
        };
        if jobs.is_empty() {
            let wait = repairer
                .queue()
                .next_due()
                .map_or(IDLE_WAIT, |due| due.saturating_duration_since(Instant::now()).min(IDLE_WAIT));
            tokio::select! {
                () = tokio::time::sleep(wait.max(Duration::from_millis(5))) => {}
                () = repairer.wake.notified() => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        round(&repairer, jobs).await;
    }
}

/// Rebuilds the slivers of `jobs` together and puts the failures back.
async fn round(repairer: &Repairer, jobs: Vec<Job>) {
    let targets = jobs
        .iter()
        .flat_map(|job| {
            job.missing.iter().map(|(shard, kind)| Missing {
                blob_id: job.blob_id,
                shard: *shard,
                kind: *kind,
            })
        })
        .collect();
    let report = repairer.rebuild(targets, true).await;
    let now = Instant::now();
    let mut queue = repairer.queue();
    for job in &jobs {
        let failed: Vec<_> = report
            .failed
            .iter()
            .filter(|missing| missing.blob_id == job.blob_id)
            .map(|missing| (missing.shard, missing.kind))
            .collect();
        queue.finish(job, &failed, report.margins.get(&job.blob_id).copied(), now);
    }
    drop(queue);
    repairer.flights_ended.notify_waiters();
    if !report.rebuilt.is_empty() {
        tracing::info!(slivers = report.rebuilt.len(), failed = report.failed.len(), "repaired slivers");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grace_period_runs_from_the_certification_and_not_for_blobs_certified_before_the_start() {
        let (started, grace) = (1_000_000, 10_000);
        // Certified while this process was not running: due at once.
        assert_eq!(grace_left(started - 1, started, started + 5, grace), Duration::ZERO);
        // Certified since: what is left of the grace period.
        assert_eq!(grace_left(started + 100, started, started + 2_100, grace), Duration::from_secs(8));
        assert_eq!(grace_left(started + 100, started, started + 20_000, grace), Duration::ZERO);
        // A clock far behind the coordinator's waits at most the grace period.
        assert_eq!(grace_left(started + 1_000_000, started, started, grace), Duration::from_secs(10));
    }
}
