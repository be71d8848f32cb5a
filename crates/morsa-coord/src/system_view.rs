//! `GET /v1/system` without the coordinator's lock: a second copy of the state, fed every
//! committed entry in order and applied without verifying signatures again (the first apply
//! did), answers the system parameters and the state hash. The hash is computed at most once
//! per applied entry and cached; computing it (BCS of the whole state) blocks neither
//! transactions nor other reads, only other `/v1/system` requests, which then get the same
//! cached answer.
//!
//! The copy costs the state's memory once more. A background thread applies entries as they
//! come, so that the queue stays short when nobody asks; a request first applies whatever is
//! still queued, so it sees every entry committed before it.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use morsa_api::coord::{LogEntry, SystemInfo};

use crate::apply::apply_with;
use crate::checks::Signatures;
use crate::{Digest, State};

/// The copy of the state behind `/v1/system`.
pub struct SystemView {
    copy: Mutex<Copy>,
    queue: Mutex<Queue>,
    wake: Condvar,
}

struct Copy {
    state: State,
    /// The hash of `state`, once computed.
    hash: Option<Digest>,
    /// Set if an entry the coordinator accepted was refused here: a bug; answers stop.
    broken: Option<String>,
}

#[derive(Default)]
struct Queue {
    entries: VecDeque<LogEntry>,
    closed: bool,
}

/// Why the view cannot answer.
#[derive(Debug, thiserror::Error)]
#[error("the state copy behind /v1/system diverged: {0}")]
pub struct ViewError(String);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SystemView {
    /// A view of `state` with a thread that keeps it current; the thread ends when the view
    /// is closed.
    pub(crate) fn start(state: State) -> Arc<Self> {
        let view = Arc::new(Self {
            copy: Mutex::new(Copy { state, hash: None, broken: None }),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let follower = Arc::clone(&view);
        let spawned =
            std::thread::Builder::new().name("coord-system-view".into()).spawn(move || follower.follow());
        if let Err(error) = spawned {
            // Requests still apply the queue themselves; only the eager catching-up is lost.
            tracing::warn!(%error, "cannot start the system view thread");
        }
        view
    }

    /// Queues an entry the coordinator committed.
    pub(crate) fn push(&self, entry: LogEntry) {
        lock(&self.queue).entries.push_back(entry);
        self.wake.notify_one();
    }

    /// Stops the thread.
    pub(crate) fn close(&self) {
        lock(&self.queue).closed = true;
        self.wake.notify_one();
    }

    fn follow(&self) {
        loop {
            {
                let mut queue = lock(&self.queue);
                while queue.entries.is_empty() && !queue.closed {
                    queue = self.wake.wait(queue).unwrap_or_else(PoisonError::into_inner);
                }
                if queue.closed {
                    return;
                }
            }
            self.catch_up(&mut lock(&self.copy));
        }
    }

    /// Applies every queued entry to the copy.
    fn catch_up(&self, copy: &mut Copy) {
        let entries = std::mem::take(&mut lock(&self.queue).entries);
        for entry in entries {
            if copy.broken.is_some() {
                return;
            }
            copy.hash = None;
            if let Err(error) = apply_with(&mut copy.state, &entry, Signatures::Trusted) {
                tracing::error!(%error, "the system view refused an accepted entry");
                copy.broken = Some(error.to_string());
            }
        }
    }

    /// The system information after every entry committed so far. Blocking: it may hash the
    /// whole state (once per applied entry).
    pub fn system_info(&self) -> Result<SystemInfo, ViewError> {
        let mut copy = lock(&self.copy);
        self.catch_up(&mut copy);
        if let Some(reason) = &copy.broken {
            return Err(ViewError(reason.clone()));
        }
        let hash = match copy.hash {
            Some(hash) => hash,
            None => {
                let hash = copy.state.hash();
                copy.hash = Some(hash);
                hash
            }
        };
        let state = &copy.state;
        Ok(SystemInfo {
            chain_id: state.params.chain_id.clone(),
            epoch: state.epoch,
            n_shards: state.params.n_shards,
            epoch_duration_ms: state.params.epoch_duration_ms,
            epoch_start_ms: state.epoch_start_ms(state.epoch),
            storage_price_per_mib_epoch: state.params.storage_price_per_mib_epoch,
            write_price_per_mib: state.params.write_price_per_mib,
            max_epochs_ahead: state.params.max_epochs_ahead,
            capacity: state.capacity,
            used: state.used.get(&state.epoch).copied().unwrap_or(0),
            time_ms: state.time_ms,
            event_count: state.event_count,
            state_hash: hex::encode(hash),
        })
    }
}
