//! Why a log entry was refused: one enum, each variant with a stable machine-readable code and
//! a message that tells a person what to fix.

use morsa_core::challenge::AnswerError;
use morsa_core::{AccountId, CertificateError, Epoch, NodeId, ObjectId};
use redstuff::BlobId;

pub use crate::address::AddressError;

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
        reason: InvalidReason,
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
        reason: StorageMismatchReason,
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
        reason: BlobStateReason,
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
    /// Nothing is withdrawable yet: the epoch change that moves the node's shards away (the
    /// one the stake last counted for) has not completed.
    #[error(
        "{pending} unstaked from node {node} becomes withdrawable once the change to {epoch} is done; the stake stays slashable until then"
    )]
    WithdrawalNotDue {
        /// The node.
        node: NodeId,
        /// Amount pending with it.
        pending: u64,
        /// The epoch whose change must complete first (the earliest pending one).
        epoch: Epoch,
    },
    /// The node was retired by its operator: it cannot be staked with or retired again.
    #[error("node {0} is retired: it is never selected again; unstake from it instead")]
    NodeRetired(NodeId),
    /// A challenge report was refused.
    #[error("challenge report refused: {0}")]
    Challenge(#[from] ChallengeRefusal),
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
            Self::WithdrawalNotDue { .. } => "withdrawal_not_due",
            Self::NodeRetired(_) => "node_retired",
            Self::Challenge(_) => "challenge_refused",
        }
    }
}

/// Why an argument is out of its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidReason {
    /// Zero where only a positive amount or size makes sense.
    #[error("must be positive")]
    NotPositive,
    /// Zero epochs.
    #[error("must be at least 1")]
    NoEpochs,
    /// So many epochs that the end epoch leaves its range.
    #[error("too many")]
    TooManyEpochs,
    /// The price of the size over the epochs leaves the `u64` range.
    #[error("the price overflows")]
    PriceOverflows,
    /// The merged size leaves the `u64` range.
    #[error("overflows")]
    SizeOverflows,
    /// Storage that ends further ahead than the system sells.
    #[error("storage can be bought at most {max_epochs_ahead} epochs ahead")]
    TooFarAhead {
        /// The most epochs ahead sold.
        max_epochs_ahead: u32,
    },
    /// A split size that leaves nothing on one side.
    #[error("must be between 1 and {max}")]
    SplitSize {
        /// The largest size that leaves something on the other side.
        max: u64,
    },
    /// A split epoch that leaves no epoch on one side.
    #[error("must lie strictly inside {start}..{end}")]
    SplitEpoch {
        /// The resource's first epoch.
        start: u32,
        /// The epoch it ends before.
        end: u32,
    },
    /// A resource merged with itself.
    #[error("cannot merge a resource with itself")]
    MergeWithItself,
    /// An encoding type other than RS2.
    #[error("{0} is not supported; use 1 (RS2)")]
    EncodingType(u8),
    /// The shard count or the blob size does not give an encoding.
    #[error(transparent)]
    Encoding(#[from] redstuff::ConfigError),
    /// More unstaked than staked with the node, or nothing.
    #[error("must be between 1 and the {staked} staked with the node")]
    Unstake {
        /// What the sender has staked with the node.
        staked: u64,
    },
    /// A node capacity outside the genesis's bounds.
    #[error("must be between {min} and {max} bytes")]
    Capacity {
        /// The smallest capacity accepted.
        min: u64,
        /// The largest.
        max: u64,
    },
    /// A node address clients and peers cannot use.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// A node with this public key is registered already.
    #[error("node {0} is already registered")]
    AlreadyRegistered(NodeId),
    /// The proof of possession does not verify.
    #[error("does not verify for the public key")]
    ProofOfPossession,
    /// Nothing unstaked from the node waits to be withdrawn by the sender.
    #[error("the sender has no pending withdrawal with this node; unstake first")]
    NothingToWithdraw,
    /// A zone name too long or with control characters.
    #[error("must be at most {max_len} bytes without control characters (e.g. eu-west/dc2)")]
    Zone {
        /// The longest name accepted.
        max_len: usize,
    },
    /// A commission rate above 100%.
    #[error("must be at most {max_ppm} parts per million (100%)")]
    Commission {
        /// The highest rate accepted.
        max_ppm: u32,
    },
    /// A batch of no commands, or of too many.
    #[error("a batch holds between 1 and {max} commands")]
    BatchLength {
        /// The most commands a batch holds.
        max: usize,
    },
    /// A batch inside a batch.
    #[error("a batch cannot hold another batch; send its commands in the outer one")]
    NestedBatch,
}

/// Why a storage resource does not cover what the command needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageMismatchReason {
    /// Two resources that neither share their epochs nor their size with adjacent epochs.
    #[error("resources merge only with the same epochs, or the same size and adjacent epochs")]
    NotMergeable,
    /// The resource does not cover the current epoch.
    #[error("it covers epochs {start}..{end}, not the current {current}")]
    NotCurrent {
        /// Its first epoch.
        start: u32,
        /// The epoch it ends before.
        end: u32,
        /// The current epoch.
        current: Epoch,
    },
    /// The resource is smaller than the blob's encoded size.
    #[error("it holds {size} bytes but the blob's encoded size is {encoded_size}")]
    TooSmall {
        /// Bytes the resource holds.
        size: u64,
        /// The blob's encoded size.
        encoded_size: u64,
    },
}

/// Why a blob object is in the wrong state for a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BlobStateReason {
    /// Certifying a blob twice.
    #[error("it is already certified")]
    AlreadyCertified,
    /// Extending a blob that is not certified.
    #[error("only certified blobs can be extended")]
    NotCertified,
    /// Deleting a permanent blob.
    #[error("it is permanent, not deletable")]
    Permanent,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages people and programs saw while the reasons were strings.
    #[test]
    fn typed_reasons_keep_their_messages() {
        let object = ObjectId([7; 32]);
        let invalid = |what, reason| CommandError::InvalidArgument { what, reason };
        for (error, message) in [
            (
                invalid("size", InvalidReason::PriceOverflows),
                "size is invalid: the price overflows".to_string(),
            ),
            (
                invalid("epochs", InvalidReason::TooFarAhead { max_epochs_ahead: 52 }),
                "epochs is invalid: storage can be bought at most 52 epochs ahead".into(),
            ),
            (
                invalid("epoch", InvalidReason::SplitEpoch { start: 2, end: 5 }),
                "epoch is invalid: must lie strictly inside 2..5".into(),
            ),
            (
                invalid("encoding_type", InvalidReason::EncodingType(3)),
                "encoding_type is invalid: 3 is not supported; use 1 (RS2)".into(),
            ),
            (
                invalid("capacity", InvalidReason::Capacity { min: 1 << 20, max: 1 << 30 }),
                "capacity is invalid: must be between 1048576 and 1073741824 bytes".into(),
            ),
            (
                invalid("address", InvalidReason::Address(AddressError::BadPort("x".into()))),
                "address is invalid: port \"x\" is not a number from 1 to 65535".into(),
            ),
            (
                CommandError::StorageMismatch {
                    storage: object,
                    reason: StorageMismatchReason::NotCurrent { start: 1, end: 3, current: Epoch(4) },
                },
                format!("storage {object} does not fit: it covers epochs 1..3, not the current {}", Epoch(4)),
            ),
            (
                CommandError::StorageMismatch {
                    storage: object,
                    reason: StorageMismatchReason::TooSmall { size: 10, encoded_size: 20 },
                },
                format!("storage {object} does not fit: it holds 10 bytes but the blob's encoded size is 20"),
            ),
            (
                CommandError::BlobState { object, reason: BlobStateReason::Permanent },
                format!("blob object {object}: it is permanent, not deletable"),
            ),
        ] {
            assert_eq!(error.to_string(), message);
        }
    }
}

/// Why a challenge report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeRefusal {
    /// The round is not the one under way: it closed already (late) or has not started.
    #[error("round {round} of {epoch} is not under way; reports are taken only during their round")]
    NotUnderWay {
        /// Epoch of the report.
        epoch: Epoch,
        /// Round of the report.
        round: u32,
    },
    /// The audit arrived after the round's report deadline.
    #[error("audit reports of this round were due by {due_ms} ms; this one came at {time_ms} ms")]
    Late {
        /// The deadline.
        due_ms: u64,
        /// The report's log time.
        time_ms: u64,
    },
    /// The node is not challenged in this round.
    #[error("node {0} is not challenged in this round")]
    NotChallenged(NodeId),
    /// The reporting node is not the target's auditor.
    #[error("node {auditor} audits {target} in this round, not the reporting node")]
    NotAuditor {
        /// The target.
        target: NodeId,
        /// Its auditor.
        auditor: NodeId,
    },
    /// The results (or committed digests) do not match the target's challenges one for one.
    #[error("the target has {expected} challenges this round, the report carries {got} entries")]
    ResultCount {
        /// Challenges.
        expected: usize,
        /// Results.
        got: usize,
    },
    /// The auditor already reported on this target in this round.
    #[error("the auditor already reported on this target in this round (a replay)")]
    Replayed,
    /// The answer commitment arrived after the round's answer window closed.
    #[error("answer commitments of this round were due by {due_ms} ms; this one came at {time_ms} ms")]
    CommitLate {
        /// The end of the answer window.
        due_ms: u64,
        /// The commitment's log time.
        time_ms: u64,
    },
    /// The node already committed to its answers in this round.
    #[error("the node already committed to its answers in this round (a replay)")]
    CommitReplayed,
    /// A disputed answer is not the one the node committed to before the answer window
    /// closed (or it committed none): it may have been rebuilt after the window.
    #[error(
        "the answer to challenge {item} is not the one this node committed to before the answer window closed"
    )]
    NotCommitted {
        /// The challenge's position.
        item: u32,
    },
    /// No audit of the node was reported yet, so there is nothing to dispute.
    #[error("no audit of this node was reported in this round; there is nothing to dispute")]
    NothingReported,
    /// A disputed challenge is not a reported failure (out of range, passed, or disputed twice).
    #[error("challenge {item} is not a reported failure of this node (a replay, or out of range)")]
    NotFailed {
        /// The challenge's position.
        item: u32,
    },
    /// A disputed answer does not verify.
    #[error("the answer to challenge {item} does not verify: {reason}")]
    BadAnswer {
        /// The challenge's position.
        item: u32,
        /// Why.
        reason: AnswerError,
    },
    /// A dispute or declaration with nothing in it.
    #[error("the report is empty")]
    Empty,
    /// Too many declared blobs.
    #[error("a node may declare at most {max} lost blobs per epoch")]
    TooManyBlobs {
        /// The bound.
        max: usize,
    },
}
