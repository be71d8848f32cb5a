//! Which coordinator replica leads: asked of every running replica, so that tools (the
//! quickstart's failure step, tests) can kill the leader and name its successor.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use morsa_api::client::{ClientOptions, CoordClient};

use super::Cluster;
use crate::error::ClusterError;
use crate::ready::block_on;

/// How often the replicas are asked while they elect a leader.
const POLL: Duration = Duration::from_millis(50);

impl Cluster {
    /// The index of the coordinator replica that a majority of the group reports as leader
    /// (a deposed leader that still believes it leads is outvoted), waiting up to `bound`
    /// for the running replicas to agree on one. A stopped replica is never the answer, even
    /// while the survivors still name it (before they notice it is gone).
    pub fn coordinator_leader(&mut self, bound: Duration) -> Result<usize, ClusterError> {
        if self.shut_down {
            return Err(ClusterError::ShutDown);
        }
        let running: Vec<usize> =
            (0..self.coordinators.len()).filter(|index| self.is_coordinator_running(*index)).collect();
        let majority = self.coordinators.len() / 2 + 1;
        let options =
            ClientOptions { timeout: Duration::from_secs(2), connect_timeout: Duration::from_secs(1) };
        let clients = running
            .iter()
            .map(|index| CoordClient::with_urls(&[&self.coordinator_urls[*index]], options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| ClusterError::NoLeader { bound, last: error.to_string() })?;
        let wait = async {
            let deadline = Instant::now() + bound;
            loop {
                let mut votes = BTreeMap::<u64, usize>::new();
                for client in &clients {
                    if let Ok(system) = client.system().await
                        && let Some(leader) = system.replica.and_then(|replica| replica.leader)
                    {
                        *votes.entry(leader).or_default() += 1;
                    }
                }
                // Raft IDs are indices + 1.
                let elected = votes
                    .iter()
                    .filter(|(_, count)| **count >= majority)
                    .filter_map(|(leader, _)| usize::try_from(*leader).ok()?.checked_sub(1))
                    .find(|index| running.contains(index));
                if let Some(index) = elected {
                    return Ok(index);
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "leader IDs reported, with how many running replicas report each: {votes:?}"
                    ));
                }
                tokio::time::sleep(POLL).await;
            }
        };
        block_on(wait)
            .map_err(ClusterError::io("cannot start a thread to wait on"))?
            .map_err(|last| ClusterError::NoLeader { bound, last })
    }
}
