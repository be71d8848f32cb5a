//! The audit of a coordinator's data (`morsa coord audit`): replays the command log from
//! genesis and re-checks everything, independently of [`apply`] wherever it can: that the log
//! belongs to the genesis, every signature and nonce, every certificate against the committee
//! of its epoch, the event chain, the committees and the conservation of the supply.
//!
//! The log is streamed with [`CommandLog::for_each`]: the audit holds the state, one entry, and
//! per-epoch committees and per-account nonces, never the whole log or all the events.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use morsa_core::{
    AccountId, CertificateError, Committee, CommitteeError, Epoch, NodeId, ObjectId, PersistenceType,
    SignatureError, Threshold,
};
use morsa_store::{CommandLog, StoreError};
use redstuff::BlobId;

use crate::{
    Command, CommandError, Digest, Event, EventRecord, Genesis, GenesisError, Input, LogEntry, NodeReport,
    NodeReportKind, SignedTransaction, State, apply, genesis_hash,
};

use crate::runtime::GENESIS_KEY;

/// What an audit found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditReport {
    /// Log entries replayed.
    pub entries: u64,
    /// Events emitted and checked.
    pub events: u64,
    /// The epoch after the last entry.
    pub epoch: Epoch,
    /// Storage certificates re-verified (`BlobCertified` events).
    pub certified_blobs: u64,
    /// Invalid-blob certificates re-verified (`InvalidBlobId` events).
    pub invalid_blobs: u64,
    /// Hex of [`State::hash`] after the last entry.
    pub state_hash: String,
    /// Hex of the hash of the last event (zeros if there is none).
    pub event_head: String,
}

/// What is wrong with a coordinator's data. `seq` is always the log entry concerned and
/// `event` the sequence number of the event concerned.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// There is no command log at this path.
    #[error("no command log at {}: check the data directory", path.display())]
    NoLog {
        /// The path given.
        path: PathBuf,
    },
    /// The log could not be opened or read, or its records are damaged or missing.
    #[error("reading the command log: {0}")]
    Store(#[from] StoreError),
    /// The genesis configuration is invalid.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// The committee genesis gives epoch 1 is not well formed.
    #[error("the committee of epoch 1 that genesis gives is invalid: {0}")]
    GenesisCommittee(#[source] CommitteeError),
    /// The log does not say which genesis it belongs to.
    #[error("the command log records no genesis hash: it was not written by a coordinator")]
    NoGenesisHash,
    /// The log belongs to another genesis.
    #[error(
        "the command log was written for genesis {found}, not for this genesis ({expected}): \
         audit it with the genesis it was created with"
    )]
    GenesisMismatch {
        /// Hex hash of the genesis given.
        expected: String,
        /// Hex hash (or bytes) stored in the log.
        found: String,
    },
    /// An entry's bytes are not a BCS `LogEntry`.
    #[error("log entry {seq} does not decode: {source}")]
    Decode {
        /// The entry.
        seq: u64,
        /// What BCS reported.
        #[source]
        source: bcs::Error,
    },
    /// An entry is older than the one before it (or than genesis).
    #[error("log entry {seq} has time {time_ms}, before the previous time {previous_ms}")]
    TimeWentBackwards {
        /// The entry.
        seq: u64,
        /// Its time.
        time_ms: u64,
        /// The time before it.
        previous_ms: u64,
    },
    /// A transaction's signature does not verify for its sender.
    #[error("log entry {seq}: the transaction signature does not verify for account {account}: {source}")]
    BadSignature {
        /// The entry.
        seq: u64,
        /// The claimed sender.
        account: AccountId,
        /// Why.
        #[source]
        source: SignatureError,
    },
    /// A transaction's nonce is not its sender's next one: replayed, skipped or reordered.
    #[error("log entry {seq}: account {account} sent nonce {got} where {expected} was next")]
    BadNonce {
        /// The entry.
        seq: u64,
        /// The sender.
        account: AccountId,
        /// The nonce the audit expected.
        expected: u64,
        /// The nonce in the transaction.
        got: u64,
    },
    /// No committee is known for an epoch the log refers to.
    #[error("log entry {seq} refers to {epoch}, for which no committee was selected")]
    NoCommittee {
        /// The entry.
        seq: u64,
        /// The epoch.
        epoch: Epoch,
    },
    /// A node report comes from a node outside the committee of its epoch.
    #[error("log entry {seq}: node {node} reports for {epoch} but is not in its committee")]
    NotInCommittee {
        /// The entry.
        seq: u64,
        /// The node.
        node: NodeId,
        /// The epoch reported.
        epoch: Epoch,
    },
    /// A node report's BLS signature does not verify for the node's key in its epoch.
    #[error("log entry {seq}: the report of node {node} for {epoch} has an invalid signature")]
    BadNodeSignature {
        /// The entry.
        seq: u64,
        /// The node.
        node: NodeId,
        /// The epoch reported.
        epoch: Epoch,
    },
    /// The state machine refuses an entry: a log holds only accepted entries.
    #[error("log entry {seq} is refused by the state machine: {source}")]
    Refused {
        /// The entry.
        seq: u64,
        /// Why it is refused.
        #[source]
        source: CommandError,
    },
    /// An event does not continue the chain.
    #[error("log entry {seq}, event {event}: {problem}")]
    EventChain {
        /// The entry.
        seq: u64,
        /// The event's sequence number as recorded.
        event: u64,
        /// What is wrong.
        problem: &'static str,
    },
    /// The state's event count or head differs from the chain the audit followed.
    #[error("after log entry {seq} the state's event head is not the hash of the last event")]
    EventHead {
        /// The entry.
        seq: u64,
    },
    /// A selected committee is not the one that should come next.
    #[error("log entry {seq}, event {event}: the committee selected for {epoch} is unexpected: {problem}")]
    UnexpectedCommittee {
        /// The entry.
        seq: u64,
        /// The event.
        event: u64,
        /// The epoch it claims to serve.
        epoch: Epoch,
        /// What is wrong.
        problem: String,
    },
    /// A selected committee is not well formed (e.g. a shard with no owner or two).
    #[error("log entry {seq}, event {event}: the committee of {epoch} is invalid: {source}")]
    InvalidCommittee {
        /// The entry.
        seq: u64,
        /// The event.
        event: u64,
        /// The epoch it serves.
        epoch: Epoch,
        /// What is wrong.
        #[source]
        source: CommitteeError,
    },
    /// The state's committee is not the one selected for its epoch.
    #[error("after log entry {seq} the state's committee differs from the one selected for {epoch}")]
    CommitteeMismatch {
        /// The entry.
        seq: u64,
        /// The current epoch.
        epoch: Epoch,
    },
    /// A `BlobCertified` event has no matching certified blob object in the state.
    #[error("log entry {seq}, event {event}: blob {blob_id} (object {object}) is not certified in the state")]
    CertificationMissing {
        /// The entry.
        seq: u64,
        /// The event.
        event: u64,
        /// The blob ID.
        blob_id: BlobId,
        /// The blob object.
        object: ObjectId,
    },
    /// A stored storage certificate does not verify against its epoch's committee.
    #[error(
        "log entry {seq}, event {event}: the certificate of blob {blob_id} in {epoch} \
         does not verify: {source}"
    )]
    BadStorageCertificate {
        /// The entry.
        seq: u64,
        /// The event.
        event: u64,
        /// The blob ID.
        blob_id: BlobId,
        /// The certification epoch.
        epoch: Epoch,
        /// Why.
        #[source]
        source: CertificateError,
    },
    /// An `InvalidBlobId` event was not caused by an `InvalidateBlob` command for that blob.
    #[error("log entry {seq}, event {event}: blob {blob_id} was invalidated without an invalidation command")]
    InvalidationWithoutCertificate {
        /// The entry.
        seq: u64,
        /// The event.
        event: u64,
        /// The blob ID.
        blob_id: BlobId,
    },
    /// An invalid-blob certificate does not verify against its epoch's committee.
    #[error(
        "log entry {seq}, event {event}: the invalidation certificate of blob {blob_id} \
         in {epoch} does not verify: {source}"
    )]
    BadInvalidationCertificate {
        /// The entry.
        seq: u64,
        /// The event.
        event: u64,
        /// The blob ID.
        blob_id: BlobId,
        /// The invalidation epoch.
        epoch: Epoch,
        /// Why.
        #[source]
        source: CertificateError,
    },
    /// A running replica served a log page that is not what was asked or does not decode.
    #[error("log entry {seq} as served: {problem}")]
    ServedPage {
        /// The entry.
        seq: u64,
        /// What is wrong.
        problem: String,
    },
    /// A running replica serves an event that is not the one its log produced.
    #[error("event {event} as served: {problem}")]
    ServedEvent {
        /// The event.
        event: u64,
        /// What is wrong.
        problem: String,
    },
    /// A running replica reports a state hash other than its log's.
    #[error("the replica reports state hash {served} but its log replays to {replayed}")]
    ServedState {
        /// The hash in its `GET /v1/system`.
        served: String,
        /// The hash of the replayed log.
        replayed: String,
    },
    /// Money was created or destroyed.
    #[error("after log entry {seq} the total supply is {found}, not the genesis supply {expected}")]
    SupplyChanged {
        /// The entry.
        seq: u64,
        /// The genesis supply.
        expected: u128,
        /// The supply found.
        found: u128,
    },
}

/// Replays `log` on top of `genesis` from scratch and checks everything.
///
/// # Errors
///
/// The first problem found, as an [`AuditError`] naming the entry, event or blob concerned.
pub fn audit_log(genesis: &Genesis, log: &CommandLog) -> Result<AuditReport, AuditError> {
    let expected = genesis_hash(genesis);
    match log.get_meta(GENESIS_KEY)? {
        None => return Err(AuditError::NoGenesisHash),
        Some(found) if found != expected => {
            return Err(AuditError::GenesisMismatch { expected: hex(&expected), found: hex(&found) });
        }
        Some(_) => {}
    }
    let mut auditor = Auditor::new(genesis)?;
    let mut failure = None;
    let walked = log.for_each(|seq, bytes| {
        auditor.entry(seq, bytes).map_err(|error| {
            failure = Some(error);
            StoreError::Replay { seq, source: "the audit found a problem".into() }
        })
    });
    if let Some(error) = failure {
        return Err(error);
    }
    walked?;
    Ok(auditor.report())
}

/// Opens the log at `path` and audits it. The log must exist (it is not created) and must
/// not be open elsewhere: stop the coordinator first.
///
/// # Errors
///
/// [`AuditError::NoLog`] if there is no file, [`AuditError::Store`] if it cannot be opened,
/// else as [`audit_log`].
pub fn audit_path(genesis: &Genesis, path: &Path) -> Result<AuditReport, AuditError> {
    match std::fs::metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(AuditError::NoLog { path: path.to_path_buf() });
        }
        _ => {}
    }
    let log = CommandLog::open(path)?;
    audit_log(genesis, &log)
}

/// The replay and what the audit tracks beside the state.
struct Auditor {
    chain_id: String,
    n_shards: u16,
    state: State,
    supply: u128,
    time_ms: u64,
    /// The next nonce of every account that sent something.
    nonces: BTreeMap<AccountId, u64>,
    /// The committee of every epoch so far, and of the next once selected.
    committees: BTreeMap<Epoch, Committee>,
    entries: u64,
    events: u64,
    event_head: Digest,
    certified_blobs: u64,
    invalid_blobs: u64,
}

impl Auditor {
    fn new(genesis: &Genesis) -> Result<Self, AuditError> {
        let state = genesis.initial_state()?;
        let supply = genesis.accounts.iter().map(|account| u128::from(account.balance)).sum::<u128>()
            + genesis.nodes.iter().map(|node| u128::from(node.stake)).sum::<u128>();
        let first = state.committee.clone();
        first.validate().map_err(AuditError::GenesisCommittee)?;
        Ok(Self {
            chain_id: genesis.chain_id.clone(),
            n_shards: genesis.n_shards,
            time_ms: genesis.genesis_time_ms,
            state,
            supply,
            nonces: BTreeMap::new(),
            committees: BTreeMap::from([(Epoch(1), first)]),
            entries: 0,
            events: 0,
            event_head: [0; 32],
            certified_blobs: 0,
            invalid_blobs: 0,
        })
    }

    /// Checks, applies and checks again one log entry.
    fn entry(&mut self, seq: u64, bytes: &[u8]) -> Result<(), AuditError> {
        let entry: LogEntry = bcs::from_bytes(bytes).map_err(|source| AuditError::Decode { seq, source })?;
        if entry.time_ms < self.time_ms {
            let previous_ms = self.time_ms;
            return Err(AuditError::TimeWentBackwards { seq, time_ms: entry.time_ms, previous_ms });
        }
        match &entry.input {
            Input::Tick => {}
            Input::Transaction(signed) => self.check_transaction(seq, signed)?,
            Input::Node(report) => self.check_node_report(seq, report)?,
        }
        let applied = apply(&mut self.state, &entry).map_err(|source| AuditError::Refused { seq, source })?;
        self.time_ms = entry.time_ms;
        for record in &applied.events {
            self.check_event(seq, &entry, record)?;
        }
        if self.state.event_count != self.events || self.state.event_head != self.event_head {
            return Err(AuditError::EventHead { seq });
        }
        let epoch = self.state.epoch;
        match self.committees.get(&epoch) {
            None => return Err(AuditError::NoCommittee { seq, epoch }),
            Some(committee) if *committee != self.state.committee => {
                return Err(AuditError::CommitteeMismatch { seq, epoch });
            }
            Some(_) => {}
        }
        let found = self.state.total_supply();
        if found != self.supply {
            return Err(AuditError::SupplyChanged { seq, expected: self.supply, found });
        }
        self.entries += 1;
        Ok(())
    }

    fn check_transaction(&mut self, seq: u64, signed: &SignedTransaction) -> Result<(), AuditError> {
        let transaction = &signed.transaction;
        let account = transaction.sender;
        account
            .verify(&transaction.signing_bytes(&self.chain_id), &signed.signature)
            .map_err(|source| AuditError::BadSignature { seq, account, source })?;
        let next = self.nonces.entry(account).or_insert(0);
        if transaction.nonce != *next {
            return Err(AuditError::BadNonce { seq, account, expected: *next, got: transaction.nonce });
        }
        *next += 1;
        Ok(())
    }

    fn check_node_report(&self, seq: u64, report: &NodeReport) -> Result<(), AuditError> {
        let node = report.node;
        let (epoch, message) = match &report.report {
            NodeReportKind::EpochSyncDone { epoch } => {
                (*epoch, morsa_core::epoch_sync_done_message(*epoch, &node))
            }
            // Signed in the epoch it is applied in, which an epoch deadline due just before may
            // change: checked with the event it causes, in `blob_invalidated`.
            NodeReportKind::InvalidBlob { .. } => return Ok(()),
            NodeReportKind::NodeUnresponsive { subject, epoch } => {
                (*epoch, morsa_core::node_unresponsive_message(*epoch, subject))
            }
            // Challenge reports name their epoch and are signed by a member of its committee.
            other => match (other.challenge_epoch(), other.challenge_message(&node)) {
                (Some(epoch), Some(message)) => (epoch, message),
                _ => return Ok(()),
            },
        };
        let committee = self.committees.get(&epoch).ok_or(AuditError::NoCommittee { seq, epoch })?;
        let member =
            committee.member_by_node(&node).ok_or(AuditError::NotInCommittee { seq, node, epoch })?;
        committee.members[member]
            .public_key
            .verify(&message, &report.signature)
            .map_err(|_| AuditError::BadNodeSignature { seq, node, epoch })
    }

    /// Follows the chain to `record` and checks what the event claims.
    fn check_event(&mut self, seq: u64, entry: &LogEntry, record: &EventRecord) -> Result<(), AuditError> {
        let event = record.seq;
        let problem = if event != self.events {
            Some("its sequence number is not the next one")
        } else if record.time_ms != entry.time_ms {
            Some("its time is not the time of its log entry")
        } else if !record.verifies_after(&self.event_head) {
            Some("its hash is wrong or does not follow the previous event's")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(AuditError::EventChain { seq, event, problem });
        }
        self.events += 1;
        self.event_head = record.hash;
        match &record.event {
            Event::CommitteeSelected { committee } => self.committee_selected(seq, event, committee),
            Event::BlobCertified { blob_id, object, deletable, epoch, .. } => {
                self.blob_certified(seq, event, blob_id, object, *deletable, *epoch)
            }
            Event::InvalidBlobId { blob_id, epoch } => {
                self.blob_invalidated(seq, event, &entry.input, blob_id, *epoch)
            }
            _ => Ok(()),
        }
    }

    /// Committees are selected for epochs 2, 3, 4, ... in order, each well formed.
    fn committee_selected(&mut self, seq: u64, event: u64, committee: &Committee) -> Result<(), AuditError> {
        let epoch = committee.epoch;
        let last = self.committees.last_key_value().map_or(Epoch(0), |(epoch, _)| *epoch);
        let unexpected = |problem: String| AuditError::UnexpectedCommittee { seq, event, epoch, problem };
        if epoch.0 != last.0.saturating_add(1) {
            return Err(unexpected(format!(
                "the next epoch to select a committee for is {}",
                last.0.saturating_add(1)
            )));
        }
        if committee.n_shards != self.n_shards {
            return Err(unexpected(format!("it has {} shards, not {}", committee.n_shards, self.n_shards)));
        }
        committee.validate().map_err(|source| AuditError::InvalidCommittee { seq, event, epoch, source })?;
        self.committees.insert(epoch, committee.clone());
        Ok(())
    }

    /// The certificate stored with the blob object verifies with a quorum of its epoch's
    /// committee over the storage confirmation of the blob.
    fn blob_certified(
        &mut self,
        seq: u64,
        event: u64,
        blob_id: &BlobId,
        object: &ObjectId,
        deletable: bool,
        epoch: Epoch,
    ) -> Result<(), AuditError> {
        let committee = self.committees.get(&epoch).ok_or(AuditError::NoCommittee { seq, epoch })?;
        let certification = self
            .state
            .blobs
            .get(object)
            .filter(|blob| blob.blob_id == *blob_id && blob.deletable == deletable)
            .and_then(|blob| blob.certified.as_ref())
            .filter(|certification| certification.epoch == epoch)
            .ok_or(AuditError::CertificationMissing { seq, event, blob_id: *blob_id, object: *object })?;
        let persistence = match deletable {
            true => PersistenceType::Deletable { object_id: *object },
            false => PersistenceType::Permanent,
        };
        let message = morsa_core::storage_confirmation_message(epoch, blob_id, &persistence);
        committee.verify_certificate(&certification.certificate, &message, Threshold::Quorum).map_err(
            |source| AuditError::BadStorageCertificate { seq, event, blob_id: *blob_id, epoch, source },
        )?;
        self.certified_blobs += 1;
        Ok(())
    }

    /// The invalidation command's certificate verifies with validity weight of its epoch's
    /// committee over the invalid-blob message.
    fn blob_invalidated(
        &mut self,
        seq: u64,
        event: u64,
        input: &Input,
        blob_id: &BlobId,
        epoch: Epoch,
    ) -> Result<(), AuditError> {
        let certificate = match input {
            // The command alone, or one of a batch's.
            Input::Transaction(signed) => {
                signed.transaction.command.commands().iter().find_map(|command| match command {
                    Command::InvalidateBlob { blob_id: invalidated, certificate }
                        if invalidated == blob_id =>
                    {
                        Some(certificate)
                    }
                    _ => None,
                })
            }
            Input::Node(report) => match &report.report {
                NodeReportKind::InvalidBlob { blob_id: invalidated, certificate }
                    if invalidated == blob_id =>
                {
                    Some(certificate)
                }
                _ => None,
            },
            Input::Tick => None,
        }
        .ok_or(AuditError::InvalidationWithoutCertificate { seq, event, blob_id: *blob_id })?;
        let committee = self.committees.get(&epoch).ok_or(AuditError::NoCommittee { seq, epoch })?;
        let message = morsa_core::invalid_blob_message(epoch, blob_id);
        if let Input::Node(report) = input {
            let node = report.node;
            let member =
                committee.member_by_node(&node).ok_or(AuditError::NotInCommittee { seq, node, epoch })?;
            committee.members[member]
                .public_key
                .verify(&message, &report.signature)
                .map_err(|_| AuditError::BadNodeSignature { seq, node, epoch })?;
        }
        committee.verify_certificate(certificate, &message, Threshold::Validity).map_err(|source| {
            AuditError::BadInvalidationCertificate { seq, event, blob_id: *blob_id, epoch, source }
        })?;
        self.invalid_blobs += 1;
        Ok(())
    }

    fn report(&self) -> AuditReport {
        AuditReport {
            entries: self.entries,
            events: self.events,
            epoch: self.state.epoch,
            certified_blobs: self.certified_blobs,
            invalid_blobs: self.invalid_blobs,
            state_hash: hex(&self.state.hash()),
            event_head: hex(&self.event_head),
        }
    }
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(2 * bytes.len()), |mut text, byte| {
        write!(text, "{byte:02x}").expect("writing to a String cannot fail");
        text
    })
}

mod served;
#[cfg(test)]
mod tests;

pub use served::{PagedAudit, ServedEvents};
