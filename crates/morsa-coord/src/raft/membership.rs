//! Changing the replica group at run time, on the leader: adding a replica (first a learner
//! that catches up, from a snapshot if the log was compacted, then a voter) and removing one.
//! Each change is answered only once it is committed; every refusal says what to do instead.

use std::collections::BTreeSet;
use std::time::Duration;

use morsa_api::coord::{Membership, ReplicaMember, SystemInfo, routes};
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};

use super::replica::{COMMIT_WAIT, Replica};
use super::{ReplicaId, TypeConfig};

/// Longest a new replica may take to catch up with the leader before it becomes a voter.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(60);
/// Longest the leader waits for a new replica's `GET /v1/system` before adding it.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a membership change was not made.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// This replica does not lead (any more); the change must go to the leader.
    #[error("this replica is not the leader; retry (the request is forwarded to the leader)")]
    NotLeader,
    /// The replica to add already votes.
    #[error("replica {id} is already a voting member of the group")]
    AlreadyMember {
        /// Its ID.
        id: ReplicaId,
    },
    /// Another member already has the URL given.
    #[error("replica {member} already has the URL {url}; give the new replica its own address")]
    UrlInUse {
        /// The URL.
        url: String,
        /// The member that has it.
        member: ReplicaId,
    },
    /// No coordinator answered at the new replica's URL.
    #[error(
        "no coordinator answered at {url} ({reason}): start the new replica first \
         (`morsa coord run` with an empty data directory) and give a URL the leader can reach"
    )]
    Unreachable {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The coordinator at the URL is not the replica named.
    #[error("the coordinator at {url} is {found}, not replica {expected}: check its coord.toml `id`")]
    WrongReplica {
        /// The URL.
        url: String,
        /// The ID the change names.
        expected: ReplicaId,
        /// What answers there.
        found: String,
    },
    /// The coordinator at the URL already belongs to another group.
    #[error(
        "the coordinator at {url} already belongs to a group without this leader: a joining \
         replica starts with an empty data directory and a coord.toml whose [[replicas]] do not \
         list its own id"
    )]
    OtherGroup {
        /// The URL.
        url: String,
    },
    /// The coordinator at the URL serves another deployment.
    #[error(
        "the coordinator at {url} serves chain {found:?}, not {expected:?}: give it this deployment's genesis"
    )]
    OtherChain {
        /// The URL.
        url: String,
        /// This group's chain.
        expected: String,
        /// Its chain.
        found: String,
    },
    /// The replica to remove is not a member.
    #[error("replica {id} is not a member of the group")]
    UnknownReplica {
        /// Its ID.
        id: ReplicaId,
    },
    /// Removing it would leave no voter.
    #[error("replica {id} is the group's last voter; a group cannot remove its last voter")]
    LastVoter {
        /// Its ID.
        id: ReplicaId,
    },
    /// The replica to remove leads the group.
    #[error(
        "replica {id} leads the group and cannot remove itself: stop it, wait until another \
         replica is elected, then remove it"
    )]
    IsLeader {
        /// Its ID.
        id: ReplicaId,
    },
    /// Another membership change is not finished.
    #[error("another membership change is in progress; retry once it is committed")]
    InProgress,
    /// The new replica did not catch up in time; it stays a learner (not a voter).
    #[error(
        "replica {id} at {url} did not catch up within {} s; it is a learner that does not vote: \
         check that it runs and that the leader can reach it, then add it again",
        CATCH_UP_WAIT.as_secs()
    )]
    NotCaughtUp {
        /// Its ID.
        id: ReplicaId,
        /// Its URL.
        url: String,
    },
    /// Proposed, but no quorum of voters committed the change in time: it may still be
    /// committed later, so its outcome is unknown.
    #[error(
        "no quorum of coordinators committed the membership change within {} s; it may still \
         be committed: look at the group in `GET /v1/system` before retrying",
        COMMIT_WAIT.as_secs()
    )]
    Unconfirmed,
    /// Raft failed otherwise.
    #[error("raft: {0}")]
    Raft(String),
}

impl MembershipError {
    /// The stable error code at the HTTP boundary.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotLeader => "not_leader",
            Self::AlreadyMember { .. } => "already_member",
            Self::UrlInUse { .. } => "url_in_use",
            Self::Unreachable { .. } => "replica_unreachable",
            Self::WrongReplica { .. } => "wrong_replica",
            Self::OtherGroup { .. } => "replica_in_other_group",
            Self::OtherChain { .. } => "wrong_chain",
            Self::UnknownReplica { .. } => "unknown_replica",
            Self::LastVoter { .. } => "last_voter",
            Self::IsLeader { .. } => "is_leader",
            Self::InProgress => "membership_change_in_progress",
            Self::NotCaughtUp { .. } => "not_caught_up",
            Self::Unconfirmed => "commit_unknown",
            Self::Raft(_) => "raft_failed",
        }
    }
}

impl Replica {
    /// Adds replica `id` at `url`: checks that the coordinator there is that replica, of this
    /// chain, in no other group; adds it as a learner, waits until it caught up (from a
    /// snapshot if the log was compacted), then makes it a voter. Only the leader can.
    pub async fn add_replica(&self, id: ReplicaId, url: &str) -> Result<Membership, MembershipError> {
        let url = url.trim_end_matches('/');
        let membership = self.leader_membership()?;
        if membership.voter_ids().any(|voter| voter == id) {
            return Err(MembershipError::AlreadyMember { id });
        }
        if let Some((member, _)) =
            membership.nodes().find(|(member, node)| **member != id && node.addr == url)
        {
            return Err(MembershipError::UrlInUse { url: url.to_owned(), member: *member });
        }
        self.probe(id, url).await?;
        let learner = self.raft().add_learner(id, BasicNode::new(url), false);
        let added =
            tokio::time::timeout(COMMIT_WAIT, learner).await.map_err(|_| MembershipError::Unconfirmed)?;
        let added = added.map_err(write_error)?;
        self.wait_caught_up(id, url, added.log_id.index).await?;
        let promote = self.raft().change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false);
        self.committed(promote).await
    }

    /// Removes replica `id` from the group (a voter or a learner). The leader cannot remove
    /// itself, nor the last voter. Only the leader can.
    pub async fn remove_replica(&self, id: ReplicaId) -> Result<Membership, MembershipError> {
        let membership = self.leader_membership()?;
        if membership.get_node(&id).is_none() {
            return Err(MembershipError::UnknownReplica { id });
        }
        let voters: BTreeSet<ReplicaId> = membership.voter_ids().collect();
        let change = if voters.contains(&id) {
            if voters.len() == 1 {
                return Err(MembershipError::LastVoter { id });
            }
            if id == self.id() {
                return Err(MembershipError::IsLeader { id });
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        // Not retained: a removed voter leaves the group instead of staying a learner.
        self.committed(self.raft().change_membership(change, false)).await
    }

    /// The group as the leader knows it, or [`MembershipError::NotLeader`].
    fn leader_membership(&self) -> Result<openraft::Membership<ReplicaId, BasicNode>, MembershipError> {
        if !self.is_leader() {
            return Err(MembershipError::NotLeader);
        }
        let metrics = self.raft().metrics();
        let metrics = metrics.borrow();
        Ok(metrics.membership_config.membership().clone())
    }

    /// Asks the coordinator at `url` who it is before it is added.
    async fn probe(&self, id: ReplicaId, url: &str) -> Result<(), MembershipError> {
        let unreachable = |reason: String| MembershipError::Unreachable { url: url.to_owned(), reason };
        let answer = self
            .http()
            .get(format!("{url}{}", routes::SYSTEM))
            .timeout(PROBE_TIMEOUT)
            .send()
            .await
            .map_err(|error| unreachable(error.to_string()))?;
        if !answer.status().is_success() {
            return Err(unreachable(format!("it answered {}", answer.status())));
        }
        let info: SystemInfo = answer
            .json()
            .await
            .map_err(|error| unreachable(format!("its /v1/system does not parse: {error}")))?;
        let expected = self.raft().config().cluster_name.clone();
        if info.chain_id != expected {
            return Err(MembershipError::OtherChain { url: url.to_owned(), expected, found: info.chain_id });
        }
        let Some(replica) = info.replica else {
            let found = "a coordinator that does not replicate".to_owned();
            return Err(MembershipError::WrongReplica { url: url.to_owned(), expected: id, found });
        };
        if replica.id != id {
            let found = format!("replica {}", replica.id);
            return Err(MembershipError::WrongReplica { url: url.to_owned(), expected: id, found });
        }
        let joined_here = replica.replicas.iter().any(|member| member.id == self.id());
        if !replica.replicas.is_empty() && !joined_here {
            return Err(MembershipError::OtherGroup { url: url.to_owned() });
        }
        Ok(())
    }

    /// Waits until the leader replicated to `id` at least up to `index`.
    async fn wait_caught_up(&self, id: ReplicaId, url: &str, index: u64) -> Result<(), MembershipError> {
        let mut metrics = self.raft().metrics();
        let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
        loop {
            {
                let current = metrics.borrow_and_update();
                let Some(replication) = &current.replication else {
                    return Err(MembershipError::NotLeader);
                };
                let matched = replication.get(&id).and_then(|matched| matched.as_ref());
                if matched.is_some_and(|log_id| log_id.index >= index) {
                    return Ok(());
                }
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(MembershipError::Raft("raft stopped".to_owned())),
                Err(_) => return Err(MembershipError::NotCaughtUp { id, url: url.to_owned() }),
            }
        }
    }

    /// Waits for a membership change to be committed (both of its steps) and answers the
    /// group it made.
    async fn committed(
        &self,
        change: impl std::future::Future<
            Output = Result<
                openraft::raft::ClientWriteResponse<TypeConfig>,
                RaftError<ReplicaId, ClientWriteError<ReplicaId, BasicNode>>,
            >,
        >,
    ) -> Result<Membership, MembershipError> {
        let written =
            tokio::time::timeout(COMMIT_WAIT * 2, change).await.map_err(|_| MembershipError::Unconfirmed)?;
        let response = written.map_err(write_error)?;
        let replicas = match &response.membership {
            Some(membership) => members(membership),
            None => self.leader_membership().map(|membership| members(&membership))?,
        };
        Ok(Membership { leader: self.id(), replicas })
    }
}

/// The members of `membership`, voters marked.
pub(super) fn members(membership: &openraft::Membership<ReplicaId, BasicNode>) -> Vec<ReplicaMember> {
    let voters: BTreeSet<ReplicaId> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| ReplicaMember { id: *id, url: node.addr.clone(), voter: voters.contains(id) })
        .collect()
}

fn write_error(error: RaftError<ReplicaId, ClientWriteError<ReplicaId, BasicNode>>) -> MembershipError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => MembershipError::NotLeader,
        RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(
            _,
        ))) => MembershipError::InProgress,
        RaftError::APIError(error) => MembershipError::Raft(error.to_string()),
        RaftError::Fatal(error) => MembershipError::Raft(error.to_string()),
    }
}
