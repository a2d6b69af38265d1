//! OffsetFetch (v1-10): a group's committed offsets, each topic's only if
//! the client may describe it; v8+ asks for several groups at once, v9 adds
//! KIP-848's member check and v10 names topics by id.

use bytes::Bytes;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::ResponseError;

use super::{group_allowed, s, GROUP_DENIED};
use crate::coordinator::group::api::FetchedOffset;
use crate::handlers::metadata::{topic_id_by_name, topic_name_by_id};
use crate::handlers::{decode_or_close, Reply, Request};
use crate::protocol::offsets_by_id::{self, OFFSETS_BY_ID_SINCE};
use crate::security::acl::{AclOperation, ResourceType};

/// The offsets of topics the client may describe: a topic asked for by
/// name answers TOPIC_AUTHORIZATION_FAILED per partition, one not asked for
/// (all offsets of the group) is left out.
fn visible_offsets(
    req: &Request,
    named: bool,
    fetched: Vec<(String, Vec<FetchedOffset>)>,
) -> Vec<(String, Vec<FetchedOffset>)> {
    fetched
        .into_iter()
        .filter_map(|(t, ps)| {
            if req
                .ctx
                .authorize(AclOperation::Describe, ResourceType::Topic, &t)
            {
                return Some((t, ps));
            }
            named.then(|| {
                let ps = ps
                    .into_iter()
                    .map(|f| FetchedOffset {
                        offset: -1,
                        leader_epoch: -1,
                        metadata: String::new(),
                        error: ResponseError::TopicAuthorizationFailed.code(),
                        ..f
                    })
                    .collect();
                (t, ps)
            })
        })
        .collect()
}

fn fetched_partition(f: FetchedOffset) -> OffsetFetchResponsePartition {
    OffsetFetchResponsePartition::default()
        .with_partition_index(f.partition)
        .with_committed_offset(f.offset)
        .with_committed_leader_epoch(f.leader_epoch)
        .with_metadata(Some(s(f.metadata)))
        .with_error_code(f.error)
}

/// One group of an OffsetFetch v8+: DESCRIBE on the group, v9's member
/// check, the coordinator's offsets of the topics the client may describe.
/// v10 names topics by id: an id no topic has gets an UNKNOWN_TOPIC_ID
/// topic (offset -1, after the coordinator's, as Kafka's
/// `fetchOffsetsForGroup`); all offsets (null topics) leave out a topic
/// without an id (deleted since), as Kafka's `fetchAllOffsetsForGroup`.
fn offset_fetch_group(
    req: &Request,
    g: &OffsetFetchRequestGroup,
    require_stable: bool,
) -> OffsetFetchResponseGroup {
    let apis = &req.ctx.apis;
    let by_id = req.version() >= OFFSETS_BY_ID_SINCE;
    let group_error = |code: i16| {
        OffsetFetchResponseGroup::default()
            .with_group_id(g.group_id.clone())
            .with_error_code(code)
    };
    if !group_allowed(req, AclOperation::Describe, &g.group_id.0) {
        return group_error(GROUP_DENIED);
    }
    // The named topics asked of the coordinator, their ids in the same
    // order, and v10's unknown ids.
    let mut asked_ids = Vec::new();
    let mut unknown: Vec<&OffsetFetchRequestTopics> = Vec::new();
    let topics = match &g.topics {
        None => None,
        Some(ts) => {
            let mut named = Vec::with_capacity(ts.len());
            for t in ts {
                let name = if by_id {
                    match topic_name_by_id(apis, &t.topic_id) {
                        Some(n) => n,
                        None => {
                            unknown.push(t);
                            continue;
                        }
                    }
                } else {
                    t.name.0.to_string()
                };
                asked_ids.push(t.topic_id);
                named.push((name, t.partition_indexes.clone()));
            }
            Some(named)
        }
    };
    // v9 (KIP-848): a consumer group member gives its id and epoch.
    if req.version() >= 9 {
        if let Err(e) =
            apis.groups
                .validate_offset_fetch(&g.group_id.0, g.member_id.as_deref(), g.member_epoch)
        {
            return group_error(e);
        }
    }
    let fetched = match apis
        .groups
        .fetch_offsets(&g.group_id.0, topics, require_stable)
    {
        Ok(f) => visible_offsets(req, g.topics.is_some(), f),
        Err(e) => return group_error(e),
    };
    let mut out = Vec::with_capacity(fetched.len() + unknown.len());
    for (i, (t, ps)) in fetched.into_iter().enumerate() {
        // Named topics come back in request order, every one of them.
        let id = if !by_id {
            uuid::Uuid::nil()
        } else if g.topics.is_some() {
            asked_ids.get(i).copied().unwrap_or_default()
        } else {
            match topic_id_by_name(apis, &t) {
                Some(id) => id,
                None => continue,
            }
        };
        out.push(
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(s(t)))
                .with_topic_id(id)
                .with_partitions(
                    ps.into_iter()
                        .map(|f| {
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(f.partition)
                                .with_committed_offset(f.offset)
                                .with_committed_leader_epoch(f.leader_epoch)
                                .with_metadata(Some(s(f.metadata)))
                                .with_error_code(f.error)
                        })
                        .collect(),
                ),
        );
    }
    for t in unknown {
        out.push(
            OffsetFetchResponseTopics::default()
                .with_topic_id(t.topic_id)
                .with_partitions(
                    t.partition_indexes
                        .iter()
                        .map(|p| {
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(*p)
                                .with_committed_offset(-1)
                                .with_committed_leader_epoch(-1)
                                .with_metadata(Some(s("")))
                                .with_error_code(ResponseError::UnknownTopicId.code())
                        })
                        .collect(),
                ),
        );
    }
    OffsetFetchResponseGroup::default()
        .with_group_id(g.group_id.clone())
        .with_topics(out)
}

pub fn offset_fetch(req: &Request, body: Bytes) -> Reply {
    let r = if req.version() >= OFFSETS_BY_ID_SINCE {
        match crate::handlers::decode_own(req, &body, offsets_by_id::read_offset_fetch) {
            Ok(r) => r,
            Err(reply) => return reply,
        }
    } else {
        decode_or_close!(req, body, OffsetFetchRequest)
    };
    let groups = &req.ctx.apis.groups;
    if req.version() >= 8 {
        let out = r
            .groups
            .iter()
            .map(|g| offset_fetch_group(req, g, r.require_stable))
            .collect();
        return req.respond(&OffsetFetchResponse::default().with_groups(out));
    }
    if !group_allowed(req, AclOperation::Describe, &r.group_id.0) {
        return req.respond(&OffsetFetchResponse::default().with_error_code(GROUP_DENIED));
    }
    let topics = r.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    // require_stable exists from v7.
    let fetched = match groups.fetch_offsets(
        &r.group_id.0,
        topics,
        r.require_stable && req.version() >= 7,
    ) {
        Ok(f) => visible_offsets(req, r.topics.is_some(), f),
        Err(e) => return req.respond(&OffsetFetchResponse::default().with_error_code(e)),
    };
    let topics = fetched
        .into_iter()
        .map(|(t, ps)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(s(t)))
                .with_partitions(ps.into_iter().map(fetched_partition).collect())
        })
        .collect();
    req.respond(&OffsetFetchResponse::default().with_topics(topics))
}
