//! The quorum's transport: openraft's `RaftNetworkFactory`/`RaftNetwork`
//! over `clients::NetworkClient` to each voter's controller listener
//! (`controller.quorum.voters` gives id@host:port, the `BasicNode` address).
//! Every RPC is one Kafka-framed request under the private key
//! [`RAFT_RPC_KEY`] whose body is a [`RaftRpc`] as JSON; the answer is the
//! handler's `Result` as JSON. A node that cannot be reached maps to
//! openraft's `Unreachable` (it backs off), a broken exchange to
//! `NetworkError`, the remote's refusal to `RemoteError`.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::replica_states::{now_ms, ReplicaStates};
use super::{NodeId, TypeConfig};
use crate::clients::private_apis::{RAFT_RPC_KEY, REQUEST_HEADER_VERSION, RESPONSE_HEADER_VERSION};
use crate::clients::{ClientError, ClientLimits, ClientSecurity, NetworkClient};

/// One openraft RPC as sent between controllers.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftRpc {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

/// How long connecting to a voter may take: a dead voter must not hold up
/// the heartbeats openraft sends the others (each target has its own task,
/// but a long connect delays that target's next attempt).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The largest answer accepted from a voter (answers are small: a vote, an
/// append's outcome).
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// The upper bound of a request's wait, beyond openraft's own TTL.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates one connection per target voter.
pub struct KastleRaftNetwork {
    pub node_id: i32,
    /// Where voters' acknowledged appends are noted (DescribeQuorum).
    pub replica_states: Arc<ReplicaStates>,
    /// The controller listener's security.
    pub security: Arc<ClientSecurity>,
}

impl RaftNetworkFactory<TypeConfig> for KastleRaftNetwork {
    type Network = VoterConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> VoterConnection {
        let limits = ClientLimits {
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            max_response_bytes: MAX_RESPONSE_BYTES,
        };
        VoterConnection {
            target,
            client: NetworkClient::new(
                node.addr.clone(),
                &format!("kastle-raft-{}", self.node_id),
                limits,
            )
            .with_security(self.security.clone()),
            failing: false,
            replica_states: self.replica_states.clone(),
        }
    }
}

pub struct VoterConnection {
    target: NodeId,
    client: NetworkClient,
    /// Whether the last exchange failed: a peer going away or coming back
    /// is logged once, not per retry (openraft's own per-RPC errors are
    /// filtered out of the default log).
    failing: bool,
    replica_states: Arc<ReplicaStates>,
}

/// Why an RPC did not get an answer from the remote's Raft.
enum Failure {
    Unreachable(ClientError),
    Network(String),
}

#[derive(Debug)]
struct TransportError(String);
impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for TransportError {}

impl VoterConnection {
    async fn call<T: DeserializeOwned>(
        &mut self,
        rpc: &RaftRpc,
        ttl: Duration,
    ) -> Result<T, Failure> {
        let answer = self.exchange(rpc, ttl).await;
        match (&answer, self.failing) {
            (Err(Failure::Unreachable(e)), false) => {
                tracing::warn!(voter = self.target, error = %e, "controller quorum voter unreachable");
            }
            (Err(Failure::Network(e)), false) => {
                tracing::warn!(voter = self.target, error = %e, "controller quorum voter not answering");
            }
            (Ok(_), true) => {
                tracing::info!(
                    voter = self.target,
                    "controller quorum voter reachable again"
                );
            }
            _ => {}
        }
        self.failing = answer.is_err();
        answer
    }

    async fn exchange<T: DeserializeOwned>(
        &mut self,
        rpc: &RaftRpc,
        ttl: Duration,
    ) -> Result<T, Failure> {
        let body = serde_json::to_vec(rpc).map_err(|e| Failure::Network(e.to_string()))?;
        let sent = self.client.send_raw(
            RAFT_RPC_KEY,
            0,
            REQUEST_HEADER_VERSION,
            RESPONSE_HEADER_VERSION,
            &body,
        );
        let resp = match tokio::time::timeout(ttl, sent).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e @ (ClientError::Connect { .. } | ClientError::Authentication { .. }))) => {
                return Err(Failure::Unreachable(e))
            }
            Ok(Err(e)) => return Err(Failure::Network(e.to_string())),
            Err(_) => {
                // The exchange was cut mid-way: the client reconnects next time.
                return Err(Failure::Network(format!(
                    "no answer from {} within {ttl:?}",
                    self.client.addr()
                )));
            }
        };
        serde_json::from_slice(&resp).map_err(|e| {
            Failure::Network(format!(
                "undecodable raft answer from {}: {e}",
                self.client.addr()
            ))
        })
    }
}

/// Splits an answer into the value or openraft's error (whose size the
/// trait's signature fixes).
#[allow(clippy::result_large_err)]
fn settle<T, E: std::error::Error>(
    target: NodeId,
    answer: Result<Result<T, E>, Failure>,
) -> Result<T, RPCError<NodeId, BasicNode, E>> {
    match answer {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new(target, remote))),
        Err(Failure::Unreachable(e)) => Err(RPCError::Unreachable(Unreachable::new(&e))),
        Err(Failure::Network(m)) => Err(RPCError::Network(NetworkError::new(&TransportError(m)))),
    }
}

impl RaftNetwork<TypeConfig> for VoterConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let term = rpc.vote.leader_id().get_term();
        let sent_end = rpc
            .entries
            .last()
            .map(|e| e.log_id.index)
            .or(rpc.prev_log_id.map(|l| l.index));
        let commit = rpc.leader_commit.map(|l| l.index);
        let answer = self
            .call::<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>(
                &RaftRpc::AppendEntries(rpc),
                option.hard_ttl(),
            )
            .await;
        let matched = match &answer {
            Ok(Ok(AppendEntriesResponse::Success)) => Some(sent_end),
            Ok(Ok(AppendEntriesResponse::PartialSuccess(m))) => Some(m.map(|l| l.index)),
            _ => None,
        };
        if let Some(matched) = matched {
            let id = self.target as i32;
            let states = &self.replica_states;
            states.voter_fetched(id, term, matched, commit, now_ms());
        }
        settle(self.target, answer)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let answer = self
            .call::<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>>(
                &RaftRpc::InstallSnapshot(rpc),
                option.hard_ttl(),
            )
            .await;
        settle(self.target, answer)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let answer = self
            .call::<Result<VoteResponse<NodeId>, RaftError<NodeId>>>(
                &RaftRpc::Vote(rpc),
                option.hard_ttl(),
            )
            .await;
        settle(self.target, answer)
    }
}
