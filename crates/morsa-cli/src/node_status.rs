//! `morsa node status NODE`: a node's storage challenges as the coordinator records them, this
//! epoch so far and per settled epoch (passed, failed, φ, rewards, penalties).

use anyhow::Context as _;
use clap::Args;
use morsa_api::coord::{ChallengeOutcome, ChallengeTally, NodeChallenges};
use morsa_core::NodeId;

use crate::blobs::{ConfigArg, runtime};

/// Options of `morsa node status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    common: ConfigArg,
    /// The node (its ID, as `morsa info` lists it).
    #[arg(value_name = "NODE_ID")]
    node: NodeId,
}

/// Runs `morsa node status`.
pub fn status(args: &StatusArgs) -> anyhow::Result<()> {
    let record = runtime()?.block_on(async {
        let client = args.common.connect().await?;
        let record = client.coordinator().node_challenges(&args.node).await;
        record.with_context(|| format!("cannot read the challenges of node {}", args.node))
    })?;
    if args.common.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        out!("{}", render(&record));
    }
    Ok(())
}

/// `φ` in parts per million as a percentage with two decimals.
fn percent(ppm: u64) -> String {
    format!("{}.{:02}%", ppm / 10_000, ppm % 10_000 / 100)
}

fn tally_line(tally: &ChallengeTally) -> String {
    format!(
        "passed {}, failed {}, declared {}, unaudited {}; as auditor {} strikes ({} audits missed)",
        tally.passed, tally.failed, tally.declared, tally.unaudited, tally.strikes, tally.missed_audits
    )
}

fn history_row(outcome: &ChallengeOutcome) -> String {
    format!(
        "{:>7} {:>8} {:>7} {:>9} {:>10} {:>8} {:>12} {:>10} {:>10} {:>8} {:>8}",
        outcome.epoch.0,
        outcome.passed,
        outcome.failed,
        outcome.declared,
        outcome.unaudited,
        percent(outcome.phi_ppm),
        outcome.reward,
        outcome.withheld,
        outcome.penalty,
        outcome.strikes,
        if outcome.removed { "yes" } else { "no" },
    )
}

/// The human report: membership, this epoch so far, then one row per settled epoch.
fn render(record: &NodeChallenges) -> String {
    let membership =
        if record.member { "a member of the current committee" } else { "not in the current committee" };
    let mut text = format!("node {} ({membership}, {})\n", record.node, record.epoch);
    if record.excluded {
        text.push_str("  left out of the next committee selection for failing challenges\n");
    }
    if record.failing_epochs > 0 {
        text.push_str(&format!("  {} settled epoch(s) in a row with φ ≥ 5%\n", record.failing_epochs));
    }
    text.push_str(&format!("this epoch so far: {}\n", tally_line(&record.current)));
    if record.declared_blobs > 0 {
        text.push_str(&format!("  {} blob(s) declared lost by the node this epoch\n", record.declared_blobs));
    }
    if record.history.is_empty() {
        text.push_str("no settled epoch with challenges yet\n");
        return text;
    }
    text.push_str(&format!(
        "{:>7} {:>8} {:>7} {:>9} {:>10} {:>8} {:>12} {:>10} {:>10} {:>8} {:>8}\n",
        "epoch",
        "passed",
        "failed",
        "declared",
        "unaudited",
        "φ",
        "reward",
        "withheld",
        "penalty",
        "strikes",
        "removed"
    ));
    for outcome in &record.history {
        text.push_str(&history_row(outcome));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use morsa_core::Epoch;

    use super::*;

    #[test]
    fn the_table_shows_each_settled_epoch_with_its_phi_and_money() {
        let outcome = ChallengeOutcome {
            node: NodeId([3; 32]),
            epoch: Epoch(7),
            passed: 90,
            failed: 10,
            declared: 0,
            unaudited: 0,
            strikes: 1,
            missed_audits: 1,
            phi_ppm: 100_000,
            reward: 0,
            withheld: 500,
            penalty: 12,
            failing_epochs: 1,
            removed: false,
        };
        let record = NodeChallenges {
            node: NodeId([3; 32]),
            epoch: Epoch(8),
            member: true,
            current: ChallengeTally { passed: 4, ..ChallengeTally::default() },
            declared_blobs: 2,
            failing_epochs: 1,
            excluded: false,
            history: vec![outcome],
        };
        let text = render(&record);
        assert!(text.contains("a member of the current committee"), "{text}");
        assert!(text.contains("1 settled epoch(s) in a row"), "{text}");
        assert!(text.contains("this epoch so far: passed 4, failed 0"), "{text}");
        assert!(text.contains("2 blob(s) declared lost by the node this epoch"), "{text}");
        let row = text.lines().last().unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells, ["7", "90", "10", "0", "0", "10.00%", "0", "500", "12", "1", "no"], "{text}");
        assert_eq!(percent(12_345), "1.23%");
    }
}
