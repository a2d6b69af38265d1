//! `kastle config get|set`: Kafka's `kafka-configs.sh --describe/--alter`
//! for topics and brokers, over DescribeConfigs and
//! IncrementalAlterConfigs. A broker's own configs are asked of (and set
//! through) that broker, as Kafka's admin client routes them; `broker ""`
//! (or `broker default`) is the cluster-wide default.

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use serde_json::json;

use super::client::{sb, Client};
use super::{check, flag, key_value, print_json, print_table, Args, CliError, Flag};

/// Kafka's ConfigResource types.
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
/// DescribeConfigs' config source of a value nobody set.
pub const DEFAULT_CONFIG: i8 = 5;

/// Kafka's `ConfigSource` names, by their code in DescribeConfigs.
pub fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// One described config entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
    pub sensitive: bool,
    pub read_only: bool,
}

pub const SUBCOMMANDS: &[&str] = &["get", "set"];

pub const SPEC: &[Flag] = &[flag(&["--delete", "--delete-config"], true)];

pub async fn run(argv: &[String]) -> Result<(), CliError> {
    let Some((sub, rest)) = argv.split_first() else {
        return Err(CliError::Usage("kastle config: get|set".into()));
    };
    let args = Args::parse(rest, SPEC)?;
    let common = args.common()?;
    let kind = args.positional(0, "resource type (topic or broker)")?;
    let resource_type = match kind {
        "topic" | "topics" => TOPIC,
        "broker" | "brokers" => BROKER,
        other => {
            return Err(CliError::Usage(format!(
                "resource type {other:?}: expected topic or broker"
            )))
        }
    };
    let name = args.positional(1, "resource name")?;
    let name = if resource_type == BROKER && name == "default" {
        ""
    } else {
        name
    };
    let rest = &args.positional[2..];
    let mut client = Client::connect(&common).await?;
    match sub.as_str() {
        "get" | "describe" => {
            let entries = describe_configs(&mut client, resource_type, name, rest).await?;
            if common.json {
                let m: serde_json::Map<String, serde_json::Value> = entries
                    .iter()
                    .map(|c| {
                        (
                            c.name.clone(),
                            json!({"value": c.value, "source": source_name(c.source),
                                   "sensitive": c.sensitive, "read_only": c.read_only}),
                        )
                    })
                    .collect();
                print_json(&serde_json::Value::Object(m));
            } else {
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|c| {
                        let value = match (&c.value, c.sensitive) {
                            (_, true) => "[hidden]".to_string(),
                            (Some(v), _) => v.clone(),
                            (None, _) => "null".to_string(),
                        };
                        vec![c.name.clone(), value, source_name(c.source).to_string()]
                    })
                    .collect();
                print_table(&["KEY", "VALUE", "SOURCE"], &rows);
            }
            Ok(())
        }
        "set" | "alter" => {
            let set = rest
                .iter()
                .map(|c| key_value(c, "config"))
                .collect::<Result<Vec<_>, _>>()?;
            let delete = args.values("--delete");
            if set.is_empty() && delete.is_empty() {
                return Err(CliError::Usage(
                    "kastle config set: give key=value or --delete key".into(),
                ));
            }
            alter_configs(&mut client, resource_type, name, &set, delete).await?;
            if common.json {
                print_json(&json!({"resource": kind, "name": name,
                    "set": set.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
                    "deleted": delete}));
            } else {
                let mut rows: Vec<Vec<String>> = set
                    .iter()
                    .map(|(k, v)| vec![k.clone(), v.clone(), "SET".into()])
                    .collect();
                rows.extend(
                    delete
                        .iter()
                        .map(|k| vec![k.clone(), String::new(), "DELETED".into()]),
                );
                print_table(&["KEY", "VALUE", "STATUS"], &rows);
            }
            Ok(())
        }
        other => Err(CliError::Usage(format!("unknown config command {other:?}"))),
    }
}

/// The broker to ask about a broker resource: the broker itself when it
/// is named, else any.
async fn route(
    client: &mut Client,
    resource_type: i8,
    name: &str,
) -> Result<Option<i32>, CliError> {
    if resource_type != BROKER || name.is_empty() {
        return Ok(None);
    }
    let id: i32 = name
        .parse()
        .map_err(|_| CliError::Usage(format!("broker {name:?}: expected a broker id")))?;
    client.metadata(Some(&[])).await?;
    Ok(Some(id))
}

/// DescribeConfigs of one resource (all keys, or `keys`), sorted by name.
pub async fn describe_configs(
    client: &mut Client,
    resource_type: i8,
    name: &str,
    keys: &[String],
) -> Result<Vec<Entry>, CliError> {
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(sb(name))
            .with_configuration_keys(if keys.is_empty() {
                None
            } else {
                Some(keys.iter().map(|k| sb(k)).collect())
            })]);
    let resp = match route(client, resource_type, name).await? {
        Some(node) => client.send_node(node, &req, 4).await,
        None => client.send(&req, 4).await,
    };
    let (resp, _) = resp?;
    let r = resp
        .results
        .first()
        .ok_or_else(|| CliError::Other("DescribeConfigs answered no resource".into()))?;
    check(
        || format!("describing the configs of {name:?}"),
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )?;
    let mut out: Vec<Entry> = r
        .configs
        .iter()
        .map(|c| Entry {
            name: c.name.to_string(),
            value: c.value.as_ref().map(|v| v.to_string()),
            source: c.config_source,
            sensitive: c.is_sensitive,
            read_only: c.read_only,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// IncrementalAlterConfigs: SET each of `set`, DELETE each of `delete`.
pub async fn alter_configs(
    client: &mut Client,
    resource_type: i8,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<(), CliError> {
    let mut configs: Vec<AlterableConfig> = set
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(sb(k))
                .with_config_operation(0)
                .with_value(Some(sb(v)))
        })
        .collect();
    configs.extend(delete.iter().map(|k| {
        AlterableConfig::default()
            .with_name(sb(k))
            .with_config_operation(1)
            .with_value(None)
    }));
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(sb(name))
            .with_configs(configs),
    ]);
    let resp = match route(client, resource_type, name).await? {
        Some(node) => client.send_node(node, &req, 1).await,
        None => client.send(&req, 1).await,
    };
    let (resp, _) = resp?;
    let r = resp
        .responses
        .first()
        .ok_or_else(|| CliError::Other("IncrementalAlterConfigs answered no resource".into()))?;
    check(
        || format!("altering the configs of {name:?}"),
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}
