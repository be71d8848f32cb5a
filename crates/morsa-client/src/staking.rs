//! The node lifecycle from the account's side: register a node, declare its zone and its
//! commission, stake,
//! unstake, withdraw once the delay has passed, retire a node. Each is one transaction; the
//! coordinator's rules (see `morsa_coord::lifecycle`) decide when stake counts and when a
//! withdrawal is paid.

use morsa_api::coord::{AccountInfo, Command, SubmitResponse};
use morsa_core::{BlsPublicKey, BlsSignature, NodeId};

use crate::{Client, Error};

/// What `RegisterNode` declares of a node.
#[derive(Debug, Clone)]
pub struct NodeRegistration {
    /// The node's BLS key.
    pub public_key: BlsPublicKey,
    /// The key's signature over itself.
    pub proof_of_possession: BlsSignature,
    /// Where clients and peers reach the node.
    pub address: String,
    /// Encoded bytes it commits to store.
    pub capacity: u64,
}

impl Client {
    /// Registers a node operated by this account (the deployment's deposit is taken); answers
    /// its node ID.
    pub async fn register_node(&self, node: NodeRegistration) -> Result<NodeId, Error> {
        let id = NodeId::from_public_key(&node.public_key);
        let command = Command::RegisterNode {
            public_key: node.public_key,
            proof_of_possession: node.proof_of_possession,
            address: node.address,
            capacity: node.capacity,
        };
        self.submit(command, "registering the node").await?;
        Ok(id)
    }

    /// Declares the zone of a node this account operates.
    pub async fn set_node_zone(&self, node: NodeId, zone: &str) -> Result<SubmitResponse, Error> {
        self.submit(Command::SetNodeZone { node, zone: zone.to_string() }, "declaring the node's zone").await
    }

    /// Sets the commission of a node this account operates, in parts per million of its
    /// rewards; it pays from the first epoch that starts after it is set.
    pub async fn set_commission(&self, node: NodeId, commission_ppm: u32) -> Result<SubmitResponse, Error> {
        self.submit(Command::SetCommission { node, commission_ppm }, "setting the node's commission").await
    }

    /// Stakes `amount` with `node`; it counts from the next committee selection.
    pub async fn stake(&self, node: NodeId, amount: u64) -> Result<SubmitResponse, Error> {
        self.submit(Command::Stake { node, amount }, "staking").await
    }

    /// Takes `amount` of stake off `node`: a pending withdrawal until the epoch change that
    /// moves the node's shards away has completed.
    pub async fn unstake(&self, node: NodeId, amount: u64) -> Result<SubmitResponse, Error> {
        self.submit(Command::Unstake { node, amount }, "unstaking").await
    }

    /// Pays the pending withdrawals with `node` whose delay has passed.
    pub async fn withdraw(&self, node: NodeId) -> Result<SubmitResponse, Error> {
        self.submit(Command::Withdraw { node }, "withdrawing").await
    }

    /// Retires a node this account operates: never selected again, its own stake unstaked.
    pub async fn retire_node(&self, node: NodeId) -> Result<SubmitResponse, Error> {
        self.submit(Command::RetireNode { node }, "retiring the node").await
    }

    /// The account's balance, stakes and pending withdrawals.
    pub async fn account_info(&self) -> Result<AccountInfo, Error> {
        self.coord.account(&self.account()).await.map_err(Error::coordinator("reading the account"))
    }
}
