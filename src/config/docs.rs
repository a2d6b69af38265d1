//! What DescribeConfigs (v3+, `includeDocumentation`) says about a key: a
//! short description of what the key does in kastle, written for kastle
//! (Kafka's own documentation is not reproduced), including when kastle
//! accepts a key without acting on it.

use super::keys::broker_key;

/// Descriptions of the keys kastle acts on (broker, topic and group keys).
const DOCS: &[(&str, &str)] = &[
    // Topic keys.
    ("cleanup.policy", "How old data is discarded: delete (time and size retention), compact (keep the newest record per key), both, or neither."),
    ("compression.type", "Codec stored batches use: producer keeps the producer's codec; uncompressed, gzip, snappy, lz4 or zstd re-encode."),
    ("compression.gzip.level", "gzip level for re-encoded batches (kastle compresses with zlib's default level)."),
    ("compression.lz4.level", "lz4 level for re-encoded batches (kastle uses the fast lz4 compressor)."),
    ("compression.zstd.level", "zstd level for re-encoded batches (kastle uses level 3)."),
    ("delete.retention.ms", "How long delete tombstones survive once a compacted log has been cleaned."),
    ("errors.deadletterqueue.group.enable", "Whether share groups may use this topic as a dead-letter queue (KIP-1191)."),
    ("errors.deadletterqueue.topic.name.prefix", "The prefix a share group's dead-letter topic must have (KIP-1191); empty: any name."),
    ("errors.deadletterqueue.auto.create.topics.enable", "Whether a share group's missing dead-letter topic is created on its first record (KIP-1191)."),
    ("file.delete.delay.ms", "Delay between a segment leaving the log and its files being removed."),
    ("flush.messages", "Messages written between fsyncs; 1 (kastle's default) fsyncs before acknowledging, larger values use the page cache."),
    ("flush.ms", "Longest time written data may stay unflushed in page-cache mode."),
    ("follower.replication.throttled.replicas", "Partitions (`*` or partition:follower pairs) whose follower replicas are held to follower.replication.throttled.rate while out of the ISR (KIP-73)."),
    ("leader.replication.throttled.replicas", "Partitions (`*` or partition:leader pairs) whose leader holds followers outside the ISR to leader.replication.throttled.rate (KIP-73)."),
    ("index.interval.bytes", "Bytes of records between two offset index entries."),
    ("local.retention.bytes", "Local retention size under tiered storage, which kastle does not have."),
    ("local.retention.ms", "Local retention time under tiered storage, which kastle does not have."),
    ("max.compaction.lag.ms", "Longest time a record may stay uncompacted."),
    ("max.decompressed.message.bytes", "Largest decompressed record Kafka accepts in a compressed batch; kastle bounds decompression by max.message.bytes instead."),
    ("max.message.bytes", "Largest record batch the topic accepts (after compression)."),
    ("message.timestamp.type", "CreateTime keeps the producer's timestamps, LogAppendTime stamps batches with the broker's clock."),
    ("message.timestamp.before.max.ms", "How far in the past a CreateTime timestamp may be."),
    ("message.timestamp.after.max.ms", "How far in the future a CreateTime timestamp may be."),
    ("min.cleanable.dirty.ratio", "Share of uncompacted data above which the cleaner compacts the log."),
    ("min.compaction.lag.ms", "Shortest time a record stays uncompacted."),
    ("min.insync.replicas", "Replicas an acks=all write needs; a single node has one, so values above 1 refuse such writes."),
    ("preallocate", "Whether segment files are preallocated; kastle does not preallocate."),
    ("remote.copy.lag.bytes", "Tiered storage copy lag in bytes; kastle has no tiered storage."),
    ("remote.copy.lag.ms", "Tiered storage copy lag in time; kastle has no tiered storage."),
    ("remote.log.copy.disable", "Stops copying to tiered storage; kastle has no tiered storage."),
    ("remote.log.delete.on.disable", "Deletes remote data when tiered storage is turned off; kastle has no tiered storage."),
    ("remote.storage.enable", "Tiered storage for the topic; kastle refuses true as Kafka does with tiered storage off."),
    ("retention.bytes", "Largest size of a partition before its oldest segments go; -1 for no limit."),
    ("retention.ms", "How long records are kept before their segment goes; -1 for ever."),
    ("segment.bytes", "Size at which the active segment is rolled."),
    ("segment.index.bytes", "Size of each segment's offset index."),
    ("segment.jitter.ms", "Random jitter subtracted from segment.ms; kastle rolls without jitter."),
    ("segment.ms", "Age at which the active segment is rolled."),
    ("unclean.leader.election.enable", "Whether an out-of-sync replica may lead; a single node is always in sync."),
    // Broker keys kastle acts on.
    ("listeners", "Addresses kastle listens on, NAME://host:port; controller listeners are not bound."),
    ("advertised.listeners", "Addresses clients are told to connect to, per listener."),
    ("listener.security.protocol.map", "Security protocol of each listener name; kastle serves PLAINTEXT and SSL."),
    ("ssl.keystore.type", "Keystore format of TLS listeners; kastle reads PEM only and refuses JKS and PKCS12 at start-up."),
    ("ssl.keystore.location", "PEM file holding a TLS listener's private key and certificate chain."),
    ("ssl.keystore.certificate.chain", "A TLS listener's certificate chain as inline PEM (with ssl.keystore.key)."),
    ("ssl.keystore.key", "A TLS listener's private key as inline PEM (with ssl.keystore.certificate.chain)."),
    ("ssl.keystore.password", "Store password of a JKS or PKCS12 keystore; PEM keystores have none, so kastle refuses it."),
    ("ssl.key.password", "Password of an encrypted PKCS#8 private key (ENCRYPTED PRIVATE KEY)."),
    ("ssl.truststore.type", "Truststore format; kastle reads PEM only."),
    ("ssl.truststore.location", "PEM file of the certificates client certificates are verified against."),
    ("ssl.truststore.certificates", "Trusted certificates as inline PEM."),
    ("ssl.truststore.password", "Store password of a JKS or PKCS12 truststore; PEM truststores have none, so kastle refuses it."),
    ("ssl.client.auth", "Client certificates on TLS listeners: none, requested or required (for SASL_SSL only the listener-prefixed value counts)."),
    ("ssl.enabled.protocols", "TLS versions offered: TLSv1.2 and TLSv1.3 (older ones are not)."),
    ("ssl.cipher.suites", "Cipher suites offered, by IANA name; empty: rustls' defaults."),
    ("ssl.principal.mapping.rules", "Rules mapping a client certificate's subject (RFC 2253) to a user name: RULE:pattern/replacement/[LU] and DEFAULT."),
    ("controller.listener.names", "Listener names of a KRaft controller; kastle does not bind them."),
    ("node.id", "This node's id."),
    ("broker.id", "This node's id (the older name of node.id)."),
    ("log.dirs", "The log directory (kastle supports one)."),
    ("log.dir", "The log directory when log.dirs is not set (kastle default: ./data)."),
    ("num.partitions", "Partitions of a topic created without a partition count."),
    ("default.replication.factor", "Replication factor of auto-created topics; a single node keeps one replica."),
    ("auto.create.topics.enable", "Whether Metadata and Produce create unknown topics."),
    ("delete.topic.enable", "Whether DeleteTopics may delete topics."),
    ("log.segment.bytes", "Default segment.bytes of topics."),
    ("log.roll.ms", "Default segment.ms of topics; log.roll.hours when unset."),
    ("log.roll.hours", "Default segment.ms of topics in hours."),
    ("log.retention.ms", "Default retention.ms of topics; log.retention.minutes, then log.retention.hours, when unset."),
    ("log.retention.minutes", "Default retention.ms of topics in minutes."),
    ("log.retention.hours", "Default retention.ms of topics in hours."),
    ("log.retention.bytes", "Default retention.bytes of topics."),
    ("log.retention.check.interval.ms", "How often retention runs."),
    ("log.cleanup.policy", "Default cleanup.policy of topics."),
    ("log.cleaner.enable", "Whether the log cleaner (compaction) runs."),
    ("log.cleaner.backoff.ms", "How long the cleaner sleeps when no log needs cleaning."),
    ("log.cleaner.dedupe.buffer.size", "Memory of the cleaner's key-to-offset map."),
    ("log.cleaner.io.max.bytes.per.second", "Cleaner I/O limit (kastle default 50 MiB/s, so compaction cannot starve clients)."),
    ("log.cleaner.delete.retention.ms", "Default delete.retention.ms of topics."),
    ("log.cleaner.min.cleanable.ratio", "Default min.cleanable.dirty.ratio of topics."),
    ("log.cleaner.min.compaction.lag.ms", "Default min.compaction.lag.ms of topics."),
    ("log.cleaner.max.compaction.lag.ms", "Default max.compaction.lag.ms of topics."),
    ("log.index.size.max.bytes", "Default segment.index.bytes of topics."),
    ("log.index.interval.bytes", "Default index.interval.bytes of topics."),
    ("log.segment.delete.delay.ms", "Default file.delete.delay.ms of topics."),
    ("log.flush.interval.messages", "Default flush.messages of topics (kastle default 1: durable)."),
    ("log.flush.interval.ms", "Default flush.ms of topics; log.flush.scheduler.interval.ms when unset."),
    ("log.message.timestamp.type", "Default message.timestamp.type of topics."),
    ("log.message.timestamp.before.max.ms", "Default message.timestamp.before.max.ms of topics."),
    ("log.message.timestamp.after.max.ms", "Default message.timestamp.after.max.ms of topics."),
    ("message.max.bytes", "Default max.message.bytes of topics."),
    ("socket.request.max.bytes", "Largest request kastle reads; a larger one closes the connection."),
    ("fetch.max.bytes", "Upper bound of the data in one Fetch response."),
    ("max.incremental.fetch.session.cache.slots", "Incremental fetch sessions (KIP-227) kept, split over 8 shards."),
    ("connections.max.idle.ms", "Connections with no byte read for this long are closed (a byte mid-request counts)."),
    ("queued.max.request.bytes", "Bytes of requests read and not yet handled, broker-wide; readers wait for room (-1: unbounded)."),
    ("max.connections", "Connections the broker accepts at once; more wait to be accepted."),
    ("max.connections.per.ip", "Connections one address may hold; more are closed."),
    ("max.connections.per.ip.overrides", "Per-host exceptions to max.connections.per.ip, host:count,..."),
    ("offsets.topic.num.partitions", "Partitions of __consumer_offsets (read when it is created)."),
    ("offsets.retention.minutes", "How long committed offsets of an empty group are kept."),
    ("offsets.retention.check.interval.ms", "How often expired offsets are removed."),
    ("offsets.commit.timeout.ms", "How long an offset commit waits to be durable."),
    ("offsets.topic.segment.bytes", "segment.bytes of __consumer_offsets."),
    ("offset.metadata.max.bytes", "Largest metadata string an offset commit may carry."),
    ("transaction.state.log.num.partitions", "Partitions of __transaction_state (read when it is created)."),
    ("transaction.max.timeout.ms", "Longest transaction timeout a producer may ask for."),
    ("transaction.abort.timed.out.transaction.cleanup.interval.ms", "How often timed-out transactions are aborted."),
    ("group.initial.rebalance.delay.ms", "How long a new classic group waits for more members before its first rebalance."),
    ("group.min.session.timeout.ms", "Shortest session timeout a classic group member may ask for."),
    ("group.max.session.timeout.ms", "Longest session timeout a classic group member may ask for."),
    ("group.max.size", "Most members a classic group may have."),
    ("producer.id.expiration.ms", "How long an idle producer id's state is kept."),
    ("metrics.prometheus.listener", "kastle: host:port of the Prometheus endpoint (GET /metrics); unset: off."),
    ("console.listener", "kastle: host:port of the read-only web console (HTTP); unset: off."),
    ("console.sample.interval.ms", "kastle: how often the web console samples throughput and consumer lag for its charts."),
    ("metrics.prometheus.ssl.keystore.location", "kastle: PEM file (certificate chain and private key) of the Prometheus endpoint; set: HTTPS."),
    ("metrics.prometheus.ssl.key.password", "kastle: password of the endpoint's encrypted PKCS#8 key."),
    ("metrics.prometheus.ssl.enabled.protocols", "kastle: TLS versions the endpoint accepts (as ssl.enabled.protocols)."),
    ("metrics.prometheus.ssl.cipher.suites", "kastle: cipher suites the endpoint accepts (as ssl.cipher.suites)."),
    ("metrics.prometheus.basic.auth.user", "kastle: user a scrape must authenticate as (HTTP basic); unset: no authentication."),
    ("metrics.prometheus.basic.auth.password", "kastle: password of metrics.prometheus.basic.auth.user."),
    ("kastle.format.features", "kastle: name=level,... feature levels a new standalone data directory or cluster starts at (kafka-storage format --feature); empty: Kafka 4.4's (transaction.version 2)."),
];

/// Why kastle has no use for a key it accepts, by family.
fn unused_reason(name: &str) -> &'static str {
    let starts = |p: &str| name.starts_with(p);
    if starts("ssl.") {
        "kastle's TLS (rustls with PEM stores) has no use for it"
    } else if starts("sasl.")
        || starts("security.")
        || starts("principal.")
        || starts("connections.max.reauth")
    {
        "kastle serves PLAINTEXT listeners only, without TLS or SASL"
    } else if starts("controller.")
        || starts("metadata.")
        || starts("process.roles")
        || starts("broker.heartbeat")
        || starts("broker.session")
        || starts("initial.broker")
    {
        "kastle runs without a KRaft controller quorum"
    } else if starts("remote.")
        || starts("log.local.")
        || starts("log.remote.")
        || starts("follower.fetch.last.tiered")
    {
        "kastle has no tiered storage"
    } else if starts("replica.")
        || starts("replication.")
        || starts("leader.")
        || starts("follower.")
        || starts("num.replica")
        || starts("unclean.")
        || starts("auto.leader")
        || starts("min.insync")
    {
        "a single kastle node keeps one replica of each partition"
    } else if starts("group.consumer.")
        || starts("group.share.")
        || starts("group.streams.")
        || starts("share.")
        || starts("errors.deadletterqueue")
    {
        "kastle implements classic and KIP-848 consumer groups (without regular expressions, \
         classic members in consumer groups or assignment intervals), not share or streams groups"
    } else if starts("num.")
        || starts("background.threads")
        || starts("queued.")
        || name.contains("thread")
    {
        "kastle sizes its own asynchronous tasks"
    } else {
        "kastle accepts it for compatibility and does not act on it"
    }
}

/// The documentation of a broker, topic or group key.
pub fn doc(name: &str) -> String {
    if let Some((_, d)) = DOCS.iter().find(|(n, _)| *n == name) {
        return (*d).to_string();
    }
    match broker_key(name) {
        Some(_) => format!("Kafka broker setting {name}; {}.", unused_reason(name)),
        None if name.starts_with("listener.name.") => {
            format!("Listener-specific override of {name}.")
        }
        None => format!("{name}; {}.", unused_reason(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_described_key_exists_once() {
        let mut seen = std::collections::HashSet::new();
        for (n, _) in DOCS {
            assert!(seen.insert(*n), "{n} twice");
        }
        assert!(doc("log.cleaner.backoff.ms").contains("cleaner"));
        assert!(doc("ssl.keystore.type").contains("PEM"));
        assert!(doc("ssl.provider").contains("rustls"));
    }
}
