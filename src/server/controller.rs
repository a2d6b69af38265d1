//! `ControllerServer`: the controller role of a node in a cluster (Kafka's
//! class of the same name). Opens the metadata log and state machine in
//! `<metadata.log.dir or the first log dir>/__cluster_metadata-0/` (Kafka's
//! directory), starts openraft, `initialize`s it with every voter of
//! `controller.quorum.voters` (each voter does; one that is already
//! initialized keeps its membership), binds the controller listener(s) and
//! answers them with `ControllerApis`. Timing from Kafka's keys: a
//! follower that hears nothing for `controller.quorum.fetch.timeout.ms`
//! starts an election (openraft's minimum election timeout), plus a random
//! part up to `controller.quorum.election.timeout.ms` (Kafka's election
//! backoff); the leader heartbeats four times per fetch timeout.
//!
//! Each controller listener is served with its security protocol
//! (`listener.security.protocol.map`): the TLS handshake (`network::tls`)
//! and SASL authentication (`network::authenticator`, PLAIN and SCRAM;
//! SCRAM credentials are the metadata image's, which the controller's
//! store follows) before any request, as on a broker's listeners. With
//! `authorizer.class.name` the controller has its own authorizer, which
//! follows the image's ACLs and `super.users`, and `ControllerApis` asks
//! it for CLUSTER_ACTION.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::broker::authorizer::Authorizer;
use crate::broker::scram_credentials::ScramCredentialStore;
use crate::handlers::controller_apis::Caller;
use crate::metadata::MetadataImage;
use crate::network::authenticator::{authenticate, AuthContext, AuthServer, Socket};
use crate::network::frame::{peer_gone, read_frame_within, FrameError};
use crate::network::tls::{self, TlsListener};
use crate::security::sasl::SaslSettings;
use crate::security::{KafkaPrincipal, SecurityProtocol};

use crate::clients::ClientSecurity;
use crate::config::BrokerConfig;
use crate::controller::controller_mutation_quota::ControllerMutationQuotaManager;
use crate::controller::quorum_controller::{ControllerSettings, QuorumController};
use crate::controller::replication_control::ReplicationDefaults;
use crate::handlers::controller_apis::ControllerApis;
use crate::raft::network::KastleRaftNetwork;
use crate::raft::replica_states::{ReplicaStates, VoterEndpoint};
use crate::raft::{DurableLogStore, MetadataStateMachine};
use crate::util::shutdown::ShutdownSignal;

/// Kafka's metadata log directory name.
pub const METADATA_DIR: &str = "__cluster_metadata-0";
/// The largest request a controller listener reads (Kafka's
/// `socket.request.max.bytes` default).
const MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;
/// A controller connection's read buffer (requests are read through it; a
/// metadata or Raft request is mostly far smaller).
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// Kafka's `UNCLEAN_LEADER_ELECTION_INTERVAL_MS_DEFAULT` (an internal key).
const UNCLEAN_LEADER_ELECTION_INTERVAL_MS: i64 = 5 * 60 * 1000;

pub struct ControllerServer {
    pub controller: Arc<QuorumController>,
}

/// Where the metadata log lives.
pub fn metadata_dir(config: &BrokerConfig) -> PathBuf {
    let base = config
        .value("metadata.log.dir")
        .filter(|v| !v.trim().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| config.log_dir.clone());
    base.join(METADATA_DIR)
}

impl ControllerServer {
    pub async fn start(
        config: &BrokerConfig,
        cluster_id: String,
        security: Arc<ClientSecurity>,
        shutdown: ShutdownSignal,
    ) -> anyhow::Result<ControllerServer> {
        let k = &config.kraft;
        let dir = metadata_dir(config);
        let log =
            DurableLogStore::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
        let state = MetadataStateMachine::open(&dir)
            .with_context(|| format!("opening {}", dir.display()))?;
        let fetch_timeout = k.fetch_timeout_ms.max(10) as u64;
        let raft_config = openraft::Config {
            cluster_name: cluster_id.clone(),
            election_timeout_min: fetch_timeout,
            election_timeout_max: fetch_timeout + k.election_timeout_ms.max(1) as u64,
            heartbeat_interval: (fetch_timeout / 4).max(5),
            ..Default::default()
        }
        .validate()
        .context("the controller quorum's timing")?;
        let replica_states = Arc::new(replica_states_of(config));
        let network = KastleRaftNetwork {
            node_id: config.node_id,
            replica_states: replica_states.clone(),
            security,
        };
        let raft = openraft::Raft::new(
            config.node_id as u64,
            Arc::new(raft_config),
            network,
            log,
            state.clone(),
        )
        .await
        .context("starting the controller quorum")?;
        let defaults = ReplicationDefaults::from_config(Arc::new(config.clone()));
        let session_timeout = Duration::from_millis(k.broker_session_timeout_ms.max(1) as u64);
        let controller = QuorumController::new(
            raft,
            state,
            ControllerSettings {
                node_id: config.node_id,
                cluster_id,
                session_timeout,
                defaults,
                replica_states,
                bootstrap_features: crate::protocol::versions::bootstrap_levels(
                    &config.format_features,
                ),
            },
        );
        let authorizer = crate::server::load_authorizer(config, true)?;
        let apis = Arc::new(ControllerApis {
            controller: controller.clone(),
            mutation_quotas: ControllerMutationQuotaManager::new(config),
            authorizer: authorizer.clone(),
        });
        let shared = Arc::new(config.clone());
        let sasl = Arc::new(controller_sasl_settings(config)?);
        let scram = Arc::new(ScramCredentialStore::for_cluster());
        if authorizer.is_some() || !sasl.listeners.is_empty() {
            tokio::spawn(follow_security(
                controller.clone(),
                authorizer,
                scram.clone(),
                shutdown.clone(),
            ));
        }
        for l in &k.controller_listeners {
            let protocol = k
                .controller_protocols
                .get(&l.name)
                .copied()
                .unwrap_or(SecurityProtocol::Plaintext);
            let tls = if protocol.uses_tls() {
                let t = TlsListener::with_protocol(&l.name, protocol, shared.clone())
                    .map_err(|e| anyhow::anyhow!("controller listener {}: {e}", l.name))?;
                Some(Arc::new(t))
            } else {
                None
            };
            let listener = Arc::new(ListenerContext {
                name: Arc::from(l.name.as_str()),
                protocol,
                tls,
                apis: apis.clone(),
                config: shared.clone(),
                sasl: sasl.clone(),
                scram: scram.clone(),
            });
            let addr = l.bind_addr().map_err(|e| anyhow::anyhow!(e.0))?;
            let sock = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding controller listener {} on {addr}", l.name))?;
            tracing::info!(listener = %l.name, protocol = %protocol.name(), addr = %sock.local_addr()?, "controller listening");
            tokio::spawn(accept_loop(sock, listener, shutdown.clone()));
        }
        let voters: BTreeMap<i32, String> =
            k.voters.iter().map(|(id, a)| (*id, a.addr())).collect();
        if voters.contains_key(&config.node_id) {
            controller.initialize(voters).await?;
        }
        tokio::spawn(log_leadership(controller.raft.metrics(), config.node_id));
        tokio::spawn(
            controller
                .clone()
                .run_session_checks((session_timeout / 4).max(Duration::from_millis(10))),
        );
        // `leader.imbalance.check.interval.seconds` and Kafka's internal
        // `unclean.leader.election.interval.ms` (5 minutes by default).
        let rebalance_every = config.boolean("auto.leader.rebalance.enable").then(|| {
            Duration::from_secs(config.int("leader.imbalance.check.interval.seconds").max(1) as u64)
        });
        let unclean_every = Duration::from_millis(
            config
                .opt_int("unclean.leader.election.interval.ms")
                .unwrap_or(UNCLEAN_LEADER_ELECTION_INTERVAL_MS)
                .max(1) as u64,
        );
        tokio::spawn(
            controller
                .clone()
                .run_periodic_elections(rebalance_every, unclean_every),
        );
        Ok(ControllerServer { controller })
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.controller.raft.shutdown().await {
            tracing::warn!("stopping the controller quorum: {e}");
        }
    }
}

/// The voters' controller endpoints DescribeQuorum v2 names, under the
/// first of `controller.listener.names` (a static quorum's voters are
/// reached on it).
fn replica_states_of(config: &BrokerConfig) -> ReplicaStates {
    let k = &config.kraft;
    let listener = k
        .controller_listener_names
        .first()
        .cloned()
        .unwrap_or_default();
    let endpoints = k
        .voters
        .iter()
        .map(|(id, a)| {
            let e = VoterEndpoint {
                host: a.host.clone(),
                port: a.port,
            };
            (*id, e)
        })
        .collect();
    ReplicaStates::new(listener, endpoints)
}

/// One controller listener: its protocol, TLS server and what SASL
/// authenticates against.
struct ListenerContext {
    name: Arc<str>,
    protocol: SecurityProtocol,
    tls: Option<Arc<TlsListener>>,
    apis: Arc<ControllerApis>,
    config: Arc<BrokerConfig>,
    sasl: Arc<SaslSettings>,
    scram: Arc<ScramCredentialStore>,
}

/// The SASL settings of this node's SASL controller listeners, read as a
/// broker's listeners' are (`security::sasl`).
fn controller_sasl_settings(config: &BrokerConfig) -> anyhow::Result<SaslSettings> {
    let k = &config.kraft;
    let listeners: Vec<(String, bool)> = k
        .controller_listeners
        .iter()
        .map(|l| {
            let sasl = k
                .controller_protocols
                .get(&l.name)
                .is_some_and(|p| p.uses_sasl());
            (l.name.clone(), sasl)
        })
        .collect();
    let jaas_file = std::env::var("KAFKA_OPTS")
        .ok()
        .and_then(|o| crate::security::jaas::jaas_file_from_jvm_opts(&o));
    SaslSettings::build(
        &listeners,
        |key| config.value(key).map(str::to_string),
        jaas_file.as_deref().map(std::path::Path::new),
        |key| std::env::var(key).ok(),
    )
    .map_err(|e| anyhow::anyhow!("controller listener SASL: {e}"))
}

/// The controller's authorizer and SCRAM store follow its committed image
/// (Kafka's controller-side `StandardAuthorizer` and SCRAM cache), checked
/// at most ten times a second.
async fn follow_security(
    controller: Arc<QuorumController>,
    authorizer: Option<Arc<Authorizer>>,
    scram: Arc<ScramCredentialStore>,
    shutdown: ShutdownSignal,
) {
    let mut metrics = controller.raft.metrics();
    let mut last = MetadataImage::default();
    let mut first = true;
    let mut applied = None;
    loop {
        // The image is copied only when the applied log moved (openraft's
        // metrics also change on every heartbeat round).
        let now_applied = metrics.borrow_and_update().last_applied;
        if first || now_applied != applied {
            applied = now_applied;
            let image = controller.image();
            if let Some(a) = &authorizer {
                if first || image.acls != last.acls {
                    a.follow_image(&last, &image);
                }
            }
            if first || image.scram != last.scram {
                scram.follow_image(&image);
            }
            first = false;
            last = image;
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            changed = metrics.changed() => if changed.is_err() { return },
        }
        // At most ten looks a second.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<ListenerContext>, shutdown: ShutdownSignal) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(secure(stream, peer, ctx.clone(), shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "controller listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// One connection: the TLS handshake and SASL authentication its
/// listener asks for, then its requests.
async fn secure(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<ListenerContext>,
    shutdown: ShutdownSignal,
) {
    let idle = Duration::from_millis(ctx.config.connections_max_idle_ms.max(1) as u64);
    let Some(tls) = ctx.tls.clone() else {
        let principal = KafkaPrincipal::anonymous();
        return authenticate_and_serve(stream, peer, principal, ctx, idle, shutdown).await;
    };
    let handshake = tokio::select! {
        _ = shutdown.wait() => return,
        h = tls.handshake(stream, peer, idle.min(tls::HANDSHAKE_TIMEOUT)) => h,
    };
    match handshake {
        Ok((stream, principal)) => {
            authenticate_and_serve(stream, peer, principal, ctx, idle, shutdown).await
        }
        Err(e) => tracing::info!(%peer, listener = %ctx.name, "closing controller connection: {e}"),
    }
}

async fn authenticate_and_serve<S: AsyncRead + AsyncWrite + Unpin + Send>(
    stream: S,
    peer: SocketAddr,
    principal: KafkaPrincipal,
    ctx: Arc<ListenerContext>,
    idle: Duration,
    shutdown: ShutdownSignal,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let principal = if ctx.protocol.uses_sasl() {
        let auth = AuthContext {
            server: AuthServer::Controller(ctx.apis.clone()),
            config: ctx.config.clone(),
            sasl: ctx.sasl.clone(),
            scram: ctx.scram.clone(),
            listener: ctx.name.clone(),
            peer,
            security_protocol: ctx.protocol,
        };
        let mut socket = Socket(&mut wr);
        let outcome = tokio::select! {
            biased;
            _ = shutdown.wait() => return,
            r = authenticate(&mut rd, &mut socket, &auth, idle, None) => r,
        };
        match outcome {
            Ok(session) => session.principal,
            Err(reason) => {
                let _ = wr.shutdown().await;
                tracing::info!(%peer, listener = %ctx.name, reason = %reason, "controller connection closed: Authentication failed");
                return;
            }
        }
    } else {
        principal
    };
    let caller = Caller {
        principal,
        host: peer.ip(),
    };
    serve(rd, wr, caller, ctx.apis.clone(), idle, shutdown).await
}

/// One connection: requests answered in order (a voter's or broker's
/// client sends one at a time). A connection silent for
/// `connections.max.idle.ms` is closed, as Kafka's controller closes it; a
/// peer that closes while its request is handled (its client timed out
/// waiting for a slow commit, and reconnected) has its socket closed at
/// once, and the request still completes.
async fn serve<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    stream: R,
    mut out: W,
    caller: Caller,
    apis: Arc<ControllerApis>,
    idle: Duration,
    shutdown: ShutdownSignal,
) {
    let mut stream = BufReader::with_capacity(READ_BUFFER_BYTES, stream);
    loop {
        let frame = tokio::select! {
            _ = shutdown.wait() => return,
            r = read_frame_within(&mut stream, MAX_REQUEST_BYTES, idle) => match r {
                Ok(f) => f.freeze(),
                Err(FrameError::Closed) => return,
                Err(e) => {
                    tracing::debug!(host = %caller.host, error = %e, "controller listener: closing the connection");
                    return;
                }
            },
        };
        let mut handling = {
            let (apis, caller) = (apis.clone(), caller.clone());
            Box::pin(async move { apis.handle(frame, &caller).await })
        };
        let handled = tokio::select! {
            biased;
            r = &mut handling => r,
            () = peer_gone(&mut stream) => {
                tokio::spawn(async move {
                    let _ = handling.await;
                });
                tracing::debug!(host = %caller.host, "controller listener: closed by the peer during a request");
                return;
            }
        };
        match handled {
            Ok(resp) => {
                if out.write_all(&resp).await.is_err() || out.flush().await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!("controller listener: {e:#}; closing the connection");
                return;
            }
        }
    }
}

/// Logs each change of the active controller as this voter sees it (Kafka's
/// "Completed transition to Leader/Follower" lines), which operators and
/// the failover tests read.
async fn log_leadership(
    mut metrics: tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, openraft::BasicNode>>,
    node_id: i32,
) {
    let mut last: Option<(Option<u64>, u64)> = None;
    loop {
        let now = {
            let m = metrics.borrow_and_update();
            (m.current_leader, m.current_term)
        };
        if last.is_none_or(|l| l.0 != now.0) {
            match now.0 {
                Some(l) if l == node_id as u64 => {
                    tracing::info!(term = now.1, "this node is now the active controller")
                }
                Some(l) => tracing::info!(
                    active_controller = l,
                    term = now.1,
                    "active controller changed"
                ),
                None => tracing::info!(term = now.1, "no active controller known"),
            }
        }
        last = Some(now);
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
