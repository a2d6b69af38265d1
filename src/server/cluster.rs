//! A node of a cluster (`process.roles` naming other nodes): the wiring of
//! the controller role (`ControllerServer`), the broker role
//! (`BrokerServer` with a `MetadataCache` it answers Metadata and
//! DescribeCluster from) and the broker's `BrokerLifecycleManager`
//! (registration, heartbeats, metadata fetching, controlled shutdown),
//! which also carries the producer-id manager's AllocateProducerIds.
//! A standalone node never comes here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::broker::config_publisher::apply_configs;
use crate::broker::lifecycle::{
    BrokerIdentity, BrokerLifecycleManager, ControllerAlterPartition, ControllerProducerIds,
    ControllerSet,
};
use crate::broker::log_dir::LogDir;
use crate::broker::metadata_cache::MetadataCache;
use crate::broker::metadata_publisher::local_changes;
use crate::config::BrokerConfig;
use crate::coordinator::group::OFFSETS_TOPIC;
use crate::coordinator::txn::transaction_log::TXN_TOPIC;
use crate::metadata::MetadataImage;
use crate::security::SecurityProtocol;
use crate::util::shutdown;

use super::controller::ControllerServer;
use super::BrokerServer;

/// How long a controlled shutdown may wait for the controller's go.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Kafka's security protocol ids (`SecurityProtocol.id`).
fn protocol_id(p: SecurityProtocol) -> i16 {
    match p {
        SecurityProtocol::Plaintext => 0,
        SecurityProtocol::Ssl => 1,
        SecurityProtocol::SaslPlaintext => 2,
        SecurityProtocol::SaslSsl => 3,
    }
}

/// `topic`'s partition count in `image` (0 when it does not exist) and the
/// partitions `node_id` leads, with their leader epochs.
fn led_partitions(image: &MetadataImage, topic: &str, node_id: i32) -> (i32, BTreeMap<i32, i32>) {
    let Some(t) = image.topic_by_name(topic) else {
        return (0, BTreeMap::new());
    };
    let count = i32::try_from(t.partitions.len()).unwrap_or(i32::MAX);
    let led = t
        .partitions
        .iter()
        .filter(|(_, r)| r.leader == node_id)
        .map(|(p, r)| (*p, r.leader_epoch))
        .collect();
    (count, led)
}

pub struct ClusterNode {
    controller: Option<ControllerServer>,
    broker: Option<BrokerServer>,
    lifecycle: Option<Arc<BrokerLifecycleManager>>,
    /// A controller-only node holds its log directory's lock.
    _log_dir: Option<LogDir>,
    controller_shutdown: shutdown::ShutdownTrigger,
    fatal: tokio::sync::mpsc::Receiver<String>,
    pub node_id: i32,
    pub cluster_id: String,
}

impl ClusterNode {
    pub async fn start(config: BrokerConfig) -> anyhow::Result<ClusterNode> {
        let k = config.kraft.clone();
        let (controller_shutdown, controller_signal) = shutdown::channel();
        let (fatal_tx, fatal) = tokio::sync::mpsc::channel(1);
        let node_id = config.node_id;
        let cache = Arc::new(MetadataCache::new());
        // How this node reaches brokers and controllers (TLS, SASL), checked
        // before anything starts.
        let channels = crate::handlers::forwarding::channel_builders(&config)
            .map_err(|e| anyhow::anyhow!("inter-node security: {e}"))?;
        let advertised: Vec<(String, String, u16, i16)> = config
            .advertised
            .iter()
            .map(|l| {
                let p = protocol_id(config.security_protocol_of(&l.name));
                (l.name.clone(), l.host.clone(), l.port, p)
            })
            .collect();
        let (broker, log_dir, cluster_id) = if k.roles.broker {
            let b = BrokerServer::start_in_cluster(
                config.clone(),
                cache.clone(),
                channels.inter_broker.clone(),
            )
            .await?;
            let id = b.apis.cluster_id.clone();
            (Some(b), None, id)
        } else {
            // A controller-only node: the cluster's levels are in the
            // metadata log, nothing to record here.
            let d = LogDir::open(
                &config.log_dir,
                node_id,
                config.cluster_id.as_deref(),
                |_| Ok(()),
            )?;
            let id = d.cluster_id.clone();
            (None, Some(d), id)
        };
        let controller = if k.roles.controller {
            Some(
                ControllerServer::start(
                    &config,
                    cluster_id.clone(),
                    channels.controller.clone(),
                    controller_signal,
                )
                .await?,
            )
        } else {
            None
        };
        let lifecycle = if k.roles.broker {
            let nodes: Vec<(i32, String)> = if k.voters.is_empty() {
                k.bootstrap_servers.iter().map(|a| (-1, a.addr())).collect()
            } else {
                k.voters.values().map(|a| (a.id, a.addr())).collect()
            };
            let m = BrokerLifecycleManager::new(
                BrokerIdentity {
                    node_id,
                    cluster_id: cluster_id.clone(),
                    listeners: advertised,
                    rack: k.rack.clone(),
                },
                ControllerSet::new(nodes),
                Duration::from_millis(k.broker_heartbeat_interval_ms.max(1) as u64),
                // Half the session at most (Kafka's KAFKA-14392): a
                // controller that stops answering mid-request must leave
                // time to reach the next one before the session expires.
                Duration::from_millis(
                    k.request_timeout_ms
                        .min(k.broker_session_timeout_ms / 2)
                        .max(100) as u64,
                ),
                cache.clone(),
                channels.controller.clone(),
            );
            let runner = m.clone();
            // The broker's partitions follow the image: each fetched image
            // is diffed against the last and applied (Kafka's
            // `BrokerMetadataPublisher` → `ReplicaManager.applyDelta`).
            let replicas = broker.as_ref().map(|b| b.apis.replicas.clone());
            if let Some(r) = &replicas {
                r.set_alter_partition_manager(Arc::new(ControllerAlterPartition(m.clone())));
            }
            let dynamic_config = broker.as_ref().map(|b| b.apis.dynamic_config.clone());
            let groups = broker.as_ref().map(|b| b.apis.groups.clone());
            let producer_ids = broker.as_ref().map(|b| b.apis.producer_ids.clone());
            let txns = broker.as_ref().map(|b| b.apis.txns.clone());
            let quotas = broker.as_ref().map(|b| b.apis.quotas.clone());
            let scram = broker.as_ref().map(|b| b.apis.scram.clone());
            let authorizer = broker.as_ref().and_then(|b| b.apis.authorizer.clone());
            let inter_broker = k.inter_broker_listener_name.clone();
            tokio::spawn(async move {
                match runner.register().await {
                    Ok(epoch) => {
                        if let Some(r) = &replicas {
                            r.set_broker_epoch(epoch);
                        }
                        // Producer-id blocks need the broker's epoch.
                        if let Some(p) = &producer_ids {
                            p.connect(Arc::new(ControllerProducerIds(runner.clone())));
                        }
                        let fetcher = runner.clone();
                        tokio::spawn(fetcher.run_metadata_fetcher(move |old, new| {
                            // The cluster's ACLs (a no-op unless they changed).
                            if let Some(a) = &authorizer {
                                a.follow_image(old, new);
                            }
                            let Some(r) = &replicas else {
                                return;
                            };
                            // SCRAM credentials and client quotas are the
                            // cluster's: the broker's stores follow the image.
                            if let (Some(s), true) = (&scram, old.scram != new.scram) {
                                s.follow_image(new);
                            }
                            if let (Some(q), true) =
                                (&quotas, old.client_quotas != new.client_quotas)
                            {
                                q.follow_image(new);
                            }
                            let changes = local_changes(old, new, node_id, &inter_broker);
                            let new_logs = !changes.is_empty();
                            if !changes.is_empty() {
                                if let Err(e) = r.apply_delta(changes) {
                                    tracing::error!("applying the metadata image: {e:#}");
                                }
                            }
                            // Configs follow the image (a new local log
                            // may have stale ones from an earlier run).
                            if let Some(d) = &dynamic_config {
                                if old.configs != new.configs || new_logs {
                                    apply_configs(new, node_id, d, r);
                                }
                            }
                            if old.brokers != new.brokers {
                                r.set_eligible_replicas(
                                    new.brokers
                                        .values()
                                        .filter(|b| !b.fenced && !b.in_controlled_shutdown)
                                        .map(|b| (b.id, b.epoch))
                                        .collect(),
                                );
                            }
                            // Then the coordinators follow their internal
                            // partitions' leadership (Kafka's publisher calls
                            // onElection/onResignation after applyDelta).
                            if let Some(g) = &groups {
                                let (count, led) = led_partitions(new, OFFSETS_TOPIC, node_id);
                                g.on_metadata(count, led);
                                // Kafka's `onMetadataUpdate`: the offsets of
                                // deleted topics, in the groups led here.
                                let deleted: Vec<String> = old
                                    .topics
                                    .iter()
                                    .filter(|(id, _)| !new.topics.contains_key(*id))
                                    .map(|(_, t)| t.name.clone())
                                    .collect();
                                if !deleted.is_empty() {
                                    g.on_topics_deleted(&deleted);
                                }
                            }
                            if let Some(t) = &txns {
                                let (count, led) = led_partitions(new, TXN_TOPIC, node_id);
                                t.on_metadata(count, led);
                            }
                        }));
                        runner.run_heartbeats().await;
                    }
                    Err(e) => {
                        let _ = fatal_tx.send(format!("{e:#}")).await;
                    }
                }
            });
            Some(m)
        } else {
            None
        };
        Ok(ClusterNode {
            controller,
            broker,
            lifecycle,
            _log_dir: log_dir,
            controller_shutdown,
            fatal,
            node_id,
            cluster_id,
        })
    }

    /// Serves until `stop` resolves (or the broker learns it cannot be
    /// part of this cluster), then shuts down: a controlled shutdown first,
    /// the broker, then the controller. `Err` names a fatal refusal.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) -> Result<(), String> {
        let ClusterNode {
            controller,
            broker,
            lifecycle,
            controller_shutdown,
            mut fatal,
            ..
        } = self;
        let (broker_stop_tx, broker_stop_rx) = tokio::sync::oneshot::channel::<()>();
        // The broker serves clients once it caught up with the metadata
        // log (Kafka's `BrokerServer` enables request processing after the
        // initial catch-up); a stop before that still closes its logs.
        let caught_up = lifecycle.clone();
        let broker_task = broker.map(|b| {
            tokio::spawn(async move {
                let mut stop = broker_stop_rx;
                if let Some(l) = caught_up {
                    tokio::select! {
                        _ = l.initial_catch_up() => {}
                        _ = &mut stop => return b.run(async {}).await,
                    }
                }
                b.run(async move {
                    let _ = stop.await;
                })
                .await
            })
        });
        let outcome = tokio::select! {
            _ = stop => Ok(()),
            Some(e) = fatal.recv() => Err(e),
        };
        if outcome.is_ok() {
            // A broker that never registered has nothing to hand over.
            if let Some(l) = lifecycle.as_ref().filter(|l| l.broker_epoch() >= 0) {
                l.controlled_shutdown(CONTROLLED_SHUTDOWN_TIMEOUT).await;
            }
        }
        let _ = broker_stop_tx.send(());
        if let Some(t) = broker_task {
            let _ = t.await;
        }
        controller_shutdown.fire();
        if let Some(c) = controller {
            c.shutdown().await;
        }
        outcome
    }
}
