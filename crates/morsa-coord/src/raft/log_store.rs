//! Raft's log storage on [`RaftLog`]: entries as JSON by index, the vote and the last purged
//! position as metadata. Every write is durable before it is reported done.
//!
//! The committed position is not stored: Raft does not need it to be durable, and the state
//! machine records how far it applied in the same commit as what it applied, so a restarted
//! replica resumes from there and learns the rest from the leader (a lone replica commits its
//! log again once it leads). Storing it cost an fsync each time it moved, on the task that
//! drives Raft, which held up every append and heartbeat behind it.
//!
//! Writes (and their fsync) run on a blocking thread: openraft awaits each one on the task
//! that drives Raft, but the runtime's worker thread stays free for the HTTP handlers and
//! the replication streams meanwhile (the machine may have only two).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use morsa_store::RaftLog;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, LogState, OptionalSend, RaftLogId, RaftLogReader, StorageError, StorageIOError,
    Vote,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ReplicaId, TypeConfig};

const VOTE: &str = "vote";
const LAST_PURGED: &str = "last_purged";

/// The log store; clones share the file (readers for replication).
#[derive(Clone)]
pub(crate) struct LogStore {
    log: Arc<RaftLog>,
}

type Error = StorageError<ReplicaId>;

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|error| StorageIOError::write_logs(AnyError::new(&error)).into())
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|error| StorageIOError::read_logs(AnyError::new(&error)).into())
}

fn read_error(error: &morsa_store::StoreError) -> Error {
    StorageIOError::read_logs(AnyError::new(error)).into()
}

fn write_error(error: &morsa_store::StoreError) -> Error {
    StorageIOError::write_logs(AnyError::new(error)).into()
}

impl LogStore {
    pub(crate) fn new(log: RaftLog) -> Self {
        Self { log: Arc::new(log) }
    }

    fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.log.get_meta(key).map_err(|error| read_error(&error))? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Runs `write` on the log on a blocking thread (it fsyncs).
    async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&RaftLog) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let log = Arc::clone(&self.log);
        tokio::task::spawn_blocking(move || write(&log))
            .await
            .map_err(|error| StorageIOError::write_logs(AnyError::new(&error)))?
    }

    /// Whether nothing was ever written: no vote and no entry.
    pub(crate) fn is_pristine(&self) -> Result<bool, morsa_store::StoreError> {
        Ok(self.log.get_meta(VOTE)?.is_none() && self.log.last()?.is_none())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, Error> {
        let from = match range.start_bound() {
            Bound::Included(index) => *index,
            Bound::Excluded(index) => index.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(index) => index.saturating_add(1),
            Bound::Excluded(index) => *index,
            Bound::Unbounded => u64::MAX,
        };
        let page = self.log.read(from, to, usize::MAX).map_err(|error| read_error(&error))?;
        page.iter().map(|(_, bytes)| decode(bytes)).collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, Error> {
        let last_purged_log_id: Option<LogId<ReplicaId>> = self.meta(LAST_PURGED)?;
        let last = self.log.last().map_err(|error| read_error(&error))?;
        let last_log_id = match last {
            Some((_, bytes)) => Some(*decode::<Entry<TypeConfig>>(&bytes)?.get_log_id()),
            None => last_purged_log_id,
        };
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<ReplicaId>) -> Result<(), Error> {
        let bytes = encode(vote)?;
        self.write(move |log| {
            log.put_meta(VOTE, &bytes)
                .map_err(|error| StorageIOError::write_vote(AnyError::new(&error)).into())
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<ReplicaId>>, Error> {
        self.meta(VOTE)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), Error>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let records = entries
            .into_iter()
            .map(|entry| Ok((entry.get_log_id().index, encode(&entry)?)))
            .collect::<Result<Vec<(u64, Vec<u8>)>, Error>>()?;
        let written = self.write(move |log| log.append(&records).map_err(|error| write_error(&error))).await;
        let flushed = written.as_ref().map(|_| ()).map_err(|error| std::io::Error::other(error.to_string()));
        callback.log_io_completed(flushed);
        written
    }

    async fn truncate(&mut self, log_id: LogId<ReplicaId>) -> Result<(), Error> {
        self.write(move |log| log.truncate_from(log_id.index).map_err(|error| write_error(&error))).await
    }

    async fn purge(&mut self, log_id: LogId<ReplicaId>) -> Result<(), Error> {
        // The purged position first: a crash in between leaves entries that are merely extra.
        let position = encode(&log_id)?;
        self.write(move |log| {
            log.put_meta(LAST_PURGED, &position).map_err(|error| write_error(&error))?;
            log.purge_through(log_id.index).map_err(|error| write_error(&error))
        })
        .await
    }
}
