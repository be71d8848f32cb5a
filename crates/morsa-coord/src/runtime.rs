//! The coordinator around the state machine: a durable command log as the source of truth,
//! the state rebuilt by replaying it, and the events kept for followers.
//!
//! An input is applied to the in-memory state first (a refused input changes nothing), then
//! its log entry is committed durably, and only then is it acknowledged. If the commit fails
//! the in-memory state is ahead of the disk: the coordinator refuses all further work and
//! must be restarted, which replays the log.

use std::path::Path;
use std::sync::Arc;

use morsa_store::{CommandLog, StoreError};

use crate::checks::{Prechecked, Signatures};
use crate::system_view::SystemView;
use crate::{
    Applied, CommandError, EventRecord, Genesis, GenesisError, Input, LogEntry, State, apply,
    apply_prechecked,
};
use morsa_core::hash::domain_hash;

/// Meta key under which the log remembers the genesis it belongs to.
pub(crate) const GENESIS_KEY: &str = "genesis_hash";

/// Why the coordinator could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// The genesis configuration is invalid.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// The log could not be read or written.
    #[error("command log: {0}")]
    Store(#[from] StoreError),
    /// A thread the coordinator needs could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The data directory belongs to another deployment.
    #[error(
        "the command log was written for a different genesis; use the genesis it was created with or a new data directory"
    )]
    GenesisMismatch,
    /// A logged entry does not decode or no longer applies: the log is corrupt.
    #[error("log entry {seq} cannot be replayed: {reason}")]
    Replay {
        /// Sequence number of the entry.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// An earlier commit failed; the in-memory state may be ahead of the log.
    #[error("an earlier log commit failed; restart the coordinator to replay its log")]
    Poisoned,
}

impl CoordinatorError {
    /// The stable error code of this failure at the HTTP boundary; every one is a server
    /// error (5xx), never the client's fault.
    pub fn code(&self) -> &'static str {
        match self {
            // The log could not take the entry now; a restart replays it and serves again.
            Self::Store(_) | Self::Poisoned | Self::Thread { .. } => "unavailable",
            // Stored data that does not replay, or belongs to another deployment.
            Self::Replay { .. } | Self::GenesisMismatch => "corrupt_log",
            Self::Genesis(_) => "bad_genesis",
        }
    }
}

/// Why an input was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The state machine refused it; nothing changed.
    #[error(transparent)]
    Refused(#[from] CommandError),
    /// It could not be made durable; the coordinator must restart.
    #[error(transparent)]
    Fatal(#[from] CoordinatorError),
}

/// A page of the recorded log ([`Coordinator::recorded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedPage {
    /// The genesis hash the log records.
    pub genesis_hash: Vec<u8>,
    /// The entries (BCS `LogEntry`), in order.
    pub entries: Vec<Vec<u8>>,
    /// Entries recorded in all.
    pub count: u64,
}

/// The state machine, its log and its events.
pub struct Coordinator {
    genesis: Genesis,
    state: State,
    log: CommandLog,
    events: Vec<EventRecord>,
    poisoned: bool,
    view: Arc<SystemView>,
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.view.close();
    }
}

/// `H(BCS(genesis))`: what ties a log to its genesis.
pub fn genesis_hash(genesis: &Genesis) -> crate::Digest {
    let bytes = bcs::to_bytes(genesis).expect("genesis serializes");
    domain_hash(b"morsa/genesis", &[&bytes])
}

impl Coordinator {
    /// Opens (or creates) the log at `log_path` and replays it on top of `genesis`.
    pub fn open(genesis: &Genesis, log_path: &Path) -> Result<Self, CoordinatorError> {
        let log = CommandLog::open(log_path)?;
        let expected = genesis_hash(genesis);
        match log.get_meta(GENESIS_KEY)? {
            Some(stored) if stored != expected => return Err(CoordinatorError::GenesisMismatch),
            Some(_) => {}
            None => log.put_meta(GENESIS_KEY, &expected)?,
        }
        let mut state = genesis.initial_state()?;
        let mut events = Vec::new();
        let mut failure = None;
        log.for_each(|seq, bytes| {
            match replay_one(&mut state, bytes) {
                Ok(applied) => events.extend(applied.events),
                Err(reason) => failure = failure.take().or(Some(CoordinatorError::Replay { seq, reason })),
            }
            Ok(())
        })?;
        if let Some(error) = failure {
            return Err(error);
        }
        let view = SystemView::start(state.clone())
            .map_err(|source| CoordinatorError::Thread { what: "system view", source })?;
        Ok(Self { genesis: genesis.clone(), state, log, events, poisoned: false, view })
    }

    /// Applies `input` at `now_ms` (or the state's time, if later) and commits it. A tick
    /// that has come due is applied and committed first, so inputs never wait on time.
    ///
    /// Verifies its signatures on the calling thread; a server verifies them without holding
    /// the coordinator ([`State::precheck`]) and calls [`Coordinator::submit_prechecked`].
    pub fn submit(&mut self, input: Input, now_ms: u64) -> Result<Applied, SubmitError> {
        let checks = self.state.precheck(&input).run()?;
        self.submit_prechecked(input, &checks, now_ms)
    }

    /// [`Coordinator::submit`] with the signatures in `checks` already verified.
    ///
    /// A node report that would change nothing (a repeated or late `EpochSyncDone`) is
    /// answered with no events and not logged: replaying a signed report costs no write.
    pub fn submit_prechecked(
        &mut self,
        input: Input,
        checks: &Prechecked,
        now_ms: u64,
    ) -> Result<Applied, SubmitError> {
        if self.poisoned {
            return Err(CoordinatorError::Poisoned.into());
        }
        let time_ms = now_ms.max(self.state.time_ms);
        let mut applied = Applied::default();
        if !matches!(input, Input::Tick) && self.state.deadline_due(time_ms).is_some() {
            applied = self.commit(LogEntry { time_ms, input: Input::Tick }, checks)?;
        }
        if let Input::Node(report) = &input
            && self.state.check_node_report(report, Signatures::Prechecked(checks))?
        {
            return Ok(applied);
        }
        let more = self.commit(LogEntry { time_ms, input }, checks)?;
        applied.extend(more);
        Ok(applied)
    }

    fn commit(&mut self, entry: LogEntry, checks: &Prechecked) -> Result<Applied, SubmitError> {
        let applied = apply_prechecked(&mut self.state, &entry, checks)?;
        let bytes = bcs::to_bytes(&entry).expect("log entries serialize");
        if let Err(error) = self.log.append(&bytes) {
            self.poisoned = true;
            return Err(CoordinatorError::Store(error).into());
        }
        self.events.extend(applied.events.iter().cloned());
        self.view.push(entry);
        Ok(applied)
    }

    /// Applies entries a Raft quorum committed, in order, and records those it accepted
    /// together with `meta` (how far the replica applied) in one durable commit.
    ///
    /// Every replica computes the same thing from the same entries: an entry's time is its
    /// stamp or the state's time if that is later; a tick that has come due at that time is
    /// applied before an input; a tick with nothing due and a node report that would change
    /// nothing are no-ops; a refused input changes nothing and its refusal is its result.
    /// `checks` are the signatures the proposing replica already verified (none elsewhere).
    pub(crate) fn apply_committed(
        &mut self,
        entries: Vec<(LogEntry, Option<Prechecked>)>,
        meta: &[(&str, Vec<u8>)],
    ) -> Result<Vec<Result<Applied, CommandError>>, CoordinatorError> {
        if self.poisoned {
            return Err(CoordinatorError::Poisoned);
        }
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(entries.len());
        for (entry, checks) in entries {
            let checks = checks.unwrap_or_default();
            results.push(self.apply_one(entry, &checks, &mut records));
        }
        if let Err(error) = self.log.append_with_meta(&records, meta) {
            self.poisoned = true;
            return Err(error.into());
        }
        Ok(results)
    }

    /// One committed entry, the tick due before it included; appends what it accepted to
    /// `records`.
    fn apply_one(
        &mut self,
        entry: LogEntry,
        checks: &Prechecked,
        records: &mut Vec<Vec<u8>>,
    ) -> Result<Applied, CommandError> {
        let time_ms = entry.time_ms.max(self.state.time_ms);
        let mut applied = Applied::default();
        if self.state.deadline_due(time_ms).is_some() {
            applied = self.apply_recorded(LogEntry { time_ms, input: Input::Tick }, checks, records)?;
        }
        match &entry.input {
            Input::Tick => return Ok(applied),
            Input::Node(report)
                if self.state.check_node_report(report, Signatures::Prechecked(checks))? =>
            {
                return Ok(applied);
            }
            _ => {}
        }
        let more = self.apply_recorded(LogEntry { time_ms, input: entry.input }, checks, records)?;
        applied.extend(more);
        Ok(applied)
    }

    fn apply_recorded(
        &mut self,
        entry: LogEntry,
        checks: &Prechecked,
        records: &mut Vec<Vec<u8>>,
    ) -> Result<Applied, CommandError> {
        let applied = apply_prechecked(&mut self.state, &entry, checks)?;
        records.push(bcs::to_bytes(&entry).expect("log entries serialize"));
        self.events.extend(applied.events.iter().cloned());
        self.view.push(entry);
        Ok(applied)
    }

    /// Every recorded entry, in order (BCS): the history a snapshot carries.
    pub(crate) fn history(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut records = Vec::new();
        self.log.for_each(|_, bytes| {
            records.push(bytes.to_vec());
            Ok(())
        })?;
        Ok(records)
    }

    /// Replaces the state and the recorded history with `records` (a snapshot's), after
    /// checking that they replay from genesis; sets `meta` in the same commit.
    pub(crate) fn install_history(
        &mut self,
        records: Vec<Vec<u8>>,
        meta: &[(&str, Vec<u8>)],
    ) -> Result<(), CoordinatorError> {
        let mut state = self.genesis.initial_state()?;
        let mut events = Vec::new();
        for (seq, bytes) in (0_u64..).zip(&records) {
            let applied =
                replay_one(&mut state, bytes).map_err(|reason| CoordinatorError::Replay { seq, reason })?;
            events.extend(applied.events);
        }
        if let Err(error) = self.log.replace_all(&records, meta) {
            self.poisoned = true;
            return Err(error.into());
        }
        self.view.reset(state.clone());
        self.state = state;
        self.events = events;
        Ok(())
    }

    /// The genesis the coordinator started from.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// A metadata value of the recorded history.
    pub(crate) fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.log.get_meta(key)
    }

    /// The copy of the state that answers `GET /v1/system` without this coordinator's lock.
    pub fn system_view(&self) -> Arc<SystemView> {
        Arc::clone(&self.view)
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Up to `limit` events with a sequence number of at least `from`.
    pub fn events_from(&self, from: u64, limit: usize) -> &[EventRecord] {
        let start = morsa_core::convert::saturating_usize(from).min(self.events.len());
        let end = start.saturating_add(limit).min(self.events.len());
        &self.events[start..end]
    }

    /// Number of events so far.
    pub fn event_count(&self) -> u64 {
        self.state.event_count
    }

    /// Up to `limit` recorded entries from entry `from`: a page of what `morsa coord audit`
    /// replays.
    pub fn recorded(&self, from: u64, limit: usize) -> Result<RecordedPage, StoreError> {
        let count = self.log.len()?;
        let genesis_hash = self.log.get_meta(GENESIS_KEY)?.unwrap_or_default();
        let entries = self.log.read(from, limit)?.into_iter().map(|(_, bytes)| bytes).collect();
        Ok(RecordedPage { genesis_hash, entries, count })
    }

    /// Number of committed log entries.
    pub fn log_len(&self) -> Result<u64, StoreError> {
        self.log.len()
    }
}

/// Decodes and applies one logged entry.
fn replay_one(state: &mut State, bytes: &[u8]) -> Result<Applied, String> {
    let entry: LogEntry = bcs::from_bytes(bytes).map_err(|error| format!("it does not decode: {error}"))?;
    apply(state, &entry).map_err(|error| format!("it is refused: {error}"))
}
