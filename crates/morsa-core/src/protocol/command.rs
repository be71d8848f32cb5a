//! What can be submitted to the coordinator: account transactions, node reports and time.

use redstuff::BlobId;
use serde::{Deserialize, Serialize};

use crate::account::{AccountId, AccountKey, AccountSignature};
use crate::bls::{BlsPublicKey, BlsSignature};
use crate::challenge::ChallengeAnswer;
use crate::committee::{Certificate, NodeId};
use crate::index::Epoch;
use crate::messages::ObjectId;

/// One entry of the command log: an input and the time it was accepted at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Milliseconds since the Unix epoch; never less than the previous entry's.
    pub time_ms: u64,
    /// What happened.
    pub input: Input,
}

/// An input to the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// Time passes: epoch changes and committee selections due by then take place.
    Tick,
    /// A transaction signed by an account.
    Transaction(SignedTransaction),
    /// A report signed by a storage node.
    Node(NodeReport),
}

/// A command from an account, with the nonce that orders it and prevents replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The account that signs and pays.
    pub sender: AccountId,
    /// Must equal the account's next nonce (0 for a new account).
    pub nonce: u64,
    /// What to do.
    pub command: Command,
}

/// A transaction with its ed25519 signature over [`Transaction::signing_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTransaction {
    /// The transaction.
    pub transaction: Transaction,
    /// The sender's signature.
    pub signature: AccountSignature,
}

/// Domain separator of transaction signatures.
const TRANSACTION_DOMAIN: &[u8] = b"morsa/coord/transaction/v1";

impl Transaction {
    /// The bytes the sender signs: a domain separator, the deployment's chain ID and the BCS
    /// form of the transaction.
    pub fn signing_bytes(&self, chain_id: &str) -> Vec<u8> {
        let mut bytes = TRANSACTION_DOMAIN.to_vec();
        bytes.extend(bcs::to_bytes(chain_id).expect("strings serialize"));
        bytes.extend(bcs::to_bytes(self).expect("transactions serialize"));
        bytes
    }

    /// Signs the transaction with `key` for the deployment `chain_id`.
    pub fn sign(self, key: &AccountKey, chain_id: &str) -> SignedTransaction {
        let signature = key.sign(&self.signing_bytes(chain_id));
        SignedTransaction { transaction: self, signature }
    }
}

/// The commands of an account (Walrus contract semantics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Moves balance to another account.
    Transfer {
        /// Recipient.
        to: AccountId,
        /// Amount.
        amount: u64,
    },
    /// Buys `size` bytes of storage for `epochs` epochs from the current one.
    ReserveStorage {
        /// Bytes of encoded size.
        size: u64,
        /// Number of epochs, starting with the current one.
        epochs: u32,
    },
    /// Splits a storage resource into two of `size` and the rest, same epochs.
    SplitStorageBySize {
        /// The resource.
        storage: ObjectId,
        /// Size of the new resource.
        size: u64,
    },
    /// Splits a storage resource into `start..epoch` and `epoch..end`, same size.
    SplitStorageByEpoch {
        /// The resource.
        storage: ObjectId,
        /// Where to cut.
        epoch: Epoch,
    },
    /// Merges two resources: same epochs (sizes add) or same size and adjacent epochs.
    MergeStorage {
        /// Kept, grown.
        first: ObjectId,
        /// Consumed.
        second: ObjectId,
    },
    /// Registers a blob, consuming a storage resource large enough for its encoded size.
    RegisterBlob {
        /// The storage to use.
        storage: ObjectId,
        /// The blob ID the client computed.
        blob_id: BlobId,
        /// The Merkle root of the blob's metadata.
        root_hash: [u8; 32],
        /// Unencoded size in bytes.
        size: u64,
        /// Encoding type (1 = RS2).
        encoding_type: u8,
        /// Whether the owner may delete it before it expires.
        deletable: bool,
    },
    /// Certifies a registered blob with a quorum of storage confirmations.
    CertifyBlob {
        /// The blob object.
        object: ObjectId,
        /// Aggregated confirmations of the current committee.
        certificate: Certificate,
    },
    /// Pays for `epochs` more epochs of a certified blob.
    ExtendBlob {
        /// The blob object.
        object: ObjectId,
        /// Epochs to add.
        epochs: u32,
    },
    /// Deletes a deletable blob and gives its storage back to the owner.
    DeleteBlob {
        /// The blob object.
        object: ObjectId,
    },
    /// Marks a blob ID invalid: nodes proved it was encoded inconsistently.
    InvalidateBlob {
        /// The blob ID.
        blob_id: BlobId,
        /// Aggregated invalid-blob attestations of the current committee.
        certificate: Certificate,
    },
    /// Stakes `amount` with a node; counts from the next committee selection.
    Stake {
        /// The node.
        node: NodeId,
        /// Amount moved from the balance.
        amount: u64,
    },
    /// Takes stake off a node; counts from the next committee selection. The amount becomes
    /// a pending withdrawal, still slashable, that `Withdraw` pays once the epoch change that
    /// follows that selection has completed.
    Unstake {
        /// The node.
        node: NodeId,
        /// Amount moved to the pending withdrawal.
        amount: u64,
    },
    /// Registers a new storage node operated by the sender; it joins a committee once it has
    /// stake at a committee selection. Takes the deployment's node deposit from the balance.
    RegisterNode {
        /// The node's BLS key (its node ID derives from it).
        public_key: BlsPublicKey,
        /// Signature of the key over itself, proving the sender holds the secret.
        proof_of_possession: BlsSignature,
        /// Where clients and peers reach the node.
        address: String,
        /// Encoded bytes the node commits to store.
        capacity: u64,
    },
    /// Removes a node the sender operates and that holds no shards in the current or next
    /// committee: its stakes go back to their stakers and its deposit to the sender.
    DeregisterNode {
        /// The node.
        node: NodeId,
    },
    /// Declares the failure domain of a node the sender operates (e.g. `eu-west/dc2`):
    /// committee selection keeps each zone, like each operator, to at most `f` shards where
    /// the candidates allow it. Counts from the next committee selection.
    SetNodeZone {
        /// The node.
        node: NodeId,
        /// Its zone (at most [`MAX_ZONE_LEN`] bytes, no control characters: [`zone_is_valid`];
        /// empty: undeclared, the node is a zone of its own).
        zone: String,
    },
    /// Pays the sender's unstaked amounts with a node whose delay has passed: the epoch
    /// change after the stake last counted has completed.
    Withdraw {
        /// The node.
        node: NodeId,
    },
    /// Retires a node the sender operates: it is never selected again, and the operator's own
    /// stake with it is unstaked (paid by `Withdraw` once its shards have moved away).
    RetireNode {
        /// The node.
        node: NodeId,
    },
    /// Sets the commission of a node the sender operates: the share of the node's rewards
    /// paid to its operator before the rest is split over its stakers pro rata. It pays from
    /// the first epoch that starts after it is set (at once for a node earning nothing in
    /// the current epoch, otherwise from the next epoch change).
    SetCommission {
        /// The node.
        node: NodeId,
        /// The rate in parts per million (at most 1,000,000: 100%).
        commission_ppm: u32,
    },
    /// Several commands in one transaction (one signature over all of them, one nonce),
    /// applied in order, each on its own: each is checked exactly as if it were sent alone,
    /// and one that is refused changes nothing while the others still apply. The transaction
    /// is refused whole only if it is malformed: no commands, more than
    /// [`MAX_BATCH_COMMANDS`], or a batch inside it.
    Batch {
        /// The commands, in the order they apply.
        commands: Vec<Command>,
    },
}

/// Most commands one [`Command::Batch`] may carry.
pub const MAX_BATCH_COMMANDS: usize = 64;

/// Longest zone name a node's operator may declare ([`Command::SetNodeZone`]), in bytes.
pub const MAX_ZONE_LEN: usize = 64;

/// Whether `zone` may be declared: at most [`MAX_ZONE_LEN`] bytes, no control characters.
/// Whoever reads zones (committee selection, clients choosing nodes) holds them to the same.
pub fn zone_is_valid(zone: &str) -> bool {
    zone.len() <= MAX_ZONE_LEN && !zone.chars().any(char::is_control)
}

impl Command {
    /// The commands this stands for: those of a batch, or itself alone.
    pub fn commands(&self) -> &[Command] {
        match self {
            Self::Batch { commands } => commands,
            single => std::slice::from_ref(single),
        }
    }
}

/// A signed report from a storage node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// The node.
    pub node: NodeId,
    /// What it reports.
    pub report: NodeReportKind,
    /// BLS signature over the report's message.
    pub signature: BlsSignature,
}

/// What a node can report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeReportKind {
    /// The node holds every shard it owns in `epoch` (signed over
    /// [`crate::epoch_sync_done_message`]).
    EpochSyncDone {
        /// The epoch.
        epoch: Epoch,
    },
    /// The blob ID is invalid: the node proved it inconsistently encoded and collected
    /// attestations of the current committee. Checked like [`Command::InvalidateBlob`] (the
    /// certificate needs validity weight over [`crate::invalid_blob_message`] in the
    /// current epoch); the report itself is signed over the same message by the reporting
    /// member, so a node can invalidate a blob without an account.
    InvalidBlob {
        /// The blob ID.
        blob_id: BlobId,
        /// Aggregated invalid-blob attestations of the current committee.
        certificate: Certificate,
    },
    /// Member `subject` of the current committee answered the reporting member nothing in
    /// `epoch` (signed over [`crate::node_unresponsive_message`]). Reports from members
    /// holding validity weight (`3w ≥ n + 1`, so at least one honest member) keep `subject`
    /// out of the next committee selection.
    NodeUnresponsive {
        /// The silent member.
        subject: NodeId,
        /// The current epoch.
        epoch: Epoch,
    },
    /// An auditor's results for one challenged node in a challenge round (signed over
    /// [`crate::challenge::challenge_audit_message`]).
    ChallengeAudit {
        /// The round's epoch.
        epoch: Epoch,
        /// The round's number in the epoch.
        round: u32,
        /// The challenged node.
        target: NodeId,
        /// One result per challenge of the target, in derivation order: `true` if its answer
        /// came in time and verified.
        results: Vec<bool>,
    },
    /// A challenged node's answers to challenges its auditor reported failed (signed over
    /// [`crate::challenge::challenge_dispute_message`]): each one that verifies overturns the
    /// failure, and the auditor is struck.
    ChallengeDispute {
        /// The round's epoch.
        epoch: Epoch,
        /// The round's number in the epoch.
        round: u32,
        /// The answers.
        answers: Vec<DisputedAnswer>,
    },
    /// Blobs whose slivers the node lost, declared before it is challenged on them (signed over
    /// [`crate::challenge::loss_declaration_message`]): failures on them cost less.
    DeclareLoss {
        /// The current epoch.
        epoch: Epoch,
        /// The blobs.
        blob_ids: Vec<BlobId>,
    },
    /// A challenged node's commitment to the answers it serves in a round, logged before the
    /// round's answer window closes (signed over [`crate::challenge::challenge_commit_message`]):
    /// a dispute overturns a failure only with an answer matching its digest here.
    ChallengeCommit {
        /// The round's epoch.
        epoch: Epoch,
        /// The round's number in the epoch.
        round: u32,
        /// One digest per challenge of the node, in derivation order:
        /// [`crate::challenge::answer_digest`] of its answer, or
        /// [`crate::challenge::NO_ANSWER`].
        digests: Vec<crate::hash::Digest>,
    },
}

/// One answer of a dispute: the position of the challenge among the node's challenges of the
/// round, and the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputedAnswer {
    /// Position among the node's challenges of the round.
    pub item: u32,
    /// The answer.
    pub answer: ChallengeAnswer,
}

impl NodeReportKind {
    /// The epoch a challenge report is about, or `None` for other reports.
    pub fn challenge_epoch(&self) -> Option<Epoch> {
        match self {
            Self::ChallengeAudit { epoch, .. }
            | Self::ChallengeDispute { epoch, .. }
            | Self::DeclareLoss { epoch, .. }
            | Self::ChallengeCommit { epoch, .. } => Some(*epoch),
            Self::EpochSyncDone { .. } | Self::InvalidBlob { .. } | Self::NodeUnresponsive { .. } => None,
        }
    }

    /// The bytes `node` signs for a challenge report, or `None` for other reports.
    pub fn challenge_message(&self, node: &NodeId) -> Option<Vec<u8>> {
        use crate::challenge::{
            challenge_audit_message, challenge_commit_message, challenge_dispute_message,
            loss_declaration_message,
        };
        match self {
            Self::ChallengeAudit { epoch, round, target, results } => {
                Some(challenge_audit_message(*epoch, *round, target, results))
            }
            Self::ChallengeDispute { epoch, round, answers } => {
                let answers = bcs::to_bytes(answers).expect("answers serialize");
                Some(challenge_dispute_message(*epoch, *round, node, &answers))
            }
            Self::DeclareLoss { epoch, blob_ids } => Some(loss_declaration_message(*epoch, node, blob_ids)),
            Self::ChallengeCommit { epoch, round, digests } => {
                Some(challenge_commit_message(*epoch, *round, node, digests))
            }
            Self::EpochSyncDone { .. } | Self::InvalidBlob { .. } | Self::NodeUnresponsive { .. } => None,
        }
    }
}
