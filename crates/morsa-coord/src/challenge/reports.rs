//! Challenge reports from nodes: answer commitments, audits, disputes, loss declarations.
//! Each is checked in full before it changes anything; forged ones fail their signature in
//! `check_node_report`, replayed, late and wrong-epoch ones are refused here.

use std::collections::BTreeSet;

use morsa_core::challenge::{NO_ANSWER, answer_digest};
use morsa_core::hash::Digest;
use morsa_core::protocol::{DisputedAnswer, NodeReport, NodeReportKind};
use morsa_core::{Epoch, NodeId};

use super::{MAX_DECLARED_BLOBS, OpenRound};
use crate::error::{ChallengeRefusal, CommandError};
use crate::state::State;

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
            NodeReportKind::ChallengeCommit { epoch, round, digests } => {
                self.commit_answers(&report.node, *epoch, *round, digests, time_ms)
            }
            NodeReportKind::EpochSyncDone { .. }
            | NodeReportKind::InvalidBlob { .. }
            | NodeReportKind::NodeUnresponsive { .. } => Ok(()),
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

    fn commit_answers(
        &mut self,
        node: &NodeId,
        epoch: Epoch,
        round: u32,
        digests: &[Digest],
        time_ms: u64,
    ) -> Result<(), CommandError> {
        let open = self.open_round_mut(epoch, round)?;
        if time_ms > open.answers_due_ms {
            return Err(refuse(ChallengeRefusal::CommitLate { due_ms: open.answers_due_ms, time_ms }));
        }
        let target = open.targets.get_mut(node).ok_or(refuse(ChallengeRefusal::NotChallenged(*node)))?;
        if digests.len() != target.items.len() {
            return Err(refuse(ChallengeRefusal::ResultCount {
                expected: target.items.len(),
                got: digests.len(),
            }));
        }
        if target.committed.is_some() {
            return Err(refuse(ChallengeRefusal::CommitReplayed));
        }
        target.committed = Some(digests.to_vec());
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
            // Only an answer the node had before the answer window closed counts.
            let committed = target.committed.as_ref().and_then(|digests| digests.get(position));
            if committed
                .is_none_or(|digest| *digest == NO_ANSWER || *digest != answer_digest(&disputed.answer))
            {
                return Err(refuse(ChallengeRefusal::NotCommitted { item }));
            }
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
