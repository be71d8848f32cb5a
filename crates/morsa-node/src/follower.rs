//! Follows the coordinator's events: blob registrations, certifications, deletions and
//! invalidations, and epoch changes. Long-polls, applies each page durably, and backs off
//! (capped) while the coordinator is unreachable.

use std::sync::Arc;
use std::time::Duration;

use morsa_api::client::CoordClient;
use morsa_api::coord::{Event, MAX_EVENTS_PAGE, NodeReport, NodeReportKind};
use tokio::sync::watch;

use crate::node::{Node, View};
use crate::report::worth_retrying;

/// How long one long-poll waits for new events.
const POLL_WAIT_MS: u64 = 10_000;
/// Longest pause between attempts while the coordinator fails.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Fetches the coordinator's current committees as a [`View`].
pub async fn fetch_view(coord: &CoordClient) -> Result<View, morsa_api::client::ClientError> {
    let info = coord.committee().await?;
    Ok(View { committee: info.current, next: info.next, zones: info.zones })
}

/// Applies events until `stop` turns true.
pub async fn follow(node: Arc<Node>, coord: CoordClient, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(100);
    let gc_running = Arc::new(std::sync::atomic::AtomicBool::new(false));
    loop {
        if *stop.borrow() {
            return;
        }
        let after = match node.cursor() {
            Ok(cursor) => cursor,
            Err(error) => {
                tracing::error!(%error, "cannot read the event cursor");
                return;
            }
        };
        let page = tokio::select! {
            page = coord.events(after, POLL_WAIT_MS, MAX_EVENTS_PAGE) => page,
            _ = stop.changed() => return,
        };
        let events = match page {
            Ok(page) => {
                backoff = Duration::from_millis(100);
                page.events
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis(), "cannot fetch coordinator events");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let epoch_changed =
            events.iter().any(|record| matches!(record.event, Event::EpochChangeStart { .. }));
        let removes_data = events
            .iter()
            .any(|record| matches!(record.event, Event::BlobDeleted { .. } | Event::InvalidBlobId { .. }));
        let shards_before = node.owned_shards();
        let applier = Arc::clone(&node);
        match tokio::task::spawn_blocking(move || applier.apply_events(&events)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot apply coordinator events");
                return;
            }
            Err(_) => return,
        }
        if epoch_changed {
            match fetch_view(&coord).await {
                Ok(view) => node.set_view(view),
                Err(error) => tracing::warn!(%error, "cannot refresh the committee after an epoch change"),
            }
            report_sync_done(&node, &coord, &shards_before, &stop).await;
        }
        if epoch_changed || removes_data {
            collect_garbage(&node, &gc_running);
        }
    }
}

/// Tells the coordinator this node holds its shards of the new epoch. A node that kept its
/// shards reports at once. A node that gained shards pulls them from their previous owners
/// (`migrate`), asks its sync loop for a full scan, which rebuilds from the other nodes'
/// recovery symbols what was not pulled, and reports from a background task once no shard is
/// being pulled and nothing of its shards is missing.
async fn report_sync_done(
    node: &Arc<Node>,
    coord: &CoordClient,
    before: &std::collections::BTreeSet<u16>,
    stop: &watch::Receiver<bool>,
) {
    let now = node.owned_shards();
    if now.is_empty() {
        return;
    }
    if now.is_subset(before) {
        // In the background: retries must not hold up the events that follow.
        let (node, coord, stop) = (Arc::clone(node), coord.clone(), stop.clone());
        tokio::spawn(async move { submit_sync_done(&node, &coord, stop).await });
        return;
    }
    let gained = now.difference(before).count();
    tracing::info!(gained, "new shards: syncing them before reporting the epoch change done");
    node.certified_inbox().request_scan();
    report_when_synced(node, coord, stop);
}

/// Reports the epoch change done, from a background task, once no gained shard is being
/// pulled and nothing of the node's shards is missing. Also called at start by a node that
/// was syncing shards when it stopped.
pub(crate) fn report_when_synced(node: &Arc<Node>, coord: &CoordClient, stop: &watch::Receiver<bool>) {
    let (node, coord, mut stop) = (Arc::clone(node), coord.clone(), stop.clone());
    let epoch = node.view().epoch();
    tokio::spawn(async move {
        loop {
            if node.view().epoch() != epoch {
                return; // a later epoch change reports for itself
            }
            let scanner = Arc::clone(&node);
            match tokio::task::spawn_blocking(move || scanner.scan_missing()).await {
                Ok(Ok(missing)) if missing.is_empty() && node.pulls_finished() => {
                    submit_sync_done(&node, &coord, stop).await;
                    return;
                }
                Ok(Ok(missing)) => tracing::debug!(blobs = missing.len(), "new shards still syncing"),
                Ok(Err(error)) => tracing::warn!(%error, "cannot check the new shards"),
                Err(_) => return,
            }
            tokio::select! {
                () = tokio::time::sleep(SYNC_CHECK) => {}
                _ = stop.changed() => return,
            }
        }
    });
}

/// How often a node that gained shards checks whether it holds them all.
const SYNC_CHECK: Duration = Duration::from_secs(2);

/// Reports the epoch change done. Without the reports of a quorum the change never
/// completes, so a report the coordinator could not take (unreachable, busy: 429 or 5xx) is
/// sent again with capped backoff, until it is taken, refused for good, made moot by a later
/// epoch, or the node stops.
async fn submit_sync_done(node: &Node, coord: &CoordClient, mut stop: watch::Receiver<bool>) {
    let epoch = node.view().epoch();
    let report = NodeReport {
        node: node.id(),
        report: NodeReportKind::EpochSyncDone { epoch },
        signature: node.key().sign(&morsa_core::epoch_sync_done_message(epoch, &node.id())),
    };
    let mut pause = Duration::from_millis(200);
    loop {
        match coord.submit_node_report(&report).await {
            Ok(_) => {
                if let Err(error) = node.forget_gains(epoch) {
                    tracing::warn!(%error, "cannot forget the shards synced");
                }
                return;
            }
            Err(error) if worth_retrying(&error) => {
                tracing::warn!(%error, epoch = epoch.0, retry_in = ?pause, "cannot report the epoch change done yet");
            }
            Err(error) => {
                tracing::error!(%error, epoch = epoch.0, "the coordinator refused this node's epoch-change report");
                return;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() || node.view().epoch() != epoch {
            return;
        }
        pause = (pause * 2).min(MAX_BACKOFF);
    }
}

/// Longest a node waits after an epoch change before collecting; each node waits its own
/// share of it, derived from its ID.
const GC_SPREAD: Duration = Duration::from_secs(10);
/// Blobs removed per batch, and the pause between batches.
const GC_BATCH: usize = 32;
const GC_PAUSE: Duration = Duration::from_millis(50);

/// Starts a garbage collection in the background, unless one is running: after a node-specific
/// offset, in batches with pauses, on blocking threads.
fn collect_garbage(node: &Arc<Node>, running: &Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    if running.swap(true, Ordering::AcqRel) {
        return;
    }
    let offset = gc_offset(&node.id());
    let (node, running) = (Arc::clone(node), Arc::clone(running));
    tokio::spawn(async move {
        let pass = |batch| {
            let collector = Arc::clone(&node);
            async move { tokio::task::spawn_blocking(move || collector.collect_garbage_batch(batch)).await.ok() }
        };
        collect_in_passes(offset, pass, tokio::time::sleep).await;
        running.store(false, Ordering::Release);
    });
}

/// When a node starts collecting after an epoch change: its own share of [`GC_SPREAD`], from
/// its ID, so that the nodes of a committee do not all do heavy I/O at once.
fn gc_offset(node: &morsa_core::NodeId) -> Duration {
    GC_SPREAD * u32::from(node.0[0]) / 256
}

/// Waits `offset`, then runs `pass` (at most [`GC_BATCH`] blobs each; `None` if it could not
/// run) with [`GC_PAUSE`] between passes, until one says nothing is left or fails. `sleep`
/// waits (the clock, injected for tests).
async fn collect_in_passes<Pass, Passing, Sleep, Sleeping>(offset: Duration, mut pass: Pass, mut sleep: Sleep)
where
    Pass: FnMut(usize) -> Passing,
    Passing: std::future::Future<Output = Option<Result<(crate::node::gc::GcStats, bool), crate::NodeError>>>,
    Sleep: FnMut(Duration) -> Sleeping,
    Sleeping: std::future::Future<Output = ()>,
{
    sleep(offset).await;
    loop {
        match pass(GC_BATCH).await {
            Some(Ok((stats, more))) => {
                if stats.blobs > 0 {
                    tracing::info!(
                        blobs = stats.blobs,
                        slivers = stats.slivers,
                        bytes = stats.bytes,
                        "garbage collected"
                    );
                }
                if !more {
                    return;
                }
            }
            Some(Err(error)) => {
                tracing::error!(%error, "garbage collection failed");
                return;
            }
            None => return,
        }
        sleep(GC_PAUSE).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::node::gc::GcStats;

    #[derive(Debug, PartialEq, Eq)]
    enum Step {
        Wait(Duration),
        Pass(usize),
    }

    /// The steps of a collection whose passes answer `answers` in turn.
    async fn steps(
        offset: Duration,
        answers: Vec<Option<Result<(GcStats, bool), crate::NodeError>>>,
    ) -> Vec<Step> {
        let steps = Mutex::new(Vec::new());
        let answers = Mutex::new(answers.into_iter());
        let pass = |batch| {
            steps.lock().unwrap().push(Step::Pass(batch));
            let answer = answers.lock().unwrap().next().expect("no pass after the last answer");
            async move { answer }
        };
        let sleep = |wait| {
            steps.lock().unwrap().push(Step::Wait(wait));
            async {}
        };
        collect_in_passes(offset, pass, sleep).await;
        steps.into_inner().unwrap()
    }

    #[tokio::test]
    async fn garbage_is_collected_in_bounded_passes_with_pauses_after_the_nodes_offset() {
        let removed = GcStats { blobs: 32, slivers: 64, bytes: 1 << 20 };
        let offset = Duration::from_millis(1234);
        let answers =
            vec![Some(Ok((removed, true))), Some(Ok((removed, true))), Some(Ok((GcStats::default(), false)))];
        use Step::{Pass, Wait};
        assert_eq!(
            steps(offset, answers).await,
            [Wait(offset), Pass(GC_BATCH), Wait(GC_PAUSE), Pass(GC_BATCH), Wait(GC_PAUSE), Pass(GC_BATCH)]
        );
        // A failed pass ends the collection (the next trigger starts a new one).
        let failed = vec![Some(Ok((removed, true))), Some(Err(crate::NodeError::ShuttingDown))];
        assert_eq!(
            steps(offset, failed).await,
            [Wait(offset), Pass(GC_BATCH), Wait(GC_PAUSE), Pass(GC_BATCH)]
        );
        assert_eq!(steps(offset, vec![None]).await, [Wait(offset), Pass(GC_BATCH)]);
        assert!(GC_BATCH <= 32 && !GC_PAUSE.is_zero(), "docs/NODE.md: 32 blobs at a time with pauses");
    }

    #[test]
    fn nodes_start_collecting_at_offsets_of_their_own_within_the_spread() {
        let offsets: Vec<Duration> =
            [0u8, 1, 128, 255].iter().map(|first| gc_offset(&morsa_core::NodeId([*first; 32]))).collect();
        assert_eq!(offsets[0], Duration::ZERO);
        assert!(offsets.windows(2).all(|pair| pair[0] < pair[1]), "{offsets:?}");
        assert!(offsets[3] < GC_SPREAD && GC_SPREAD <= Duration::from_secs(10), "{offsets:?}");
    }
}
