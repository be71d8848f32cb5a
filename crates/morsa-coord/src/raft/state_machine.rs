//! The coordinator as Raft's state machine, and its snapshots.
//!
//! Applied entries are recorded in the coordinator's command log with the last applied Raft
//! position and membership in the same commit, so a restart replays the log and resumes from
//! exactly there: nothing applied twice, nothing skipped. A snapshot is the whole recorded
//! history (BCS entries) with the genesis hash: installing one replays it from genesis, so
//! the replica can be audited like any other.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{Outcome, ReplicaId, TypeConfig};
use crate::{Coordinator, CoordinatorError, Digest, Input, Prechecked, genesis_hash, lock};

type Error = StorageError<ReplicaId>;
type Membership = StoredMembership<ReplicaId, openraft::BasicNode>;

/// Meta key of the last applied Raft position.
const APPLIED: &str = "raft_applied";
/// Meta key of the last applied membership.
const MEMBERSHIP: &str = "raft_membership";

/// Signatures the proposing replica verified, by input, until its entry is applied.
#[derive(Default)]
pub(crate) struct Prechecks(Mutex<HashMap<Digest, Prechecked>>);

/// Prechecks kept before all are dropped (entries whose proposal failed leave theirs).
const MAX_PRECHECKS: usize = 4096;

impl Prechecks {
    fn key(input: &Input) -> Digest {
        let bytes = bcs::to_bytes(input).expect("inputs serialize");
        morsa_core::hash::domain_hash(b"morsa/precheck", &[&bytes])
    }

    pub(crate) fn insert(&self, input: &Input, checks: Prechecked) {
        let mut map = lock(&self.0);
        if map.len() >= MAX_PRECHECKS {
            map.clear();
        }
        map.insert(Self::key(input), checks);
    }

    fn take(&self, input: &Input) -> Option<Prechecked> {
        lock(&self.0).remove(&Self::key(input))
    }
}

/// What a snapshot carries.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    /// The genesis the history belongs to.
    genesis_hash: Digest,
    /// Every recorded entry, BCS, in order.
    records: Vec<Vec<u8>>,
}

/// The state machine: the coordinator shared with the HTTP handlers.
pub(crate) struct StateMachine {
    pub(crate) coordinator: Arc<Mutex<Coordinator>>,
    pub(crate) prechecks: Arc<Prechecks>,
    /// The event count after each apply, for long-polls.
    pub(crate) events: watch::Sender<u64>,
}

fn sm_error<E: std::error::Error + 'static>(error: &E) -> Error {
    StorageIOError::write_state_machine(AnyError::new(error)).into()
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("raft values serialize to JSON")
}

/// The last applied position and membership a coordinator recorded.
fn applied_of(coordinator: &Coordinator) -> Result<(Option<LogId<ReplicaId>>, Membership), Error> {
    let read = |key: &str| coordinator.meta(key).map_err(|error| sm_error(&error));
    let applied = match read(APPLIED)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|error| sm_error(&error))?,
        None => None,
    };
    let membership = match read(MEMBERSHIP)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|error| sm_error(&error))?,
        None => Membership::default(),
    };
    Ok((applied, membership))
}

/// Whether this coordinator's history was written before replication (entries, but no Raft
/// position): it cannot become a replica's.
pub(crate) fn is_unreplicated_history(coordinator: &Coordinator) -> Result<bool, morsa_store::StoreError> {
    Ok(coordinator.meta(APPLIED)?.is_none() && coordinator.log_len()? > 0)
}

impl StateMachine {
    fn publish(&self, coordinator: &Coordinator) {
        self.events.send_replace(coordinator.event_count());
    }

    fn snapshot_of(coordinator: &Coordinator) -> Result<Snapshot<TypeConfig>, Error> {
        let (applied, membership) = applied_of(coordinator)?;
        let records = coordinator.history().map_err(|error| sm_error(&error))?;
        let body = SnapshotBody { genesis_hash: genesis_hash(coordinator.genesis()), records };
        let bytes = bcs::to_bytes(&body).expect("snapshots serialize");
        let snapshot_id =
            applied.map_or_else(|| "empty".to_owned(), |id| format!("{}-{}", id.leader_id.term, id.index));
        Ok(Snapshot {
            meta: SnapshotMeta { last_log_id: applied, last_membership: membership, snapshot_id },
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

/// Builds a snapshot from the coordinator as it is when asked.
pub(crate) struct SnapshotBuilder {
    coordinator: Arc<Mutex<Coordinator>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, Error> {
        let coordinator = Arc::clone(&self.coordinator);
        tokio::task::spawn_blocking(move || StateMachine::snapshot_of(&lock(&coordinator)))
            .await
            .map_err(|error| sm_error(&error))?
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId<ReplicaId>>, Membership), Error> {
        applied_of(&lock(&self.coordinator))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, Error>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inputs = Vec::new();
        // For each Raft entry, how many log entries its proposal carried (others carry none).
        let mut carried = Vec::new();
        let mut last = None;
        let mut membership = None;
        for entry in entries {
            last = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Normal(proposal) => {
                    carried.push(proposal.0.len());
                    for input in proposal.0 {
                        let checks = self.prechecks.take(&input.input);
                        inputs.push((input, checks));
                    }
                }
                EntryPayload::Membership(changed) => {
                    membership = Some(Membership::new(Some(entry.log_id), changed));
                    carried.push(0);
                }
                EntryPayload::Blank => carried.push(0),
            }
        }
        let mut meta = vec![(APPLIED, json(&last))];
        if let Some(membership) = &membership {
            meta.push((MEMBERSHIP, json(membership)));
        }
        let coordinator = Arc::clone(&self.coordinator);
        let (results, count) = tokio::task::spawn_blocking(move || {
            let mut coordinator = lock(&coordinator);
            let results = coordinator.apply_committed(inputs, &meta);
            (results, coordinator.event_count())
        })
        .await
        .map_err(|error| sm_error(&error))?;
        let results = results.map_err(|error: CoordinatorError| sm_error(&error))?;
        self.events.send_replace(count);
        let mut results = results.into_iter();
        Ok(carried.into_iter().map(|count| Outcome(results.by_ref().take(count).collect())).collect())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { coordinator: Arc::clone(&self.coordinator) }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, Error> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<ReplicaId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), Error> {
        let body: SnapshotBody = bcs::from_bytes(snapshot.get_ref()).map_err(|error| sm_error(&error))?;
        let coordinator = Arc::clone(&self.coordinator);
        let stored = vec![(APPLIED, json(&meta.last_log_id)), (MEMBERSHIP, json(&meta.last_membership))];
        let count = tokio::task::spawn_blocking(move || {
            let mut coordinator = lock(&coordinator);
            if body.genesis_hash != genesis_hash(coordinator.genesis()) {
                return Err(CoordinatorError::GenesisMismatch);
            }
            coordinator.install_history(body.records, &stored)?;
            Ok(coordinator.event_count())
        })
        .await
        .map_err(|error| sm_error(&error))?
        .map_err(|error| sm_error(&error))?;
        self.events.send_replace(count);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, Error> {
        let coordinator = Arc::clone(&self.coordinator);
        let snapshot = tokio::task::spawn_blocking(move || {
            let coordinator = lock(&coordinator);
            match applied_of(&coordinator)? {
                (None, _) => Ok(None),
                _ => StateMachine::snapshot_of(&coordinator).map(Some),
            }
        })
        .await
        .map_err(|error| sm_error(&error))??;
        Ok(snapshot)
    }
}

impl StateMachine {
    /// Publishes the current event count (at start).
    pub(crate) fn publish_now(&self) {
        self.publish(&lock(&self.coordinator));
    }
}
