//! Nodes joining and leaving a running cluster through the real transactions: `add_node`
//! funds a fresh operator account from the cluster's account, registers the node, declares
//! its zone, stakes with it and starts it; [`retire_node`] retires a node with its operator's
//! key, which unstakes the operator's stake (paid by `Withdraw` once the node's shards have
//! moved away).

use std::ffi::OsString;
use std::path::Path;

use morsa_api::client::CoordClient;
use morsa_api::coord::{Command, Transaction};
use morsa_core::{AccountKey, NodeId};
use morsa_node::keys;
use morsa_plumbing::file::{self, Access};

use super::Cluster;
use crate::error::ClusterError;
use crate::genesis::{CHAIN_ID, NODE_CAPACITY, NODE_STAKE};
use crate::layout;
use crate::ports::reserve_loopback_addresses;
use crate::process::{Launch, Process};
use crate::ready::block_on;
use crate::state::{ClusterState, NodeInfo};

impl Cluster {
    /// Adds a storage node in `zone` (none: a zone of its own) and waits until it is ready;
    /// answers its index. It holds no shard until the next committee selection, which gives
    /// it its share of the stake ([`NODE_STAKE`], like every genesis node).
    pub fn add_node(&mut self, zone: Option<&str>) -> Result<usize, ClusterError> {
        let index = self.nodes.len();
        let dir = self.spec.dir.clone();
        let key = keys::generate_key_file(&dir.join(layout::node_key(index)))?;
        let registration = keys::registration(&key);
        let operator = AccountKey::generate();
        file::create_new(
            &dir.join(layout::node_operator_key(index)),
            layout::account_key_text(&operator).as_bytes(),
            Access::Secret,
        )?;
        let user = read_account_key(&dir.join(layout::ACCOUNT_KEY))?;
        let reserved = reserve_loopback_addresses(1)?.remove(0);
        let listen = reserved.address();
        self.reserved.push(reserved);
        let coord = coord_client(&self.coordinator_urls)?;
        let node = registration.node_id;
        let zone = zone.unwrap_or_default().to_string();
        block_on(async {
            // A local cluster's genesis takes the default node deposit.
            let needed = morsa_coord::DEFAULT_NODE_DEPOSIT.saturating_add(NODE_STAKE);
            submit(&coord, &user, Command::Transfer { to: operator.id(), amount: needed }).await?;
            let register = Command::RegisterNode {
                public_key: registration.public_key,
                proof_of_possession: registration.proof_of_possession.clone(),
                address: listen.to_string(),
                capacity: NODE_CAPACITY,
            };
            submit(&coord, &operator, register).await?;
            if !zone.is_empty() {
                submit(&coord, &operator, Command::SetNodeZone { node, zone: zone.clone() }).await?;
            }
            submit(&coord, &operator, Command::Stake { node, amount: NODE_STAKE }).await?;
            Ok::<(), ClusterError>(())
        })
        .map_err(ClusterError::io("cannot start a thread to submit on"))??;
        let config = dir.join(layout::node_config(index));
        let node_toml = layout::node_toml(index, listen, &self.coordinator_urls);
        file::create_new(&config, node_toml.as_bytes(), Access::Shared)?;
        let info = NodeInfo {
            index,
            url: format!("http://{listen}"),
            direct_url: None,
            node_id: node,
            shards: Vec::new(),
            config: config.clone(),
            log: dir.join(layout::node_log(index)),
        };
        self.node_processes.push(Process::new(Launch {
            name: format!("node {index}"),
            binary: self.spec.binary.clone(),
            args: ["node", "run", "--config"].iter().map(OsString::from).chain([config.into()]).collect(),
            dir,
            log: info.log.clone(),
        }));
        self.nodes.push(info);
        self.spawn_node(index)?;
        self.wait_ready(index)?;
        self.save_state()?;
        Ok(index)
    }
}

/// Retires node `index` of the cluster in `dir` with its operator's key (written by `cluster
/// up` or `add-node`); answers its ID. It leaves the committee at the next selection; the
/// operator's stake waits until the change that moves its shards away is done.
pub fn retire_node(dir: &Path, index: usize) -> Result<NodeId, ClusterError> {
    let state = ClusterState::load(dir)?;
    let node = state
        .nodes
        .get(index)
        .ok_or(ClusterError::NoSuchNode { index, last: state.nodes.len().saturating_sub(1) })?;
    let node_id = node.info.node_id;
    let operator = read_account_key(&state.dir.join(layout::node_operator_key(index)))?;
    let urls: Vec<String> = match state.coordinators.is_empty() {
        true => vec![state.coordinator.url.clone()],
        false => state.coordinators.iter().map(|replica| replica.url.clone()).collect(),
    };
    let coord = coord_client(&urls)?;
    block_on(submit(&coord, &operator, Command::RetireNode { node: node_id }))
        .map_err(ClusterError::io("cannot start a thread to submit on"))??;
    Ok(node_id)
}

/// The operator key of node `index` of the cluster in `dir`.
pub fn operator_key(dir: &Path, index: usize) -> Result<AccountKey, ClusterError> {
    read_account_key(&dir.join(layout::node_operator_key(index)))
}

fn read_account_key(path: &Path) -> Result<AccountKey, ClusterError> {
    let text = std::fs::read_to_string(path)
        .map_err(ClusterError::io(format!("cannot read the account key {}", path.display())))?;
    let seed: [u8; 32] =
        hex::decode(text.trim()).ok().and_then(|bytes| bytes.try_into().ok()).ok_or_else(|| {
            ClusterError::Transaction {
                what: "reading an account key".into(),
                reason: format!("{} does not hold 32 hex-encoded bytes", path.display()),
            }
        })?;
    Ok(AccountKey::from_seed(seed))
}

fn coord_client(urls: &[String]) -> Result<CoordClient, ClusterError> {
    CoordClient::with_urls(urls, Default::default()).map_err(refused("connecting to the coordinator"))
}

fn refused(what: &'static str) -> impl Fn(morsa_api::client::ClientError) -> ClusterError {
    move |error| ClusterError::Transaction { what: what.into(), reason: error.to_string() }
}

/// Signs `command` with `key` and its next nonce, and submits it.
async fn submit(coord: &CoordClient, key: &AccountKey, command: Command) -> Result<(), ClusterError> {
    let nonce = coord.account(&key.id()).await.map_err(refused("reading the account"))?.nonce;
    let transaction = Transaction { sender: key.id(), nonce, command }.sign(key, CHAIN_ID);
    coord.submit_transaction(&transaction).await.map_err(refused("submitting a transaction"))?;
    Ok(())
}
