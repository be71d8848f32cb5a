//! Storage challenges on the node: answering the open round's challenges, auditing the nodes
//! it is the auditor of, disputing false failures, and keeping the challenged slivers from
//! being rebuilt on demand while the round is open.
//!
//! The coordinator decides the rounds and their challenges (`GET /v1/challenges`); the node
//! keeps a copy of the open round ([`Rounds`], refreshed when the event follower applies a
//! `challenge_round_started` or an epoch change, and every few seconds besides).
//!
//! - `rounds`: the copy of the open round, and the slivers it challenges (recovery symbols
//!   towards them are refused with `challenged` until the round closes).
//! - `answers`: a page of answers built from the stored slivers (never rebuilt on demand: a
//!   node that lost a sliver cannot answer for it).
//! - `auditor`: the task that audits this node's targets within the round's deadline and
//!   reports, and disputes failures reported of this node that it can answer.

mod answers;
mod auditor;
mod rounds;

pub(crate) use answers::answer_page;
pub(crate) use auditor::{passed_positions, run};
pub(crate) use rounds::Rounds;

/// Counts `count` recovery-symbol requests (or batch items) refused as `challenged`.
pub(crate) fn count_refused(rounds: &Rounds, count: usize) {
    rounds::add(&rounds.stats.recovery_refused, count);
}

/// Counts `count` challenges answered to an auditor.
pub(crate) fn count_answered(rounds: &Rounds, count: usize) {
    rounds::add(&rounds.stats.answered, count);
}
