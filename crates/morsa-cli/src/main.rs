//! `morsa`: the one user binary.

// First, so that its `outln!` and `out!` are in scope in every module below.
#[macro_use]
mod stdout;

mod blob_id;
mod blobs;
mod cluster;
mod coord;
mod dashboard;
mod drill;
mod gateway;
mod html;
mod key;
mod mapped;
mod node;
mod node_status;
mod progress;
mod quickstart;
mod renew;
mod staking;
mod store;
mod system;
mod textfile;
mod timing;
mod usage;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use usage::UsageError;

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
    Store(store::StoreArgs),
    /// Read a blob (or a chunked file) back, verifying every piece.
    Read(blobs::ReadArgs),
    /// The coordinator's view of a blob.
    BlobStatus(blobs::BlobArgs),
    /// The account's blobs.
    ListBlobs(blobs::ListArgs),
    /// Delete the account's deletable objects of a blob.
    Delete(blobs::BlobArgs),
    /// Pay for more epochs of a blob.
    Extend(blobs::ExtendArgs),
    /// Pay for more epochs of every blob of the account that expires soon (once, or
    /// `--every` interval).
    Renew(renew::RenewArgs),
    /// A restore drill: restore a sample of the account's blobs, whole and at random ranges,
    /// verify them, measure time to first byte and throughput; exit 1 if any fails.
    Drill(drill::DrillArgs),
    /// The system: epoch, shards, prices, committee, account.
    Info(blobs::ConfigArg),
    /// The health of every storage node.
    Health(system::HealthArgs),
    /// Serve a status page (and `/status.json`): nodes and shards, health, repair backlog,
    /// availability margin, the latest drill, blobs nearing expiry.
    Dashboard(dashboard::DashboardArgs),
    /// The encryption keyring and its SLIP-39 shares.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Print the blob ID and sizes of a file, as `walrus blob-id` does.
    BlobId(blob_id::BlobIdArgs),
    /// Measure throughput.
    #[command(subcommand)]
    Bench(morsa_bench::BenchCommand),
    /// A local cluster of real processes: a coordinator and storage nodes on loopback.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// The coordination service.
    #[command(subcommand)]
    Coord(coord::CoordCommand),
    /// A storage node.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// The S3 gateway: run it, manage its users' access keys.
    #[command(subcommand)]
    Gateway(gateway::GatewayCommand),
    /// Print a shell completion script, e.g. `morsa completions bash > ~/.local/share/bash-completion/completions/morsa`.
    Completions(usage::CompletionsArgs),
    /// Print the manual page (roff), e.g. `morsa man > ~/.local/share/man/man1/morsa.1`.
    Man,
    /// Stake with a storage node; it counts from the next committee selection.
    Stake(staking::StakeArgs),
    /// Take stake off a node: it waits, still slashable, until the epoch change that moves the
    /// node's shards away has completed; then `morsa withdraw` pays it.
    Unstake(staking::StakeArgs),
    /// Pay the account's unstaked amounts with a node whose delay has passed.
    Withdraw(staking::NodeIdArgs),
}

/// Exit code of a command that failed at run time.
const RUNTIME_ERROR: u8 = 1;

/// Exit code of a command given arguments it cannot use (clap exits with it too).
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Quickstart(args) => quickstart::run(args),
        Command::Store(args) => store::run(args),
        Command::Read(args) => blobs::read(args),
        Command::BlobStatus(args) => blobs::status(args),
        Command::ListBlobs(args) => blobs::list(args),
        Command::Delete(args) => blobs::delete(args),
        Command::Extend(args) => blobs::extend(args),
        Command::Renew(args) => renew::run(args),
        Command::Drill(args) => drill::run(args),
        Command::Info(args) => system::info(args),
        Command::Health(args) => system::health(args),
        Command::Dashboard(args) => dashboard::run(args),
        Command::Key(command) => key::run(command),
        Command::BlobId(args) => blob_id::run(args),
        Command::Bench(command) => {
            morsa_plumbing::telemetry::init_logging("warn");
            morsa_bench::run(command)
        }
        Command::Cluster(command) => cluster::run(command),
        Command::Coord(command) => coord::run(command),
        Command::Node(command) => node::run(command),
        Command::Gateway(command) => gateway::run(command),
        Command::Completions(args) => usage::completions::<Cli>(args),
        Command::Man => usage::man::<Cli>(),
        Command::Stake(args) => staking::stake(args),
        Command::Unstake(args) => staking::unstake(args),
        Command::Withdraw(args) => staking::withdraw(args),
    };
    // What was printed is flushed, and a failure to print said, once the command's work is done.
    match (result, stdout::finish()) {
        (Ok(()), None) => ExitCode::SUCCESS,
        // Its reader went away, or writing failed, which `stdout::finish` has said (and which
        // is why a command that failed stopped).
        (_, Some(printed)) => printed,
        (Err(error), None) => {
            // Nothing sensible is left to do if stderr itself is gone.
            let _ = writeln!(std::io::stderr().lock(), "error: {}", usage::one_line(&error));
            ExitCode::from(if usage::is_usage_error(&error) { USAGE_ERROR } else { RUNTIME_ERROR })
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every blob ID argument of every command (positional or an option's `BLOB_ID` value),
    /// now and to come, takes a leading `-`: one blob ID in 64 starts with it.
    #[test]
    fn every_blob_id_argument_accepts_a_leading_dash() {
        fn visit(command: &clap::Command, found: &mut Vec<String>) {
            let takes_blob_id = |arg: &&clap::Arg| {
                arg.get_id() == "blob_id"
                    || arg.get_value_names().is_some_and(|names| names.iter().any(|name| name == "BLOB_ID"))
            };
            for arg in command.get_arguments().filter(takes_blob_id) {
                assert!(
                    arg.is_allow_hyphen_values_set(),
                    "`{}` refuses blob IDs starting with '-'",
                    command.get_name()
                );
                found.push(command.get_name().to_string());
            }
            for sub in command.get_subcommands() {
                visit(sub, found);
            }
        }
        let mut found = Vec::new();
        visit(&Cli::command(), &mut found);
        for command in ["read", "blob-status", "delete", "extend", "restore-namespace"] {
            assert!(found.iter().any(|name| name == command), "{command} takes a blob ID: {found:?}");
        }
    }

    #[test]
    fn dashed_blob_ids_parse_before_and_after_options() {
        let tail = "H1YrDeVYBwKHdwyXRXn_O2Wd3AyEZ1d3mufvA4HEGc";
        for id in [format!("-{tail}"), format!("-h{}", &tail[1..]), format!("--{}", &tail[1..])] {
            for args in [
                vec!["morsa", "read", &id, "--out", "f", "--range", "0-1"],
                vec!["morsa", "read", "--out", "f", &id],
                vec!["morsa", "extend", &id, "--epochs", "2"],
                vec!["morsa", "blob-status", &id, "--json"],
                vec!["morsa", "delete", &id],
            ] {
                let cli = Cli::try_parse_from(&args).unwrap_or_else(|error| panic!("{args:?}: {error}"));
                let parsed = match &cli.command {
                    Command::Read(read) => {
                        assert_eq!(read.out.as_deref(), Some(std::path::Path::new("f")));
                        read.blob_id
                    }
                    Command::Extend(extend) => extend.blob_id,
                    Command::BlobStatus(blob) | Command::Delete(blob) => blob.blob_id,
                    other => panic!("{other:?}"),
                };
                assert_eq!(parsed.to_string(), id, "{args:?}");
            }
        }
    }
}
