//! Storage challenges on the coordinator: rounds several times per epoch, audit reports,
//! disputes and declared losses, and what the results do to rewards, stake and committees.
//!
//! The pure derivation (seeds, which symbols are challenged, answers) is
//! `morsa_core::challenge`; this module decides when rounds start, records what auditors
//! report, and settles each epoch. Everything here runs inside `apply`, so it is as
//! deterministic as the rest of the state machine.
//!
//! Economics, per committee member and epoch, over the challenges its auditors reported on
//! (`audited`): `passed` answered in time and verified, `failed` not, of which `declared` were
//! on blobs the node declared lost before the round.
//! - `φ = (failed_caught + declared / 4) / audited` (a declared loss costs a quarter of a caught
//!   one);
//! - reward = its share of the epoch's pool × `passed / audited` × `max(0, 1 − 10·φ)`; what is
//!   withheld moves to the next epoch's pool;
//! - `φ ≥ 5%`: `φ / 10` of the node's stake is slashed, pro rata over its stakers;
//! - every strike slashes 1% of the auditor's stake: an audit a dispute overturned, or an
//!   audit owed and not reported by its deadline (its challenges count neither way);
//! - `φ ≥ 50%`, or `φ ≥ 5%` in [`REPEATED_FAILURE_EPOCHS`] consecutive epochs (epochs with
//!   nothing audited neither extend nor end the run): the node is left out of the next
//!   committee selection;
//! - slashed stake moves to the next epoch's pool, so the supply is conserved.

#[cfg(test)]
mod commit_tests;
mod economics;
#[cfg(test)]
mod fixture;
#[cfg(test)]
mod repeated_tests;
mod reports;
mod rounds;
#[cfg(test)]
mod simulation;
#[cfg(test)]
mod tests;
mod view;

pub use crate::error::ChallengeRefusal;
pub use crate::state::challenges::{
    ChallengeRules, Challenges, HISTORY_EPOCHS, MAX_DECLARED_BLOBS, OpenRound, Outcome, PPM, REMOVE_FROM_PPM,
    REPEATED_FAILURE_EPOCHS, SLASH_FROM_PPM, STRIKE_SLASH_PPM, Tally, TargetRound,
};
pub(crate) use view::outcome_view;
