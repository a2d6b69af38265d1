//! The `kastle` binary: parse the command line, load configuration, serve.

use std::path::PathBuf;
use std::process::ExitCode;

use kastle::config::BrokerConfig;
use kastle::server::{shutdown_signal, BrokerServer};

const USAGE: &str = "\
kastle: a Kafka-compatible broker

Usage: kastle [--config FILE | FILE] [--override key=value]...
       kastle health [--bootstrap-server HOST:PORT] [--timeout-ms N]
       kastle topic|produce|consume|group|cluster|config|acl|user ... (kastle topic --help)
       kastle completion bash|zsh|fish

  --config FILE        read Kafka server.properties keys from FILE
  --override key=value set one key (repeatable; wins over file and environment)
  -h, --help           print this help
  -V, --version        print the version

Environment: KAFKA_* variables map to keys as in the apache/kafka image
(KAFKA_ADVERTISED_LISTENERS -> advertised.listeners); bitnami's KAFKA_CFG_*
and CLUSTER_ID are read too. Logging: RUST_LOG (default info).";

struct Args {
    config: Option<PathBuf>,
    overrides: Vec<String>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        config: None,
        overrides: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("kastle {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--config" => args.config = Some(it.next().ok_or("--config needs a file")?.into()),
            "--override" => args
                .overrides
                .push(it.next().ok_or("--override needs key=value")?),
            s if s.starts_with("--override=") => {
                args.overrides.push(s["--override=".len()..].to_string())
            }
            s if s.starts_with("--config=") => args.config = Some(s["--config=".len()..].into()),
            s if !s.starts_with('-') && args.config.is_none() => args.config = Some(s.into()),
            other => return Err(format!("unexpected argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(Some(args))
}

/// The log filter without `RUST_LOG`: openraft reports every failed RPC to
/// an unreachable voter at ERROR, several times a second while a
/// controller is down; `raft::network` logs each voter going away and
/// coming back once instead.
const DEFAULT_LOG_FILTER: &str = "info,openraft=warn,openraft::replication=off,openraft::core::raft_core=off,openraft::engine=error";

/// `RUST_LOG` as given, with the openraft part of the default added unless
/// it says something about openraft itself.
fn log_filter(env: Option<String>) -> String {
    match env {
        None => DEFAULT_LOG_FILTER.to_string(),
        Some(e) if e.contains("openraft") => e,
        Some(e) => format!("{e},openraft=warn,openraft::replication=off,openraft::core::raft_core=off,openraft::engine=error"),
    }
}

fn main() -> ExitCode {
    // Subcommands first; anything else starts the broker.
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("health") {
        return ExitCode::from(kastle::health::main(&argv[1..]));
    }
    if argv.first().map(String::as_str) == Some("storage") {
        return ExitCode::from(storage(&argv[1..]));
    }
    if let Some(command) = argv
        .first()
        .filter(|c| kastle::cli::COMMANDS.contains(&c.as_str()))
    {
        return ExitCode::from(kastle::cli::main(command, &argv[1..]));
    }
    serve()
}

const STORAGE_USAGE: &str = "\
Usage: kastle storage kafka-handback --log-dir DIR [--node-id N] [--controller NAME://HOST:PORT]

kafka-handback  make a standalone kastle's log directory one Apache Kafka
                4.x starts on: kastle's topics, configs, features and
                producer ids written as a KRaft snapshot in
                __cluster_metadata-0, aborted-transaction indexes as Kafka's
                per-segment .txnindex files, kastle's own files removed.
                --controller names the single KRaft voter's listener (as in
                Kafka's `listeners`) for a directory kastle created; one
                Kafka wrote keeps its voters";

/// `kastle storage ...`: offline operations on a log directory.
fn storage(args: &[String]) -> u8 {
    let mut log_dir = None;
    let mut node_id = 1;
    let mut controller = None;
    let Some(("kafka-handback", rest)) = args.split_first().map(|(c, r)| (c.as_str(), r)) else {
        eprintln!("{STORAGE_USAGE}");
        return 2;
    };
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match (a.as_str(), it.next()) {
            ("--log-dir", Some(d)) => log_dir = Some(std::path::PathBuf::from(d)),
            ("--node-id", Some(n)) => match n.parse() {
                Ok(n) => node_id = n,
                Err(e) => {
                    eprintln!("--node-id {n:?}: {e}");
                    return 2;
                }
            },
            ("--controller", Some(c)) => match c.parse() {
                Ok(c) => controller = Some(c),
                Err(e) => {
                    eprintln!("--controller: {e}");
                    return 2;
                }
            },
            _ => {
                eprintln!("{STORAGE_USAGE}");
                return 2;
            }
        }
    }
    let Some(log_dir) = log_dir else {
        eprintln!("{STORAGE_USAGE}");
        return 2;
    };
    let controller: Option<kastle::broker::kafka_import::ControllerEndpoint> = controller;
    match kastle::broker::kafka_import::hand_back(&log_dir, node_id, controller.as_ref()) {
        Ok(done) => {
            println!("{done}");
            0
        }
        Err(e) => {
            eprintln!("kastle storage kafka-handback: {e:#}");
            1
        }
    }
}

fn serve() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(log_filter(std::env::var("RUST_LOG").ok()))
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER)),
        )
        .with_writer(std::io::stderr)
        .init();
    let (config, warnings) =
        match BrokerConfig::load(args.config.as_deref(), std::env::vars(), &args.overrides) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("refusing to start: {e}");
                return ExitCode::from(1);
            }
        };
    for w in warnings {
        tracing::warn!("{w}");
    }
    for n in &config.notes {
        tracing::info!("{n}");
    }
    raise_open_file_limit();
    tune_allocator();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    if !config.kraft.standalone {
        return runtime.block_on(serve_cluster(config));
    }
    runtime.block_on(async move {
        let server = match BrokerServer::start(config).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("refusing to start: {e:#}");
                return ExitCode::from(1);
            }
        };
        tracing::info!(node_id = server.apis.config.node_id, cluster_id = %server.apis.cluster_id, "kastle started");
        server.run(shutdown_signal()).await;
        ExitCode::SUCCESS
    })
}

/// A node of a cluster: its controller and/or broker roles.
async fn serve_cluster(config: BrokerConfig) -> ExitCode {
    let node = match kastle::server::cluster::ClusterNode::start(config).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("refusing to start: {e:#}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(node_id = node.node_id, cluster_id = %node.cluster_id, "kastle started (cluster node)");
    match node.run(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("stopping: {e}");
            ExitCode::from(1)
        }
    }
}

/// Raises the soft limit on open files to the hard limit, as the JVM does
/// for Kafka (`-XX:+MaxFDLimit`): every segment holds a descriptor, and a
/// distribution's default soft limit (often 1024) runs out at a few hundred
/// partitions. Failure only logs: the broker can still serve within the old
/// limit.
fn raise_open_file_limit() {
    // Linux refuses soft limits above fs.nr_open (1,048,576 by default),
    // even when the hard limit is "unlimited".
    const NR_OPEN_DEFAULT: libc::rlim_t = 1 << 20;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    let target = lim.rlim_max.min(NR_OPEN_DEFAULT).max(lim.rlim_cur);
    if target == lim.rlim_cur {
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: `raised` is a valid rlimit; a soft limit up to the hard limit
    // needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        tracing::debug!(
            from = lim.rlim_cur,
            to = target,
            "raised the open-file limit"
        );
    } else {
        tracing::warn!(
            soft = lim.rlim_cur,
            hard = lim.rlim_max,
            "could not raise the open-file limit: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Keeps request-sized buffers (up to a few MiB) in malloc's heap instead of
/// fresh `mmap`s: each produce request's buffer would otherwise be mapped,
/// page-faulted and zeroed by the kernel, then unmapped, which took about a
/// tenth of the broker's CPU under a produce load. Freed memory above 32 MiB
/// at the top of a heap still goes back to the OS.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts glibc malloc parameters; called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
    }
}
