//! `BrokerServer`: builds the broker from its configuration and wires its
//! services, top to bottom, the only place that knows them all: the log
//! directory, the `ReplicaManager`, producer ids and quotas, the group and
//! transaction coordinators, the request handlers (`KafkaApis`), the client
//! listeners, the Prometheus exporter and the web console. It also runs the shutdown
//! sequence. Nothing below this module holds a reference back up.

pub mod cluster;
pub mod console;
pub mod controller;
pub mod prometheus;
#[cfg(test)]
mod replication_tests;

use std::sync::Arc;
use std::time::Duration;

use crate::broker::authorizer::{Authorizer, STANDARD_AUTHORIZER};
use crate::broker::config_repository::ConfigRepository;
use crate::broker::dynamic_config::{DynamicBrokerConfig, Reconfigurable};
use crate::broker::fetch_session::{FetchSessionCache, MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS};
use crate::broker::finalized_features::FinalizedFeatureStore;
use crate::broker::log_dir::LogDir;
use crate::broker::metadata_cache::MetadataCache;
use crate::broker::producer_ids::ProducerIdManager;
use crate::broker::quotas::ClientQuotaManager;
use crate::broker::scram_credentials::ScramCredentialStore;
use crate::broker::ReplicaManager;
use crate::clients::network_client::ClientLimits;
use crate::clients::ClientSecurity;
use crate::config::BrokerConfig;
use crate::coordinator::group::group_config::GroupConfigManager;
use crate::coordinator::group::{self, GroupConfig, GroupCoordinator, OFFSETS_TOPIC};
use crate::coordinator::share::{ShareCoordinator, ShareStateConfig, SHARE_STATE_TOPIC};
use crate::coordinator::txn::add_partitions_manager::AddPartitionsToTxnManager;
use crate::coordinator::txn::marker_channel::ClusterTxnMarkerWriter;
use crate::coordinator::txn::transaction_log::TXN_TOPIC;
use crate::coordinator::txn::{TransactionCoordinator, TxnConfig};
use crate::handlers::write_txn_markers::LocalTxnMarkerWriter;
use crate::handlers::KafkaApis;
use crate::metrics::BrokerMetrics;
use crate::network::connection_quotas::ConnectionQuotas;
use crate::network::server::{self as network, BoundListener};
use crate::protocol::versions::bootstrap_levels;
use crate::security::acl::AuthorizerSettings;
use crate::util::shutdown::{self, ShutdownTrigger};

/// How long connections may take to send what they owe once shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub struct BrokerServer {
    pub apis: Arc<KafkaApis>,
    log_dir: LogDir,
    listeners: Vec<BoundListener>,
    connection_quotas: Arc<ConnectionQuotas>,
    shutdown: ShutdownTrigger,
}

impl BrokerServer {
    /// Opens the log directory and every log, loads both coordinators (from
    /// their internal topics when these exist; a standalone broker creates
    /// each on its first FindCoordinator, as Kafka does), binds the client
    /// listeners and the metrics endpoint, and starts the background tasks.
    /// Must run inside the tokio runtime.
    pub async fn start(config: BrokerConfig) -> anyhow::Result<BrokerServer> {
        BrokerServer::start_with(config, None, ClientSecurity::plaintext()).await
    }

    /// A broker of a cluster: Metadata and DescribeCluster answer from the
    /// `MetadataCache` its lifecycle manager keeps; it reaches other brokers
    /// as `inter_broker` says (the inter-broker listener's security).
    pub async fn start_in_cluster(
        config: BrokerConfig,
        cluster: Arc<MetadataCache>,
        inter_broker: Arc<ClientSecurity>,
    ) -> anyhow::Result<BrokerServer> {
        BrokerServer::start_with(config, Some(cluster), inter_broker).await
    }

    async fn start_with(
        config: BrokerConfig,
        cluster: Option<Arc<MetadataCache>>,
        inter_broker: Arc<ClientSecurity>,
    ) -> anyhow::Result<BrokerServer> {
        let static_config = Arc::new(config);
        let (trigger, signal) = shutdown::channel();
        // A new standalone directory records the feature levels it starts
        // at; a cluster's are the metadata log's (`QuorumController`).
        let standalone = cluster.is_none();
        let log_dir = LogDir::open(
            &static_config.log_dir,
            static_config.node_id,
            static_config.cluster_id.as_deref(),
            |dir| {
                if standalone {
                    let levels = bootstrap_levels(&static_config.format_features);
                    FinalizedFeatureStore::format(dir, &levels)
                } else {
                    Ok(())
                }
            },
        )?;
        // A directory Apache Kafka wrote: its metadata log becomes this
        // standalone node's files first (a cluster node keeps its own log).
        if cluster.is_none() {
            crate::broker::kafka_import::import_if_present(
                &static_config,
                log_dir.directory_id.as_deref(),
            )?;
        }
        // The dynamic broker configs earlier runs stored go over the static
        // ones before anything reads them (Kafka reads them from its
        // metadata log first too).
        let repository = Arc::new(ConfigRepository::load(
            &static_config.log_dir,
            static_config.node_id,
        )?);
        // A cluster broker's come from the metadata image instead.
        let dynamic_config = Arc::new(if cluster.is_some() {
            DynamicBrokerConfig::for_cluster(static_config.clone(), repository.clone())
        } else {
            DynamicBrokerConfig::load(static_config.clone(), repository.clone())?
        });
        let config = dynamic_config.current();
        // The static limits are checked strictly (an unresolvable host stops
        // the start); dynamic ones go over them leniently, as they apply at
        // run time, so a stored value cannot keep the broker from starting.
        let connection_quotas = Arc::new(ConnectionQuotas::new(&static_config)?);
        connection_quotas.reconfigure(&config);
        let replicas =
            ReplicaManager::open(config.clone(), log_dir.needs_recovery, signal.clone())?;
        replicas.fetchers.set_client_security(inter_broker.clone());
        if cluster.is_some() {
            // Loaded logs serve nothing until the first image says who leads.
            replicas.await_metadata();
            replicas.start_high_watermark_checkpoints();
        }
        dynamic_config.add_reconfigurable(replicas.clone());
        dynamic_config.add_reconfigurable(connection_quotas.clone());
        // A cluster broker's group configs follow the metadata image.
        let group_configs = Arc::new(match &cluster {
            Some(cache) => {
                GroupConfigManager::for_cluster(repository, dynamic_config.clone(), cache.clone())
            }
            None => GroupConfigManager::new(repository, dynamic_config.clone()),
        });
        log_dir.mark_running()?;
        // A cluster broker's producer ids come from the controller's blocks
        // (connected once it registers); a standalone node keeps its file.
        let producer_ids = Arc::new(if cluster.is_some() {
            ProducerIdManager::from_controller(config.node_id)
        } else {
            ProducerIdManager::load(&config.log_dir)?
        });
        // A cluster broker's quotas and SCRAM credentials follow the
        // metadata image; a standalone node keeps its files.
        let (quotas, scram) = if cluster.is_some() {
            (
                ClientQuotaManager::for_cluster(&config),
                ScramCredentialStore::for_cluster(),
            )
        } else {
            (
                ClientQuotaManager::load(&config.log_dir, &config)?,
                ScramCredentialStore::load(&config.log_dir)?,
            )
        };
        let (quotas, scram) = (Arc::new(quotas), Arc::new(scram));
        let sasl = Arc::new(sasl_settings(&config)?);
        let authorizer = load_authorizer(&config, cluster.is_some())?;

        let (partitions, _) = group::coordinator::offsets_topic_spec(&config);
        let groups = if cluster.is_some() {
            // `__consumer_offsets` is created through the controller and
            // its partitions load as this broker is elected their leader.
            GroupCoordinator::for_cluster(
                GroupConfig::from_broker(&config),
                replicas.clone(),
                partitions,
            )
        } else if let Some(offsets_topic) = replicas.topics.get(OFFSETS_TOPIC) {
            // A restart: the groups an earlier run wrote load now.
            GroupCoordinator::load(GroupConfig::from_broker(&config), offsets_topic)?
        } else {
            // Created by the first FindCoordinator for a group (as Kafka
            // does), not here: creating its partitions costs a first start
            // tens of milliseconds of directory syncs.
            GroupCoordinator::standalone_without_topic(
                GroupConfig::from_broker(&config),
                partitions,
            )
        };

        let txn_config = TxnConfig::from_broker(&config);
        let markers = Arc::new(LocalTxnMarkerWriter {
            replicas: replicas.clone(),
            groups: groups.clone(),
        });
        let txns = if let Some(cache) = &cluster {
            // `__transaction_state` is created through the controller and
            // its partitions load as this broker is elected their leader;
            // markers go to each partition's current leader.
            let markers = Arc::new(ClusterTxnMarkerWriter::new(
                config.node_id,
                cache.clone(),
                config.kraft.inter_broker_listener_name.clone(),
                markers,
                inter_broker.clone(),
            ));
            TransactionCoordinator::for_cluster(
                txn_config,
                replicas.clone(),
                producer_ids.clone(),
                markers,
            )
        } else if let Some(txn_topic) = replicas.topics.get(TXN_TOPIC) {
            TransactionCoordinator::load(txn_config, txn_topic, producer_ids.clone(), markers)?
        } else {
            // Created by the first FindCoordinator for a transactional id.
            TransactionCoordinator::standalone_without_topic(
                txn_config,
                producer_ids.clone(),
                markers,
            )
        };

        let share_config = ShareStateConfig::from_broker(&config);
        let share_state = match replicas.topics.get(SHARE_STATE_TOPIC) {
            // A restart: the share partitions' states load now (a cluster
            // broker keeps them in memory; see `coordinator::share`).
            Some(topic) if cluster.is_none() => ShareCoordinator::load(share_config, topic)?,
            // Created by the first write of a share partition's state.
            _ => ShareCoordinator::standalone_without_topic(share_config),
        };

        let metrics = Arc::new(BrokerMetrics::new(
            prometheus::listener_spec(&config).is_some(),
        ));
        let fetch_sessions = Arc::new(FetchSessionCache::new(
            config.max_incremental_fetch_session_cache_slots,
            MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS,
        ));
        let txn_verifier = Arc::new(AddPartitionsToTxnManager::new(
            config.node_id,
            txns.clone(),
            cluster
                .as_ref()
                .map(|c| (c.clone(), config.kraft.inter_broker_listener_name.clone())),
            ClientLimits::default(),
            inter_broker.clone(),
        ));
        let rack_aware_reads = crate::broker::replica_selector::rack_aware_from_config(
            config.string("replica.selector.class"),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        // A standalone broker keeps its feature levels; a cluster's are in
        // the metadata image.
        let features = match &cluster {
            Some(_) => None,
            None => Some(Arc::new(FinalizedFeatureStore::load(&config.log_dir)?)),
        };
        let apis = Arc::new(KafkaApis {
            config: config.clone(),
            features,
            fetch_sessions: fetch_sessions.clone(),
            share: Arc::new(crate::broker::share::SharePartitionManager::new(
                usize::try_from(config.int("group.share.max.share.sessions"))
                    .unwrap_or(1)
                    .max(1),
            )),
            share_state,
            dynamic_config,
            group_configs,
            cluster_id: log_dir.cluster_id.clone(),
            replicas: replicas.clone(),
            groups: groups.clone(),
            txns: txns.clone(),
            txn_verifier,
            rack_aware_reads,
            producer_ids,
            quotas: quotas.clone(),
            metrics: metrics.clone(),
            sasl,
            scram,
            authorizer,
            cluster,
            auto_topic_creation: Default::default(),
            internal_topics: Default::default(),
        });

        replicas.start();
        groups.start();
        txns.start(signal.clone());
        // /metrics is bound before the Kafka listeners, so that once a
        // client can connect the scrape endpoint answers too (operators and
        // tests take the Kafka port as the sign the broker is up).
        prometheus::http::start(&Arc::new(prometheus::Sources {
            replicas,
            groups,
            metrics,
            quotas,
            fetch_sessions,
        }))
        .await?;
        // The web console, like /metrics, answers once clients can connect.
        console::http::start(&apis).await?;
        let listeners = network::bind(&config).await?;
        // TLS listeners take new keystores and truststores at run time.
        for tls in listeners.iter().filter_map(|(_, _, tls)| tls.clone()) {
            apis.dynamic_config.add_reconfigurable(tls);
        }
        Ok(BrokerServer {
            apis,
            log_dir,
            listeners,
            connection_quotas,
            shutdown: trigger,
        })
    }

    /// Serves clients until `stop` resolves, then shuts down: long polls
    /// answer, connections drain, every log is flushed and closed, and the
    /// clean-shutdown marker is written.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let BrokerServer {
            apis,
            log_dir,
            listeners,
            connection_quotas,
            shutdown,
        } = self;
        let serving = tokio::spawn(network::serve(
            apis.clone(),
            listeners,
            connection_quotas,
            shutdown.signal(),
            DRAIN_TIMEOUT,
        ));
        stop.await;
        tracing::info!("shutting down");
        shutdown.fire();
        apis.groups.begin_shutdown();
        let _ = serving.await;
        let replicas = apis.replicas.clone();
        let clean = tokio::task::spawn_blocking(move || replicas.shutdown())
            .await
            .unwrap_or(false);
        if !clean {
            tracing::error!("some logs failed to close; the next start will run recovery");
            return;
        }
        match log_dir.mark_clean_shutdown() {
            Ok(()) => tracing::info!("logs closed cleanly"),
            Err(e) => tracing::error!(error = %e, "writing the clean shutdown marker"),
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install SIGTERM handler");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Builds each SASL listener's settings from the configuration, the JAAS
/// file `KAFKA_OPTS` names (`-Djava.security.auth.login.config=`, the
/// apache and Confluent images' convention) and bitnami's user variables.
fn sasl_settings(config: &BrokerConfig) -> anyhow::Result<crate::security::sasl::SaslSettings> {
    let listeners: Vec<(String, bool)> = config
        .listener_protocols
        .iter()
        .map(|(l, p)| (l.clone(), p.uses_sasl()))
        .collect();
    let jaas_file = std::env::var("KAFKA_OPTS")
        .ok()
        .and_then(|o| crate::security::jaas::jaas_file_from_jvm_opts(&o));
    crate::security::sasl::SaslSettings::build(
        &listeners,
        |k| config.value(k).map(str::to_string),
        jaas_file.as_deref().map(std::path::Path::new),
        |k| std::env::var(k).ok(),
    )
    .map_err(|e| anyhow::anyhow!(e))
}

/// The authorizer `authorizer.class.name` names: none when empty, Kafka's
/// `StandardAuthorizer` (its ACLs loaded; a cluster broker's come with
/// the metadata image), an error for any other class.
pub(crate) fn load_authorizer(
    config: &BrokerConfig,
    in_cluster: bool,
) -> anyhow::Result<Option<Arc<Authorizer>>> {
    let class = config.string("authorizer.class.name").trim();
    if class.is_empty() {
        return Ok(None);
    }
    if class != STANDARD_AUTHORIZER {
        anyhow::bail!(
            "authorizer.class.name: {class} is not supported (only {STANDARD_AUTHORIZER})"
        );
    }
    // Kafka hands the authorizer the broker's original properties; these
    // two keys are the authorizer's own, outside the broker key table.
    let originals = config.originals();
    let super_users = originals
        .get("super.users")
        .map(String::as_str)
        .unwrap_or("");
    let allow_everyone = originals
        .get("allow.everyone.if.no.acl.found")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let settings = AuthorizerSettings::new(super_users, allow_everyone);
    if in_cluster {
        return Ok(Some(Arc::new(Authorizer::for_cluster(settings))));
    }
    Ok(Some(Arc::new(Authorizer::load(&config.log_dir, settings)?)))
}
