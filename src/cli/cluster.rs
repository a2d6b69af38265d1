//! `kastle cluster info`: the cluster id, the controller and the brokers
//! (with their racks) from a Metadata request, as Kafka's
//! `kafka-cluster.sh cluster-id` and `kafka-broker-api-versions.sh` show
//! them. A KRaft cluster reports a broker as the "controller": clients
//! cannot reach the quorum's controllers.

use serde_json::json;

use super::client::{address, Client};
use super::{print_json, print_table, Args, CliError};

pub async fn run(argv: &[String]) -> Result<(), CliError> {
    let Some((sub, rest)) = argv.split_first() else {
        return Err(CliError::Usage("kastle cluster: info".into()));
    };
    let args = Args::parse(rest, &[])?;
    let common = args.common()?;
    if sub != "info" {
        return Err(CliError::Usage(format!("unknown cluster command {sub:?}")));
    }
    let mut client = Client::connect(&common).await?;
    let md = client.metadata(Some(&[])).await?;
    let cluster_id = md.cluster_id.as_ref().map(|c| c.to_string());
    let mut brokers: Vec<_> = md.brokers.iter().collect();
    brokers.sort_by_key(|b| b.node_id.0);
    if common.json {
        let bs: Vec<_> = brokers
            .iter()
            .map(|b| {
                json!({"node_id": b.node_id.0, "host": b.host.to_string(), "port": b.port,
                            "rack": b.rack.as_ref().map(|r| r.to_string())})
            })
            .collect();
        print_json(
            &json!({"cluster_id": cluster_id, "controller_id": md.controller_id.0, "brokers": bs}),
        );
        return Ok(());
    }
    print_table(
        &["CLUSTER_ID", "CONTROLLER"],
        &[vec![
            cluster_id.unwrap_or_else(|| "-".into()),
            md.controller_id.0.to_string(),
        ]],
    );
    println!();
    let rows: Vec<Vec<String>> = brokers
        .iter()
        .map(|b| {
            let id = if b.node_id == md.controller_id {
                format!("{}*", b.node_id.0)
            } else {
                b.node_id.0.to_string()
            };
            vec![
                id,
                address(&b.host, b.port),
                b.rack.as_ref().map_or("-".into(), |r| r.to_string()),
            ]
        })
        .collect();
    print_table(&["BROKER", "ADDRESS", "RACK"], &rows);
    Ok(())
}
