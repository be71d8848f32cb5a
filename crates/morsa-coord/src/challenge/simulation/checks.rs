//! The economics of each settled epoch recomputed from its tally, in floating point and
//! independently of `economics.rs`: what a node loses is never more (nor less) than the
//! formulas say.

use morsa_core::NodeId;

use super::super::{Outcome, REPEATED_FAILURE_EPOCHS};

/// `φ` and the passed fraction of `outcome`'s tally, as fractions.
fn fractions(outcome: &Outcome) -> (f64, f64) {
    let tally = &outcome.tally;
    let audited = lossy(tally.audited());
    if audited == 0.0 {
        return (0.0, 1.0);
    }
    let phi = (lossy(tally.failed) + lossy(tally.declared) / 4.0) / audited;
    (phi, lossy(tally.passed) / audited)
}

fn lossy(value: u64) -> f64 {
    // Amounts in the simulation stay far below 2^53.
    u32::try_from(value).map(f64::from).unwrap_or_else(|_| f64::from(u32::MAX))
}

/// Checks `outcome` of `node` against the rules: reward = share × passed × max(0, 1 − 10φ)
/// (the share is what was paid plus what was withheld), slash = 1% of `stake` per strike plus
/// `φ/10` of it from `φ ≥ 5%`, removal at `φ ≥ 50%` or after `previous_run + 1` consecutive
/// failing epochs reach [`REPEATED_FAILURE_EPOCHS`]. Answers the failing run after this epoch.
pub(super) fn check_outcome(node: &NodeId, outcome: &Outcome, stake: u64, previous_run: u32) -> u32 {
    let (phi, passed) = fractions(outcome);
    let share = lossy(outcome.reward + outcome.withheld);
    let reward = share * passed * (1.0 - 10.0 * phi).max(0.0);
    // The state works in parts per million, rounding down at each step.
    let slack = share * 3e-6 + 2.0;
    assert!(
        (lossy(outcome.reward) - reward).abs() <= slack,
        "{node}: {outcome:?} was paid {}, the formula says {reward}",
        outcome.reward
    );
    let stake_f = lossy(stake);
    let mut slash = lossy(u64::from(outcome.tally.strikes)) * (stake_f / 100.0).floor();
    if phi >= 0.05 {
        slash += stake_f * phi / 10.0;
    }
    let slash = slash.min(stake_f);
    let slack = stake_f * 3e-6 + 2.0 + lossy(u64::from(outcome.tally.strikes));
    assert!(
        (lossy(outcome.penalty) - slash).abs() <= slack,
        "{node}: {outcome:?} lost {} of {stake} staked, the formula says {slash}",
        outcome.penalty
    );
    let run = match (outcome.tally.audited(), phi >= 0.05) {
        (0, _) => previous_run,
        (_, true) => previous_run + 1,
        (_, false) => 0,
    };
    assert_eq!(outcome.failing_epochs, run, "{node}: {outcome:?}");
    assert_eq!(outcome.removed, phi >= 0.5 || run >= REPEATED_FAILURE_EPOCHS, "{node}: {outcome:?}");
    run
}
