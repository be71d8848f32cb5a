//! `morsa`: the one user binary.

mod bench;
mod blob_id;
mod cluster;
mod coord;
mod logging;
mod node;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Morsa: a decentralized blob store for backups and disaster recovery.
#[derive(Debug, Parser)]
#[command(name = "morsa", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the blob ID and sizes of a file, as `walrus blob-id` does.
    BlobId(blob_id::BlobIdArgs),
    /// Measure throughput.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// A local cluster of real processes: a coordinator and storage nodes on loopback.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// The coordination service.
    #[command(subcommand)]
    Coord(coord::CoordCommand),
    /// A storage node.
    #[command(subcommand)]
    Node(node::NodeCommand),
}

/// Exit code of a command that failed at run time (clap exits with 2 on usage errors).
const RUNTIME_ERROR: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::BlobId(args) => blob_id::run(args),
        Command::Bench(command) => bench::run(command),
        Command::Cluster(command) => cluster::run(command),
        Command::Coord(command) => coord::run(command),
        Command::Node(command) => node::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Nothing sensible is left to do if stderr itself is gone.
            let _ = writeln!(std::io::stderr().lock(), "error: {}", one_line(&error));
            ExitCode::from(RUNTIME_ERROR)
        }
    }
}

/// The error and its causes on one line, joined with ": ", for people and for log scrapers.
fn one_line(error: &anyhow::Error) -> String {
    let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
    chain.join(": ").split_whitespace().collect::<Vec<_>>().join(" ")
}
