//! The CLI's Kafka client: bootstrap (the first of `--bootstrap-server`
//! that answers ApiVersions), version negotiation (each request at the
//! highest version both this client and the broker speak, capped at the
//! version the command was written for), metadata with the brokers'
//! addresses, and routing to a partition's leader or a group's coordinator.
//! One [`NetworkClient`] per broker, secured as `--command-config` says
//! with the same [`ClientSecurity`] the broker's own inter-node clients use.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, GroupId, ListOffsetsRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};

use super::{CliError, Common};
use crate::clients::channel_builder::SecuritySource;
use crate::clients::{ClientLimits, ClientSecurity, NetworkClient};
use crate::security::SecurityProtocol;

const CLIENT_ID: &str = "kastle-cli";

/// ListOffsets' special timestamps.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

pub fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(sb(s))
}

pub fn group_id(s: &str) -> GroupId {
    GroupId(sb(s))
}

pub struct Client {
    security: Arc<ClientSecurity>,
    limits: ClientLimits,
    /// The address that answered the bootstrap.
    bootstrap: String,
    conns: HashMap<String, NetworkClient>,
    /// Node id to "host:port", from the last metadata.
    pub brokers: BTreeMap<i32, String>,
    /// The broker's (min, max) version of each API key.
    versions: HashMap<i16, (i16, i16)>,
}

/// What `--command-config` (or else the profile) says, as Kafka's client
/// properties.
fn security(common: &Common) -> Result<Arc<ClientSecurity>, CliError> {
    let (path, props): (String, HashMap<String, String>) =
        match (&common.command_config, &common.profile) {
            (Some(path), _) => {
                let props = super::profile::read_properties(std::path::Path::new(path))
                    .map_err(|e| CliError::Usage(format!("--command-config {e}")))?;
                (path.clone(), props.into_iter().collect())
            }
            (None, Some(p)) => (
                format!("profile {}", p.name),
                p.properties.clone().into_iter().collect(),
            ),
            (None, None) => return Ok(ClientSecurity::plaintext()),
        };
    let protocol: SecurityProtocol = props
        .get("security.protocol")
        .map(|p| p.parse())
        .transpose()
        .map_err(|e| CliError::Usage(format!("{path}: security.protocol: {e}")))?
        .unwrap_or(SecurityProtocol::Plaintext);
    let value = |k: &str| props.get(k).cloned();
    ClientSecurity::build(&SecuritySource {
        listener: protocol.name(),
        protocol,
        mechanism_key: "sasl.mechanism",
        value: &value,
    })
    .map_err(|e| CliError::Usage(format!("{path}: {e}")))
}

impl Client {
    /// Connects to the first bootstrap address that answers ApiVersions.
    pub async fn connect(common: &Common) -> Result<Client, CliError> {
        let security = security(common)?;
        let limits = ClientLimits {
            connect_timeout: common.timeout.min(Duration::from_secs(10)),
            request_timeout: common.timeout,
            max_response_bytes: 256 * 1024 * 1024,
        };
        let mut last = String::from("no bootstrap server given");
        for addr in common
            .bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            let addr = if addr.contains(':') {
                addr.to_string()
            } else {
                format!("{addr}:9092")
            };
            let mut client = Client {
                security: security.clone(),
                limits,
                bootstrap: addr.clone(),
                conns: HashMap::new(),
                brokers: BTreeMap::new(),
                versions: HashMap::new(),
            };
            match client.api_versions(&addr).await {
                Ok(()) => return Ok(client),
                Err(e) => last = e.to_string(),
            }
        }
        Err(CliError::Other(last))
    }

    async fn api_versions(&mut self, addr: &str) -> Result<(), CliError> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(sb("kastle-cli"))
            .with_client_software_version(sb(env!("CARGO_PKG_VERSION")));
        let mut resp = self.raw_send(addr, &req, 3).await?;
        if resp.error_code == 35 {
            // UNSUPPORTED_VERSION: an old broker; v0 has no flexible fields.
            resp = self.raw_send(addr, &req, 0).await?;
        }
        super::check(|| format!("ApiVersions to {addr}"), resp.error_code, None)?;
        self.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    /// The version to send `R` at: the highest both sides speak, at most
    /// `cap` (the version the command's fields were written for).
    pub fn version<R: Request>(&self, cap: i16) -> Result<i16, CliError> {
        let (min, max) = self.versions.get(&R::KEY).copied().ok_or_else(|| {
            CliError::Other(format!("the broker does not support API key {}", R::KEY))
        })?;
        let v = cap.min(max).min(R::VERSIONS.max);
        if v < min || v < R::VERSIONS.min {
            return Err(CliError::Other(format!(
                "no common version of API key {} (broker {min}..{max}, client {}..{cap})",
                R::KEY,
                R::VERSIONS.min
            )));
        }
        Ok(v)
    }

    async fn raw_send<R: Request>(
        &mut self,
        addr: &str,
        req: &R,
        version: i16,
    ) -> Result<R::Response, CliError> {
        let (security, limits) = (self.security.clone(), self.limits);
        let conn = self
            .conns
            .entry(addr.to_string())
            .or_insert_with(|| NetworkClient::new(addr, CLIENT_ID, limits).with_security(security));
        conn.send(req, version)
            .await
            .map_err(|e| CliError::Other(e.to_string()))
    }

    /// Sends `req` to `addr` at the negotiated version (at most `cap`);
    /// returns the response and the version it was sent at.
    pub async fn send_to<R: Request>(
        &mut self,
        addr: &str,
        req: &R,
        cap: i16,
    ) -> Result<(R::Response, i16), CliError> {
        let v = self.version::<R>(cap)?;
        Ok((self.raw_send(addr, req, v).await?, v))
    }

    /// Sends to the bootstrap broker.
    pub async fn send<R: Request>(
        &mut self,
        req: &R,
        cap: i16,
    ) -> Result<(R::Response, i16), CliError> {
        let addr = self.bootstrap.clone();
        self.send_to(&addr, req, cap).await
    }

    /// Sends to broker `node` (from the last metadata).
    pub async fn send_node<R: Request>(
        &mut self,
        node: i32,
        req: &R,
        cap: i16,
    ) -> Result<(R::Response, i16), CliError> {
        let addr = self.node_addr(node)?;
        self.send_to(&addr, req, cap).await
    }

    pub fn node_addr(&self, node: i32) -> Result<String, CliError> {
        self.brokers.get(&node).cloned().ok_or_else(|| {
            CliError::Other(format!(
                "broker {node} is not in the cluster's metadata (leader or coordinator not available)"
            ))
        })
    }

    /// Metadata for `topics` (`None`: all topics); remembers the brokers.
    pub async fn metadata(
        &mut self,
        topics: Option<&[&str]>,
    ) -> Result<MetadataResponse, CliError> {
        let req = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let (resp, _) = self.send(&req, 12).await?;
        self.brokers = resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, address(&b.host, b.port)))
            .collect();
        Ok(resp)
    }

    /// The partitions of `topic` and their leaders (-1: none); an unknown
    /// topic is an error with Kafka's code. A topic just created may have
    /// no leaders yet (LEADER_NOT_AVAILABLE): asked again for a few
    /// seconds.
    pub async fn leaders(&mut self, topic: &str) -> Result<BTreeMap<i32, i32>, CliError> {
        let mut attempt = 0;
        loop {
            let md = self.metadata(Some(&[topic])).await?;
            let t = md
                .topics
                .iter()
                .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(topic))
                .ok_or_else(|| CliError::Other(format!("no metadata for topic {topic}")))?;
            let leaderless = t.error_code == 5 || t.partitions.iter().any(|p| p.leader_id.0 < 0);
            if leaderless && attempt < 20 {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            super::check(|| format!("topic {topic}"), t.error_code, None)?;
            return Ok(t
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.leader_id.0))
                .collect());
        }
    }

    /// The coordinator of group `group` (FindCoordinator, retried while
    /// the coordinator is loading).
    pub async fn coordinator(&mut self, group: &str) -> Result<String, CliError> {
        let v = self.version::<FindCoordinatorRequest>(4)?;
        for attempt in 0.. {
            let mut req = FindCoordinatorRequest::default().with_key_type(0);
            if v >= 4 {
                req.coordinator_keys = vec![sb(group)];
            } else {
                req.key = sb(group);
            }
            let (resp, _) = self.send(&req, v).await?;
            let (code, message, host, port) = match resp.coordinators.first() {
                Some(c) if v >= 4 => (
                    c.error_code,
                    c.error_message.clone(),
                    c.host.clone(),
                    c.port,
                ),
                _ => (
                    resp.error_code,
                    resp.error_message.clone(),
                    resp.host.clone(),
                    resp.port,
                ),
            };
            // COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE
            if (code == 14 || code == 15) && attempt < 20 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            super::check(
                || format!("finding the coordinator of group {group}"),
                code,
                message.map(|m| m.to_string()),
            )?;
            return Ok(address(&host, port));
        }
        Err(CliError::Other(format!("no coordinator for group {group}")))
    }

    /// ListOffsets at `timestamp` (or [`LATEST`]/[`EARLIEST`]) for the
    /// given partitions of `topic`, each asked of its leader: partition to
    /// (offset, timestamp). An offset of -1 means no record at or after the
    /// timestamp.
    pub async fn list_offsets(
        &mut self,
        topic: &str,
        leaders: &BTreeMap<i32, i32>,
        partitions: &[i32],
        timestamp: i64,
        isolation_level: i8,
    ) -> Result<BTreeMap<i32, (i64, i64)>, CliError> {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in partitions {
            let leader = leaders
                .get(p)
                .copied()
                .ok_or_else(|| CliError::kafka(format!("partition {topic}-{p}"), 3, None))?;
            by_leader.entry(leader).or_default().push(*p);
        }
        let mut out = BTreeMap::new();
        for (leader, ps) in by_leader {
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(isolation_level)
                .with_timeout_ms(
                    self.limits
                        .request_timeout
                        .as_millis()
                        .min(i32::MAX as u128) as i32,
                )
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(
                        ps.iter()
                            .map(|p| {
                                ListOffsetsPartition::default()
                                    .with_partition_index(*p)
                                    .with_current_leader_epoch(-1)
                                    .with_timestamp(timestamp)
                            })
                            .collect(),
                    )]);
            let (resp, _) = self.send_node(leader, &req, 7).await?;
            for t in resp.topics {
                for p in t.partitions {
                    super::check(
                        || format!("ListOffsets for {topic}-{}", p.partition_index),
                        p.error_code,
                        None,
                    )?;
                    out.insert(p.partition_index, (p.offset, p.timestamp));
                }
            }
        }
        Ok(out)
    }
}

/// "host:port", with an IPv6 host in brackets.
pub fn address(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
