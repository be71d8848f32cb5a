//! `morsa node`: run a storage node, make its key.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use morsa_api::client::CoordClient;
use morsa_node::server::{Served, serve};
use morsa_node::{Node, NodeConfig, keys};

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
    let key = keys::read_key_file(&config.key_file)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
    let store = morsa_store::NodeStore::open(&config.store_path())?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let coord = CoordClient::new(&config.coordinator_url)
            .with_context(|| format!("bad coordinator_url {}", config.coordinator_url))?;
        let view = morsa_node::follower::fetch_view(&coord)
            .await
            .with_context(|| format!("cannot fetch the committee from {}", config.coordinator_url))?;
        let node = Arc::new(Node::new(key, store, view)?);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr().context("cannot read the listening address")?;
        tracing::info!(%address, node_id = %node.id(), shards = node.owned_shards().len(), "node listening");
        println!("node listening on http://{address}");
        let served = Served::new(node, &config.limits);
        let token = morsa_node::admin::AdminToken::create(&config.data_dir)
            .with_context(|| format!("cannot write the admin token in {}", config.data_dir.display()))?;
        served.set_admin_token(token);
        serve(listener, served, &config.limits, coord, crate::coord::shutdown_signal())
            .await
            .context("the server stopped")
    })
}
