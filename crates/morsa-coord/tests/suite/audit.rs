//! The audit of a coordinator's data: a log written by a real coordinator passes with the right
//! counts, and each kind of tampering is caught with its own error.

use crate::common;

use std::path::PathBuf;

use common::{CHAIN, EPOCH_MS, GENESIS_MS};
use morsa_coord::{
    Applied, AuditError, AuditReport, Command, CommandError, Coordinator, EpochPhase, Genesis, Input,
    LogEntry, NodeReport, NodeReportKind, State, Transaction, audit_log, audit_path,
};
use morsa_core::{AccountKey, BlsSecretKey, Certificate, Epoch, NodeId, ObjectId, PersistenceType};
use morsa_store::CommandLog;
use redstuff::{BlobId, EncodingConfig};

const N: u16 = 10;

/// A coordinator writing its log into a temporary directory.
struct Writer {
    coordinator: Coordinator,
    node_keys: Vec<BlsSecretKey>,
    users: Vec<AccountKey>,
    now: u64,
}

/// A log written by a coordinator, which is closed again.
struct Written {
    genesis: Genesis,
    node_keys: Vec<BlsSecretKey>,
    users: Vec<AccountKey>,
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// The coordinator's state after the last entry.
    state: State,
    /// Entries in the log.
    entries: u64,
}

impl Writer {
    fn submit(&mut self, input: Input) -> Applied {
        self.coordinator.submit(input, self.now).unwrap()
    }

    fn transact(&mut self, user: usize, command: Command) -> Applied {
        let key = &self.users[user];
        let nonce = self.coordinator.state().account(&key.id()).nonce;
        let signed = Transaction { sender: key.id(), nonce, command }.sign(key, CHAIN);
        self.submit(Input::Transaction(signed))
    }

    fn node_key(&self, node: &NodeId) -> &BlsSecretKey {
        self.node_keys.iter().find(|key| NodeId::from_public_key(&key.public_key()) == *node).unwrap()
    }

    /// A certificate over `message` by every member of the current committee.
    fn certificate(&self, message: &[u8]) -> Certificate {
        let committee = &self.coordinator.state().committee;
        let parts: Vec<_> = committee
            .members
            .iter()
            .enumerate()
            .map(|(index, member)| {
                (u16::try_from(index).unwrap(), self.node_key(&member.node_id).sign(message))
            })
            .collect();
        Certificate::aggregate(&parts).unwrap()
    }

    /// Reserves storage, registers a blob and certifies it; returns its object.
    fn store_blob(&mut self, user: usize, size: u64, deletable: bool, seed: u8) -> ObjectId {
        let encoded = EncodingConfig::new(N).unwrap().encoded_size(size).unwrap();
        let storage = self.transact(user, Command::ReserveStorage { size: encoded, epochs: 3 }).created[0];
        let root_hash = [seed; 32];
        let blob_id = BlobId::from_root(size, &root_hash);
        let register =
            Command::RegisterBlob { storage, blob_id, root_hash, size, encoding_type: 1, deletable };
        let object = self.transact(user, register).created[0];
        let persistence = match deletable {
            true => PersistenceType::Deletable { object_id: object },
            false => PersistenceType::Permanent,
        };
        let epoch = self.coordinator.state().epoch;
        let certificate =
            self.certificate(&morsa_core::storage_confirmation_message(epoch, &blob_id, &persistence));
        self.transact(user, Command::CertifyBlob { object, certificate });
        object
    }

    /// Members of the committee report their epoch sync done until the change is done.
    fn finish_epoch_change(&mut self) {
        let members: Vec<NodeId> =
            self.coordinator.state().committee.members.iter().map(|member| member.node_id).collect();
        for node in members {
            if self.coordinator.state().phase == EpochPhase::Done {
                return;
            }
            let report = node_report(self.node_key(&node), node, self.coordinator.state().epoch);
            self.submit(Input::Node(report));
        }
    }
}

fn node_report(key: &BlsSecretKey, node: NodeId, epoch: Epoch) -> NodeReport {
    let signature = key.sign(&morsa_core::epoch_sync_done_message(epoch, &node));
    NodeReport { node, report: NodeReportKind::EpochSyncDone { epoch }, signature }
}

/// A log with two certified blobs (one permanent, one deletable) and an invalidated blob ID in
/// epoch 1, an epoch change with every report, a certified blob in epoch 2 and a transfer.
fn written() -> Written {
    let (genesis, node_keys, users) = common::genesis(4, N, &[100, 200, 300, 400]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coord.redb");
    let coordinator = Coordinator::open(&genesis, &path).unwrap();
    let mut writer = Writer { coordinator, node_keys, users, now: GENESIS_MS + 1 };

    writer.store_blob(0, 5000, false, 1);
    writer.now += 10;
    writer.store_blob(1, 300, true, 2);
    let invalid = BlobId::from_root(77, &[9; 32]);
    let certificate = writer.certificate(&morsa_core::invalid_blob_message(Epoch(1), &invalid));
    writer.transact(2, Command::InvalidateBlob { blob_id: invalid, certificate });

    writer.now = GENESIS_MS + EPOCH_MS;
    writer.submit(Input::Tick); // selects the committee of epoch 2, then starts epoch 2
    assert_eq!(writer.coordinator.state().epoch, Epoch(2));
    writer.finish_epoch_change();
    writer.store_blob(0, 1 << 16, false, 3);
    let to = writer.users[0].id();
    writer.transact(2, Command::Transfer { to, amount: 5 });

    let state = writer.coordinator.state().clone();
    let entries = writer.coordinator.log_len().unwrap();
    let Writer { coordinator, node_keys, users, .. } = writer;
    drop(coordinator); // closes the log
    Written { genesis, node_keys, users, _dir: dir, path, state, entries }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Appends `entry` to the closed log of `written` and audits the log.
fn audit_with(written: &Written, entry: &LogEntry) -> Result<AuditReport, AuditError> {
    audit_with_bytes(written, &bcs::to_bytes(entry).unwrap())
}

/// Appends `bytes` as a record to the closed log of `written` and audits the log.
fn audit_with_bytes(written: &Written, bytes: &[u8]) -> Result<AuditReport, AuditError> {
    let log = CommandLog::open(&written.path).unwrap();
    assert_eq!(log.append(bytes).unwrap(), written.entries);
    audit_log(&written.genesis, &log)
}

#[test]
fn a_log_written_by_the_coordinator_passes_with_its_counts() {
    let written = written();
    let report = audit_path(&written.genesis, &written.path).unwrap();
    assert_eq!(
        report,
        AuditReport {
            entries: written.entries,
            events: written.state.event_count,
            epoch: Epoch(2),
            certified_blobs: 3,
            invalid_blobs: 1,
            state_hash: hex(&written.state.hash()),
            event_head: hex(&written.state.event_head),
        }
    );
    // 3 × (reserve, register, certify) + invalidate + tick + reports + transfer.
    assert!(report.entries >= 13, "{report:?}");
    assert!(report.events > 0 && report.event_head != hex(&[0; 32]));
    // The audit reads; it changes nothing.
    assert_eq!(audit_path(&written.genesis, &written.path).unwrap(), report);
}

#[test]
fn a_log_audited_with_another_genesis_is_refused() {
    let written = written();
    let mut other = written.genesis.clone();
    other.accounts[0].balance += 1;
    let error = audit_path(&other, &written.path).unwrap_err();
    assert!(matches!(error, AuditError::GenesisMismatch { .. }), "{error}");
}

#[test]
fn a_transaction_signed_with_another_key_is_caught() {
    let written = written();
    let sender = written.users[0].id();
    let nonce = written.state.account(&sender).nonce;
    let transaction = Transaction { sender, nonce, command: Command::Transfer { to: sender, amount: 1 } };
    let forged = transaction.sign(&written.users[1], CHAIN);
    let entry = LogEntry { time_ms: written.state.time_ms, input: Input::Transaction(forged) };
    let error = audit_with(&written, &entry).unwrap_err();
    assert!(
        matches!(error, AuditError::BadSignature { seq, account, .. }
            if seq == written.entries && account == sender),
        "{error}"
    );
}

#[test]
fn a_transaction_signed_for_another_chain_is_caught() {
    let written = written();
    let user = &written.users[2];
    let nonce = written.state.account(&user.id()).nonce;
    let transaction =
        Transaction { sender: user.id(), nonce, command: Command::Transfer { to: user.id(), amount: 1 } };
    let entry = LogEntry {
        time_ms: written.state.time_ms,
        input: Input::Transaction(transaction.sign(user, "another-chain")),
    };
    let error = audit_with(&written, &entry).unwrap_err();
    assert!(matches!(error, AuditError::BadSignature { .. }), "{error}");
}

#[test]
fn a_replayed_transaction_is_caught_by_its_nonce() {
    let written = written();
    let first = {
        let log = CommandLog::open(&written.path).unwrap();
        let (_, bytes) = log.read(0, 1).unwrap().remove(0);
        bcs::from_bytes::<LogEntry>(&bytes).unwrap()
    };
    let Input::Transaction(signed) = &first.input else { panic!("the first entry is a transaction") };
    let account = signed.transaction.sender;
    // The very same signed transaction, at the current time so that only the nonce is wrong.
    let replay = LogEntry { time_ms: written.state.time_ms, input: first.input.clone() };
    let error = audit_with(&written, &replay).unwrap_err();
    let next = written.state.account(&account).nonce;
    assert!(
        matches!(error, AuditError::BadNonce { seq, account: a, expected, got: 0 }
            if seq == written.entries && a == account && expected == next),
        "{error}"
    );
}

#[test]
fn an_entry_going_back_in_time_is_caught() {
    let written = written();
    let entry = LogEntry { time_ms: GENESIS_MS, input: Input::Tick };
    let error = audit_with(&written, &entry).unwrap_err();
    assert!(
        matches!(error, AuditError::TimeWentBackwards { seq, time_ms: GENESIS_MS, previous_ms }
            if seq == written.entries && previous_ms == written.state.time_ms),
        "{error}"
    );
}

#[test]
fn an_entry_that_does_not_decode_is_caught() {
    let written = written();
    let error = audit_with_bytes(&written, b"\xffnot a log entry").unwrap_err();
    assert!(matches!(error, AuditError::Decode { seq, .. } if seq == written.entries), "{error}");
}

#[test]
fn a_node_report_signed_with_another_key_is_caught() {
    let written = written();
    let node = written.state.committee.members[0].node_id;
    let other =
        written.node_keys.iter().find(|key| NodeId::from_public_key(&key.public_key()) != node).unwrap();
    let entry = LogEntry {
        time_ms: written.state.time_ms,
        input: Input::Node(node_report(other, node, written.state.epoch)),
    };
    let error = audit_with(&written, &entry).unwrap_err();
    assert!(
        matches!(error, AuditError::BadNodeSignature { seq, node: n, epoch: Epoch(2) }
            if seq == written.entries && n == node),
        "{error}"
    );
}

#[test]
fn a_well_signed_entry_the_state_machine_refuses_is_caught() {
    let written = written();
    let user = &written.users[1];
    let account = written.state.account(&user.id());
    let overdraft = Command::Transfer { to: written.users[0].id(), amount: account.balance + 1 };
    let signed =
        Transaction { sender: user.id(), nonce: account.nonce, command: overdraft }.sign(user, CHAIN);
    let entry = LogEntry { time_ms: written.state.time_ms, input: Input::Transaction(signed) };
    let error = audit_with(&written, &entry).unwrap_err();
    assert!(
        matches!(error, AuditError::Refused { seq, source: CommandError::InsufficientBalance { .. } }
            if seq == written.entries),
        "{error}"
    );
}

#[test]
fn a_missing_log_is_reported_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.redb");
    let (genesis, _, _) = common::genesis(4, N, &[100]);
    let error = audit_path(&genesis, &path).unwrap_err();
    assert!(matches!(error, AuditError::NoLog { .. }), "{error}");
    assert!(!path.exists());
}

#[test]
fn a_log_that_names_no_genesis_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bare.redb");
    drop(CommandLog::open(&path).unwrap());
    let (genesis, _, _) = common::genesis(4, N, &[100]);
    let error = audit_path(&genesis, &path).unwrap_err();
    assert!(matches!(error, AuditError::NoGenesisHash), "{error}");
}

/// A batch from user 2 of a refused transfer and an invalidation of a new blob ID by every
/// member of the current committee.
fn batch_entry(written: &Written) -> LogEntry {
    let user = &written.users[2];
    let invalid = BlobId::from_root(88, &[8; 32]);
    let message = morsa_core::invalid_blob_message(written.state.epoch, &invalid);
    let parts: Vec<_> = (0_u16..)
        .zip(&written.state.committee.members)
        .map(|(index, member)| {
            let key = written
                .node_keys
                .iter()
                .find(|key| NodeId::from_public_key(&key.public_key()) == member.node_id)
                .unwrap();
            (index, key.sign(&message))
        })
        .collect();
    let certificate = Certificate::aggregate(&parts).unwrap();
    let commands = vec![
        Command::Transfer { to: user.id(), amount: 0 },
        Command::InvalidateBlob { blob_id: invalid, certificate },
    ];
    let nonce = written.state.account(&user.id()).nonce;
    let transaction = Transaction { sender: user.id(), nonce, command: Command::Batch { commands } };
    LogEntry { time_ms: written.state.time_ms, input: Input::Transaction(transaction.sign(user, CHAIN)) }
}

#[test]
fn a_batch_is_audited_command_by_command() {
    let written = written();
    let report = audit_with(&written, &batch_entry(&written)).unwrap();
    assert_eq!(report.entries, written.entries + 1);
    // The invalidation inside the batch was found and its certificate verified.
    assert_eq!(report.invalid_blobs, 2);
}

#[test]
fn a_batch_changed_after_signing_is_caught() {
    let written = written();
    let mut entry = batch_entry(&written);
    if let Input::Transaction(signed) = &mut entry.input
        && let Command::Batch { commands } = &mut signed.transaction.command
    {
        commands.remove(0);
    }
    let error = audit_with(&written, &entry).unwrap_err();
    assert!(matches!(error, AuditError::BadSignature { .. }), "{error}");
}
