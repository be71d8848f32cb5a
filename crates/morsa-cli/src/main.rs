//! `morsa`: the one user binary.

mod bench;

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
    /// Measure throughput.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Bench(command) => bench::run(command),
    }
}
