//! `kastle topic|produce|consume|group|cluster|config|acl|user|profile`: a client
//! command line in the broker's binary, in the spirit of Redpanda's `rpk`
//! and Kafka's `kafka-topics.sh`, `kafka-console-producer.sh`,
//! `kafka-console-consumer.sh`, `kafka-consumer-groups.sh`,
//! `kafka-configs.sh` and `kafka-acls.sh`; `kastle completion` prints shell
//! completion scripts for them. It is a plain Kafka client ([`client::Client`]), so
//! it works against any Kafka-protocol broker, kastle or Apache Kafka.
//!
//! This module holds what every command shares: the argument parser (one
//! spec of flags per command; the common `-b/--bootstrap-server`,
//! `--command-config`, `--json` and `--timeout-ms` are accepted by all), the
//! error type and its exit codes (0 done, 1 the broker or the connection
//! failed — printed with Kafka's error name and message —, 2 usage), and the
//! output helpers (aligned tables by default, JSON with `--json`).

pub mod acl;
pub mod client;
pub mod cluster;
pub mod completion;
pub mod config;
pub mod consume;
pub mod group;
pub mod group_member;
pub mod produce;
pub mod profile;
pub mod topic;
pub mod user;

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

/// The subcommands this module serves; `main.rs` dispatches them here.
pub const COMMANDS: &[&str] = &[
    "topic",
    "produce",
    "consume",
    "group",
    "cluster",
    "config",
    "acl",
    "user",
    "profile",
    "completion",
];

pub const USAGE: &str = "\
Client commands (against any Kafka-protocol broker):
  kastle topic create NAME [-p N] [-r N] [-c key=value]...
  kastle topic list [-i]
  kastle topic describe NAME
  kastle topic alter NAME [--partitions N] [-c key=value]... [--delete-config key]...
  kastle topic delete NAME...
  kastle produce TOPIC [-k KEY] [-H key=value]... [-p PARTITION] [--key-separator SEP] [--acks N]
  kastle consume TOPIC [-p P[,P...]] [-o start|end|OFFSET|-N] [--from-timestamp MS]
                 [-n COUNT] [-f|--follow] [--format default|value|json|TEMPLATE] [--read-committed]
                 [-g GROUP]   (as a member of GROUP: the broker assigns partitions, offsets are
                              committed; needs the consumer group protocol, KIP-848)
  kastle group list
  kastle group describe GROUP
  kastle group reset-offsets GROUP --topic TOPIC[:P,P...] (--to-earliest|--to-latest|--to-offset N) [--execute]
  kastle group delete GROUP
  kastle cluster info
  kastle config get topic|broker NAME [KEY...]
  kastle config set topic|broker NAME [key=value]... [--delete key]...
  kastle acl list [TYPE [NAME]] [--pattern literal|prefixed|match|any] [--principal P]...
                  [--host H]... [--operation OP]... [--permission allow|deny]
  kastle acl create TYPE [NAME] --principal User:NAME... --operation OP... [--host H]...
                  [--pattern literal|prefixed] [--permission allow|deny]
  kastle acl delete TYPE [NAME] [the filter flags of list]   (prints the ACLs it deleted)
      TYPE: topic, group, cluster, transactional-id, delegation-token, user (any: filters)
      OP: all, read, write, create, delete, alter, describe, cluster-action,
          describe-configs, alter-configs, idempotent-write, create-tokens,
          describe-tokens, two-phase-commit
  kastle user list
  kastle user describe USER...
  kastle user create USER [-m SCRAM-SHA-256|SCRAM-SHA-512]... [--iterations N] [--password P]
                  (without --password: the first line of stdin)
  kastle user delete USER [-m MECHANISM]...   (default: every mechanism the user has)
  kastle profile create NAME -b HOST:PORT[,...] [--command-config FILE] [-X key=value]... [--force]
  kastle profile list
  kastle profile use NAME
  kastle profile show [NAME]   (passwords hidden)
  kastle profile delete NAME
  kastle completion bash|zsh|fish

Common flags:
  -b, --bootstrap-server HOST:PORT[,...]  (default $KASTLE_BOOTSTRAP, else localhost:9092)
  --command-config FILE   Kafka client properties: security.protocol, sasl.mechanism,
                          sasl.jaas.config, ssl.truststore.location (PEM), ...
  --profile NAME          connect as profile NAME says (default $KASTLE_PROFILE, else the
                          one `kastle profile use` chose); -b and --command-config win
  --json                  JSON output instead of tables
  --timeout-ms N          request timeout (default 30000)

Exit codes: 0 done, 1 the broker answered an error or could not be reached, 2 usage.";

/// Why a command failed, and so its exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments: exit 2.
    Usage(String),
    /// The broker answered an error code for `what`: exit 1, printed with
    /// Kafka's error name.
    Kafka {
        what: String,
        code: i16,
        message: Option<String>,
    },
    /// Anything else (connection, I/O, malformed answer): exit 1.
    Other(String),
}

impl CliError {
    pub fn kafka(what: impl Into<String>, code: i16, message: Option<String>) -> CliError {
        CliError::Kafka {
            what: what.into(),
            code,
            message: message.filter(|m| !m.is_empty()),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Other(m) => f.write_str(m),
            CliError::Kafka {
                what,
                code,
                message,
            } => {
                let name = error_name(*code);
                match message.as_deref().or_else(|| description(*code)) {
                    Some(m) => write!(f, "{what}: {name}: {m}"),
                    None => write!(f, "{what}: {name}"),
                }
            }
        }
    }
}

/// Kafka's message for the errors a command most often meets without a
/// message from the broker (`Errors.java`).
fn description(code: i16) -> Option<&'static str> {
    Some(match code {
        3 => "This server does not host this topic-partition.",
        15 => "The coordinator is not available.",
        16 => "This is not the correct coordinator.",
        29 => "Topic authorization failed.",
        30 => "Group authorization failed.",
        31 => "Cluster authorization failed.",
        36 => "Topic with this name already exists.",
        54 => "Security features are disabled.",
        68 => "The group is not empty.",
        69 => "The group id does not exist.",
        _ => return None,
    })
}

/// Kafka's name of an error code (`TOPIC_ALREADY_EXISTS`), as its `Errors`
/// enum spells it.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_CODE_{c}"),
        Some(e) => screaming_snake(&format!("{e:?}")),
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Checks an error code in a response: `Ok` for 0.
pub fn check(
    what: impl FnOnce() -> String,
    code: i16,
    message: Option<String>,
) -> Result<(), CliError> {
    if code == 0 {
        Ok(())
    } else {
        Err(CliError::kafka(what(), code, message))
    }
}

/// The flags every command accepts.
#[derive(Debug, Clone)]
pub struct Common {
    pub bootstrap: String,
    pub command_config: Option<String>,
    /// The profile chosen, whose properties stand in for `--command-config`.
    pub profile: Option<profile::Profile>,
    pub json: bool,
    pub timeout: Duration,
}

/// One flag a command accepts: its names and whether it takes a value.
pub struct Flag {
    pub names: &'static [&'static str],
    pub value: bool,
}

pub const fn flag(names: &'static [&'static str], value: bool) -> Flag {
    Flag { names, value }
}

const COMMON_FLAGS: &[Flag] = &[
    flag(
        &[
            "-b",
            "--bootstrap-server",
            "--bootstrap-servers",
            "--brokers",
        ],
        true,
    ),
    flag(&["--command-config"], true),
    flag(&["--profile"], true),
    flag(&["--json"], false),
    flag(&["--timeout-ms"], true),
    flag(&["-h", "--help"], false),
];

/// Parsed arguments: positionals in order, and each flag's values by its
/// first (canonical) name; a flag without a value records "".
#[derive(Debug, Default)]
pub struct Args {
    pub positional: Vec<String>,
    flags: HashMap<&'static str, Vec<String>>,
}

impl Args {
    /// Parses `argv` against `spec` plus the common flags. A value flag
    /// takes the next argument whatever it looks like (`-o -5`), or the
    /// part after `=` (`--offset=-5`).
    pub fn parse(argv: &[String], spec: &[Flag]) -> Result<Args, CliError> {
        let mut out = Args::default();
        let mut it = argv.iter();
        let mut only_positional = false;
        while let Some(a) = it.next() {
            if only_positional || !a.starts_with('-') || a == "-" {
                out.positional.push(a.clone());
                continue;
            }
            if a == "--" {
                only_positional = true;
                continue;
            }
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                _ => (a.as_str(), None),
            };
            let f = spec
                .iter()
                .chain(COMMON_FLAGS)
                .find(|f| f.names.contains(&name))
                .ok_or_else(|| CliError::Usage(format!("unknown flag {name:?}")))?;
            let value = if f.value {
                match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| CliError::Usage(format!("{name} needs a value")))?,
                }
            } else if inline.is_some() {
                return Err(CliError::Usage(format!("{name} takes no value")));
            } else {
                String::new()
            };
            out.flags.entry(f.names[0]).or_default().push(value);
        }
        Ok(out)
    }

    pub fn has(&self, name: &str) -> bool {
        self.flags.contains_key(name)
    }

    /// The last value of a flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.flags
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value of a repeatable flag.
    pub fn values(&self, name: &str) -> &[String] {
        self.flags.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// A flag's value parsed as a number, or a usage error naming it.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, CliError> {
        self.value(name)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| CliError::Usage(format!("{name} {v:?}: not a number")))
            })
            .transpose()
    }

    pub fn common(&self) -> Result<Common, CliError> {
        let profile = profile::selected(self.value("--profile"))?;
        let bootstrap = match self.value("-b") {
            Some(b) => b.to_string(),
            None => std::env::var("KASTLE_BOOTSTRAP")
                .ok()
                .filter(|b| !b.trim().is_empty())
                .or_else(|| {
                    profile
                        .as_ref()
                        .and_then(|p| p.bootstrap().map(str::to_string))
                })
                .unwrap_or_else(|| "localhost:9092".to_string()),
        };
        let ms: u64 = self.number("--timeout-ms")?.unwrap_or(30_000);
        if ms == 0 {
            return Err(CliError::Usage("--timeout-ms must be positive".into()));
        }
        Ok(Common {
            bootstrap,
            command_config: self.value("--command-config").map(str::to_string),
            profile,
            json: self.has("--json"),
            timeout: Duration::from_millis(ms),
        })
    }

    /// The `i`th positional, or a usage error saying what it is.
    pub fn positional(&self, i: usize, what: &str) -> Result<&str, CliError> {
        self.positional
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| CliError::Usage(format!("missing {what}")))
    }
}

/// Splits `key=value`.
pub fn key_value(s: &str, flag: &str) -> Result<(String, String), CliError> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| CliError::Usage(format!("{flag} {s:?}: expected key=value")))
}

/// Prints rows under headers, each column as wide as its widest cell.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    print!("{}", table(headers, rows));
}

pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = widths.get(i).copied().unwrap_or(0);
            s.push_str(&format!("{cell:<pad$}"));
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

pub fn print_json(v: &serde_json::Value) {
    println!("{v}");
}

/// Runs `command` (one of [`COMMANDS`]) with the arguments after it;
/// returns the exit code.
pub fn main(command: &str, argv: &[String]) -> u8 {
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return 0;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        match command {
            "topic" => topic::run(argv).await,
            "config" => config::run(argv).await,
            "produce" => produce::run(argv).await,
            "consume" => consume::run(argv).await,
            "group" => group::run(argv).await,
            "cluster" => cluster::run(argv).await,
            "acl" => acl::run(argv).await,
            "user" => user::run(argv).await,
            "profile" => profile::run(argv).await,
            "completion" => completion::run(argv),
            other => Err(CliError::Usage(format!("unknown command {other:?}"))),
        }
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            if let CliError::Usage(_) = e {
                eprintln!("\n{USAGE}");
            }
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(0), "NONE");
    }

    #[test]
    fn value_flags_take_negative_numbers() {
        let spec = [
            flag(&["-o", "--offset"], true),
            flag(&["-f", "--follow"], false),
        ];
        let a = Args::parse(&argv(&["t", "-o", "-5", "-f", "--json"]), &spec).unwrap();
        assert_eq!(a.positional, vec!["t"]);
        assert_eq!(a.value("-o"), Some("-5"));
        assert!(a.has("-f") && a.has("--json"));
        let a = Args::parse(&argv(&["--offset=-2"]), &spec).unwrap();
        assert_eq!(a.value("-o"), Some("-2"));
        assert!(Args::parse(&argv(&["--nope"]), &spec).is_err());
        assert!(Args::parse(&argv(&["-o"]), &spec).is_err());
    }

    #[test]
    fn tables_align() {
        let t = table(&["A", "LONGER"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    LONGER\nxyz  1\n");
    }
}
