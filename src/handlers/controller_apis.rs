//! `ControllerApis`: the requests a controller listener answers (Kafka's
//! class of the same name): ApiVersions with the controller's API set,
//! openraft's RPCs between voters (private key 32700), the brokers'
//! BrokerRegistration, BrokerHeartbeat and metadata fetch (private key
//! 32701), and the topic requests brokers forward (CreateTopics,
//! DeleteTopics, CreatePartitions, ElectLeaders) plus AlterPartition from partition
//! leaders, each decided by `controller::replication_control` and
//! committed by the `QuorumController`; AlterConfigs and
//! IncrementalAlterConfigs on TOPIC and BROKER resources
//! (`controller::configuration_control`); AllocateProducerIds hands brokers
//! producer-id blocks (`controller::producer_id_control`); the
//! AlterUserScramCredentials and AlterClientQuotas brokers forward are
//! decided by `controller::scram_control` / `controller::client_quota_control`;
//! CreateAcls and DeleteAcls brokers forward (`controller::acl_control`);
//! DescribeQuorum and DescribeCluster (`handlers::describe_quorum`);
//! UpdateFeatures (`controller::feature_control`).
//! A broker sends a client's request in an Envelope naming the client,
//! which the controller opens here and charges the mutation quota of
//! (`controller::controller_mutation_quota`).
//!
//! With an authorizer (`authorizer.class.name`; the controller's own,
//! following its metadata image, with `super.users`), every request but
//! ApiVersions needs CLUSTER_ACTION on the cluster of the principal the
//! listener authenticated (Kafka's `ControllerApis` asks it of the
//! broker-to-controller and controller-to-controller APIs and of
//! Envelope). BrokerRegistration, BrokerHeartbeat, AlterPartition,
//! AllocateProducerIds and Envelope are answered
//! CLUSTER_AUTHORIZATION_FAILED; the private keys (Raft, metadata fetch),
//! which have no error field, and the other APIs sent outside an Envelope
//! close the connection (stricter than Kafka, which authorizes those as
//! the client's own operations).

use std::net::IpAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    AllocateProducerIdsRequest, AlterConfigsRequest, AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse, AlterPartitionRequest, AlterPartitionResponse, ApiKey,
    ApiVersionsResponse, BrokerHeartbeatRequest, BrokerRegistrationRequest, CreateAclsRequest,
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteAclsRequest, DeleteTopicsRequest, DeleteTopicsResponse, ElectLeadersRequest,
    IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, UpdateFeaturesRequest,
};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterUserScramCredentialsRequest};
use kafka_protocol::messages::{DescribeClusterRequest, DescribeQuorumRequest};
use kafka_protocol::messages::{EnvelopeRequest, EnvelopeResponse};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::ResponseError;

use crate::broker::authorizer::Authorizer;
use crate::clients::private_apis::{
    MetadataFetchRequest, METADATA_FETCH_KEY, RAFT_RPC_KEY, RESPONSE_HEADER_VERSION,
};
use crate::controller::controller_mutation_quota::ControllerMutationQuotaManager;
use crate::controller::quorum_controller::QuorumController;
use crate::controller::{
    client_quota_control, configuration_control, feature_control, reassignment,
    replication_control, scram_control,
};
use crate::handlers::envelope::{self, ForwardedOrigin};
use crate::handlers::{acls, describe_quorum};
use crate::protocol::header::parse_request_header;
use crate::protocol::response::Written;
use crate::protocol::response::{encode_response, encode_with_header_version};
use crate::raft::network::RaftRpc;
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_NAME};
use crate::security::KafkaPrincipal;

/// The CLUSTER_AUTHORIZATION_FAILED answer of a cluster-action API
/// (Kafka's error response of each); `None` for an API without one here.
fn cluster_authorization_failed(
    key: i16,
    version: i16,
    cid: i32,
) -> anyhow::Result<Option<BytesMut>> {
    use kafka_protocol::messages::{
        AllocateProducerIdsResponse, BrokerHeartbeatResponse, BrokerRegistrationResponse,
    };
    let code = ResponseError::ClusterAuthorizationFailed.code();
    let Ok(api) = ApiKey::try_from(key) else {
        return Ok(None);
    };
    let range = api.valid_versions();
    if version < range.min || version > range.max {
        return Ok(None);
    }
    let frame = match api {
        ApiKey::BrokerRegistration => encode_response(
            cid,
            version,
            &BrokerRegistrationResponse::default().with_error_code(code),
        )?,
        ApiKey::BrokerHeartbeat => encode_response(
            cid,
            version,
            &BrokerHeartbeatResponse::default()
                .with_error_code(code)
                .with_is_fenced(true),
        )?,
        ApiKey::AlterPartition => encode_response(
            cid,
            version,
            &AlterPartitionResponse::default().with_error_code(code),
        )?,
        ApiKey::AllocateProducerIds => encode_response(
            cid,
            version,
            &AllocateProducerIdsResponse::default().with_error_code(code),
        )?,
        ApiKey::Envelope => encode_response(
            cid,
            version,
            &EnvelopeResponse::default().with_error_code(code),
        )?,
        _ => return Ok(None),
    };
    Ok(Some(frame))
}

/// The Kafka APIs a controller listener serves.
pub const CONTROLLER_APIS: &[ApiKey] = &[
    ApiKey::ApiVersions,
    ApiKey::BrokerRegistration,
    ApiKey::BrokerHeartbeat,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::AlterPartition,
    ApiKey::AllocateProducerIds,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::ElectLeaders,
    ApiKey::AlterUserScramCredentials,
    ApiKey::AlterClientQuotas,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeQuorum,
    ApiKey::DescribeCluster,
    ApiKey::UpdateFeatures,
    ApiKey::Envelope,
];

/// The APIs a broker may wrap in an Envelope: the client requests brokers
/// forward (Kafka's `ApiKeys.forwardable` among those kastle serves).
pub const FORWARDABLE_APIS: &[ApiKey] = &[
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::ElectLeaders,
    ApiKey::AlterUserScramCredentials,
    ApiKey::AlterClientQuotas,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeQuorum,
    ApiKey::UpdateFeatures,
];

pub struct ControllerApis {
    pub controller: Arc<QuorumController>,
    /// The mutation quota charged to the clients Envelopes name.
    pub mutation_quotas: ControllerMutationQuotaManager,
    /// `authorizer.class.name`'s authorizer; `None`: everyone may.
    pub authorizer: Option<Arc<Authorizer>>,
}

/// Who sent a request: the principal the listener authenticated and its
/// address.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: KafkaPrincipal,
    pub host: IpAddr,
}

impl Caller {
    /// A connection not (yet) authenticated.
    pub fn anonymous(host: IpAddr) -> Caller {
        Caller {
            principal: KafkaPrincipal::anonymous(),
            host,
        }
    }
}

/// Refuses a request body the schema walker does not accept (a length or
/// count larger than the bytes left, a truncated or malformed body) before
/// the crate decodes it: its decoders size vectors from counts on the wire,
/// so an unvetted body could make them allocate without bound. Every API a
/// controller listener decodes has a table.
pub fn vet_body(api: ApiKey, version: i16, body: &[u8]) -> anyhow::Result<()> {
    crate::protocol::schema::check_request_body(api as i16, version, body)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("{api:?} v{version}: {e}"))
}

impl ControllerApis {
    /// Whether `caller` holds CLUSTER_ACTION on the cluster (always, with
    /// no authorizer).
    fn may_cluster_action(&self, caller: &Caller) -> bool {
        self.authorizer.as_ref().is_none_or(|a| {
            a.authorize(
                &caller.principal,
                caller.host,
                AclOperation::ClusterAction,
                ResourceType::Cluster,
                CLUSTER_NAME,
            )
        })
    }

    /// Answers one request frame (without its size prefix) from `caller`;
    /// `Err` closes the connection (undecodable or unknown request, as
    /// Kafka does, or a refused request that has no error to answer with).
    pub async fn handle(&self, frame: Bytes, caller: &Caller) -> anyhow::Result<BytesMut> {
        let header = parse_request_header(&frame)?;
        let (key, version, cid) = (header.api_key, header.api_version, header.correlation_id);
        let mut body = frame.slice(header.len..);
        let authorized = key == ApiKey::ApiVersions as i16 || self.may_cluster_action(caller);
        if !authorized {
            tracing::info!(principal = %caller.principal, host = %caller.host, api = key, "controller listener: CLUSTER_ACTION denied");
            if let Some(refusal) = cluster_authorization_failed(key, version, cid)? {
                return Ok(refusal);
            }
            anyhow::bail!(
                "api {key} from {} refused: it needs CLUSTER_ACTION on the cluster",
                caller.principal
            );
        }
        match key {
            RAFT_RPC_KEY => {
                let rpc: RaftRpc = serde_json::from_slice(&body)?;
                let raft = &self.controller.raft;
                let answer = match rpc {
                    RaftRpc::AppendEntries(r) => serde_json::to_vec(&raft.append_entries(r).await),
                    RaftRpc::Vote(r) => serde_json::to_vec(&raft.vote(r).await),
                    RaftRpc::InstallSnapshot(r) => {
                        serde_json::to_vec(&raft.install_snapshot(r).await)
                    }
                }?;
                return encode_with_header_version(
                    cid,
                    RESPONSE_HEADER_VERSION,
                    0,
                    &Written::<RESPONSE_HEADER_VERSION>(answer),
                );
            }
            METADATA_FETCH_KEY => {
                let req = MetadataFetchRequest::decode(&body).map_err(anyhow::Error::msg)?;
                let resp = self.controller.fetch_metadata(&req).await;
                return encode_with_header_version(
                    cid,
                    RESPONSE_HEADER_VERSION,
                    0,
                    &Written::<RESPONSE_HEADER_VERSION>(resp.encode()),
                );
            }
            _ => {}
        }
        let api = ApiKey::try_from(key).map_err(|_| anyhow::anyhow!("unknown api key {key}"))?;
        let range = api.valid_versions();
        if api == ApiKey::ApiVersions {
            let mut resp = ApiVersionsResponse::default();
            if version < range.min || version > range.max {
                resp.error_code = ResponseError::UnsupportedVersion.code();
            }
            resp.api_keys = CONTROLLER_APIS
                .iter()
                .map(|k| {
                    let v = k.valid_versions();
                    ApiVersion::default()
                        .with_api_key(*k as i16)
                        .with_min_version(v.min)
                        .with_max_version(v.max)
                })
                .collect();
            // Clients at any version read a v0 answer (Kafka's fallback).
            let v = if resp.error_code != 0 { 0 } else { version };
            return encode_response(cid, v, &resp);
        }
        anyhow::ensure!(
            CONTROLLER_APIS.contains(&api) && version >= range.min && version <= range.max,
            "api {key} v{version} is not served on a controller listener"
        );
        if api == ApiKey::Envelope {
            vet_body(api, version, &body)?;
            let envelope = EnvelopeRequest::decode(&mut body, version)?;
            let resp = self.envelope(envelope).await;
            return encode_response(cid, version, &resp);
        }
        self.dispatch(api, version, cid, body, None).await
    }

    /// An Envelope a broker wrapped a client's request in (Kafka's
    /// `EnvelopeUtils.handleEnvelopeRequest`): the embedded request is
    /// answered as the client's, its answer embedded in the response. Only
    /// the active controller opens one (NOT_CONTROLLER otherwise, as Kafka
    /// answers a forwarded request that met NOT_CONTROLLER); a principal
    /// that cannot be read is PRINCIPAL_DESERIALIZATION_FAILURE, an address
    /// that is not one or an API that is not forwardable INVALID_REQUEST,
    /// an embedded header or body that cannot be parsed UNSUPPORTED_VERSION.
    /// Its sender held CLUSTER_ACTION (checked in `handle` when an
    /// authorizer is configured, as Kafka does).
    async fn envelope(&self, envelope: EnvelopeRequest) -> EnvelopeResponse {
        let refuse = |code: ResponseError| EnvelopeResponse::default().with_error_code(code.code());
        let c = &self.controller;
        if c.leader_id() != Some(c.node_id()) {
            return refuse(ResponseError::NotController);
        }
        let principal = match envelope
            .request_principal
            .as_deref()
            .map(envelope::deserialize_principal)
        {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                tracing::warn!("an Envelope's principal: {e}");
                return refuse(ResponseError::PrincipalDeserializationFailure);
            }
            None => return refuse(ResponseError::PrincipalDeserializationFailure),
        };
        let Ok(client_address) = envelope::parse_client_address(&envelope.client_host_address)
        else {
            return refuse(ResponseError::InvalidRequest);
        };
        let data = envelope.request_data;
        let Ok(header) = parse_request_header(&data) else {
            return refuse(ResponseError::UnsupportedVersion);
        };
        let Ok(api) = ApiKey::try_from(header.api_key) else {
            return refuse(ResponseError::UnsupportedVersion);
        };
        if !FORWARDABLE_APIS.contains(&api) {
            return refuse(ResponseError::InvalidRequest);
        }
        let range = api.valid_versions();
        if header.api_version < range.min || header.api_version > range.max {
            return refuse(ResponseError::UnsupportedVersion);
        }
        let origin = ForwardedOrigin {
            principal,
            client_id: header.client_id.clone().unwrap_or_default(),
            client_address,
        };
        let body = data.slice(header.len..);
        match self
            .dispatch(
                api,
                header.api_version,
                header.correlation_id,
                body,
                Some(&origin),
            )
            .await
        {
            // The embedded answer is the frame without its size prefix.
            Ok(mut frame) => {
                EnvelopeResponse::default().with_response_data(Some(frame.split_off(4).freeze()))
            }
            Err(e) => {
                tracing::warn!(api = ?api, "an Envelope's embedded request: {e:#}");
                refuse(ResponseError::UnsupportedVersion)
            }
        }
    }

    /// Answers one request (`origin`: the client an Envelope named).
    async fn dispatch(
        &self,
        api: ApiKey,
        version: i16,
        cid: i32,
        mut body: Bytes,
        origin: Option<&ForwardedOrigin>,
    ) -> anyhow::Result<BytesMut> {
        let c = &self.controller;
        vet_body(api, version, &body)?;
        match api {
            ApiKey::BrokerRegistration => {
                let req = BrokerRegistrationRequest::decode(&mut body, version)?;
                encode_response(cid, version, &c.register_broker(&req).await)
            }
            ApiKey::BrokerHeartbeat => {
                let req = BrokerHeartbeatRequest::decode(&mut body, version)?;
                encode_response(cid, version, &c.heartbeat(&req).await)
            }
            ApiKey::CreateTopics => {
                let req = CreateTopicsRequest::decode(&mut body, version)?;
                let defaults = c.defaults().clone();
                let quotas = &self.mutation_quotas;
                let resp = c
                    .write(|image, _| {
                        let mut quota = quotas.quota_for(
                            image,
                            origin.map(|o| (o.principal.name.as_str(), o.client_id.as_str())),
                            version >= 6,
                        );
                        let d = replication_control::create_topics(
                            image,
                            &req,
                            version,
                            &defaults,
                            &mut |n| quota.record(f64::from(n)),
                        );
                        let throttle = quotas.finish(&quota);
                        (d.records, d.response.with_throttle_time_ms(throttle))
                    })
                    .await;
                let resp = resp.unwrap_or_else(|e| {
                    let mut r = CreateTopicsResponse::default();
                    for t in &req.topics {
                        r.topics.push(
                            kafka_protocol::messages::create_topics_response::CreatableTopicResult::default()
                                .with_name(t.name.clone())
                                .with_error_code(e.error().code()),
                        );
                    }
                    r
                });
                encode_response(cid, version, &resp)
            }
            ApiKey::DeleteTopics => {
                let req = DeleteTopicsRequest::decode(&mut body, version)?;
                let resp = c
                    .write(|image, _| {
                        let mut quota = self.mutation_quotas.quota_for(
                            image,
                            origin.map(|o| (o.principal.name.as_str(), o.client_id.as_str())),
                            version >= 5,
                        );
                        let d =
                            replication_control::delete_topics(image, &req, version, &mut |n| {
                                quota.record(f64::from(n))
                            });
                        let throttle = self.mutation_quotas.finish(&quota);
                        (d.records, d.response.with_throttle_time_ms(throttle))
                    })
                    .await;
                let resp = resp.unwrap_or_else(|e| {
                    let mut r = DeleteTopicsResponse::default();
                    // v6+ names topics in `topics`, earlier versions in
                    // `topic_names`: every one gets the error.
                    let targets = req
                        .topic_names
                        .iter()
                        .map(|n| (Some(n.clone()), uuid::Uuid::nil()))
                        .chain(req.topics.iter().map(|t| (t.name.clone(), t.topic_id)));
                    for (name, id) in targets {
                        r.responses.push(
                            kafka_protocol::messages::delete_topics_response::DeletableTopicResult::default()
                                .with_name(name)
                                .with_topic_id(id)
                                .with_error_code(e.error().code()),
                        );
                    }
                    r
                });
                encode_response(cid, version, &resp)
            }
            ApiKey::CreatePartitions => {
                let req = CreatePartitionsRequest::decode(&mut body, version)?;
                let resp = c
                    .write(|image, _| {
                        let mut quota = self.mutation_quotas.quota_for(
                            image,
                            origin.map(|o| (o.principal.name.as_str(), o.client_id.as_str())),
                            version >= 3,
                        );
                        let d = replication_control::create_partitions(
                            image,
                            &req,
                            version,
                            &mut |n| quota.record(f64::from(n)),
                        );
                        let throttle = self.mutation_quotas.finish(&quota);
                        (d.records, d.response.with_throttle_time_ms(throttle))
                    })
                    .await;
                let resp = resp.unwrap_or_else(|e| {
                    let mut r = CreatePartitionsResponse::default();
                    for t in &req.topics {
                        r.results.push(
                            kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult::default()
                                .with_name(t.name.clone())
                                .with_error_code(e.error().code()),
                        );
                    }
                    r
                });
                encode_response(cid, version, &resp)
            }
            ApiKey::AlterPartition => {
                let req = AlterPartitionRequest::decode(&mut body, version)?;
                let resp = c
                    .write(|image, _| {
                        let d = replication_control::alter_partition(image, &req, version);
                        (d.records, d.response)
                    })
                    .await;
                let resp = resp.unwrap_or_else(|e| {
                    AlterPartitionResponse::default().with_error_code(e.error().code())
                });
                encode_response(cid, version, &resp)
            }
            ApiKey::AllocateProducerIds => {
                let req = AllocateProducerIdsRequest::decode(&mut body, version)?;
                encode_response(cid, version, &c.allocate_producer_ids(&req).await)
            }
            ApiKey::ElectLeaders => {
                let req = ElectLeadersRequest::decode(&mut body, version)?;
                encode_response(cid, version, &c.elect_leaders(&req, version).await)
            }
            ApiKey::AlterPartitionReassignments => {
                let req = AlterPartitionReassignmentsRequest::decode(&mut body, version)?;
                let defaults = c.defaults().clone();
                let resp = c
                    .write(|image, _| {
                        let d = reassignment::alter_partition_reassignments(image, &req, &defaults);
                        (d.records, d.response)
                    })
                    .await;
                let resp = resp.unwrap_or_else(|e| {
                    AlterPartitionReassignmentsResponse::default()
                        .with_error_code(e.error().code())
                        .with_allow_replication_factor_change(req.allow_replication_factor_change)
                });
                encode_response(cid, version, &resp)
            }
            ApiKey::ListPartitionReassignments => {
                let req = ListPartitionReassignmentsRequest::decode(&mut body, version)?;
                // Only the active controller's image is the committed one.
                let resp = if c.leader_id() == Some(c.node_id()) {
                    reassignment::list_partition_reassignments(&c.image(), &req)
                } else {
                    ListPartitionReassignmentsResponse::default()
                        .with_error_code(ResponseError::NotController.code())
                };
                encode_response(cid, version, &resp)
            }
            ApiKey::AlterUserScramCredentials => {
                let req = AlterUserScramCredentialsRequest::decode(&mut body, version)?;
                let resp = c
                    .write(|image, _| scram_control::alter_user_scram_credentials(image, &req))
                    .await
                    .unwrap_or_else(|e| {
                        crate::handlers::scram_credentials::alter_failed(&req, e.error(), None)
                    });
                encode_response(cid, version, &resp)
            }
            ApiKey::AlterClientQuotas => {
                let req = AlterClientQuotasRequest::decode(&mut body, version)?;
                let resp = c
                    .write(|image, _| client_quota_control::alter_client_quotas(image, &req))
                    .await
                    .unwrap_or_else(|e| {
                        crate::handlers::admin_cluster::alter_quotas_failed(&req, e.error(), None)
                    });
                encode_response(cid, version, &resp)
            }
            ApiKey::CreateAcls => {
                let req = CreateAclsRequest::decode(&mut body, version)?;
                encode_response(cid, version, &acls::controller_create_acls(c, &req).await)
            }
            ApiKey::DeleteAcls => {
                let req = DeleteAclsRequest::decode(&mut body, version)?;
                encode_response(cid, version, &acls::controller_delete_acls(c, &req).await)
            }
            ApiKey::IncrementalAlterConfigs => {
                let req = IncrementalAlterConfigsRequest::decode(&mut body, version)?;
                let (defaults, voters) = (c.defaults().clone(), c.voter_ids());
                let resp = c
                    .write(|image, _| {
                        let d = configuration_control::incremental_alter_configs(
                            image,
                            &req,
                            &defaults,
                            &|id| voters.contains(&id),
                        );
                        (d.records, d.response)
                    })
                    .await;
                let resp = resp.unwrap_or_else(|e| {
                    let failed = req.resources.iter().map(|_| (e.error().code(), None));
                    configuration_control::incremental_response(&req, failed)
                });
                encode_response(cid, version, &resp)
            }
            ApiKey::AlterConfigs => {
                let req = AlterConfigsRequest::decode(&mut body, version)?;
                let (defaults, voters) = (c.defaults().clone(), c.voter_ids());
                let resp = c
                    .write(|image, _| {
                        let d = configuration_control::legacy_alter_configs(
                            image,
                            &req,
                            &defaults,
                            &|id| voters.contains(&id),
                        );
                        (d.records, d.response)
                    })
                    .await;
                let resp = resp.unwrap_or_else(|e| {
                    let failed = req.resources.iter().map(|_| (e.error().code(), None));
                    configuration_control::legacy_response(&req, failed)
                });
                encode_response(cid, version, &resp)
            }
            ApiKey::DescribeQuorum => {
                let req = DescribeQuorumRequest::decode(&mut body, version)?;
                let resp = describe_quorum::controller_describe_quorum(c, &req, version);
                encode_response(cid, version, &resp)
            }
            ApiKey::DescribeCluster => {
                let req = DescribeClusterRequest::decode(&mut body, version)?;
                let resp = describe_quorum::controller_describe_cluster(c, &req, version);
                encode_response(cid, version, &resp)
            }
            ApiKey::UpdateFeatures => {
                let req = UpdateFeaturesRequest::decode(&mut body, version)?;
                let node = c.node_id();
                let resp = c
                    .write(|image, _| feature_control::update_features(image, &req, version, node))
                    .await
                    .unwrap_or_else(|e| feature_control::refused(e.error(), None));
                encode_response(cid, version, &resp)
            }
            other => anyhow::bail!("api {other:?} is not served on a controller listener"),
        }
    }
}
