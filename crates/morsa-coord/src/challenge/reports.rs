//! Challenge reports from nodes: audits, disputes, loss declarations. Each is checked in full
//! before it changes anything; forged ones fail their signature in `check_node_report`,
//! replayed, late and wrong-epoch ones are refused here.

use std::collections::BTreeSet;

use morsa_core::challenge::AnswerError;
use morsa_core::protocol::{DisputedAnswer, NodeReport, NodeReportKind};
use morsa_core::{Epoch, NodeId};

use super::{MAX_DECLARED_BLOBS, OpenRound};
use crate::error::CommandError;
use crate::state::State;

/// Why a challenge report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeRefusal {
    /// The round is not the one under way: it closed already (late) or has not started.
    #[error("round {round} of {epoch} is not under way; reports are taken only during their round")]
    NotUnderWay {
        /// Epoch of the report.
        epoch: Epoch,
        /// Round of the report.
        round: u32,
    },
    /// The audit arrived after the round's report deadline.
    #[error("audit reports of this round were due by {due_ms} ms; this one came at {time_ms} ms")]
    Late {
        /// The deadline.
        due_ms: u64,
        /// The report's log time.
        time_ms: u64,
    },
    /// The node is not challenged in this round.
    #[error("node {0} is not challenged in this round")]
    NotChallenged(NodeId),
    /// The reporting node is not the target's auditor.
    #[error("node {auditor} audits {target} in this round, not the reporting node")]
    NotAuditor {
        /// The target.
        target: NodeId,
        /// Its auditor.
        auditor: NodeId,
    },
    /// The results do not match the target's challenges one for one.
    #[error("the target has {expected} challenges this round, the report carries {got} results")]
    ResultCount {
        /// Challenges.
        expected: usize,
        /// Results.
        got: usize,
    },
    /// The auditor already reported on this target in this round.
    #[error("the auditor already reported on this target in this round (a replay)")]
    Replayed,
    /// No audit of the node was reported yet, so there is nothing to dispute.
    #[error("no audit of this node was reported in this round; there is nothing to dispute")]
    NothingReported,
    /// A disputed challenge is not a reported failure (out of range, passed, or disputed twice).
    #[error("challenge {item} is not a reported failure of this node (a replay, or out of range)")]
    NotFailed {
        /// The challenge's position.
        item: u32,
    },
    /// A disputed answer does not verify.
    #[error("the answer to challenge {item} does not verify: {reason}")]
    BadAnswer {
        /// The challenge's position.
        item: u32,
        /// Why.
        reason: AnswerError,
    },
    /// A dispute or declaration with nothing in it.
    #[error("the report is empty")]
    Empty,
    /// Too many declared blobs.
    #[error("a node may declare at most {max} lost blobs per epoch")]
    TooManyBlobs {
        /// The bound.
        max: usize,
    },
}

/// The epoch a challenge report is about (`None` for other reports).
pub(crate) fn report_epoch(kind: &NodeReportKind) -> Option<Epoch> {
    kind.challenge_epoch()
}

/// The bytes `node` signed for a challenge report (`None` for other reports).
pub(crate) fn report_message(node: &NodeId, kind: &NodeReportKind) -> Option<Vec<u8>> {
    kind.challenge_message(node)
}

fn refuse(reason: ChallengeRefusal) -> CommandError {
    CommandError::Challenge(reason)
}

impl State {
    /// Applies a challenge report whose epoch and signature `check_node_report` accepted.
    pub(crate) fn apply_challenge_report(
        &mut self,
        report: &NodeReport,
        time_ms: u64,
    ) -> Result<(), CommandError> {
        match &report.report {
            NodeReportKind::ChallengeAudit { epoch, round, target, results } => {
                self.apply_audit(&report.node, *epoch, *round, target, results, time_ms)
            }
            NodeReportKind::ChallengeDispute { epoch, round, answers } => {
                self.apply_dispute(&report.node, *epoch, *round, answers)
            }
            NodeReportKind::DeclareLoss { blob_ids, .. } => self.declare_loss(&report.node, blob_ids),
            NodeReportKind::EpochSyncDone { .. } | NodeReportKind::InvalidBlob { .. } => Ok(()),
        }
    }

    fn open_round_mut(&mut self, epoch: Epoch, round: u32) -> Result<&mut OpenRound, CommandError> {
        self.challenges
            .open
            .as_mut()
            .filter(|open| open.epoch == epoch && open.round == round)
            .ok_or(refuse(ChallengeRefusal::NotUnderWay { epoch, round }))
    }

    fn apply_audit(
        &mut self,
        auditor: &NodeId,
        epoch: Epoch,
        round: u32,
        target: &NodeId,
        results: &[bool],
        time_ms: u64,
    ) -> Result<(), CommandError> {
        let open = self.open_round_mut(epoch, round)?;
        if time_ms > open.reports_due_ms {
            return Err(refuse(ChallengeRefusal::Late { due_ms: open.reports_due_ms, time_ms }));
        }
        let challenged =
            open.targets.get_mut(target).ok_or(refuse(ChallengeRefusal::NotChallenged(*target)))?;
        if challenged.auditor != *auditor {
            return Err(refuse(ChallengeRefusal::NotAuditor {
                target: *target,
                auditor: challenged.auditor,
            }));
        }
        if results.len() != challenged.items.len() {
            return Err(refuse(ChallengeRefusal::ResultCount {
                expected: challenged.items.len(),
                got: results.len(),
            }));
        }
        if challenged.results.is_some() {
            return Err(refuse(ChallengeRefusal::Replayed));
        }
        challenged.results = Some(results.to_vec());
        Ok(())
    }

    fn apply_dispute(
        &mut self,
        node: &NodeId,
        epoch: Epoch,
        round: u32,
        answers: &[DisputedAnswer],
    ) -> Result<(), CommandError> {
        let n_shards = self.params.n_shards;
        let open = self.open_round_mut(epoch, round)?;
        let target = open.targets.get_mut(node).ok_or(refuse(ChallengeRefusal::NotChallenged(*node)))?;
        let results = target.results.as_mut().ok_or(refuse(ChallengeRefusal::NothingReported))?;
        if answers.is_empty() {
            return Err(refuse(ChallengeRefusal::Empty));
        }
        let mut seen = BTreeSet::new();
        for disputed in answers {
            let item = disputed.item;
            let position =
                usize::try_from(item).ok().filter(|position| results.get(*position) == Some(&false));
            let (Some(position), true) = (position, seen.insert(item)) else {
                return Err(refuse(ChallengeRefusal::NotFailed { item }));
            };
            disputed
                .answer
                .verify(&target.items[position], n_shards)
                .map_err(|reason| refuse(ChallengeRefusal::BadAnswer { item, reason }))?;
        }
        for position in seen {
            if let Some(result) =
                usize::try_from(position).ok().and_then(|position| results.get_mut(position))
            {
                *result = true;
            }
        }
        target.overturned = true;
        Ok(())
    }

    fn declare_loss(&mut self, node: &NodeId, blob_ids: &[redstuff::BlobId]) -> Result<(), CommandError> {
        if blob_ids.is_empty() {
            return Err(refuse(ChallengeRefusal::Empty));
        }
        let declared = self.challenges.declared.get(node);
        let known = declared.map_or(0, BTreeSet::len);
        let new = blob_ids.iter().filter(|blob| !declared.is_some_and(|set| set.contains(blob))).count();
        if blob_ids.len() > MAX_DECLARED_BLOBS || known.saturating_add(new) > MAX_DECLARED_BLOBS {
            return Err(refuse(ChallengeRefusal::TooManyBlobs { max: MAX_DECLARED_BLOBS }));
        }
        self.challenges.declared.entry(*node).or_default().extend(blob_ids.iter().copied());
        Ok(())
    }
}
