//! `morsa node`: run a storage node, make its key, register, place and retire it, and show
//! its challenge record.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use morsa_node::{Listening, NodeConfig, keys};

/// What `morsa node` can do.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Run the node in the foreground until Ctrl-C or SIGTERM.
    Run(RunArgs),
    /// Generate a BLS key (written with mode 0600) and print the registration data.
    Keygen(KeygenArgs),
    /// Register a node operated by the configured account (takes the deployment's deposit),
    /// optionally with its zone, its commission and a first stake.
    Register(crate::staking::RegisterArgs),
    /// Declare the zone (failure domain) of a node the account operates.
    SetZone(crate::staking::SetZoneArgs),
    /// Set the commission of a node the account operates: the share of its rewards paid to
    /// the operator before the rest goes to its stakers (from the next epoch if it earns now).
    SetCommission(crate::staking::SetCommissionArgs),
    /// Retire a node the account operates: it is never selected again and the operator's
    /// stake is unstaked (`morsa withdraw` pays it once the node's shards have moved away).
    Retire(crate::staking::NodeIdArgs),
    /// Show a node's storage challenges: this epoch so far, and per settled epoch (the last 8)
    /// the challenges passed and failed, φ, rewards paid and withheld, and stake slashed.
    Status(crate::node_status::StatusArgs),
}

/// Options of `morsa node run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long, value_name = "FILE", env = "MORSA_NODE_CONFIG")]
    config: PathBuf,
}

/// Options of `morsa node keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key; an existing file is never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Runs one `morsa node` command.
pub fn run(command: &NodeCommand) -> anyhow::Result<()> {
    match command {
        NodeCommand::Run(args) => run_node(args),
        NodeCommand::Keygen(args) => {
            let key = keys::generate_key_file(&args.out)?;
            outln!("{}", serde_json::to_string_pretty(&keys::registration(&key))?);
            Ok(())
        }
        NodeCommand::Register(args) => crate::staking::register(args),
        NodeCommand::SetZone(args) => crate::staking::set_zone(args),
        NodeCommand::SetCommission(args) => crate::staking::set_commission(args),
        NodeCommand::Retire(args) => crate::staking::retire(args),
        NodeCommand::Status(args) => crate::node_status::status(args),
    }
}

fn run_node(args: &RunArgs) -> anyhow::Result<()> {
    morsa_plumbing::telemetry::init_logging("info");
    let config = NodeConfig::load(&args.config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let node = Listening::open(&config).await?;
        outln!("node listening on http://{}", node.address());
        node.serve(crate::coord::shutdown_signal()).await?;
        Ok(())
    })
}
