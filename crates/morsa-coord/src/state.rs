//! The coordinator's state: everything `apply` reads and writes, in ordered maps so that its
//! BCS bytes, and so its hash, are a pure function of the log.

use std::collections::{BTreeMap, BTreeSet};

use morsa_core::{AccountId, BlsPublicKey, Certificate, Committee, Epoch, NodeId, ObjectId};
use redstuff::BlobId;
use serde::{Deserialize, Serialize};

use morsa_api::coord::{BlobObjectSummary, BlobStatus, BlobStatusKind};
use morsa_core::hash::{Digest, domain_hash};

/// Fixed parameters from genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Deployment name, signed into every transaction.
    pub chain_id: String,
    /// Shards `n`.
    pub n_shards: u16,
    /// Epoch length in milliseconds.
    pub epoch_duration_ms: u64,
    /// Start of epoch 1.
    pub genesis_time_ms: u64,
    /// Price of 1 MiB of encoded size for one epoch.
    pub storage_price_per_mib_epoch: u64,
    /// Price of registering 1 MiB of encoded size.
    pub write_price_per_mib: u64,
    /// How far ahead storage can be bought.
    pub max_epochs_ahead: u32,
    /// Cap on shards per node.
    pub max_shards_per_node: u16,
}

/// A storage node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// BLS key its confirmations are signed with.
    pub public_key: BlsPublicKey,
    /// Where it is reached.
    pub address: String,
    /// Encoded bytes it commits to store.
    pub capacity: u64,
    /// Account paid its rewards.
    pub operator: AccountId,
    /// Total stake with the node.
    pub stake: u64,
}

/// An account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Spendable balance.
    pub balance: u64,
    /// Nonce the next transaction must carry.
    pub nonce: u64,
}

/// Paid storage: `size` bytes for epochs `start..end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageResource {
    /// Who owns it.
    pub owner: AccountId,
    /// First epoch covered.
    pub start: Epoch,
    /// First epoch not covered.
    pub end: Epoch,
    /// Encoded bytes.
    pub size: u64,
}

/// A certificate accepted for a blob, kept so that audits can re-verify it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certification {
    /// The epoch whose committee signed.
    pub epoch: Epoch,
    /// The certificate.
    pub certificate: Certificate,
}

/// A registered blob object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobObject {
    /// The blob ID.
    pub blob_id: BlobId,
    /// Who owns the object.
    pub owner: AccountId,
    /// Unencoded size.
    pub size: u64,
    /// Encoded size.
    pub encoded_size: u64,
    /// Whether the owner may delete it.
    pub deletable: bool,
    /// Epoch of registration.
    pub registered_epoch: Epoch,
    /// The storage it holds (its `end` is the blob's end epoch).
    pub storage: StorageResource,
    /// Set once certified.
    pub certified: Option<Certification>,
}

/// Where the current epoch stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EpochPhase {
    /// Nodes are taking over their shards; these have reported being done.
    Changing {
        /// Nodes of the committee that reported.
        done: BTreeSet<NodeId>,
    },
    /// Every node holding a quorum of shards reported; the next change may start when due.
    Done,
}

/// The whole state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Genesis parameters.
    pub params: Params,
    /// Time of the last applied entry.
    pub time_ms: u64,
    /// The current epoch (from 1).
    pub epoch: Epoch,
    /// Where the epoch change stands.
    pub phase: EpochPhase,
    /// The committee of the current epoch.
    pub committee: Committee,
    /// The committee of the next epoch, once selected.
    pub next_committee: Option<Committee>,
    /// Capacity (encoded bytes) of the current committee.
    pub capacity: u64,
    /// Registered nodes.
    pub nodes: BTreeMap<NodeId, Node>,
    /// Accounts.
    pub accounts: BTreeMap<AccountId, Account>,
    /// Stake per (staker, node).
    pub stakes: BTreeMap<(AccountId, NodeId), u64>,
    /// Storage resources not in a blob.
    pub storage: BTreeMap<ObjectId, StorageResource>,
    /// Blob objects.
    pub blobs: BTreeMap<ObjectId, BlobObject>,
    /// Blob objects per blob ID.
    pub blob_objects: BTreeMap<BlobId, BTreeSet<ObjectId>>,
    /// Blob IDs proven invalid, with the epoch of invalidation.
    pub invalid_blobs: BTreeMap<BlobId, Epoch>,
    /// Bytes reserved per epoch (resources and blobs).
    pub used: BTreeMap<Epoch, u64>,
    /// Rewards collected per epoch, paid at its end.
    pub reward_pools: BTreeMap<Epoch, u64>,
    /// Objects created so far (object IDs derive from it).
    pub objects_created: u64,
    /// Events emitted so far.
    pub event_count: u64,
    /// Hash of the last event (zeros before the first).
    pub event_head: Digest,
}

impl State {
    /// BLAKE2b-256 of the state's BCS bytes: equal states, equal hashes.
    pub fn hash(&self) -> Digest {
        let bytes = bcs::to_bytes(self).expect("the state serializes");
        domain_hash(b"morsa/state", &[&bytes])
    }

    /// Start of `epoch` in milliseconds (epoch 1 starts at genesis).
    pub fn epoch_start_ms(&self, epoch: Epoch) -> u64 {
        let index = u64::from(epoch.0.saturating_sub(1));
        self.params.genesis_time_ms.saturating_add(index.saturating_mul(self.params.epoch_duration_ms))
    }

    /// When the next committee is selected: half-way through the current epoch.
    pub fn selection_due_ms(&self) -> u64 {
        self.epoch_start_ms(self.epoch).saturating_add(self.params.epoch_duration_ms / 2)
    }

    /// The earliest time a tick would change something, if any is pending.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        if self.next_committee.is_none() {
            return Some(self.selection_due_ms());
        }
        match self.phase {
            EpochPhase::Done => Some(self.epoch_start_ms(Epoch(self.epoch.0 + 1))),
            EpochPhase::Changing { .. } => None,
        }
    }

    /// Whether a tick at `time_ms` would do something.
    pub fn deadline_due(&self, time_ms: u64) -> Option<u64> {
        self.next_deadline_ms().filter(|due| *due <= time_ms)
    }

    /// The account, or an empty one.
    pub fn account(&self, id: &AccountId) -> Account {
        self.accounts.get(id).cloned().unwrap_or_default()
    }

    /// Up to `limit` live blob objects owned by `owner` with IDs after `after`, and whether
    /// more follow.
    pub fn owned_blobs(
        &self,
        owner: &AccountId,
        after: Option<ObjectId>,
        limit: usize,
    ) -> (Vec<morsa_api::coord::OwnedBlob>, bool) {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut owned =
            self.blobs.range((start, Bound::Unbounded)).filter(|(_, blob)| blob.owner == *owner).map(
                |(object, blob)| morsa_api::coord::OwnedBlob {
                    object: *object,
                    blob_id: blob.blob_id,
                    size: blob.size,
                    encoded_size: blob.encoded_size,
                    deletable: blob.deletable,
                    registered_epoch: blob.registered_epoch,
                    end_epoch: blob.storage.end,
                    certified_epoch: blob.certified.as_ref().map(|certification| certification.epoch),
                    invalid: self.invalid_blobs.contains_key(&blob.blob_id),
                },
            );
        let page: Vec<_> = owned.by_ref().take(limit).collect();
        let more = owned.next().is_some();
        (page, more)
    }

    /// The status of `blob_id`.
    pub fn blob_status(&self, blob_id: &BlobId) -> BlobStatus {
        let objects: Vec<BlobObjectSummary> = self
            .blob_objects
            .get(blob_id)
            .into_iter()
            .flatten()
            .filter_map(|object| self.blobs.get(object).map(|blob| (object, blob)))
            .map(|(object, blob)| BlobObjectSummary {
                object: *object,
                owner: blob.owner,
                deletable: blob.deletable,
                end_epoch: blob.storage.end,
                certified_epoch: blob.certified.as_ref().map(|certification| certification.epoch),
            })
            .collect();
        let certified: Vec<&BlobObjectSummary> =
            objects.iter().filter(|object| object.certified_epoch.is_some()).collect();
        let (status, relevant): (BlobStatusKind, Vec<&BlobObjectSummary>) =
            if self.invalid_blobs.contains_key(blob_id) {
                (BlobStatusKind::Invalid, Vec::new())
            } else if !certified.is_empty() {
                (BlobStatusKind::Certified, certified)
            } else if !objects.is_empty() {
                (BlobStatusKind::Registered, objects.iter().collect())
            } else {
                (BlobStatusKind::Nonexistent, Vec::new())
            };
        BlobStatus {
            end_epoch: relevant.iter().map(|object| object.end_epoch).max(),
            permanent: relevant.iter().any(|object| !object.deletable && object.certified_epoch.is_some()),
            status,
            objects,
        }
    }

    /// Bytes still free in `epoch`.
    pub fn available_in(&self, epoch: Epoch) -> u64 {
        self.capacity.saturating_sub(self.used.get(&epoch).copied().unwrap_or(0))
    }

    /// Sum of every balance, stake and unpaid reward pool: constant across all entries.
    pub fn total_supply(&self) -> u128 {
        let balances: u128 = self.accounts.values().map(|account| u128::from(account.balance)).sum();
        let stakes: u128 = self.stakes.values().map(|stake| u128::from(*stake)).sum();
        let pools: u128 = self.reward_pools.values().map(|pool| u128::from(*pool)).sum();
        balances + stakes + pools
    }
}
