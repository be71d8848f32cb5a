//! `morsa stake`, `unstake`, `withdraw`, and the lifecycle half of `morsa node` (`register`,
//! `set-zone`, `set-commission`, `retire`): one signed transaction each, from the client
//! configuration's account.

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

/// Options of `morsa node set-commission`.
#[derive(Debug, Args)]
pub struct SetCommissionArgs {
    #[command(flatten)]
    node: NodeIdArgs,
    /// The rate, in percent of the node's rewards (0 to 100, e.g. `7.5`).
    #[arg(long, value_name = "PCT")]
    commission: Commission,
}

/// A commission rate given in percent, held in parts per million (the coordinator's unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commission(pub u32);

impl std::str::FromStr for Commission {
    type Err = String;

    /// `7`, `7.5`, `7.5%`: at most 100, at most four decimals (1 ppm).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse =
            || format!("{text:?} is not a percentage from 0 to 100 with at most 4 decimals (e.g. 7.5)");
        let number = text.trim().trim_end_matches('%');
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if whole.is_empty() || fraction.len() > 4 || !digits(whole) || !digits(fraction) {
            return Err(refuse());
        }
        let whole: u32 = whole.parse().map_err(|_| refuse())?;
        let fraction: u32 = format!("{fraction:0<4}").parse().map_err(|_| refuse())?;
        let ppm = whole.checked_mul(10_000).and_then(|ppm| ppm.checked_add(fraction)).ok_or_else(refuse)?;
        if ppm > morsa_coord::delegation::MAX_COMMISSION_PPM {
            return Err(refuse());
        }
        Ok(Self(ppm))
    }
}

impl std::fmt::Display for Commission {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (whole, fraction) = (self.0 / 10_000, self.0 % 10_000);
        match fraction {
            0 => write!(out, "{whole}%"),
            fraction => write!(out, "{whole}.{}%", format!("{fraction:04}").trim_end_matches('0')),
        }
    }
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
    /// The operator's commission, in percent of the node's rewards (default 0).
    #[arg(long, value_name = "PCT")]
    commission: Option<Commission>,
    /// Stake this much with it at once (it joins the committee at the next selection).
    #[arg(long, value_name = "AMOUNT")]
    stake: Option<u64>,
}

/// `morsa stake`.
pub fn stake(args: &StakeArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = args.common.connect().await?;
        client.stake(args.node, args.amount).await?;
        outln!("staked {} with node {}; it counts from the next committee selection", args.amount, args.node);
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
            outln!(
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
        outln!("withdrew {} from node {}; balance {after}", after.saturating_sub(before), args.node);
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
        outln!("registered node {node}");
        if let Some(zone) = &args.zone {
            client.set_node_zone(node, zone).await?;
            outln!("zone {zone}");
        }
        if let Some(commission) = args.commission {
            client.set_commission(node, commission.0).await?;
            outln!("commission {commission}");
        }
        if let Some(amount) = args.stake {
            client.stake(node, amount).await?;
            outln!("staked {amount}; the node joins the committee at the next selection");
        }
        Ok(())
    })
}

/// `morsa node set-zone`.
pub fn set_zone(args: &SetZoneArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = args.node.common.connect().await?;
        client.set_node_zone(args.node.node, &args.zone).await?;
        outln!("node {} is in zone {:?} from the next committee selection", args.node.node, args.zone);
        Ok(())
    })
}

/// `morsa node set-commission`.
pub fn set_commission(args: &SetCommissionArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = args.node.common.connect().await?;
        client.set_commission(args.node.node, args.commission.0).await?;
        let summary =
            client.system().await?.nodes.into_iter().find(|summary| summary.node_id == args.node.node);
        let when = match summary.and_then(|summary| summary.next_commission_ppm) {
            Some(_) => "from the next epoch (it earns in this one at the old rate)",
            None => "from now",
        };
        outln!("node {} takes a commission of {} {when}", args.node.node, args.commission);
        Ok(())
    })
}

/// `morsa node retire`.
pub fn retire(args: &NodeIdArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = args.common.connect().await?;
        client.retire_node(args.node).await?;
        outln!(
            "node {} is retired: it leaves the committee at the next selection; `morsa withdraw --node {}` pays \
             its operator's stake once its shards have moved away",
            args.node, args.node
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::Commission;

    #[test]
    fn commission_reads_percentages_to_one_ppm() {
        for (text, ppm) in
            [("0", 0), ("7", 70_000), ("7.5", 75_000), ("12.3456%", 123_456), ("100", 1_000_000)]
        {
            assert_eq!(text.parse::<Commission>(), Ok(Commission(ppm)), "{text}");
        }
        for text in ["100.0001", "101", "-1", "1.23456", "", ".5", "5x", "1e2"] {
            assert!(text.parse::<Commission>().is_err(), "{text} was accepted");
        }
        assert_eq!(Commission(75_000).to_string(), "7.5%");
        assert_eq!(Commission(123_450).to_string(), "12.345%");
        assert_eq!(Commission(1_000_000).to_string(), "100%");
    }
}
