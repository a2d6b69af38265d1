//! `kastle topic create|list|describe|alter|delete`: Kafka's
//! `kafka-topics.sh` over CreateTopics, Metadata, DescribeConfigs,
//! CreatePartitions, IncrementalAlterConfigs and DeleteTopics.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest};
use serde_json::json;

use super::client::{sb, topic_name, Client};
use super::config::{alter_configs, describe_configs, source_name, DEFAULT_CONFIG, TOPIC};
use super::{check, flag, key_value, print_json, print_table, Args, CliError, Common, Flag};

pub const SUBCOMMANDS: &[&str] = &["create", "list", "describe", "alter", "delete"];

pub const SPEC: &[Flag] = &[
    flag(&["-p", "--partitions"], true),
    flag(&["-r", "--replication-factor", "--replicas"], true),
    flag(&["-c", "--config", "--topic-config"], true),
    flag(&["-d", "--delete-config"], true),
    flag(&["-i", "--internal"], false),
];

pub async fn run(argv: &[String]) -> Result<(), CliError> {
    let Some((sub, rest)) = argv.split_first() else {
        return Err(CliError::Usage(
            "kastle topic: create|list|describe|alter|delete".into(),
        ));
    };
    let args = Args::parse(rest, SPEC)?;
    let common = args.common()?;
    match sub.as_str() {
        "create" => create(&args, &common).await,
        "list" | "ls" => list(&args, &common).await,
        "describe" => describe(&args, &common).await,
        "alter" => alter(&args, &common).await,
        "delete" => delete(&args, &common).await,
        other => Err(CliError::Usage(format!("unknown topic command {other:?}"))),
    }
}

fn timeout_ms(common: &Common) -> i32 {
    common.timeout.as_millis().min(i32::MAX as u128) as i32
}

async fn create(args: &Args, common: &Common) -> Result<(), CliError> {
    let name = args.positional(0, "topic name")?;
    let partitions: i32 = args.number("-p")?.unwrap_or(-1);
    let replicas: i16 = args.number("-r")?.unwrap_or(-1);
    let configs = args
        .values("-c")
        .iter()
        .map(|c| key_value(c, "-c"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut client = Client::connect(common).await?;
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(timeout_ms(common))
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(replicas)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(sb(k))
                            .with_value(Some(sb(v)))
                    })
                    .collect(),
            )]);
    let (resp, _) = client.send(&req, 7).await?;
    let t = resp
        .topics
        .first()
        .ok_or_else(|| CliError::Other("CreateTopics answered no topic".into()))?;
    check(
        || format!("creating topic {name}"),
        t.error_code,
        t.error_message.as_ref().map(|m| m.to_string()),
    )?;
    if common.json {
        print_json(&json!({
            "topic": name,
            "topic_id": t.topic_id.to_string(),
            "partitions": t.num_partitions,
            "replication_factor": t.replication_factor,
        }));
    } else {
        print_table(
            &["TOPIC", "STATUS"],
            &[vec![name.to_string(), "OK".to_string()]],
        );
    }
    Ok(())
}

async fn list(args: &Args, common: &Common) -> Result<(), CliError> {
    let mut client = Client::connect(common).await?;
    let md = client.metadata(None).await?;
    let mut topics: Vec<_> = md
        .topics
        .iter()
        .filter(|t| args.has("-i") || !t.is_internal)
        .filter_map(|t| {
            let name = t.name.as_ref()?.0.to_string();
            let replicas = t.partitions.first().map_or(0, |p| p.replica_nodes.len());
            Some((
                name,
                t.topic_id.to_string(),
                t.partitions.len(),
                replicas,
                t.is_internal,
            ))
        })
        .collect();
    topics.sort();
    if common.json {
        let v: Vec<_> = topics
            .iter()
            .map(|(n, id, p, r, i)| {
                json!({"topic": n, "topic_id": id, "partitions": p, "replication_factor": r, "internal": i})
            })
            .collect();
        print_json(&json!(v));
    } else {
        let rows: Vec<Vec<String>> = topics
            .iter()
            .map(|(n, _, p, r, _)| vec![n.clone(), p.to_string(), r.to_string()])
            .collect();
        print_table(&["NAME", "PARTITIONS", "REPLICAS"], &rows);
    }
    Ok(())
}

async fn describe(args: &Args, common: &Common) -> Result<(), CliError> {
    let name = args.positional(0, "topic name")?;
    let mut client = Client::connect(common).await?;
    let md = client.metadata(Some(&[name])).await?;
    let t = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(name))
        .ok_or_else(|| CliError::Other(format!("no metadata for topic {name}")))?;
    check(|| format!("topic {name}"), t.error_code, None)?;
    let mut partitions: Vec<_> = t.partitions.iter().collect();
    partitions.sort_by_key(|p| p.partition_index);
    let ids =
        |v: &[kafka_protocol::messages::BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
    // Configs that are not the default, as kafka-topics.sh --describe.
    let configs: Vec<_> = describe_configs(&mut client, TOPIC, name, &[])
        .await?
        .into_iter()
        .filter(|c| c.source != DEFAULT_CONFIG)
        .collect();
    if common.json {
        let parts: Vec<_> = partitions
            .iter()
            .map(|p| {
                json!({
                    "partition": p.partition_index,
                    "leader": p.leader_id.0,
                    "leader_epoch": p.leader_epoch,
                    "replicas": ids(&p.replica_nodes),
                    "isr": ids(&p.isr_nodes),
                    "offline_replicas": ids(&p.offline_replicas),
                    "error": if p.error_code == 0 { serde_json::Value::Null } else { json!(super::error_name(p.error_code)) },
                })
            })
            .collect();
        let cfg: serde_json::Map<String, serde_json::Value> = configs
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    json!({"value": c.value, "source": source_name(c.source)}),
                )
            })
            .collect();
        print_json(&json!({
            "topic": name,
            "topic_id": t.topic_id.to_string(),
            "internal": t.is_internal,
            "partitions": parts,
            "configs": cfg,
        }));
        return Ok(());
    }
    let replicas = partitions.first().map_or(0, |p| p.replica_nodes.len());
    print_table(
        &["NAME", "TOPIC_ID", "PARTITIONS", "REPLICAS", "INTERNAL"],
        &[vec![
            name.to_string(),
            t.topic_id.to_string(),
            partitions.len().to_string(),
            replicas.to_string(),
            t.is_internal.to_string(),
        ]],
    );
    println!();
    let list = |v: Vec<i32>| {
        format!(
            "[{}]",
            v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
        )
    };
    let rows: Vec<Vec<String>> = partitions
        .iter()
        .map(|p| {
            vec![
                p.partition_index.to_string(),
                p.leader_id.0.to_string(),
                p.leader_epoch.to_string(),
                list(ids(&p.replica_nodes)),
                list(ids(&p.isr_nodes)),
                list(ids(&p.offline_replicas)),
            ]
        })
        .collect();
    print_table(
        &["PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "OFFLINE"],
        &rows,
    );
    if !configs.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = configs
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.value.clone().unwrap_or_else(|| "null".into()),
                    source_name(c.source).to_string(),
                ]
            })
            .collect();
        print_table(&["CONFIG", "VALUE", "SOURCE"], &rows);
    }
    Ok(())
}

async fn alter(args: &Args, common: &Common) -> Result<(), CliError> {
    let name = args.positional(0, "topic name")?;
    let partitions: Option<i32> = args.number("-p")?;
    let set = args
        .values("-c")
        .iter()
        .map(|c| key_value(c, "-c"))
        .collect::<Result<Vec<_>, _>>()?;
    let delete = args.values("-d");
    if partitions.is_none() && set.is_empty() && delete.is_empty() {
        return Err(CliError::Usage(
            "kastle topic alter NAME: give --partitions N, -c key=value or --delete-config key"
                .into(),
        ));
    }
    let mut client = Client::connect(common).await?;
    let mut done = Vec::new();
    if let Some(count) = partitions {
        let req = CreatePartitionsRequest::default()
            .with_timeout_ms(timeout_ms(common))
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(name))
                .with_count(count)
                .with_assignments(None)]);
        let (resp, _) = client.send(&req, 3).await?;
        let r = resp
            .results
            .first()
            .ok_or_else(|| CliError::Other("CreatePartitions answered no topic".into()))?;
        check(
            || format!("altering the partitions of {name}"),
            r.error_code,
            r.error_message.as_ref().map(|m| m.to_string()),
        )?;
        done.push(format!("partitions={count}"));
    }
    if !set.is_empty() || !delete.is_empty() {
        alter_configs(&mut client, TOPIC, name, &set, delete).await?;
        done.extend(set.iter().map(|(k, v)| format!("{k}={v}")));
        done.extend(delete.iter().map(|k| format!("-{k}")));
    }
    if common.json {
        print_json(&json!({"topic": name, "altered": done}));
    } else {
        print_table(
            &["TOPIC", "ALTERED"],
            &[vec![name.to_string(), done.join(" ")]],
        );
    }
    Ok(())
}

async fn delete(args: &Args, common: &Common) -> Result<(), CliError> {
    if args.positional.is_empty() {
        return Err(CliError::Usage("missing topic name".into()));
    }
    let mut client = Client::connect(common).await?;
    let v = client.version::<DeleteTopicsRequest>(6)?;
    let mut req = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms(common));
    if v >= 6 {
        req.topics = args
            .positional
            .iter()
            .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
            .collect();
    } else {
        req.topic_names = args.positional.iter().map(|n| topic_name(n)).collect();
    }
    let (resp, _) = client.send(&req, v).await?;
    let mut rows = Vec::new();
    let mut first_error = None;
    for r in &resp.responses {
        let name = r.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        let status = if r.error_code == 0 {
            "OK".to_string()
        } else {
            super::error_name(r.error_code)
        };
        if r.error_code != 0 && first_error.is_none() {
            first_error = Some(CliError::kafka(
                format!("deleting topic {name}"),
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            ));
        }
        rows.push(vec![name, status]);
    }
    if common.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| json!({"topic": r[0], "status": r[1]}))
            .collect();
        print_json(&json!(v));
    } else {
        print_table(&["TOPIC", "STATUS"], &rows);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
