//! A local Morsa cluster of real processes: one coordinator and `N` storage nodes (and, on
//! request, an S3 gateway: [`Cluster::start_gateway`]), each a
//! `morsa` process on loopback with its own data, started from a fresh genesis with a funded
//! user account, and a client configuration pointing at it.
//!
//! It owns the cluster directory's layout ([`layout`]), the genesis of a local cluster, the
//! processes' lifecycle (start, wait until ready, kill, stop, restart, shut down) and the
//! supervisor's control API ([`control`]). It does not own the coordinator or the node: it
//! runs the `morsa` binary it is given, exactly as an operator would. Every file it writes is
//! written durably through `morsa-plumbing` (the account key with mode 0600).
//!
//! ```no_run
//! use std::time::Duration;
//! use morsa_cluster::{Cluster, ClusterSpec};
//!
//! let spec = ClusterSpec {
//!     coordinators: 1,
//!     nodes: 4,
//!     shards: 12,
//!     dir: "my-cluster".into(),
//!     epoch_duration: Duration::from_secs(3600),
//!     binary: "target/debug/morsa".into(),
//!     node_links: Default::default(),
//!     zones: 0,
//! };
//! let mut cluster = Cluster::up(spec)?;
//! println!("MORSA_CONFIG={}", cluster.client_config_path().display());
//! cluster.kill(1)?; // a crash
//! cluster.start(1)?; // back on its data, ready
//! cluster.shutdown()?;
//! # Ok::<(), morsa_cluster::ClusterError>(())
//! ```
//!
//! Limits: the processes outlive a supervisor that dies uncleanly (SIGKILL); `cluster.json`
//! records their pids so `morsa cluster down` can still stop them. A stopped cluster's
//! directory cannot be started again.

mod cluster;
pub mod control;
mod error;
mod genesis;
pub mod layout;
mod link_shape;
pub mod netem;
pub mod pids;
pub mod ports;
mod process;
mod ready;
pub mod sample;
mod spec;
mod state;

pub use cluster::{Cluster, GATEWAY_USER, STOP_TIMEOUT, operator_key, retire_node};
pub use error::ClusterError;
pub use genesis::{CHAIN_ID, NODE_STAKE, USER_BALANCE, zone_name};
pub use process::ANNOUNCE_TIMEOUT;
pub use ready::READY_TIMEOUT;
pub use spec::{
    ClusterSpec, DurationError, LinkArgError, MAX_COORDINATORS, MAX_NODES, MIN_SHARDS, SpecError, node_links,
    parse_duration, parse_node_delay, parse_node_rate,
};
pub use state::{ClusterState, CoordinatorState, GatewayState, NodeInfo, NodeState};
