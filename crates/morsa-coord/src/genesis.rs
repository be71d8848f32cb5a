//! The genesis configuration: the system's fixed parameters and its initial nodes and accounts.

use morsa_core::{AccountId, BlsPublicKey, BlsSignature, NodeId};
use serde::{Deserialize, Serialize};

/// Everything the coordinator starts from. Two coordinators with the same genesis and the same
/// command log reach the same state, bit for bit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// A name for the deployment, part of every signed transaction so that a transaction for
    /// one deployment cannot be replayed on another.
    pub chain_id: String,
    /// Number of shards `n` (at least 4).
    pub n_shards: u16,
    /// Length of an epoch in milliseconds.
    pub epoch_duration_ms: u64,
    /// Time of the start of epoch 1, in milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    /// Price of storing 1 MiB of encoded size for one epoch.
    pub storage_price_per_mib_epoch: u64,
    /// Price of registering 1 MiB of encoded size (once per blob).
    pub write_price_per_mib: u64,
    /// How many epochs ahead storage can be reserved.
    pub max_epochs_ahead: u32,
    /// Most shards one node may hold.
    pub max_shards_per_node: u16,
    /// The initial storage nodes.
    pub nodes: Vec<GenesisNode>,
    /// Initial account balances.
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    /// Deposit, bounds and address policy for storage nodes (defaults if absent).
    #[serde(default)]
    pub node_rules: NodeRules,
}

/// What it takes to register a storage node, and what a node may declare.
///
/// Registration takes a deposit from the operator's balance, held with the node and refunded
/// in full when the operator deregisters it (as Sui refunds the storage deposit of a deleted
/// object, which is what a Walrus node registration pays for): it prices the state a node adds,
/// not the service. At most `max_inactive_nodes` registered nodes may hold no shards, so that
/// deposits alone need not bound the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeRules {
    /// Deposit taken by `RegisterNode`, refunded by `DeregisterNode`.
    pub deposit: u64,
    /// Most registered nodes outside the current and next committees.
    pub max_inactive_nodes: u32,
    /// Largest capacity a node may declare, in encoded bytes; `n_shards` times it must fit in
    /// a `u64` so that no committee's capacity can overflow.
    pub max_node_capacity: u64,
    /// Accept loopback, link-local and unspecified node addresses: on for a deployment on one
    /// machine (`morsa cluster`, tests), off everywhere else.
    pub allow_loopback_addresses: bool,
    /// How nodes' storage is challenged (off unless `rounds_per_epoch` is set).
    pub challenges: crate::state::challenges::ChallengeRules,
}

/// Default node deposit.
pub const DEFAULT_NODE_DEPOSIT: u64 = 10_000;
/// Default bound on nodes outside the committees.
pub const DEFAULT_MAX_INACTIVE_NODES: u32 = 64;
/// Default largest node capacity: 1 PiB.
pub const DEFAULT_MAX_NODE_CAPACITY: u64 = 1 << 50;
/// Smallest capacity a node may register with: 1 MiB.
pub const MIN_NODE_CAPACITY: u64 = 1 << 20;

impl Default for NodeRules {
    fn default() -> Self {
        Self {
            deposit: DEFAULT_NODE_DEPOSIT,
            max_inactive_nodes: DEFAULT_MAX_INACTIVE_NODES,
            max_node_capacity: DEFAULT_MAX_NODE_CAPACITY,
            allow_loopback_addresses: false,
            challenges: crate::state::challenges::ChallengeRules::default(),
        }
    }
}

impl NodeRules {
    /// The rules of a deployment on one machine: defaults, loopback addresses allowed.
    pub fn local() -> Self {
        Self { allow_loopback_addresses: true, ..Self::default() }
    }
}

/// A storage node known at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisNode {
    /// The node's BLS public key; its node ID is derived from it.
    pub public_key: BlsPublicKey,
    /// Proof that whoever registered the key holds its secret.
    pub proof_of_possession: BlsSignature,
    /// Where clients and peers reach the node (`host:port` or a URL).
    pub address: String,
    /// Stake backing the node; shards are apportioned by stake.
    pub stake: u64,
    /// Encoded bytes the node commits to store.
    pub capacity: u64,
    /// The account the node's operator controls; rewards are paid to it.
    pub operator: AccountId,
    /// The node's failure domain (e.g. `eu-west/dc2`); empty or absent: a zone of its own.
    #[serde(default)]
    pub zone: String,
}

/// An account funded at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// The account.
    pub id: AccountId,
    /// Its balance.
    pub balance: u64,
}

impl Genesis {
    /// A genesis for running the coordinator alone (its benchmark and tests): four nodes with
    /// seeded keys at addresses nothing listens on, 10 shards, hour-long epochs, unit prices,
    /// the local node rules, `accounts` funded, starting now.
    pub fn coordinator_only(chain_id: &str, accounts: Vec<GenesisAccount>) -> Self {
        let nodes = (0..4_u8)
            .map(|index| {
                let key = morsa_core::BlsSecretKey::from_seed([index + 1; 32]);
                GenesisNode {
                    public_key: key.public_key(),
                    proof_of_possession: key.proof_of_possession(),
                    address: format!("127.0.0.1:{}", 9100 + u16::from(index)),
                    stake: 100,
                    capacity: 1 << 30,
                    operator: morsa_core::AccountKey::from_seed([50 + index; 32]).id(),
                    zone: String::new(),
                }
            })
            .collect();
        Self {
            chain_id: chain_id.into(),
            n_shards: 10,
            epoch_duration_ms: 3_600_000,
            genesis_time_ms: morsa_plumbing::now_ms(),
            storage_price_per_mib_epoch: 1,
            write_price_per_mib: 1,
            max_epochs_ahead: 5,
            max_shards_per_node: 10,
            nodes,
            accounts,
            node_rules: crate::NodeRules::local(),
        }
    }
}

impl GenesisNode {
    /// The node's ID, derived from its key.
    pub fn node_id(&self) -> NodeId {
        NodeId::from_public_key(&self.public_key)
    }
}

/// Why a genesis configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// A field is out of range.
    #[error("genesis field `{field}` is invalid: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A node's proof of possession does not verify.
    #[error("genesis node {index} ({address}): its proof of possession does not verify for its public key")]
    ProofOfPossession {
        /// Position in `nodes`.
        index: usize,
        /// Its address.
        address: String,
    },
    /// Shards cannot be apportioned to the nodes.
    #[error("genesis nodes cannot hold the shards: {0}")]
    Apportion(#[from] crate::apportion::ApportionError),
}

fn field(field: &'static str, reason: impl Into<String>) -> GenesisError {
    GenesisError::Field { field, reason: reason.into() }
}

/// Longest chain ID accepted.
const MAX_NAME_LEN: usize = 256;

impl Genesis {
    /// Checks every field and builds the state of epoch 1.
    pub fn initial_state(&self) -> Result<crate::State, GenesisError> {
        use std::collections::BTreeMap;

        use morsa_core::{Committee, Epoch};

        use crate::state::{Account, EpochPhase, Node, Params, State};

        if self.chain_id.is_empty() || self.chain_id.len() > MAX_NAME_LEN {
            return Err(field("chain_id", format!("must have 1 to {MAX_NAME_LEN} bytes")));
        }
        redstuff::EncodingConfig::new(self.n_shards).map_err(|error| field("n_shards", error.to_string()))?;
        if self.epoch_duration_ms == 0 {
            return Err(field("epoch_duration_ms", "must be positive"));
        }
        if self.max_epochs_ahead == 0 {
            return Err(field("max_epochs_ahead", "must be at least 1"));
        }
        if self.nodes.is_empty() {
            return Err(field("nodes", "at least one storage node is needed"));
        }
        let rules = &self.node_rules;
        if rules.max_node_capacity.checked_mul(u64::from(self.n_shards)).is_none() {
            return Err(field(
                "node_rules.max_node_capacity",
                format!("{} times {} shards overflows u64", rules.max_node_capacity, self.n_shards),
            ));
        }
        let mut nodes = BTreeMap::new();
        let mut stakes = BTreeMap::new();
        for (index, node) in self.nodes.iter().enumerate() {
            crate::address::check_node_address(&node.address, rules.allow_loopback_addresses).map_err(
                |reason| field("nodes.address", format!("node {index} ({}): {reason}", node.address)),
            )?;
            if node.capacity > rules.max_node_capacity {
                return Err(field(
                    "nodes.capacity",
                    format!("node {index}: {} is over node_rules.max_node_capacity", node.capacity),
                ));
            }
            node.public_key
                .verify_proof_of_possession(&node.proof_of_possession)
                .map_err(|_| GenesisError::ProofOfPossession { index, address: node.address.clone() })?;
            let id = node.node_id();
            let entry = Node {
                public_key: node.public_key,
                address: node.address.clone(),
                capacity: node.capacity,
                operator: node.operator,
                stake: node.stake,
                deposit: 0,
                zone: node.zone.clone(),
                commission_ppm: 0,
                next_commission_ppm: None,
            };
            if !morsa_core::protocol::zone_is_valid(&node.zone) {
                return Err(field(
                    "nodes.zone",
                    format!("node {index}: a zone is at most 64 bytes, no control characters"),
                ));
            }
            if nodes.insert(id, entry).is_some() {
                return Err(field("nodes.public_key", format!("node {index}: the same key appears twice")));
            }
            if node.stake > 0 {
                stakes.insert((node.operator, id), node.stake);
            }
        }
        let mut accounts = BTreeMap::new();
        for account in &self.accounts {
            let entry = Account { balance: account.balance, nonce: 0 };
            if accounts.insert(account.id, entry).is_some() {
                return Err(field("accounts", format!("account {} appears twice", account.id)));
            }
        }
        let supply = self.accounts.iter().map(|a| u128::from(a.balance)).sum::<u128>()
            + self.nodes.iter().map(|n| u128::from(n.stake)).sum::<u128>();
        if supply > u128::from(u64::MAX) {
            return Err(field("accounts", "balances and stakes together overflow u64"));
        }
        let params = Params {
            chain_id: self.chain_id.clone(),
            n_shards: self.n_shards,
            epoch_duration_ms: self.epoch_duration_ms,
            genesis_time_ms: self.genesis_time_ms,
            storage_price_per_mib_epoch: self.storage_price_per_mib_epoch,
            write_price_per_mib: self.write_price_per_mib,
            max_epochs_ahead: self.max_epochs_ahead,
            max_shards_per_node: self.max_shards_per_node,
            node_deposit: rules.deposit,
            max_inactive_nodes: rules.max_inactive_nodes,
            max_node_capacity: rules.max_node_capacity,
            allow_loopback_addresses: rules.allow_loopback_addresses,
        };
        let nobody = Committee { epoch: Epoch(1), n_shards: self.n_shards, members: Vec::new() };
        let committee = crate::apply::committee_from_stakes(&nodes, &params, &nobody, Epoch(1), &|_| false)?;
        let capacity = crate::state::committee_capacity(&nodes, &committee);
        let mut state = State {
            params,
            time_ms: self.genesis_time_ms,
            epoch: Epoch(1),
            phase: EpochPhase::Done,
            committee,
            next_committee: None,
            capacity,
            nodes,
            accounts,
            stakes,
            storage: BTreeMap::new(),
            blobs: BTreeMap::new(),
            blob_objects: BTreeMap::new(),
            owned_objects: BTreeMap::new(),
            invalid_blobs: BTreeMap::new(),
            used: BTreeMap::new(),
            reward_pools: BTreeMap::new(),
            objects_created: 0,
            event_count: 0,
            event_head: [0; 32],
            lifecycle: Default::default(),
            challenges: crate::state::challenges::Challenges::new(rules.challenges.clone()),
        };
        // The genesis stakes earn epoch 1's rewards.
        state.lifecycle.earning = state.stakes_behind(&state.committee);
        Ok(state)
    }
}
