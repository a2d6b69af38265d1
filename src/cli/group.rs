//! `kastle group list|describe|reset-offsets|delete`: Kafka's
//! `kafka-consumer-groups.sh`. `list` asks every broker (ListGroups: each
//! coordinator knows its own groups); `describe` asks the group's
//! coordinator (DescribeGroups, OffsetFetch) and each partition's leader
//! (ListOffsets) for the lag; `reset-offsets` commits new offsets as an
//! admin (OffsetCommit with no member), only while the group is inactive as
//! Kafka's tool requires, and only with `--execute` (else it shows the
//! plan); `delete` is DeleteGroups.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Buf;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerProtocolAssignment, DeleteGroupsRequest,
    DescribeGroupsRequest, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::Decodable;
use serde_json::json;

use super::client::{group_id, sb, topic_name, Client, EARLIEST, LATEST};
use super::{check, error_name, flag, print_json, print_table, Args, CliError, Common, Flag};

pub const SUBCOMMANDS: &[&str] = &["list", "describe", "reset-offsets", "delete"];

pub const SPEC: &[Flag] = &[
    flag(&["-t", "--topic"], true),
    flag(&["--to-earliest"], false),
    flag(&["--to-latest"], false),
    flag(&["--to-offset"], true),
    flag(&["--execute"], false),
    flag(&["--dry-run"], false),
];

pub async fn run(argv: &[String]) -> Result<(), CliError> {
    let Some((sub, rest)) = argv.split_first() else {
        return Err(CliError::Usage(
            "kastle group: list|describe|reset-offsets|delete".into(),
        ));
    };
    let args = Args::parse(rest, SPEC)?;
    let common = args.common()?;
    match sub.as_str() {
        "list" | "ls" => list(&common).await,
        "describe" => describe(&args, &common).await,
        "reset-offsets" | "reset" => reset(&args, &common).await,
        "delete" => delete(&args, &common).await,
        other => Err(CliError::Usage(format!("unknown group command {other:?}"))),
    }
}

async fn list(common: &Common) -> Result<(), CliError> {
    let mut client = Client::connect(common).await?;
    client.metadata(Some(&[])).await?;
    let nodes: Vec<i32> = client.brokers.keys().copied().collect();
    let mut groups: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for node in nodes {
        let (resp, _) = client
            .send_node(node, &ListGroupsRequest::default(), 5)
            .await?;
        check(
            || format!("ListGroups on broker {node}"),
            resp.error_code,
            None,
        )?;
        for g in resp.groups {
            groups.insert(
                g.group_id.0.to_string(),
                (
                    g.group_state.to_string(),
                    g.protocol_type.to_string(),
                    g.group_type.to_string(),
                ),
            );
        }
    }
    if common.json {
        let v: Vec<_> = groups
            .iter()
            .map(|(g, (s, p, t))| json!({"group": g, "state": s, "protocol_type": p, "type": t}))
            .collect();
        print_json(&json!(v));
    } else {
        let rows: Vec<Vec<String>> = groups
            .iter()
            .map(|(g, (s, p, t))| vec![g.clone(), s.clone(), p.clone(), t.clone()])
            .collect();
        print_table(&["GROUP", "STATE", "PROTOCOL_TYPE", "TYPE"], &rows);
    }
    Ok(())
}

/// A group member as DescribeGroups shows it.
struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    host: String,
    assigned: Vec<(String, i32)>,
}

/// A group's state, protocol type, protocol (assignor) and members.
type Described = (String, String, String, Vec<Member>);

/// The group's state and members: ConsumerGroupDescribe for a KIP-848
/// group, DescribeGroups (which Kafka 4.x refuses for those) for a classic
/// one, as Kafka's `Admin.describeConsumerGroups` does.
async fn describe_group(
    client: &mut Client,
    coordinator: &str,
    group: &str,
) -> Result<Described, CliError> {
    if client.version::<ConsumerGroupDescribeRequest>(1).is_ok() {
        let req = ConsumerGroupDescribeRequest::default().with_group_ids(vec![group_id(group)]);
        let (resp, _) = client.send_to(coordinator, &req, 1).await?;
        let g = resp
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| CliError::Other("ConsumerGroupDescribe answered no group".into()))?;
        // GROUP_ID_NOT_FOUND: no such consumer group, maybe a classic one.
        if g.error_code != 69 {
            check(
                || format!("describing group {group}"),
                g.error_code,
                g.error_message.as_ref().map(|m| m.to_string()),
            )?;
            let members = g
                .members
                .iter()
                .map(|m| Member {
                    id: m.member_id.to_string(),
                    instance_id: m.instance_id.as_ref().map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assigned: m
                        .assignment
                        .topic_partitions
                        .iter()
                        .flat_map(|t| {
                            t.partitions
                                .iter()
                                .map(|p| (t.topic_name.0.to_string(), *p))
                        })
                        .collect(),
                })
                .collect();
            return Ok((
                g.group_state.to_string(),
                "consumer".to_string(),
                g.assignor_name.to_string(),
                members,
            ));
        }
    }
    let req = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let (resp, _) = client.send_to(coordinator, &req, 5).await?;
    let g = resp
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| CliError::Other("DescribeGroups answered no group".into()))?;
    check(
        || format!("describing group {group}"),
        g.error_code,
        g.error_message.as_ref().map(|m| m.to_string()),
    )?;
    let members = g
        .members
        .iter()
        .map(|m| Member {
            id: m.member_id.to_string(),
            instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            assigned: if g.protocol_type.as_str() == "consumer" {
                assignment(&m.member_assignment)
            } else {
                Vec::new()
            },
        })
        .collect();
    Ok((
        g.group_state.to_string(),
        g.protocol_type.to_string(),
        g.protocol_data.to_string(),
        members,
    ))
}

/// The partitions in a consumer protocol assignment (version, then the
/// fields of that version); an undecodable one is shown as none.
fn assignment(bytes: &bytes::Bytes) -> Vec<(String, i32)> {
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    match ConsumerProtocolAssignment::decode(&mut buf, version) {
        Ok(a) => a
            .assigned_partitions
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.topic.0.to_string(), *p))
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// OffsetCommit of `offsets` (partition, offset) of `topic` for `group`, by
/// `member_id` at `epoch` (the generation of a classic member, the member
/// epoch of a consumer group member).
pub(super) fn offset_commit(
    group: &str,
    epoch: i32,
    member_id: &str,
    topic: &str,
    offsets: impl Iterator<Item = (i32, i64)>,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(epoch)
        .with_member_id(sb(member_id))
        .with_retention_time_ms(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                offsets
                    .map(|(p, o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(o)
                            .with_committed_leader_epoch(-1)
                    })
                    .collect(),
            )])
}

/// The group's committed offsets: (topic, partition) to offset.
pub(super) async fn committed(
    client: &mut Client,
    coordinator: &str,
    group: &str,
) -> Result<BTreeMap<(String, i32), i64>, CliError> {
    let req = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(None);
    let (resp, _) = client.send_to(coordinator, &req, 7).await?;
    check(
        || format!("fetching the offsets of group {group}"),
        resp.error_code,
        None,
    )?;
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            check(
                || {
                    format!(
                        "offset of group {group} for {}-{}",
                        t.name.0, p.partition_index
                    )
                },
                p.error_code,
                None,
            )?;
            if p.committed_offset >= 0 {
                out.insert(
                    (t.name.0.to_string(), p.partition_index),
                    p.committed_offset,
                );
            }
        }
    }
    Ok(out)
}

/// Each topic's log end offsets for the given partitions.
async fn end_offsets(
    client: &mut Client,
    parts: &BTreeSet<(String, i32)>,
    timestamp: i64,
) -> Result<BTreeMap<(String, i32), i64>, CliError> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in parts {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    let mut out = BTreeMap::new();
    for (topic, ps) in by_topic {
        let leaders = client.leaders(topic).await?;
        let ps: Vec<i32> = ps.into_iter().filter(|p| leaders.contains_key(p)).collect();
        for (p, (offset, _)) in client
            .list_offsets(topic, &leaders, &ps, timestamp, 0)
            .await?
        {
            out.insert((topic.to_string(), p), offset);
        }
    }
    Ok(out)
}

async fn describe(args: &Args, common: &Common) -> Result<(), CliError> {
    let group = args.positional(0, "group")?;
    let mut client = Client::connect(common).await?;
    let coordinator = client.coordinator(group).await?;
    let (state, protocol_type, protocol, members) =
        describe_group(&mut client, &coordinator, group).await?;
    let offsets = committed(&mut client, &coordinator, group).await?;
    let mut parts: BTreeSet<(String, i32)> = offsets.keys().cloned().collect();
    let mut owner: BTreeMap<(String, i32), &Member> = BTreeMap::new();
    for m in &members {
        for tp in &m.assigned {
            parts.insert(tp.clone());
            owner.insert(tp.clone(), m);
        }
    }
    let ends = end_offsets(&mut client, &parts, LATEST).await?;
    let rows: Vec<_> = parts
        .iter()
        .map(|tp| {
            let current = offsets.get(tp).copied();
            let end = ends.get(tp).copied();
            let lag = match (current, end) {
                (Some(c), Some(e)) => Some((e - c).max(0)),
                _ => None,
            };
            (tp, current, end, lag, owner.get(tp).copied())
        })
        .collect();
    let total_lag: i64 = rows.iter().filter_map(|r| r.3).sum();
    if common.json {
        let ps: Vec<_> = rows
            .iter()
            .map(|(tp, c, e, l, m)| {
                json!({"topic": tp.0, "partition": tp.1, "current_offset": c, "log_end_offset": e,
                       "lag": l, "member_id": m.map(|m| &m.id), "client_id": m.map(|m| &m.client_id),
                       "host": m.map(|m| &m.host)})
            })
            .collect();
        let ms: Vec<_> = members
            .iter()
            .map(|m| {
                json!({"member_id": m.id, "group_instance_id": m.instance_id, "client_id": m.client_id,
                       "host": m.host,
                       "assignment": m.assigned.iter().map(|(t, p)| json!({"topic": t, "partition": p})).collect::<Vec<_>>()})
            })
            .collect();
        print_json(&json!({
            "group": group, "coordinator": coordinator, "state": state,
            "protocol_type": protocol_type, "protocol": protocol,
            "total_lag": total_lag, "members": ms, "partitions": ps,
        }));
        return Ok(());
    }
    print_table(
        &[
            "GROUP",
            "COORDINATOR",
            "STATE",
            "PROTOCOL",
            "MEMBERS",
            "TOTAL_LAG",
        ],
        &[vec![
            group.to_string(),
            coordinator,
            state,
            if protocol.is_empty() {
                protocol_type
            } else {
                format!("{protocol_type}/{protocol}")
            },
            members.len().to_string(),
            total_lag.to_string(),
        ]],
    );
    println!();
    let dash = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(tp, c, e, l, m)| {
            vec![
                tp.0.clone(),
                tp.1.to_string(),
                dash(*c),
                dash(*e),
                dash(*l),
                m.map_or("-".into(), |m| m.id.clone()),
                m.map_or("-".into(), |m| m.host.clone()),
                m.map_or("-".into(), |m| m.client_id.clone()),
            ]
        })
        .collect();
    print_table(
        &[
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        &table,
    );
    Ok(())
}

async fn reset(args: &Args, common: &Common) -> Result<(), CliError> {
    let group = args.positional(0, "group")?;
    let spec = args
        .value("-t")
        .ok_or_else(|| CliError::Usage("reset-offsets needs --topic TOPIC[:P,P...]".into()))?;
    let targets = [
        args.has("--to-earliest"),
        args.has("--to-latest"),
        args.has("--to-offset"),
    ];
    if targets.iter().filter(|t| **t).count() != 1 {
        return Err(CliError::Usage(
            "reset-offsets needs exactly one of --to-earliest, --to-latest, --to-offset N".into(),
        ));
    }
    let to_offset: Option<i64> = args.number("--to-offset")?;
    let (topic, wanted) = match spec.split_once(':') {
        Some((t, ps)) => (
            t,
            Some(
                ps.split(',')
                    .map(|p| {
                        p.trim().parse::<i32>().map_err(|_| {
                            CliError::Usage(format!("--topic {spec:?}: bad partition {p:?}"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        ),
        None => (spec, None),
    };
    let mut client = Client::connect(common).await?;
    let coordinator = client.coordinator(group).await?;
    let (state, ..) = describe_group(&mut client, &coordinator, group).await?;
    // Kafka's tool resets only an inactive group.
    if state != "Empty" && state != "Dead" {
        return Err(CliError::Other(format!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is {state}."
        )));
    }
    let leaders = client.leaders(topic).await?;
    let parts: Vec<i32> = match wanted {
        Some(ps) => {
            for p in &ps {
                if !leaders.contains_key(p) {
                    return Err(CliError::kafka(format!("partition {topic}-{p}"), 3, None));
                }
            }
            ps
        }
        None => leaders.keys().copied().collect(),
    };
    let lo = client
        .list_offsets(topic, &leaders, &parts, EARLIEST, 0)
        .await?;
    let hi = client
        .list_offsets(topic, &leaders, &parts, LATEST, 0)
        .await?;
    let plan: Vec<(i32, i64)> = parts
        .iter()
        .map(|p| {
            let (l, h) = (lo.get(p).map_or(0, |o| o.0), hi.get(p).map_or(0, |o| o.0));
            // As Kafka's tool: an offset outside the log is moved to its nearest end.
            let new = match to_offset {
                Some(o) => o.clamp(l, h.max(l)),
                None if args.has("--to-earliest") => l,
                None => h,
            };
            (*p, new)
        })
        .collect();
    let execute = args.has("--execute");
    if execute {
        // An admin's commit: no member, no generation.
        let req = offset_commit(group, -1, "", topic, plan.iter().map(|(p, o)| (*p, *o)));
        let (resp, _) = client.send_to(&coordinator, &req, 8).await?;
        for t in &resp.topics {
            for p in &t.partitions {
                check(
                    || {
                        format!(
                            "committing the offset of group {group} for {topic}-{}",
                            p.partition_index
                        )
                    },
                    p.error_code,
                    None,
                )?;
            }
        }
    }
    if common.json {
        let v: Vec<_> = plan
            .iter()
            .map(|(p, o)| json!({"topic": topic, "partition": p, "new_offset": o}))
            .collect();
        print_json(&json!({"group": group, "executed": execute, "offsets": v}));
    } else {
        let rows: Vec<Vec<String>> = plan
            .iter()
            .map(|(p, o)| {
                vec![
                    group.to_string(),
                    topic.to_string(),
                    p.to_string(),
                    o.to_string(),
                ]
            })
            .collect();
        print_table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows);
        if !execute {
            eprintln!("dry run: nothing was committed (add --execute to reset these offsets)");
        }
    }
    Ok(())
}

async fn delete(args: &Args, common: &Common) -> Result<(), CliError> {
    if args.positional.is_empty() {
        return Err(CliError::Usage("missing group".into()));
    }
    let mut client = Client::connect(common).await?;
    let mut rows = Vec::new();
    let mut first_error = None;
    for group in &args.positional {
        let coordinator = client.coordinator(group).await?;
        let req = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
        let (resp, _) = client.send_to(&coordinator, &req, 2).await?;
        for r in resp.results {
            if r.error_code != 0 && first_error.is_none() {
                first_error = Some(CliError::kafka(
                    format!("deleting group {group}"),
                    r.error_code,
                    None,
                ));
            }
            let status = if r.error_code == 0 {
                "OK".to_string()
            } else {
                error_name(r.error_code)
            };
            rows.push(vec![r.group_id.0.to_string(), status]);
        }
    }
    if common.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| json!({"group": r[0], "status": r[1]}))
            .collect();
        print_json(&json!(v));
    } else {
        print_table(&["GROUP", "STATUS"], &rows);
    }
    first_error.map_or(Ok(()), Err)
}
