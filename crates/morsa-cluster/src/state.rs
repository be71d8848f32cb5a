//! `cluster.json`: who runs where. Rewritten atomically whenever a process starts or stops, so
//! `morsa cluster down` can clean up by pid even when the supervisor is gone.

use std::path::{Path, PathBuf};

use morsa_core::{NodeId, ShardIndex};
use morsa_plumbing::file::{self, Access};
use serde::{Deserialize, Serialize};

use crate::error::ClusterError;
use crate::layout;

/// One storage node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its position, `0..nodes`; its files are `nodeI.*`.
    pub index: usize,
    /// Its base URL, `http://127.0.0.1:PORT` (the same across restarts): where the genesis
    /// and clients reach it, its shaped link's proxy if it has one.
    pub url: String,
    /// Where the node itself listens, when that is not `url` (it is behind a shaped link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_url: Option<String>,
    /// Its ID (hash of its BLS public key).
    pub node_id: NodeId,
    /// The shards it holds in the genesis committee.
    pub shards: Vec<ShardIndex>,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its log file.
    pub log: PathBuf,
}

/// A node in `cluster.json`: what it is and its pid while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// The node.
    #[serde(flatten)]
    pub info: NodeInfo,
    /// Its process, while running.
    pub pid: Option<u32>,
}

/// The coordinator in `cluster.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorState {
    /// Its base URL.
    pub url: String,
    /// Its process, while running.
    pub pid: Option<u32>,
    /// Its log file.
    pub log: PathBuf,
}

/// One coordinator replica in `cluster.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorReplicaState {
    /// Its position, `0..coordinators` (its Raft ID is `index + 1`).
    pub index: usize,
    /// Its base URL.
    pub url: String,
    /// Its process, while running.
    pub pid: Option<u32>,
    /// Its log file.
    pub log: PathBuf,
}

/// The S3 gateway in `cluster.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayState {
    /// Its base URL (the S3 endpoint).
    pub url: String,
    /// Its process, while running.
    pub pid: Option<u32>,
    /// Its log file.
    pub log: PathBuf,
}

/// The content of `cluster.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// The process that started the cluster and supervises it.
    pub supervisor_pid: u32,
    /// The supervisor's control API (`morsa cluster up` serves one), if any.
    pub control_url: Option<String>,
    /// The cluster directory.
    pub dir: PathBuf,
    /// False once the cluster has been shut down.
    pub running: bool,
    /// The coordinator (the first replica, for scripts written before replication).
    pub coordinator: CoordinatorState,
    /// Every coordinator replica, by index.
    #[serde(default)]
    pub coordinators: Vec<CoordinatorReplicaState>,
    /// The file holding the coordinator replicas' admin token, for `morsa coord add-replica`
    /// and `remove-replica --admin-token-file` (absent from clusters made before it existed).
    #[serde(default)]
    pub coordinator_admin_token_file: Option<PathBuf>,
    /// The storage nodes, by index.
    pub nodes: Vec<NodeState>,
    /// The S3 gateway, if the cluster runs one.
    #[serde(default)]
    pub gateway: Option<GatewayState>,
}

impl ClusterState {
    /// `DIR/cluster.json`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(layout::STATE)
    }

    /// Reads `DIR/cluster.json`.
    pub fn load(dir: &Path) -> Result<Self, ClusterError> {
        let path = Self::path(dir);
        let text = std::fs::read_to_string(&path).map_err(ClusterError::io(format!(
            "cannot read {} (is {} a cluster directory?)",
            path.display(),
            dir.display()
        )))?;
        serde_json::from_str(&text).map_err(|error| ClusterError::Io {
            what: format!("{} is not a cluster state", path.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
        })
    }

    /// Writes `DIR/cluster.json` atomically.
    pub fn save(&self) -> Result<(), ClusterError> {
        let text = serde_json::to_string_pretty(self).map_err(|error| ClusterError::Io {
            what: "cannot serialize the cluster state".into(),
            source: std::io::Error::other(error),
        })?;
        Ok(file::replace(&Self::path(&self.dir), format!("{text}\n").as_bytes(), Access::Shared)?)
    }

    /// The pids of the gateway, the nodes and the coordinator recorded as running, in the
    /// order they are stopped.
    pub fn child_pids(&self) -> Vec<u32> {
        let gateway = self.gateway.as_ref().and_then(|gateway| gateway.pid);
        gateway
            .into_iter()
            .chain(self.nodes.iter().filter_map(|node| node.pid))
            .chain(self.coordinator.pid)
            .chain(self.coordinators.iter().skip(1).filter_map(|replica| replica.pid))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_round_trips_and_lists_running_pids() {
        let dir = tempfile::tempdir().unwrap();
        let node = |index: usize, pid| NodeState {
            info: NodeInfo {
                direct_url: None,
                index,
                url: format!("http://127.0.0.1:{}", 9000 + index),
                node_id: NodeId([u8::try_from(index).unwrap(); 32]),
                shards: vec![ShardIndex(u16::try_from(index).unwrap())],
                config: dir.path().join(layout::node_config(index)),
                log: dir.path().join(layout::node_log(index)),
            },
            pid,
        };
        let state = ClusterState {
            supervisor_pid: 10,
            control_url: Some("http://127.0.0.1:5000".into()),
            dir: dir.path().to_path_buf(),
            running: true,
            coordinator: CoordinatorState {
                url: "http://127.0.0.1:7000".into(),
                pid: Some(11),
                log: dir.path().join(layout::coord_log()),
            },
            coordinators: Vec::new(),
            coordinator_admin_token_file: Some(dir.path().join(layout::COORD_ADMIN_TOKEN)),
            nodes: vec![node(0, Some(12)), node(1, None)],
            gateway: Some(GatewayState {
                url: "http://127.0.0.1:9100".into(),
                pid: Some(13),
                log: dir.path().join(layout::gateway_log()),
            }),
        };
        state.save().unwrap();
        assert_eq!(ClusterState::load(dir.path()).unwrap(), state);
        assert_eq!(state.child_pids(), [13, 12, 11]);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(ClusterState::path(dir.path())).unwrap()).unwrap();
        assert_eq!(json["nodes"][0]["shards"], serde_json::json!([0]));
        assert_eq!(json["nodes"][1]["pid"], serde_json::Value::Null);
        assert!(ClusterState::load(&dir.path().join("nowhere")).unwrap_err().to_string().contains("cluster"));
    }
}
