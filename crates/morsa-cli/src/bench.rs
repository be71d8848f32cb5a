//! `morsa bench`: throughput measurements printed for people and scripts.

use clap::Subcommand;

/// What `morsa bench` can measure.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Encode and decode throughput of the RedStuff codec.
    Codec,
}

/// Runs one benchmark.
pub fn run(command: &BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Codec => anyhow::bail!("not written yet"),
    }
}
