//! One running replica: starts Raft on its stores, proposes inputs when it leads, tells
//! callers where the leader is (membership changes are in `membership`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use morsa_api::coord::ReplicaInfo;
use morsa_store::{RaftLog, StoreError};
use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, Raft, ServerState, SnapshotPolicy};
use tokio::sync::watch;

use super::log_store::LogStore;
use super::network::{Network, SNAPSHOT_CHUNK_BYTES};
use super::proposals::{MAX_PROPOSALS_PER_MESSAGE, Proposer};
use super::state_machine::{Prechecks, StateMachine, is_unreplicated_history};
use super::{ReplicaId, TypeConfig};
use crate::{Applied, CommandError, Coordinator, Input, LogEntry, Prechecked, lock};

/// Longest a write waits to be committed by a quorum before it is answered `commit_unknown`.
pub const COMMIT_WAIT: Duration = Duration::from_secs(5);
/// Heartbeat interval of the leader.
const HEARTBEAT_MS: u64 = 100;
/// The election timeout's range. openraft lets a follower call an election only after the
/// leader's lease (the range's maximum) plus its own timeout (drawn from the range once) with
/// no word from the leader, and two maxima more once it has seen a greater log than its own
/// (which it remembers until its next election): from 0.9-1.2 s up to 2.1-2.4 s of silence,
/// at least 9 heartbeats, so a busy machine does not cause elections.
const ELECTION_TIMEOUT_MS: (u64, u64) = (300, 600);

/// What a replica needs to start.
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    /// This replica's ID.
    pub id: ReplicaId,
    /// The initial members (ID, URL); a replica in this list that finds its Raft log empty
    /// initializes the group with it. A replica added later is not in it.
    pub replicas: Vec<(ReplicaId, String)>,
    /// The Raft log's file.
    pub raft_log: PathBuf,
    /// The deployment's name (the chain ID).
    pub cluster_name: String,
    /// A snapshot is taken every this many applied entries, and the Raft log keeps this many
    /// entries behind it.
    pub snapshot_every: u64,
}

/// Why a replica did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The Raft log could not be opened or read.
    #[error("raft log: {0}")]
    Store(#[from] StoreError),
    /// The data directory holds a single coordinator's log from before replication.
    #[error(
        "this data directory holds the command log of a coordinator that did not replicate; \
         a replica cannot adopt it: start the replicated coordinator in a new data directory \
         (keep the old one to audit it with `morsa coord audit`)"
    )]
    Unreplicated,
    /// openraft refused the configuration or failed to start.
    #[error("raft: {0}")]
    Raft(String),
}

/// Where a write goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This replica leads: propose here.
    Local,
    /// Another replica leads, at this URL.
    Forward(String),
    /// No leader is known.
    NoLeader,
}

/// How long a restarted replica listens before it may call an election: a leader's lease (the
/// election timeout's maximum) plus one more timeout. A live leader's heartbeats reach it in
/// that time, and from then on openraft's own timers decide (they count from the last one).
const STARTUP_LISTEN: Duration = Duration::from_millis(2 * ELECTION_TIMEOUT_MS.1);

/// Enables elections on a restarted replica after [`STARTUP_LISTEN`].
///
/// Without it a restarted replica called an election at once (its stored vote carries no time),
/// with a log that may be behind: its higher term made the healthy leader step down, and
/// openraft then remembered having seen a greater log and delayed this replica's own next
/// candidacy by two more election timeouts, so a later failover that needed it took about 6 s
/// instead of 2-3. If the whole group restarted, the first election comes this much later.
///
/// A group's first start is alike: the first of its initial replicas initializes the group and
/// campaigns at once; the others listen, and initialize the group themselves only if no
/// replica asked for their vote or sent them entries while they listened (the first replica
/// did not start). openraft campaigns on every `initialize`: when every initial replica
/// initialized at once, a later one's vote of the same term made the leader just elected step
/// down, and the group had no leader for about a second (the stall of the first writes in
/// `morsa bench coord`); the losers would also have seen the winner's greater log and carried
/// openraft's delay into the first failover.
async fn listen_before_electing(raft: Raft<TypeConfig>, initial: Option<Vec<(ReplicaId, String)>>) {
    tokio::time::sleep(STARTUP_LISTEN).await;
    let contacted = raft.metrics().borrow().vote.leader_id().get_term() > 0;
    if let Some(replicas) = initial.filter(|_| !contacted)
        && let Err(error) = initialize(&raft, &replicas).await
    {
        tracing::error!(%error, "cannot initialize the group after listening");
    }
    raft.runtime_config().elect(true);
}

/// Initializes the group with `replicas` if this replica never joined one.
async fn initialize(raft: &Raft<TypeConfig>, replicas: &[(ReplicaId, String)]) -> Result<(), StartError> {
    let is_initialized = raft.is_initialized().await.map_err(|error| StartError::Raft(error.to_string()))?;
    if is_initialized {
        return Ok(());
    }
    let members: BTreeMap<ReplicaId, BasicNode> =
        replicas.iter().map(|(id, url)| (*id, BasicNode::new(url))).collect();
    match raft.initialize(members).await {
        Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
        Err(error) => Err(StartError::Raft(error.to_string())),
    }
}

/// Why a proposal was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// The state machine refused it; nothing changed.
    #[error(transparent)]
    Refused(#[from] CommandError),
    /// This replica was not the leader, or stopped leading and its uncommitted entry was
    /// overwritten by the new leader's log (openraft answers `ForwardToLeader` only then): the
    /// write surely was not applied.
    #[error("this replica is no longer the leader")]
    NotLeader,
    /// Proposed, but no quorum of replicas committed it in time: it may still be applied later
    /// (or dropped by a new leader), so its outcome is unknown.
    #[error(
        "the write was proposed but no quorum of coordinators committed it within {} s; it may still be applied: check the account's nonce before retrying",
        COMMIT_WAIT.as_secs()
    )]
    Unconfirmed,
    /// The write could not be encoded for the log; nothing was proposed.
    #[error("the write cannot be encoded for the log: {0}")]
    Unencodable(String),
    /// Raft stopped (its storage failed): the replica must restart.
    #[error("the replica stopped: {0}")]
    Fatal(String),
}

/// A running replica.
pub struct Replica {
    raft: Raft<TypeConfig>,
    id: ReplicaId,
    coordinator: Arc<Mutex<Coordinator>>,
    prechecks: Arc<Prechecks>,
    events: watch::Receiver<u64>,
    http: reqwest::Client,
    proposer: Proposer,
}

impl Replica {
    /// Starts Raft for `coordinator` (whose command log is the state machine's record).
    pub async fn start(settings: ReplicaSettings, coordinator: Coordinator) -> Result<Self, StartError> {
        let log = LogStore::new(RaftLog::open(&settings.raft_log)?);
        let pristine = log.is_pristine()?;
        if pristine && is_unreplicated_history(&coordinator)? {
            return Err(StartError::Unreplicated);
        }
        let first = settings.replicas.iter().map(|(id, _)| *id).min();
        let elects_at_once = pristine && first.is_none_or(|first| first == settings.id);
        let config = openraft::Config {
            cluster_name: settings.cluster_name.clone(),
            heartbeat_interval: HEARTBEAT_MS,
            election_timeout_min: ELECTION_TIMEOUT_MS.0,
            election_timeout_max: ELECTION_TIMEOUT_MS.1,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_every.max(1)),
            max_in_snapshot_log_to_keep: settings.snapshot_every,
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            max_payload_entries: MAX_PROPOSALS_PER_MESSAGE,
            // Most replicas listen first (see `listen_before_electing`).
            enable_elect: elects_at_once,
            ..Default::default()
        }
        .validate()
        .map_err(|error| StartError::Raft(error.to_string()))?;
        let coordinator = Arc::new(Mutex::new(coordinator));
        let prechecks = Arc::new(Prechecks::default());
        let (events_sender, events) = watch::channel(0);
        let state_machine = StateMachine {
            coordinator: Arc::clone(&coordinator),
            prechecks: Arc::clone(&prechecks),
            events: events_sender,
        };
        state_machine.publish_now();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|error| StartError::Raft(error.to_string()))?;
        let network = Network { http: http.clone(), from: settings.id };
        let raft = Raft::new(settings.id, Arc::new(config), network, log, state_machine)
            .await
            .map_err(|error| StartError::Raft(error.to_string()))?;
        let proposer = Proposer::start(raft.clone());
        let replica = Self { raft, id: settings.id, coordinator, prechecks, events, http, proposer };
        let initial = settings.replicas.iter().any(|(id, _)| *id == settings.id);
        if elects_at_once {
            if initial {
                initialize(&replica.raft, &settings.replicas).await?;
            }
        } else {
            let replicas = initial.then(|| settings.replicas.clone());
            tokio::spawn(listen_before_electing(replica.raft.clone(), replicas));
        }
        Ok(replica)
    }

    /// The coordinator the replica applies to (reads take its lock briefly).
    pub fn coordinator(&self) -> &Arc<Mutex<Coordinator>> {
        &self.coordinator
    }

    /// The event count, updated after every apply.
    pub fn events(&self) -> watch::Receiver<u64> {
        self.events.clone()
    }

    /// The Raft handle (for the replica-to-replica routes).
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// This replica's ID.
    pub fn id(&self) -> ReplicaId {
        self.id
    }

    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics.state == ServerState::Leader && metrics.current_leader == Some(self.id)
    }

    /// Whether this replica is the group's only voter (a lone coordinator): nothing is
    /// committed that it did not store itself.
    pub fn is_sole_voter(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let mut voters = metrics.membership_config.membership().voter_ids();
        voters.next() == Some(self.id) && voters.next().is_none()
    }

    /// Whether `id` is a member (voter or learner) of the group this replica knows.
    pub fn knows(&self, id: ReplicaId) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics.membership_config.membership().get_node(&id).is_some()
    }

    /// Whether this replica belongs to a group yet (an added replica does not until the
    /// leader first reaches it).
    pub fn has_members(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics.membership_config.membership().nodes().next().is_some()
    }

    /// The HTTP client for calls to other replicas (forwarded writes).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A receiver that turns to an error once Raft stopped (its storage failed).
    pub fn stopped(&self) -> watch::Receiver<openraft::RaftMetrics<ReplicaId, BasicNode>> {
        self.raft.metrics()
    }

    /// Where a write should go, waiting up to `wait` for a leader to be known.
    pub async fn route(&self, wait: Duration) -> Route {
        let mut metrics = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            {
                let current = metrics.borrow_and_update();
                match current.current_leader {
                    Some(leader) if leader == self.id && current.state == ServerState::Leader => {
                        return Route::Local;
                    }
                    Some(leader) if leader != self.id => {
                        if let Some(node) = current.membership_config.membership().get_node(&leader) {
                            return Route::Forward(node.addr.clone());
                        }
                    }
                    _ => {}
                }
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Route::NoLeader,
            }
        }
    }

    /// Waits up to `wait` until this replica no longer names the replica at `url` as leader
    /// (a new leader was elected, or an election began): a write that could not reach the
    /// old leader goes on at once instead of after a fixed pause.
    pub async fn leader_moved_from(&self, url: &str, wait: Duration) {
        let mut metrics = self.raft.metrics();
        let moved = metrics.wait_for(|current| {
            let leader = current.current_leader.and_then(|leader| {
                current.membership_config.membership().get_node(&leader).map(|node| node.addr.clone())
            });
            leader.as_deref() != Some(url)
        });
        let _ = tokio::time::timeout(wait, moved).await;
    }

    /// Proposes `input` (its signatures `checks` verified here), stamped with `now_ms` (this
    /// replica's clock; the state's time if that is later), together with the writes waiting
    /// beside it (see `proposals`), and waits until a quorum committed and this replica
    /// applied it.
    pub async fn propose(
        &self,
        input: Input,
        checks: Prechecked,
        now_ms: u64,
    ) -> Result<Applied, ProposeError> {
        let time_ms = {
            let coordinator = lock(&self.coordinator);
            now_ms.max(coordinator.state().time_ms)
        };
        self.prechecks.insert(&input, checks);
        self.proposer.propose(LogEntry { time_ms, input }).await
    }

    /// This replica's view of the group.
    pub fn info(&self) -> ReplicaInfo {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        let role = match metrics.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        ReplicaInfo {
            id: self.id,
            role: role.to_owned(),
            term: metrics.current_term,
            leader: metrics.current_leader,
            applied_index: metrics.last_applied.map(|id| id.index),
            purged_index: metrics.purged.map(|id| id.index),
            replicas: super::membership::members(membership),
        }
    }

    /// Stops Raft.
    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }
}
