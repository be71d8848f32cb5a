//! The coordinator's state: everything `apply` reads and writes, in ordered maps so that its
//! BCS bytes, and so its hash, are a pure function of the log.

pub(crate) mod challenges;

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
    /// Deposit a `RegisterNode` takes from the operator's balance, refunded by `DeregisterNode`.
    pub node_deposit: u64,
    /// Most registered nodes outside the current and next committees.
    pub max_inactive_nodes: u32,
    /// Largest capacity one node may declare, in encoded bytes.
    pub max_node_capacity: u64,
    /// Whether node addresses may be loopback, link-local or unspecified (local deployments).
    pub allow_loopback_addresses: bool,
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
    /// Deposit held while the node is registered (returned to `operator` on deregistration).
    pub deposit: u64,
    /// Failure domain its operator declared (e.g. `eu-west/dc2`); empty: a zone of its own.
    pub zone: String,
    /// Share of its rewards paid to `operator` before the rest goes to its stakers, in parts
    /// per million ([`crate::delegation`]).
    pub commission_ppm: u32,
    /// A commission rate set during an epoch in which the node earns: it takes effect at the
    /// next epoch change, after that epoch's rewards are paid at the old rate.
    pub next_commission_ppm: Option<u32>,
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
    /// Blob objects per owner, so that listing an account's blobs reads only its own.
    pub owned_objects: BTreeMap<AccountId, BTreeSet<ObjectId>>,
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
    /// Pending withdrawals, retired nodes, epoch-sync reports ([`crate::lifecycle`]).
    pub lifecycle: Lifecycle,
    /// Storage challenges: rounds, tallies, last epoch's outcomes.
    pub challenges: challenges::Challenges,
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

    /// The earliest time a tick would change something, if any is pending: an epoch
    /// deadline or a challenge round.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.epoch_deadline_ms().into_iter().chain(self.challenge_round_due_ms()).min()
    }

    /// The next committee selection or epoch change, if one is pending.
    fn epoch_deadline_ms(&self) -> Option<u64> {
        // The last epoch a u32 can number has no successor, so nothing is ever due in it.
        let next = Epoch(self.epoch.0.checked_add(1)?);
        if self.next_committee.is_none() {
            return Some(self.selection_due_ms());
        }
        match self.phase {
            EpochPhase::Done => Some(self.epoch_start_ms(next)),
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
        let mut owned = self
            .owned_objects
            .get(owner)
            .into_iter()
            .flat_map(|objects| objects.range((start, Bound::Unbounded)))
            .filter_map(|object| self.blobs.get(object).map(|blob| (object, blob)))
            .map(|(object, blob)| morsa_api::coord::OwnedBlob {
                object: *object,
                blob_id: blob.blob_id,
                size: blob.size,
                encoded_size: blob.encoded_size,
                deletable: blob.deletable,
                registered_epoch: blob.registered_epoch,
                end_epoch: blob.storage.end,
                certified_epoch: blob.certified.as_ref().map(|certification| certification.epoch),
                invalid: self.invalid_blobs.contains_key(&blob.blob_id),
            });
        let page: Vec<_> = owned.by_ref().take(limit).collect();
        let more = owned.next().is_some();
        (page, more)
    }

    /// The stakes of `staker`, per node: a range of the stake map, not a scan of it.
    pub fn stakes_of(&self, staker: &AccountId) -> Vec<(NodeId, u64)> {
        self.stakes
            .range((*staker, NodeId([0; 32]))..=(*staker, NodeId([u8::MAX; 32])))
            .map(|((_, node), stake)| (*node, *stake))
            .collect()
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

    /// Sum of every balance, stake, pending withdrawal, node deposit and unpaid reward pool:
    /// constant across all
    /// entries, and at most `u64::MAX` (checked at genesis), so no single amount can overflow.
    pub fn total_supply(&self) -> u128 {
        let balances: u128 = self.accounts.values().map(|account| u128::from(account.balance)).sum();
        let stakes: u128 = self.stakes.values().map(|stake| u128::from(*stake)).sum();
        let pools: u128 = self.reward_pools.values().map(|pool| u128::from(*pool)).sum();
        let deposits: u128 = self.nodes.values().map(|node| u128::from(node.deposit)).sum();
        balances + stakes + pools + deposits + self.lifecycle.pending_total()
    }

    /// Capacity of the members of `committee`. It cannot overflow: a committee has at most
    /// `n_shards` members and genesis checks that `n_shards × max_node_capacity` fits in a
    /// `u64`; it saturates rather than wrap all the same.
    pub(crate) fn committee_capacity(&self, committee: &Committee) -> u64 {
        committee_capacity(&self.nodes, committee)
    }

    /// Registered nodes in neither the current committee nor the next one.
    pub fn inactive_nodes(&self) -> usize {
        let mut active: BTreeSet<&NodeId> =
            self.committee.members.iter().map(|member| &member.node_id).collect();
        if let Some(next) = &self.next_committee {
            active.extend(next.members.iter().map(|member| &member.node_id));
        }
        let registered_active = active.into_iter().filter(|node| self.nodes.contains_key(node)).count();
        self.nodes.len().saturating_sub(registered_active)
    }

    /// Whether `node` holds shards in the current committee or the selected next one.
    pub fn is_active(&self, node: &NodeId) -> bool {
        self.committee.member_by_node(node).is_some()
            || self.next_committee.as_ref().is_some_and(|next| next.member_by_node(node).is_some())
    }
}

/// Capacity of the members of `committee` among `nodes` (see [`State::committee_capacity`]).
pub(crate) fn committee_capacity(nodes: &BTreeMap<NodeId, Node>, committee: &Committee) -> u64 {
    committee
        .members
        .iter()
        .filter_map(|member| nodes.get(&member.node_id))
        .fold(0u64, |total, node| total.saturating_add(node.capacity))
}

/// Adds `amount` to `counter`, or fails naming `what` if the sum does not fit.
pub(crate) fn add(counter: &mut u64, amount: u64, what: &'static str) -> Result<(), crate::CommandError> {
    *counter = counter.checked_add(amount).ok_or(crate::CommandError::Overflow { what })?;
    Ok(())
}

/// Subtracts `amount` from `counter`, or fails naming `what` if it would go below zero.
pub(crate) fn sub(counter: &mut u64, amount: u64, what: &'static str) -> Result<(), crate::CommandError> {
    *counter = counter.checked_sub(amount).ok_or(crate::CommandError::Overflow { what })?;
    Ok(())
}

/// What the coordinator keeps of the node lifecycle (the rules are `crate::lifecycle`'s).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// Unstaked amounts per (staker, node, epoch whose change must be done before payment).
    pub withdrawals: BTreeMap<(AccountId, NodeId, Epoch), u64>,
    /// Nodes retired by their operators: never selected again.
    pub retired: BTreeSet<NodeId>,
    /// Members of the current committee that reported `EpochSyncDone` for the current epoch.
    pub synced: BTreeSet<NodeId>,
    /// Members of the previous epoch's committee that never reported for it.
    pub missed: BTreeSet<NodeId>,
    /// Members of the current committee reported unresponsive this epoch, with their
    /// reporters (`NodeUnresponsive`).
    pub accused: BTreeMap<NodeId, BTreeSet<NodeId>>,
    /// The stakes that counted when the current committee was selected, per (node, staker):
    /// they share the current epoch's rewards ([`crate::delegation`]).
    pub earning: BTreeMap<(NodeId, AccountId), u64>,
    /// The stakes that counted when the next committee was selected, once it is.
    pub selected: BTreeMap<(NodeId, AccountId), u64>,
}

impl Lifecycle {
    /// Sum of the pending withdrawals (part of the supply).
    pub fn pending_total(&self) -> u128 {
        self.withdrawals.values().map(|amount| u128::from(*amount)).sum()
    }

    /// The pending withdrawals of `staker` with `node`: (due epoch, amount), earliest first.
    pub fn pending(&self, staker: &AccountId, node: &NodeId) -> Vec<(Epoch, u64)> {
        self.withdrawals
            .range((*staker, *node, Epoch(0))..=(*staker, *node, Epoch(u32::MAX)))
            .map(|((_, _, epoch), amount)| (*epoch, *amount))
            .collect()
    }
}
