//! Why a log entry was refused: one enum, each variant with a stable machine-readable code and
//! a message that tells a person what to fix.

use morsa_core::{AccountId, CertificateError, Epoch, NodeId, ObjectId};
use redstuff::BlobId;

/// A refused input. Refusal never changes the state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The entry's time is before the state's time.
    #[error("entry time {time_ms} is before the coordinator's time {state_ms}")]
    TimeWentBackwards {
        /// Time of the entry.
        time_ms: u64,
        /// Time of the state.
        state_ms: u64,
    },
    /// An epoch change or committee selection is due: a tick must be applied first.
    #[error("an epoch deadline is due at {due_ms}; apply a tick before further commands")]
    TickDue {
        /// When it was due.
        due_ms: u64,
    },
    /// The transaction's signature does not verify for its sender.
    #[error(
        "the transaction signature does not verify for account {0}; sign the exact transaction with that account's key and this deployment's chain ID"
    )]
    BadSignature(AccountId),
    /// The nonce is not the account's next one.
    #[error(
        "nonce {got} is wrong for account {account}: the next nonce is {expected} (replayed or out-of-order transaction)"
    )]
    BadNonce {
        /// The sender.
        account: AccountId,
        /// The nonce expected.
        expected: u64,
        /// The nonce given.
        got: u64,
    },
    /// The account cannot pay.
    #[error("account {account} has {balance} but {needed} is needed")]
    InsufficientBalance {
        /// The sender.
        account: AccountId,
        /// Its balance.
        balance: u64,
        /// What the command costs.
        needed: u64,
    },
    /// A value is out of its allowed range.
    #[error("{what} is invalid: {reason}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Not enough storage capacity is left in some epoch.
    #[error("only {available} bytes of capacity are left in {epoch}, {requested} requested")]
    CapacityExceeded {
        /// The first epoch without room.
        epoch: Epoch,
        /// Bytes left then.
        available: u64,
        /// Bytes asked for.
        requested: u64,
    },
    /// No storage resource or blob object with this ID exists (or it expired).
    #[error("object {0} does not exist (it may have expired or been consumed)")]
    UnknownObject(ObjectId),
    /// The object belongs to another account.
    #[error("object {object} belongs to account {owner}, not to the sender")]
    NotOwner {
        /// The object.
        object: ObjectId,
        /// Its owner.
        owner: AccountId,
    },
    /// The storage resource does not cover what the command needs.
    #[error("storage {storage} does not fit: {reason}")]
    StorageMismatch {
        /// The resource.
        storage: ObjectId,
        /// Why not.
        reason: String,
    },
    /// The blob ID does not follow from the root hash, size and encoding type.
    #[error("blob ID {claimed} does not match the root hash, size and encoding type, which give {derived}")]
    BlobIdMismatch {
        /// ID given.
        claimed: BlobId,
        /// ID derived.
        derived: BlobId,
    },
    /// The blob was declared invalid.
    #[error("blob {0} was invalidated: it was encoded inconsistently")]
    InvalidBlob(BlobId),
    /// The blob object is in the wrong state for the command.
    #[error("blob object {object}: {reason}")]
    BlobState {
        /// The blob object.
        object: ObjectId,
        /// Why the command does not apply.
        reason: &'static str,
    },
    /// The certificate does not verify against the current committee.
    #[error("certificate refused: {0}")]
    Certificate(#[from] CertificateError),
    /// The node is not known, or not in the committee that matters.
    #[error("node {0} is not a member of the committee concerned")]
    UnknownNode(NodeId),
    /// A node report's signature does not verify.
    #[error("the report of node {0} has an invalid signature")]
    BadNodeSignature(NodeId),
    /// A counter or amount would leave its `u64` range; nothing changed.
    #[error("{what} would overflow")]
    Overflow {
        /// What would overflow.
        what: &'static str,
    },
    /// The bound on registered nodes outside the committees is reached.
    #[error(
        "{limit} registered nodes hold no shards already; stake with one of them, or wait until an inactive node deregisters"
    )]
    TooManyInactiveNodes {
        /// The bound, from genesis.
        limit: u32,
    },
    /// Only the node's operator may do this.
    #[error("node {node} is operated by account {operator}, not by the sender")]
    NotOperator {
        /// The node.
        node: NodeId,
        /// Its operator.
        operator: AccountId,
    },
    /// The node holds shards in the current or next committee.
    #[error("node {0} holds shards in the current or next committee; unstake and wait until it leaves both")]
    NodeActive(NodeId),
    /// A node report about another epoch than the current one.
    #[error("report for {got} but the current epoch is {current}")]
    WrongEpoch {
        /// Epoch reported.
        got: Epoch,
        /// Current epoch.
        current: Epoch,
    },
}

impl CommandError {
    /// A stable code for programs: never changes meaning once released.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TimeWentBackwards { .. } => "time_went_backwards",
            Self::TickDue { .. } => "tick_due",
            Self::BadSignature(_) => "bad_signature",
            Self::BadNonce { .. } => "bad_nonce",
            Self::InsufficientBalance { .. } => "insufficient_balance",
            Self::InvalidArgument { .. } => "invalid_argument",
            Self::CapacityExceeded { .. } => "capacity_exceeded",
            Self::UnknownObject(_) => "unknown_object",
            Self::NotOwner { .. } => "not_owner",
            Self::StorageMismatch { .. } => "storage_mismatch",
            Self::BlobIdMismatch { .. } => "blob_id_mismatch",
            Self::InvalidBlob(_) => "invalid_blob",
            Self::BlobState { .. } => "blob_state",
            Self::Certificate(_) => "bad_certificate",
            Self::UnknownNode(_) => "unknown_node",
            Self::BadNodeSignature(_) => "bad_node_signature",
            Self::WrongEpoch { .. } => "wrong_epoch",
            Self::Overflow { .. } => "overflow",
            Self::TooManyInactiveNodes { .. } => "too_many_nodes",
            Self::NotOperator { .. } => "not_operator",
            Self::NodeActive(_) => "node_active",
        }
    }
}
