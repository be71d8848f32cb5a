//! `morsa`: the one user binary.

mod bench;
mod blob_id;
mod blobs;
mod cluster;
mod coord;
mod logging;
mod node;
mod progress;
mod quickstart;
mod system;

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
    /// Try Morsa in one command: a local cluster, a file stored and read back, nodes killed,
    /// read again.
    Quickstart(quickstart::QuickstartArgs),
    /// Store files (large files as chunks plus a manifest); prints their blob IDs.
    Store(blobs::StoreArgs),
    /// Read a blob (or a chunked file) back, verifying every piece.
    Read(blobs::ReadArgs),
    /// The coordinator's view of a blob.
    BlobStatus(blobs::BlobArgs),
    /// The account's blobs.
    ListBlobs(blobs::ConfigArg),
    /// Delete the account's deletable objects of a blob.
    Delete(blobs::BlobArgs),
    /// Pay for more epochs of a blob.
    Extend(blobs::ExtendArgs),
    /// The system: epoch, shards, prices, committee, account.
    Info(blobs::ConfigArg),
    /// The health of every storage node.
    Health(blobs::ConfigArg),
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
        Command::Quickstart(args) => quickstart::run(args),
        Command::Store(args) => blobs::store(args),
        Command::Read(args) => blobs::read(args),
        Command::BlobStatus(args) => blobs::status(args),
        Command::ListBlobs(args) => blobs::list(args),
        Command::Delete(args) => blobs::delete(args),
        Command::Extend(args) => blobs::extend(args),
        Command::Info(args) => system::info(args),
        Command::Health(args) => system::health(args),
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
