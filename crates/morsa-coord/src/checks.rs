//! The signature checks of an input, separable from `apply`: the server reads what an input
//! must be verified against while it holds the state ([`State::precheck`], cheap), verifies it
//! without holding anything ([`Precheck::run`], the BLS pairings and ed25519 checks), and then
//! applies the input with the verified checks ([`Prechecked`]), which `apply` does not repeat.
//!
//! `apply` still verifies anything not covered, so a stale precheck (an epoch changed in
//! between) costs time, never correctness; and a log replay verifies everything again.

use morsa_core::{
    AccountId, BlsPublicKey, BlsSignature, Certificate, Committee, NodeId, PersistenceType, Threshold,
};

use crate::error::CommandError;
use crate::state::State;
use morsa_core::protocol::{Command, Input, NodeReportKind, SignedTransaction};

/// One signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    /// A transaction's ed25519 signature for the deployment's chain ID.
    Transaction { chain_id: String, signed: SignedTransaction },
    /// A node's BLS signature over a message.
    Node { node: NodeId, key: BlsPublicKey, message: Vec<u8>, signature: BlsSignature },
    /// A certificate of a committee over a message.
    Certificate { committee: Committee, message: Vec<u8>, threshold: Threshold, certificate: Certificate },
}

/// What an input must be verified against, read from the state. Verify it with [`Precheck::run`]
/// without holding the state.
#[derive(Debug, Clone, Default)]
pub struct Precheck {
    /// Checks whose failure refuses the input.
    checks: Vec<Check>,
    /// Checks of single commands of a batch: a failure refuses only that command, which
    /// `apply` finds when it verifies the check again.
    per_command: Vec<Check>,
}

/// Checks that passed; `apply` skips exactly these.
#[derive(Debug, Clone, Default)]
pub struct Prechecked {
    checks: Vec<Check>,
}

impl Precheck {
    /// Verifies every check: the first failure of one that refuses the whole input is the
    /// refusal `apply` would give. The checks of a batch's commands that fail are left out of
    /// the answer, for `apply` to refuse just their commands.
    pub fn run(self) -> Result<Prechecked, CommandError> {
        for check in &self.checks {
            verify(check)?;
        }
        let Self { mut checks, per_command } = self;
        checks.extend(per_command.into_iter().filter(|check| verify(check).is_ok()));
        Ok(Prechecked { checks })
    }
}

fn verify(check: &Check) -> Result<(), CommandError> {
    match check {
        Check::Transaction { chain_id, signed } => verify_transaction(signed, chain_id),
        Check::Node { node, key, message, signature } => {
            key.verify(message, signature).map_err(|_| CommandError::BadNodeSignature(*node))
        }
        Check::Certificate { committee, message, threshold, certificate } => {
            committee.verify_certificate(certificate, message, *threshold)?;
            Ok(())
        }
    }
}

fn verify_transaction(signed: &SignedTransaction, chain_id: &str) -> Result<(), CommandError> {
    let sender = signed.transaction.sender;
    sender
        .verify(&signed.transaction.signing_bytes(chain_id), &signed.signature)
        .map_err(|_| CommandError::BadSignature(sender))
}

/// How `apply` treats signatures.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signatures<'a> {
    /// Verify every signature.
    Verify,
    /// Skip the checks that already passed; verify the rest.
    Prechecked(&'a Prechecked),
    /// Verify nothing: only for entries that an `apply` with checks already accepted, in the
    /// same order (the state-hash replica). The commands of a batch are verified all the same
    /// ([`Signatures::for_batch_commands`]).
    Trusted,
}

impl Signatures<'_> {
    /// How the commands of a batch are checked: as the batch, except that an accepted batch
    /// does not vouch for its commands' certificates (one may have been refused for a bad
    /// one while the others applied), so `Trusted` verifies them.
    pub(crate) fn for_batch_commands(self) -> Self {
        match self {
            Self::Trusted => Self::Verify,
            other => other,
        }
    }

    fn covers(&self, check: &Check) -> bool {
        match self {
            Self::Verify => false,
            Self::Prechecked(done) => done.checks.contains(check),
            Self::Trusted => true,
        }
    }

    /// The transaction's signature.
    pub(crate) fn transaction(&self, signed: &SignedTransaction, chain_id: &str) -> Result<(), CommandError> {
        if matches!(self, Self::Trusted) {
            return Ok(());
        }
        let check = Check::Transaction { chain_id: chain_id.to_owned(), signed: signed.clone() };
        if self.covers(&check) {
            return Ok(());
        }
        verify_transaction(signed, chain_id)
    }

    /// The signature of `node`, whose key is `key`, over `message`.
    pub(crate) fn node(
        &self,
        node: &NodeId,
        key: &BlsPublicKey,
        message: &[u8],
        signature: &BlsSignature,
    ) -> Result<(), CommandError> {
        if matches!(self, Self::Trusted) {
            return Ok(());
        }
        let check =
            Check::Node { node: *node, key: *key, message: message.to_vec(), signature: signature.clone() };
        if self.covers(&check) {
            return Ok(());
        }
        key.verify(message, signature).map_err(|_| CommandError::BadNodeSignature(*node))
    }

    /// A certificate of `committee` over `message`.
    pub(crate) fn certificate(
        &self,
        committee: &Committee,
        certificate: &Certificate,
        message: &[u8],
        threshold: Threshold,
    ) -> Result<(), CommandError> {
        if matches!(self, Self::Trusted) {
            return Ok(());
        }
        let check = Check::Certificate {
            committee: committee.clone(),
            message: message.to_vec(),
            threshold,
            certificate: certificate.clone(),
        };
        if self.covers(&check) {
            return Ok(());
        }
        committee.verify_certificate(certificate, message, threshold)?;
        Ok(())
    }
}

impl State {
    /// The signature checks `apply` would make for `input` in this state, to be verified
    /// without holding the state. Cheap: lookups and copies, no cryptography. Inputs that
    /// `apply` refuses before any signature check (an unknown node, another epoch) need none.
    pub fn precheck(&self, input: &Input) -> Precheck {
        let mut checks = Vec::new();
        let mut per_command = Vec::new();
        match input {
            Input::Tick => {}
            Input::Transaction(signed) => {
                let chain_id = self.params.chain_id.clone();
                checks.push(Check::Transaction { chain_id, signed: signed.clone() });
                let transaction = &signed.transaction;
                let sender = transaction.sender;
                if transaction.nonce == self.account(&sender).nonce {
                    // Read in the state before the batch: a command whose certificate's
                    // subject an earlier command of it changes is verified again by `apply`.
                    let certificates = transaction
                        .command
                        .commands()
                        .iter()
                        .filter_map(|command| self.command_certificate(sender, command));
                    match transaction.command {
                        Command::Batch { .. } => per_command.extend(certificates),
                        _ => checks.extend(certificates),
                    }
                }
            }
            Input::Node(report) => {
                let Some(member) = self.committee.member_by_node(&report.node) else {
                    return Precheck::default();
                };
                let key = self.committee.members[member].public_key;
                let message = match &report.report {
                    NodeReportKind::EpochSyncDone { epoch } if *epoch != self.epoch => {
                        return Precheck::default();
                    }
                    NodeReportKind::EpochSyncDone { epoch } => {
                        morsa_core::epoch_sync_done_message(*epoch, &report.node)
                    }
                    NodeReportKind::InvalidBlob { blob_id, .. } => {
                        morsa_core::invalid_blob_message(self.epoch, blob_id)
                    }
                    NodeReportKind::NodeUnresponsive { epoch, .. } if *epoch != self.epoch => {
                        return Precheck::default();
                    }
                    NodeReportKind::NodeUnresponsive { subject, epoch } => {
                        morsa_core::node_unresponsive_message(*epoch, subject)
                    }
                    // Challenge reports: refused before any signature check in another epoch.
                    other => match (other.challenge_epoch(), other.challenge_message(&report.node)) {
                        (Some(epoch), Some(message)) if epoch == self.epoch => message,
                        _ => return Precheck::default(),
                    },
                };
                let signature = report.signature.clone();
                checks.push(Check::Node { node: report.node, key, message, signature });
                if let NodeReportKind::InvalidBlob { blob_id, certificate } = &report.report
                    && !self.invalid_blobs.contains_key(blob_id)
                {
                    checks.push(self.invalid_blob_check(blob_id, certificate));
                }
            }
        }
        Precheck { checks, per_command }
    }

    /// The certificate check of a command that carries one, if `apply` would reach it.
    fn command_certificate(&self, sender: AccountId, command: &Command) -> Option<Check> {
        match command {
            Command::CertifyBlob { object, certificate } => {
                let blob = self.blobs.get(object)?;
                if blob.owner != sender
                    || blob.certified.is_some()
                    || self.invalid_blobs.contains_key(&blob.blob_id)
                {
                    return None;
                }
                let persistence = match blob.deletable {
                    true => PersistenceType::Deletable { object_id: *object },
                    false => PersistenceType::Permanent,
                };
                let message =
                    morsa_core::storage_confirmation_message(self.epoch, &blob.blob_id, &persistence);
                Some(Check::Certificate {
                    committee: self.committee.clone(),
                    message,
                    threshold: Threshold::Quorum,
                    certificate: certificate.clone(),
                })
            }
            Command::InvalidateBlob { blob_id, certificate } if !self.invalid_blobs.contains_key(blob_id) => {
                Some(self.invalid_blob_check(blob_id, certificate))
            }
            _ => None,
        }
    }

    fn invalid_blob_check(&self, blob_id: &redstuff::BlobId, certificate: &Certificate) -> Check {
        Check::Certificate {
            committee: self.committee.clone(),
            message: morsa_core::invalid_blob_message(self.epoch, blob_id),
            threshold: Threshold::Validity,
            certificate: certificate.clone(),
        }
    }
}
