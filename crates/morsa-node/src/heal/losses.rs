//! Loss declarations: blobs whose slivers this node should hold (certified, of its shards) and
//! found missing or damaged are declared lost to the coordinator (`DeclareLoss`, signed by the
//! node), so that while repair rebuilds them, challenges on them in the rounds that start
//! after the declaration fail as *declared*, at a quarter of the cost of a caught failure
//! (docs/COORDINATOR.md, "Challenges").
//!
//! - **Who finds them.** A full scan (at start, after events missed while the node was down,
//!   and every `scan_interval_ms`) and the scrubber ([`Losses::note`]: a lock and a wake-up,
//!   so neither waits on the coordinator). Slivers missing because a blob was just certified
//!   (uploads may still arrive) are not noted: the coordinator does not challenge a blob in
//!   the epoch it was certified in.
//! - **What is declared.** The task of this module checks every noted blob again against the
//!   store (what was rebuilt since drops out), keeps the blobs it may not be challenged on yet
//!   (certified in the current epoch) for the next epoch, and declares the others, at most
//!   [`MAX_BATCH`] per report.
//! - **Once per epoch.** A blob is declared at most once per epoch, and at most
//!   [`MAX_DECLARED_BLOBS`] in all (the coordinator refuses more). The coordinator forgets
//!   declarations at each epoch change, so what is still missing then is declared again.
//! - **Retries.** A report is sent again while the coordinator is away or busy, for
//!   [`PATIENCE`] (`report::submit_until`); then the task backs off (up to [`MAX_BACKOFF`])
//!   and tries again. A refused report is not sent again in its epoch.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use morsa_api::client::CoordClient;
use morsa_api::coord::{NodeReport, NodeReportKind};
use morsa_core::Epoch;
use morsa_core::challenge::{MAX_DECLARED_BLOBS, loss_declaration_message};
use morsa_plumbing::now_ms;
use redstuff::BlobId;
use tokio::sync::{Notify, watch};

use crate::blocking::blocking;
use crate::heal::stats::add;
use crate::node::Node;
use crate::report::{Submitted, submit_until};

/// Most blob IDs one declaration carries (about 48 KB of JSON, well within the coordinator's
/// body limit).
pub(crate) const MAX_BATCH: usize = 1024;
/// How long one report is sent again while the coordinator is away or busy.
const PATIENCE: Duration = Duration::from_secs(20);
/// First and longest wait after a report the coordinator never took.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Longest wait between two looks at what is noted when nothing wakes the task.
const IDLE: Duration = Duration::from_secs(10);

/// The blobs found lost and those declared in the current epoch.
#[derive(Debug, Default)]
pub(crate) struct Losses {
    book: Mutex<Book>,
    /// Woken when something new is noted.
    wake: Notify,
    /// Blobs declared in reports the coordinator took, since the start.
    declared: AtomicU64,
}

/// What is noted and declared, by epoch.
#[derive(Debug, Default)]
struct Book {
    /// The epoch `declared` is about (none before the first look).
    epoch: Option<Epoch>,
    /// Found lacking slivers, not declared in `epoch` (at most [`MAX_DECLARED_BLOBS`]).
    found: BTreeSet<BlobId>,
    /// Declared in `epoch` (or refused in it: not sent again in it).
    declared: BTreeSet<BlobId>,
}

impl Book {
    /// Moves to `epoch`: in a new one, everything declared is to be declared again (if it is
    /// still missing).
    fn enter(&mut self, epoch: Epoch) {
        if self.epoch == Some(epoch) {
            return;
        }
        self.epoch = Some(epoch);
        let declared = std::mem::take(&mut self.declared);
        self.add(declared);
    }

    /// Adds `blob_ids` to what is found, up to the bound; answers whether anything was added.
    fn add(&mut self, blob_ids: impl IntoIterator<Item = BlobId>) -> bool {
        let mut added = false;
        for blob_id in blob_ids {
            if self.found.len() >= MAX_DECLARED_BLOBS {
                break;
            }
            if !self.declared.contains(&blob_id) {
                added |= self.found.insert(blob_id);
            }
        }
        added
    }

    /// The found blobs to check, as many as may still be declared in the epoch.
    fn to_check(&self) -> Vec<BlobId> {
        let room = MAX_DECLARED_BLOBS.saturating_sub(self.declared.len());
        self.found.iter().copied().take(room).collect()
    }

    /// Records `blob_ids` declared (or refused) in `epoch`, unless the book moved on.
    fn declared(&mut self, epoch: Epoch, blob_ids: &[BlobId]) {
        if self.epoch != Some(epoch) {
            return;
        }
        for blob_id in blob_ids {
            self.found.remove(blob_id);
            self.declared.insert(*blob_id);
        }
    }
}

impl Losses {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blobs declared in reports the coordinator took, since the start.
    pub(crate) fn declared_count(&self) -> u64 {
        self.declared.load(Ordering::Relaxed)
    }

    /// Notes `blob_ids` as lacking slivers this node should hold; the task declares them.
    pub(crate) fn note(&self, blob_ids: impl IntoIterator<Item = BlobId>) {
        if self.book().add(blob_ids) {
            self.wake.notify_one();
        }
    }
}

/// What checking the noted blobs against the store found.
#[derive(Debug, Default)]
struct Checked {
    /// Still lacking slivers, and challengeable: to declare.
    lost: Vec<BlobId>,
    /// Lacking nothing any more (rebuilt, uploaded, or no longer to be held).
    gone: Vec<BlobId>,
}

/// Sorts `blob_ids` by what the store holds now, for `epoch`. Blocks.
fn check(node: &Node, blob_ids: &[BlobId], epoch: Epoch) -> Checked {
    let mut checked = Checked::default();
    for blob_id in blob_ids {
        let Ok(info) = node.blob_info(blob_id) else {
            checked.gone.push(*blob_id);
            continue;
        };
        match node.missing_of(blob_id) {
            Ok((missing, _)) if missing.is_empty() => checked.gone.push(*blob_id),
            Ok(_) if info.challengeable(epoch) => checked.lost.push(*blob_id),
            // Certified in this epoch (kept for the next one), or the store failed (next look).
            Ok(_) | Err(_) => {}
        }
    }
    checked
}

/// Declares what is noted and still lost: one pass. Answers [`Submitted::GaveUp`] if the
/// coordinator took no report it was sent.
async fn declare(node: &Arc<Node>, losses: &Losses, coord: &CoordClient) -> Submitted {
    let epoch = node.view().epoch();
    if node.view().committee.member_by_node(&node.id()).is_none() {
        return Submitted::Taken; // only members are challenged
    }
    let candidates = {
        let mut book = losses.book();
        book.enter(epoch);
        book.to_check()
    };
    if candidates.is_empty() {
        return Submitted::Taken;
    }
    let checking = Arc::clone(node);
    let Ok(checked) = blocking(move || Ok(check(&checking, &candidates, epoch))).await else {
        return Submitted::Taken;
    };
    losses.book().found.retain(|blob_id| !checked.gone.contains(blob_id));
    for batch in checked.lost.chunks(MAX_BATCH) {
        let blob_ids = batch.to_vec();
        let report = NodeReport {
            node: node.id(),
            signature: node.key().sign(&loss_declaration_message(epoch, &node.id(), &blob_ids)),
            report: NodeReportKind::DeclareLoss { epoch, blob_ids },
        };
        let until = now_ms().saturating_add(u64::try_from(PATIENCE.as_millis()).unwrap_or(u64::MAX));
        match submit_until(coord, &report, until).await {
            Submitted::Taken => {
                add(&losses.declared, batch.len());
                tracing::warn!(epoch = epoch.0, blobs = batch.len(), "declared blobs lost until repaired");
            }
            Submitted::Refused => {
                tracing::warn!(epoch = epoch.0, blobs = batch.len(), "loss declaration refused")
            }
            Submitted::GaveUp => return Submitted::GaveUp,
        }
        losses.book().declared(epoch, batch);
    }
    Submitted::Taken
}

/// Declares what `losses` notes of `node` to `coord` as it is noted (and again in each new
/// epoch) until `stop` turns true.
pub(crate) async fn run(
    node: &Arc<Node>,
    losses: &Losses,
    coord: &CoordClient,
    mut stop: watch::Receiver<bool>,
) {
    // Fires on epoch changes (and challenge rounds): declarations are made afresh per epoch.
    let mut epochs = node.challenge_signal();
    let mut backoff = FIRST_BACKOFF;
    loop {
        if *stop.borrow() {
            return;
        }
        if declare(node, losses, coord).await == Submitted::GaveUp {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        backoff = FIRST_BACKOFF;
        tokio::select! {
            () = tokio::time::sleep(IDLE) => {}
            () = losses.wake.notified() => {}
            _ = epochs.changed() => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(index: usize) -> BlobId {
        let mut bytes = [0; 32];
        bytes[..8].copy_from_slice(&u64::try_from(index).unwrap().to_le_bytes());
        BlobId(bytes)
    }

    #[test]
    fn a_blob_is_declared_once_per_epoch_and_again_in_the_next_while_lost() {
        let mut book = Book::default();
        book.enter(Epoch(3));
        assert!(book.add([blob(1), blob(2)]));
        assert_eq!(book.to_check(), [blob(1), blob(2)]);
        book.declared(Epoch(3), &[blob(1)]);
        // Found again in the same epoch: not declared again.
        assert!(!book.add([blob(1)]));
        assert_eq!(book.to_check(), [blob(2)]);
        // A record for an epoch the book left is ignored.
        book.declared(Epoch(2), &[blob(2)]);
        assert_eq!(book.to_check(), [blob(2)]);
        // A new epoch: the declared blob is to be checked (and declared) again.
        book.enter(Epoch(4));
        assert_eq!(book.to_check(), [blob(1), blob(2)]);
        assert!(book.declared.is_empty());
    }

    #[test]
    fn what_is_noted_and_declared_stays_within_the_coordinators_limit() {
        let mut book = Book::default();
        book.enter(Epoch(1));
        assert!(book.add((0..MAX_DECLARED_BLOBS + 10).map(blob)));
        assert_eq!(book.found.len(), MAX_DECLARED_BLOBS);
        let first: Vec<BlobId> = (0..MAX_DECLARED_BLOBS - 5).map(blob).collect();
        book.declared(Epoch(1), &first);
        assert!(book.add((MAX_DECLARED_BLOBS..MAX_DECLARED_BLOBS + 10).map(blob)));
        // Five more may be declared in this epoch, however many are found.
        assert_eq!(book.to_check().len(), 5);
        for batch in first.chunks(MAX_BATCH) {
            let kind = NodeReportKind::DeclareLoss { epoch: Epoch(1), blob_ids: batch.to_vec() };
            let report = NodeReport {
                node: morsa_core::NodeId([1; 32]),
                report: kind,
                signature: morsa_core::BlsSecretKey::from_seed([1; 32]).sign(b"x"),
            };
            let json = serde_json::to_vec(&report).unwrap();
            assert!(json.len() < morsa_api::coord::MAX_BODY_BYTES / 4, "{} bytes", json.len());
        }
    }
}
