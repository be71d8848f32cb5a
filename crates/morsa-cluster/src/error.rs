//! Why a cluster operation failed. Every variant that concerns a process names its log.

use std::path::PathBuf;

use crate::spec::SpecError;

/// Why [`crate::Cluster`] could not start, stop or restart something.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A transaction of the node lifecycle (add-node, retire) was refused or not delivered.
    #[error("{what}: {reason}")]
    Transaction {
        /// What was being done.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The spec is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The directory holds a cluster whose supervisor is still running.
    #[error(
        "{dir} holds a running cluster (supervisor pid {pid}); stop it with \
         `morsa cluster down --dir {dir}` or choose another directory",
        dir = .dir.display()
    )]
    DirInUse {
        /// The directory.
        dir: PathBuf,
        /// The running supervisor.
        pid: u32,
    },
    /// The directory exists and is not empty.
    #[error(
        "{dir} is not empty (an old cluster?); choose a new directory or delete this one",
        dir = .0.display()
    )]
    DirNotEmpty(PathBuf),
    /// A file or directory could not be created, written or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The generated genesis is refused by the coordinator's own checks.
    #[error("the generated genesis is invalid: {0}")]
    Genesis(#[from] morsa_coord::GenesisError),
    /// A node key could not be written.
    #[error(transparent)]
    Key(#[from] morsa_node::keys::KeyFileError),
    /// A process did not start, exited, or did not become ready in time.
    #[error("{name}: {reason}; see its log {log}", log = .log.display())]
    Process {
        /// `coordinator` or `node I`.
        name: String,
        /// What went wrong.
        reason: String,
        /// Its log file.
        log: PathBuf,
    },
    /// Processes did not stop on SIGTERM within the bound and were killed, or exited with an
    /// error.
    #[error("not every process stopped cleanly: {0}")]
    Unclean(String),
    /// There is no node with this index.
    #[error("there is no node {index}: the cluster has nodes 0 to {last}")]
    NoSuchNode {
        /// The index asked for.
        index: usize,
        /// The highest index.
        last: usize,
    },
    /// The node has no shaped link to change.
    #[error(
        "node {0} has no shaped link: start the cluster with --node-delay {0}=MS or --node-rate {0}=MBPS"
    )]
    NoLink(usize),
    /// The node is not running (to stop or kill it).
    #[error("node {0} is not running")]
    NotRunning(usize),
    /// The node is already running (to start it).
    #[error("node {0} is already running")]
    AlreadyRunning(usize),
    /// No coordinator replica has this index.
    #[error("there is no coordinator replica {index}: they are numbered 0 to {last}")]
    NoSuchCoordinator {
        /// The index asked for.
        index: usize,
        /// The highest index.
        last: usize,
    },
    /// The coordinator replica is not running (to kill or stop it).
    #[error("coordinator replica {0} is not running")]
    CoordinatorNotRunning(usize),
    /// The coordinator replica is already running (to start it).
    #[error("coordinator replica {0} is already running")]
    CoordinatorRunning(usize),
    /// The running coordinator replicas did not agree on a leader in time.
    #[error("the coordinator replicas elected no leader within {bound:?}: {last}")]
    NoLeader {
        /// How long we waited.
        bound: std::time::Duration,
        /// What the replicas last answered.
        last: String,
    },
    /// A file of the cluster directory could not be written durably.
    #[error(transparent)]
    Write(#[from] morsa_plumbing::WriteError),
    /// The gateway's keyring could not be created.
    #[error("creating the gateway's keyring: {0}")]
    GatewayKeys(#[source] morsa_gateway::GatewayError),
    /// The cluster was shut down.
    #[error("the cluster has been shut down")]
    ShutDown,
}

impl ClusterError {
    /// An I/O error while doing `what`.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
