//! Replica-to-replica calls over HTTP: each Raft message is POSTed as JSON to the target's
//! `/v1/raft/...` route, which answers JSON `{"Ok": ...}` or `{"Err": <raft error>}`. Every
//! call has the timeout Raft gives it; an answer is read up to [`MAX_RAFT_BODY_BYTES`].

use std::time::Duration;

use morsa_api::coord::routes;
use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ReplicaId, TypeConfig};

/// Largest Raft message body a replica sends or accepts: a batch of entries or one snapshot
/// chunk (chunks are 4 MiB).
pub const MAX_RAFT_BODY_BYTES: usize = 32 << 20;
/// Size of one snapshot chunk (before JSON, which at most quadruples it).
pub(crate) const SNAPSHOT_CHUNK_BYTES: u64 = 4 << 20;
/// Header naming the sending replica.
pub const FROM_REPLICA_HEADER: &str = "x-morsa-replica";

/// Makes a client per target replica; they share one HTTP connection pool.
#[derive(Clone)]
pub(crate) struct Network {
    pub(crate) http: reqwest::Client,
    pub(crate) from: ReplicaId,
}

/// The calls to one replica.
pub(crate) struct Peer {
    http: reqwest::Client,
    from: ReplicaId,
    target: ReplicaId,
    url: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: ReplicaId, node: &BasicNode) -> Peer {
        Peer {
            http: self.http.clone(),
            from: self.from,
            target,
            url: node.addr.trim_end_matches('/').to_owned(),
        }
    }
}

/// A transport failure, as an error openraft can carry.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Transport(pub(crate) String);

impl Peer {
    async fn call<Req, Resp, E>(
        &self,
        route: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<ReplicaId, BasicNode, RaftError<ReplicaId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let answer = self
            .http
            .post(format!("{}{route}", self.url))
            .header(FROM_REPLICA_HEADER, self.from.to_string())
            .timeout(timeout)
            .json(request)
            .send()
            .await
            .map_err(|error| {
                // Only a replica that cannot be reached is backed off from (see [`Peer::backoff`]);
                // a slow answer is a network error, retried with the next heartbeat or entries.
                let transport = Transport(error.to_string());
                if error.is_connect() {
                    RPCError::Unreachable(Unreachable::new(&transport))
                } else {
                    RPCError::Network(NetworkError::new(&transport))
                }
            })?;
        let status = answer.status();
        let bytes = read_limited(answer, MAX_RAFT_BODY_BYTES)
            .await
            .map_err(|error| RPCError::Network(NetworkError::new(&Transport(error.to_string()))))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            return Err(RPCError::Network(NetworkError::new(&Transport(format!(
                "replica {} answered {status}: {text}",
                self.target
            )))));
        }
        let result: Result<Resp, RaftError<ReplicaId, E>> =
            serde_json::from_slice(&bytes).map_err(|error| RPCError::Network(NetworkError::new(&error)))?;
        result.map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
    }
}

/// First wait before calling an unreachable replica again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
/// Longest wait between calls to an unreachable replica.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

impl RaftNetwork<TypeConfig> for Peer {
    /// Waits after an unreachable replica: 25 ms, doubling up to 500 ms, reset by the next
    /// answer. openraft's default waits 500 ms from the first failure, and a replica that was
    /// briefly unreachable (restarting, or a connection dropped under load) held every commit
    /// of a 3-replica group for that long.
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::successors(Some(FIRST_BACKOFF), |wait| Some((*wait * 2).min(MAX_BACKOFF))))
    }

    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<ReplicaId>, RPCError<ReplicaId, BasicNode, RaftError<ReplicaId>>> {
        self.call(routes::RAFT_APPEND, &request, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<ReplicaId>,
        RPCError<ReplicaId, BasicNode, RaftError<ReplicaId, InstallSnapshotError>>,
    > {
        self.call(routes::RAFT_SNAPSHOT, &request, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        request: VoteRequest<ReplicaId>,
        option: RPCOption,
    ) -> Result<VoteResponse<ReplicaId>, RPCError<ReplicaId, BasicNode, RaftError<ReplicaId>>> {
        self.call(routes::RAFT_VOTE, &request, option.hard_ttl()).await
    }
}

/// The body of `answer`, refused once past `limit` bytes.
pub(crate) async fn read_limited(mut answer: reqwest::Response, limit: usize) -> Result<Vec<u8>, Transport> {
    let mut bytes = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|error| Transport(error.to_string()))? {
        if bytes.len().saturating_add(chunk.len()) > limit {
            return Err(Transport(format!("the answer is larger than {limit} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
