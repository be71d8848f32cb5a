//! `morsa stake`, `unstake`, `withdraw`, and the lifecycle half of `morsa node` (`register`,
//! `set-zone`, `retire`): one signed transaction each, from the client configuration's account.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use morsa_client::NodeRegistration;
use morsa_core::NodeId;

use crate::blobs::{ConfigArg, runtime};

/// Options of `morsa stake` and `morsa unstake`.
#[derive(Debug, Args)]
pub struct StakeArgs {
    #[command(flatten)]
    common: ConfigArg,
    /// The node (its ID, as `morsa info` lists it).
    #[arg(long, value_name = "NODE_ID")]
    node: NodeId,
    /// The amount.
    #[arg(long)]
    amount: u64,
}

/// Options of `morsa withdraw` and `morsa node retire`.
#[derive(Debug, Args)]
pub struct NodeIdArgs {
    #[command(flatten)]
    common: ConfigArg,
    /// The node (its ID, as `morsa info` lists it).
    #[arg(long, value_name = "NODE_ID")]
    node: NodeId,
}

/// Options of `morsa node set-zone`.
#[derive(Debug, Args)]
pub struct SetZoneArgs {
    #[command(flatten)]
    node: NodeIdArgs,
    /// The zone, e.g. `eu-west/dc2` (empty: undeclared).
    #[arg(long, value_name = "ZONE")]
    zone: String,
}

/// Options of `morsa node register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    common: ConfigArg,
    /// The node's BLS key file (from `morsa node keygen`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Where clients and peers reach the node (`host:port` or a URL).
    #[arg(long)]
    address: String,
    /// Encoded bytes the node commits to store.
    #[arg(long, default_value_t = 1 << 40)]
    capacity: u64,
    /// The node's failure domain, e.g. `eu-west/dc2`.
    #[arg(long, value_name = "ZONE")]
    zone: Option<String>,
    /// Stake this much with it at once (it joins the committee at the next selection).
    #[arg(long, value_name = "AMOUNT")]
    stake: Option<u64>,
}

/// `morsa stake`.
pub fn stake(args: &StakeArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = args.common.connect().await?;
        client.stake(args.node, args.amount).await?;
        println!(
            "staked {} with node {}; it counts from the next committee selection",
            args.amount, args.node
        );
        Ok(())
    })
}

/// `morsa unstake`.
pub fn unstake(args: &StakeArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = args.common.connect().await?;
        client.unstake(args.node, args.amount).await?;
        let account = client.account_info().await?;
        for pending in account.withdrawals.iter().filter(|pending| pending.node == args.node) {
            println!(
                "pending withdrawal of {} from node {}: withdrawable once the change to {} is done{}",
                pending.amount,
                pending.node,
                pending.epoch,
                if pending.payable { " (now)" } else { "" }
            );
        }
        Ok(())
    })
}

/// `morsa withdraw`.
pub fn withdraw(args: &NodeIdArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = args.common.connect().await?;
        let before = client.account_info().await?.balance;
        client.withdraw(args.node).await?;
        let after = client.account_info().await?.balance;
        println!("withdrew {} from node {}; balance {after}", after.saturating_sub(before), args.node);
        Ok(())
    })
}

/// `morsa node register`.
pub fn register(args: &RegisterArgs) -> anyhow::Result<()> {
    let key = morsa_node::keys::read_key_file(&args.key)
        .with_context(|| format!("cannot read the node key {}", args.key.display()))?;
    let registration = morsa_node::keys::registration(&key);
    runtime()?.block_on(async {
        let client = args.common.connect().await?;
        let node = client
            .register_node(NodeRegistration {
                public_key: registration.public_key,
                proof_of_possession: registration.proof_of_possession,
                address: args.address.clone(),
                capacity: args.capacity,
            })
            .await?;
        println!("registered node {node}");
        if let Some(zone) = &args.zone {
            client.set_node_zone(node, zone).await?;
            println!("zone {zone}");
        }
        if let Some(amount) = args.stake {
            client.stake(node, amount).await?;
            println!("staked {amount}; the node joins the committee at the next selection");
        }
        Ok(())
    })
}

/// `morsa node set-zone`.
pub fn set_zone(args: &SetZoneArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = args.node.common.connect().await?;
        client.set_node_zone(args.node.node, &args.zone).await?;
        println!("node {} is in zone {:?} from the next committee selection", args.node.node, args.zone);
        Ok(())
    })
}

/// `morsa node retire`.
pub fn retire(args: &NodeIdArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = args.common.connect().await?;
        client.retire_node(args.node).await?;
        println!(
            "node {} is retired: it leaves the committee at the next selection; `morsa withdraw --node {}` pays \
             its operator's stake once its shards have moved away",
            args.node, args.node
        );
        Ok(())
    })
}
