//! kastle-perf: a load generator for Kafka-compatible brokers, built on
//! librdkafka (the `rdkafka` crate), so any broker is driven by the same real
//! client. Subcommands mirror Kafka's perf tools (producer, consumer,
//! end-to-end latency) plus the probes `scripts/bench.sh` needs (topic
//! creation, disk fdatasync ceiling, broker start-up time).

mod args;
mod common;
mod consumer;
mod disk;
mod e2e;
mod hist;
mod producer;
mod startup;

use std::time::Duration;

const USAGE: &str = "usage: kastle-perf <command> [options]

commands (every command takes --json for one machine-readable final line):
  producer --topic T --num-records N --record-size S --throughput R (-1 = unlimited)
           [--bootstrap-server B] [--producer-props k=v ...] [--print-metrics]
           [--flush-timeout-ms MS] [--max-seconds S (stop sending after S s)]
  consumer --bootstrap-server B --topic T --messages N [--group G] [--timeout MS]
           [--consumer-props k=v ...] [--hide-header] [--max-seconds S]
  e2e      --bootstrap-server B --topic T --num-records N --rate R [--record-size S]
           [--acks all|1] [--producer-props k=v ...] [--consumer-props k=v ...] [--timeout MS]
  topic    --bootstrap-server B --topic T --partitions N [--replication-factor R]
           (create; existing is fine; returns once every partition has a leader)
  disk     --dir D [--size MiB] [--block KiB]
  startup  --bin PATH --partitions N [--restarts K] [--topic-partitions P]
           [--override k=v ...] [--dir D] [--log FILE (broker output, appended)]";

fn topic(argv: &[String]) -> Result<i32, String> {
    let a = args::Args::parse(
        "topic",
        argv,
        &[
            "bootstrap-server",
            "topic",
            "partitions",
            "replication-factor",
            "timeout",
        ],
    )?;
    let bootstrap = a.str("bootstrap-server")?;
    let name = a.str("topic")?;
    let partitions: i32 = a.get("partitions")?;
    let replication_factor: i32 = a.get_or("replication-factor", 1)?;
    let timeout = Duration::from_millis(a.get_or("timeout", 60_000u64)?);
    if partitions <= 0 {
        return Err("topic: --partitions must be positive".into());
    }
    if replication_factor <= 0 {
        return Err("topic: --replication-factor must be positive".into());
    }
    common::create_topics(
        &bootstrap,
        &[(name, partitions)],
        replication_factor,
        timeout,
    )?;
    Ok(0)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = argv.split_first() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let result = match cmd.as_str() {
        "producer" => producer::run(rest),
        "consumer" => consumer::run(rest),
        "e2e" => e2e::run(rest),
        "topic" => topic(rest),
        "disk" => disk::run(rest),
        "startup" => startup::run(rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(0)
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("kastle-perf: {e}");
            std::process::exit(1);
        }
    }
}
