//! Broker services: the partitions this node hosts and the state around
//! them, behind methods that keep their invariants. Coordinators and
//! handlers call in here; only here calls storage.
//!
//! - [`replica_manager`]: `ReplicaManager`, the entry point: loads, creates
//!   and closes partitions, runs log maintenance.
//! - [`topics`] / [`topic_config`]: the topic registry and topic configs.
//! - [`partition`]: one partition's single-writer lock, high watermark, LSO
//!   and group-commit flusher.
//! - [`log_manager`]: retention, delayed deletion, the cleaner loop.
//! - [`log_dir`]: the directory lock, `meta.properties`, clean shutdown.
//! - [`producer_ids`]: producer id blocks (a cluster broker's from the
//!   controller: [`rpc_producer_id_manager`]). [`quotas`]: client quotas.
//! - [`dynamic_config`]: broker configs changed at run time;
//!   [`config_repository`]: persisted BROKER and GROUP configs;
//!   [`config_helper`]: configs as DescribeConfigs and CreateTopics show them;
//!   [`group_config`]: the GROUP config keys and their validation.
//! - [`authorizer`]: the ACLs, persisted, and the authorization decision.
//! - [`alter_partition`]: how a leader proposes ISR changes to the controller.
//! - [`fetch_session`]: KIP-227 incremental fetch sessions (`FetchSessionCache`).
//! - [`share`]: KIP-932 share partitions and share sessions (`SharePartitionManager`).

pub mod alter_partition;
pub mod authorizer;
pub mod config_helper;
pub mod config_publisher;
pub mod config_repository;
pub mod dynamic_config;
pub mod fetch_session;
pub mod finalized_features;
pub mod group_config;
pub mod kafka_import;
pub mod lifecycle;
pub mod log_dir;
pub mod log_dir_failure;
pub mod log_flusher;
pub mod log_manager;
pub mod metadata_cache;
pub mod metadata_publisher;
pub mod parallel;
pub mod partition;
pub mod producer_ids;
pub mod quota_managers;
pub mod quotas;
pub mod replica_fetcher;
pub mod replica_fetcher_manager;
pub mod replica_manager;
pub mod replica_selector;
pub mod replication_quota_manager;
pub mod rpc_producer_id_manager;
pub mod scram_credentials;
pub mod share;
pub mod topic_config;
pub mod topics;

pub use replica_manager::ReplicaManager;
