//! `morsa node`: run a storage node, make its key.

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
            println!("{}", serde_json::to_string_pretty(&keys::registration(&key))?);
            Ok(())
        }
    }
}

fn run_node(args: &RunArgs) -> anyhow::Result<()> {
    morsa_plumbing::telemetry::init_logging("info");
    let config = NodeConfig::load(&args.config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let node = Listening::open(&config).await?;
        println!("node listening on http://{}", node.address());
        node.serve(crate::coord::shutdown_signal()).await?;
        Ok(())
    })
}
