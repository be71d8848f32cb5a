//! Group commit: the leader coalesces the writes waiting to be proposed into one Raft entry.
//!
//! openraft 0.9 appends (and fsyncs) each `client_write` on its own, so one Raft entry per
//! transaction costs an fsync of the leader's Raft log, a replication round and an fsync of
//! the applied record per transaction. Here a write joins a queue; a single task proposes
//! whatever waits as one [`Proposal`] as soon as fewer than [`MAX_PROPOSALS_IN_FLIGHT`] are
//! being committed, so the batch grows with the load and a lone write goes at once. A
//! proposal's entries are applied in order by the same pure `apply`, each with its own result
//! returned to its caller; the coordinator's command log records them one by one, as before.

use std::sync::Arc;

use openraft::Raft;
use openraft::error::{ClientWriteError, RaftError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::replica::{COMMIT_WAIT, ProposeError};
use super::{Outcome, TypeConfig};
use crate::{Applied, LogEntry};

/// Most log entries one proposal carries.
pub const MAX_PROPOSAL_ENTRIES: usize = 64;
/// Most bytes (BCS) of log entries one proposal carries; a larger single entry goes alone.
pub const MAX_PROPOSAL_BYTES: usize = 512 << 10;
/// Most proposals one replication message carries: their JSON (at most about four times
/// their BCS) stays well within [`MAX_RAFT_BODY_BYTES`](super::MAX_RAFT_BODY_BYTES).
pub(crate) const MAX_PROPOSALS_PER_MESSAGE: u64 = 8;
/// Proposals being committed at once; the writes that arrive meanwhile wait for the next.
const MAX_PROPOSALS_IN_FLIGHT: usize = 2;
/// Writes waiting to be proposed; more wait for room in the queue.
const MAX_WAITING: usize = 4096;

/// One Raft entry's data: log entries applied in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proposal(pub Vec<LogEntry>);

/// A proposal as stored in the Raft log and sent to replicas: a JSON array of log entries. A
/// lone log entry (the format before proposals were batched) is read as a proposal of one.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Stored {
    Batch(Vec<LogEntry>),
    Single(Box<LogEntry>),
}

impl Serialize for Proposal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Proposal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Stored::deserialize(deserializer)? {
            Stored::Batch(entries) => Self(entries),
            Stored::Single(entry) => Self(vec![*entry]),
        })
    }
}

/// A write waiting to be proposed, and where its result goes.
struct Waiting {
    entry: LogEntry,
    bytes: usize,
    answer: oneshot::Sender<Result<Applied, ProposeError>>,
}

/// The queue of writes to propose; a task of its own proposes them.
pub(crate) struct Proposer {
    queue: mpsc::Sender<Waiting>,
}

impl Proposer {
    /// Starts the task that proposes to `raft`.
    pub(crate) fn start(raft: Raft<TypeConfig>) -> Self {
        let (queue, waiting) = mpsc::channel(MAX_WAITING);
        tokio::spawn(propose_batches(raft, waiting));
        Self { queue }
    }

    /// Proposes `entry` with the writes waiting beside it and waits until a quorum committed
    /// and this replica applied it; answers its own result.
    pub(crate) async fn propose(&self, entry: LogEntry) -> Result<Applied, ProposeError> {
        let bytes =
            bcs::serialized_size(&entry).map_err(|error| ProposeError::Unencodable(error.to_string()))?;
        let (answer, result) = oneshot::channel();
        let waited = tokio::time::timeout(COMMIT_WAIT, async {
            self.queue
                .send(Waiting { entry, bytes, answer })
                .await
                .map_err(|_| ProposeError::Fatal("the proposing task stopped".to_owned()))?;
            // A dropped answer means the task stopped before proposing it.
            result.await.map_err(|_| ProposeError::Fatal("the proposing task stopped".to_owned()))?
        });
        // Once queued, the write may be proposed at any time: its outcome is unknown.
        waited.await.unwrap_or(Err(ProposeError::Unconfirmed))
    }
}

/// Proposes the queued writes, as many at a time as wait (within the limits), with at most
/// [`MAX_PROPOSALS_IN_FLIGHT`] proposals being committed.
async fn propose_batches(raft: Raft<TypeConfig>, mut waiting: mpsc::Receiver<Waiting>) {
    let in_flight = Arc::new(Semaphore::new(MAX_PROPOSALS_IN_FLIGHT));
    let mut carried: Option<Waiting> = None;
    loop {
        let first = match carried.take() {
            Some(first) => first,
            None => match waiting.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else { return };
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while batch.len() < MAX_PROPOSAL_ENTRIES {
            let Ok(next) = waiting.try_recv() else { break };
            if bytes.saturating_add(next.bytes) > MAX_PROPOSAL_BYTES {
                carried = Some(next);
                break;
            }
            bytes = bytes.saturating_add(next.bytes);
            batch.push(next);
        }
        // A caller that gave up (its answer is `commit_unknown`) is not proposed at all.
        batch.retain(|write| !write.answer.is_closed());
        if batch.is_empty() {
            continue;
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            commit(&raft, batch).await;
            drop(permit);
        });
    }
}

/// Why a whole proposal failed.
enum Failure {
    Unconfirmed,
    NotLeader,
    Fatal(String),
}

impl Failure {
    fn error(&self) -> ProposeError {
        match self {
            Self::Unconfirmed => ProposeError::Unconfirmed,
            Self::NotLeader => ProposeError::NotLeader,
            Self::Fatal(reason) => ProposeError::Fatal(reason.clone()),
        }
    }
}

/// Proposes `batch` as one entry and answers each write its result.
async fn commit(raft: &Raft<TypeConfig>, batch: Vec<Waiting>) {
    let (entries, answers): (Vec<LogEntry>, Vec<_>) =
        batch.into_iter().map(|write| (write.entry, write.answer)).unzip();
    let written = tokio::time::timeout(COMMIT_WAIT, raft.client_write(Proposal(entries))).await;
    let outcome = match written {
        Err(_) => Err(Failure::Unconfirmed),
        Ok(Ok(response)) => Ok(response.data),
        // openraft answers `ForwardToLeader` only when the entry surely was not applied.
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => Err(Failure::NotLeader),
        Ok(Err(RaftError::APIError(error))) => Err(Failure::Fatal(error.to_string())),
        Ok(Err(RaftError::Fatal(error))) => Err(Failure::Fatal(error.to_string())),
    };
    match outcome {
        Ok(Outcome(results)) => {
            let mut results = results.into_iter();
            for answer in answers {
                // Applied entries each have a result; none means nothing to report.
                let result = results.next().unwrap_or_else(|| Ok(Applied::default()));
                let _ = answer.send(result.map_err(ProposeError::Refused));
            }
        }
        Err(failure) => {
            for answer in answers {
                let _ = answer.send(Err(failure.error()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Input;

    #[test]
    fn a_proposal_is_a_json_array_and_a_lone_entry_of_the_old_format_reads_as_one() {
        let entry = LogEntry { time_ms: 7, input: Input::Tick };
        let proposal = Proposal(vec![entry.clone(), LogEntry { time_ms: 8, input: Input::Tick }]);
        let json = serde_json::to_value(&proposal).unwrap();
        assert!(json.is_array());
        assert_eq!(serde_json::from_value::<Proposal>(json).unwrap(), proposal);
        let old = serde_json::to_vec(&entry).unwrap();
        assert_eq!(serde_json::from_slice::<Proposal>(&old).unwrap(), Proposal(vec![entry]));
    }
}
