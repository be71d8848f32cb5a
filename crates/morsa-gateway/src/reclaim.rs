//! Deleting chunk blobs nothing names any more, as soon as that is safe.
//!
//! A chunk blob stops being named when its object is deleted or overwritten, its version
//! removed, its upload aborted or its part replaced, or when the write that stored it fails
//! (a digest mismatch, a cut body, a completion refused). A pass of the [`Reclaimer`] finds
//! such blobs by difference: the blobs the namespace named at the last pass, and those the
//! writes ended since then held, that the namespace no longer names and no write in flight
//! holds; it deletes them (`Client::delete`: the account's deletable objects of the blob;
//! permanent blobs, of COMPLIANCE versions, are left to expire). A pass runs after every
//! write that ends and every request that may drop a name.
//!
//! A write in flight can come to name a blob the namespace no longer does: a copy read its
//! source just before the source was deleted, or (without encryption) a chunk with the same
//! bytes as a dropped one has the same blob ID and the store found it already certified. So
//! every write registers when it begins ([`Reclaimer::begin`]) and holds each blob it will
//! name ([`WriteGuard::hold`]) before recording it:
//!
//! - a pass reads which blobs writes hold *before* it reads the namespace, and skips any
//!   blob held or released by a write in the meantime (so a write that named a blob and
//!   ended between those two reads is seen at the next pass);
//! - a blob whose deletion is under way, or ended after a write began, cannot be held by that
//!   write: the write fails (`ServiceUnavailable`; clients retry) rather than name a deleted
//!   blob. So no object is ever recorded with a blob that a pass deleted.
//!
//! Blobs dropped while no gateway ran (it crashed, or the names went before the last start)
//! are not known to the first pass: they expire within the gateway's `epochs` as before.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use morsa_client::{Client, Error as ClientError, Refusal};
use redstuff::BlobId;
use tokio::sync::Notify;

use crate::GatewayError;
use crate::db::Db;

/// What writes in flight hold and what passes delete, shared by the gateway's requests.
#[derive(Debug, Default)]
pub struct Reclaimer {
    state: Mutex<State>,
    /// Wakes the pass loop.
    wake: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Orders write beginnings and deletion ends.
    clock: u64,
    /// The blobs each write in flight holds, by the clock at its beginning.
    writes: BTreeMap<u64, Vec<BlobId>>,
    /// Blobs held by writes that ended since the last pass read them.
    released: BTreeSet<BlobId>,
    /// Blobs being deleted (`None`) or deleted when the clock read this: writes begun before
    /// cannot hold them.
    deletions: BTreeMap<BlobId, Option<u64>>,
}

/// A write in flight; it ends when dropped.
#[derive(Debug)]
pub struct WriteGuard {
    reclaimer: Arc<Reclaimer>,
    began: u64,
}

impl Reclaimer {
    /// Registers a write beginning; hold every blob it will name with the guard.
    pub fn begin(self: &Arc<Self>) -> WriteGuard {
        let mut state = self.lock();
        state.clock += 1;
        let began = state.clock;
        state.writes.insert(began, Vec::new());
        WriteGuard { reclaimer: Arc::clone(self), began }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for a pass (several asks before it starts make one pass).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Blobs held by writes in flight, and those released since the last call (taken).
    fn held_and_released(&self) -> (BTreeSet<BlobId>, BTreeSet<BlobId>) {
        let mut state = self.lock();
        let held = state.writes.values().flatten().copied().collect();
        (held, std::mem::take(&mut state.released))
    }

    /// Of `candidates`, those no write holds or released since [`Self::held_and_released`]:
    /// marked as being deleted.
    fn start_deleting(&self, candidates: BTreeSet<BlobId>) -> Vec<BlobId> {
        let mut state = self.lock();
        let held: BTreeSet<BlobId> = state.writes.values().flatten().copied().collect();
        let chosen: Vec<BlobId> = candidates
            .into_iter()
            .filter(|blob| !held.contains(blob) && !state.released.contains(blob))
            .collect();
        for blob in &chosen {
            state.deletions.insert(*blob, None);
        }
        chosen
    }

    /// Records that the deletion of `blob` ended, and forgets deletions no write in flight
    /// began before.
    fn deleted(&self, blob: BlobId) {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        state.deletions.insert(blob, Some(now));
        let oldest = state.writes.keys().next().copied().unwrap_or(u64::MAX);
        state.deletions.retain(|_, ended| ended.is_none_or(|ended| ended > oldest));
    }

    /// Runs one pass: deletes what `known` (the blobs named at the last pass) and the blobs
    /// writes released since hold that nothing names or holds now; answers the blobs to know
    /// at the next pass (all of them again if the namespace could not be read).
    pub async fn pass(&self, db: &Arc<Db>, client: &Client, known: BTreeSet<BlobId>) -> BTreeSet<BlobId> {
        // Held first, named second: a blob named after this read was held before it.
        let (held, released) = self.held_and_released();
        let mut pool = known;
        pool.extend(released);
        let reader = Arc::clone(db);
        let named = match tokio::task::spawn_blocking(move || reader.referenced_blobs()).await {
            Ok(Ok(named)) => named,
            Ok(Err(error)) => {
                tracing::warn!(%error, "a pass deleting unnamed blobs could not read the namespace");
                return pool;
            }
            Err(error) => {
                tracing::warn!(%error, "a pass deleting unnamed blobs failed reading the namespace");
                return pool;
            }
        };
        let candidates: BTreeSet<BlobId> =
            pool.into_iter().filter(|blob| !named.contains(blob) && !held.contains(blob)).collect();
        let mut next = named;
        for blob in self.start_deleting(candidates) {
            match client.delete(&blob).await {
                Ok(objects) => {
                    tracing::info!(blob_id = %blob, objects = objects.len(), "unnamed chunk blob deleted");
                }
                // Permanent (COMPLIANCE) or already gone: nothing of ours to delete.
                Err(ClientError::Refused(Refusal::NothingToDelete { .. })) => {}
                Err(error) => {
                    tracing::warn!(blob_id = %blob, %error, "deleting an unnamed chunk blob failed; tried again");
                    next.insert(blob);
                }
            }
            self.deleted(blob);
        }
        next
    }
}

impl WriteGuard {
    /// Holds `blobs` until this write ends: no pass deletes them meanwhile. Fails if one was
    /// deleted, or is being deleted, since this write began (the write must not name it):
    /// [`GatewayError::HeldBlobDeleted`].
    pub fn hold(&self, blobs: impl IntoIterator<Item = BlobId>) -> Result<(), GatewayError> {
        let mut state = self.reclaimer.lock();
        let State { writes, deletions, .. } = &mut *state;
        let held = writes.entry(self.began).or_default();
        let mut outcome = Ok(());
        for blob in blobs {
            // Held even if refused, so the pass sees it once this write ends.
            held.push(blob);
            if let Some(ended) = deletions.get(&blob)
                && ended.is_none_or(|ended| ended > self.began)
            {
                outcome = Err(GatewayError::HeldBlobDeleted(blob));
            }
        }
        outcome
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        let mut state = self.reclaimer.lock();
        if let Some(blobs) = state.writes.remove(&self.began) {
            state.released.extend(blobs);
        }
        drop(state);
        self.reclaimer.wake();
    }
}

/// Runs a pass whenever woken, until the returned task is aborted. The first pass learns what
/// the namespace names.
pub fn start(reclaimer: Arc<Reclaimer>, db: Arc<Db>, client: Arc<Client>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut known = BTreeSet::new();
        loop {
            known = reclaimer.pass(&db, &client, known).await;
            reclaimer.wake.notified().await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(seed: u8) -> BlobId {
        BlobId::from_root(1, &[seed; 32])
    }

    #[test]
    fn a_write_cannot_hold_a_blob_deleted_after_it_began_but_one_that_began_later_can() {
        let reclaimer = Arc::new(Reclaimer::default());
        let early = reclaimer.begin();
        assert_eq!(reclaimer.start_deleting([blob(1)].into()), vec![blob(1)]);
        let during = reclaimer.begin();
        assert!(
            matches!(during.hold([blob(1)]), Err(GatewayError::HeldBlobDeleted(b)) if b == blob(1)),
            "being deleted"
        );
        reclaimer.deleted(blob(1));
        let later = reclaimer.begin();
        assert!(
            matches!(early.hold([blob(1)]), Err(GatewayError::HeldBlobDeleted(_))),
            "deleted after it began"
        );
        assert!(matches!(during.hold([blob(1)]), Err(GatewayError::HeldBlobDeleted(_))));
        assert!(later.hold([blob(1)]).is_ok(), "began after the deletion ended: a new object");
        assert!(early.hold([blob(2)]).is_ok());
    }

    #[test]
    fn held_blobs_and_blobs_released_during_a_pass_are_not_deleted() {
        let reclaimer = Arc::new(Reclaimer::default());
        let write = reclaimer.begin();
        write.hold([blob(1)]).expect("nothing deleted");
        let (held, released) = reclaimer.held_and_released();
        assert_eq!((held, released), ([blob(1)].into(), BTreeSet::new()));
        // A second write names blob 2 and ends while the pass reads the namespace.
        let copy = reclaimer.begin();
        copy.hold([blob(2)]).expect("nothing deleted");
        drop(copy);
        let chosen = reclaimer.start_deleting([blob(1), blob(2), blob(3)].into());
        assert_eq!(chosen, vec![blob(3)], "1 is held, 2 was released during the pass");
        drop(write);
        let (held, released) = reclaimer.held_and_released();
        assert_eq!((held, released), (BTreeSet::new(), [blob(1), blob(2)].into()), "seen at the next pass");
    }

    #[test]
    fn deletions_are_forgotten_once_no_write_began_before_them() {
        let reclaimer = Arc::new(Reclaimer::default());
        let write = reclaimer.begin();
        reclaimer.start_deleting([blob(1), blob(2)].into());
        reclaimer.deleted(blob(1));
        assert_eq!(reclaimer.lock().deletions.len(), 2, "the write began before");
        drop(write);
        reclaimer.deleted(blob(2));
        assert!(reclaimer.lock().deletions.is_empty());
    }
}
