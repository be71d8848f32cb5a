//! `GET /v1/system` without the coordinator's lock: a second copy of the state, fed every
//! committed entry in order and applied without verifying signatures again (the first apply
//! did), answers the system parameters and the state hash. Computing the hash (BCS of the
//! whole state) blocks neither transactions nor other reads.
//!
//! Every answer covers at least the entries committed when the request arrived. An answer is
//! cached with the number of entries it covers, and serves every request that arrived before
//! it was computed; a new one is computed at most once per [`SystemView::pause`] (four times
//! the last computation, and at least [`MIN_HASH_PAUSE`]), so that a stream of requests during
//! a stream of commits costs at most a fifth of a core, whatever the size of the state.
//!
//! The copy costs the state's memory once more. A background thread applies entries as they
//! come, so that the queue stays short when nobody asks; a request first applies whatever is
//! still queued, so it sees every entry committed before it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use morsa_api::coord::SystemInfo;
use morsa_core::Committee;
use morsa_core::protocol::LogEntry;
use redstuff::BlobId;

use crate::apply::apply_with;
use crate::checks::Signatures;
use crate::{Digest, State, lock};

/// Shortest time between two computations of the state hash.
pub const MIN_HASH_PAUSE: Duration = Duration::from_millis(100);

/// The copy of the state behind `/v1/system`.
pub struct SystemView {
    copy: Mutex<Copy>,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Entries pushed so far.
    pushed: AtomicU64,
}

struct Copy {
    state: State,
    /// Entries applied to `state`.
    applied: u64,
    /// The last answer.
    answer: Option<Answer>,
    /// Set if an entry the coordinator accepted was refused here: a bug; answers stop.
    broken: Option<String>,
}

/// An answer and what it covers.
struct Answer {
    info: SystemInfo,
    /// Entries applied when it was computed.
    applied: u64,
    /// When its computation ended, and how long it took.
    finished: Instant,
    took: Duration,
}

/// What a request gets.
pub enum SystemAnswer {
    /// The answer.
    Ready(Box<SystemInfo>),
    /// Ask again at this time (a hash was computed a moment ago).
    NotBefore(Instant),
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

impl SystemView {
    /// A view of `state` with a thread that keeps it current; the thread ends when the view
    /// is closed.
    pub(crate) fn start(state: State) -> std::io::Result<Arc<Self>> {
        let view = Arc::new(Self {
            copy: Mutex::new(Copy { state, applied: 0, answer: None, broken: None }),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            pushed: AtomicU64::new(0),
        });
        // Without the thread nothing would empty the queue between requests: refuse to start.
        let follower = Arc::clone(&view);
        std::thread::Builder::new().name("coord-system-view".into()).spawn(move || follower.follow())?;
        Ok(view)
    }

    /// Queues an entry the coordinator committed.
    pub(crate) fn push(&self, entry: LogEntry) {
        lock(&self.queue).entries.push_back(entry);
        self.pushed.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_one();
    }

    /// Starts over from `state` (a replica installed a snapshot): what was queued is dropped.
    pub(crate) fn reset(&self, state: State) {
        let mut copy = lock(&self.copy);
        lock(&self.queue).entries.clear();
        copy.state = state;
        copy.applied = self.pushed.load(Ordering::Acquire);
        copy.answer = None;
        copy.broken = None;
    }

    /// Entries committed so far: what an answer to a request arriving now must cover.
    pub fn committed(&self) -> u64 {
        self.pushed.load(Ordering::Acquire)
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
            copy.applied += 1;
            if let Err(error) = apply_with(&mut copy.state, &entry, Signatures::Trusted) {
                tracing::error!(%error, "the system view refused an accepted entry");
                copy.broken = Some(error.to_string());
            }
        }
    }

    /// The pause after a computation that took `took`.
    pub fn pause(took: Duration) -> Duration {
        took.saturating_mul(4).max(MIN_HASH_PAUSE)
    }

    /// The system information covering at least the first `covering` entries (the
    /// [`SystemView::committed`] count when the request arrived), or when to ask again.
    /// Blocking: it may hash the whole state.
    pub fn system_info(&self, covering: u64) -> Result<SystemAnswer, ViewError> {
        let mut copy = lock(&self.copy);
        if let Some(reason) = &copy.broken {
            return Err(ViewError(reason.clone()));
        }
        if let Some(answer) = &copy.answer {
            if answer.applied >= covering {
                return Ok(SystemAnswer::Ready(Box::new(answer.info.clone())));
            }
            let not_before = answer.finished + Self::pause(answer.took);
            if Instant::now() < not_before {
                return Ok(SystemAnswer::NotBefore(not_before));
            }
        }
        self.catch_up(&mut copy);
        if let Some(reason) = &copy.broken {
            return Err(ViewError(reason.clone()));
        }
        let started = Instant::now();
        let info = Self::info(&copy.state);
        let applied = copy.applied;
        copy.answer =
            Some(Answer { info: info.clone(), applied, finished: Instant::now(), took: started.elapsed() });
        Ok(SystemAnswer::Ready(Box::new(info)))
    }

    /// The current committee and the certified blob IDs, from the copy: walking every blob
    /// object happens under the copy's lock, never the coordinator's. Blocking.
    pub fn certified_blobs(&self) -> Result<(Committee, Vec<BlobId>), ViewError> {
        let mut copy = lock(&self.copy);
        self.catch_up(&mut copy);
        if let Some(reason) = &copy.broken {
            return Err(ViewError(reason.clone()));
        }
        Ok((copy.state.committee.clone(), copy.state.certified_blob_ids()))
    }

    fn info(state: &State) -> SystemInfo {
        let hash: Digest = state.hash();
        SystemInfo {
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
            replica: None,
            domains: Some(crate::domains::domains_info(state)),
            nodes: crate::delegation::node_summaries(state),
        }
    }
}
