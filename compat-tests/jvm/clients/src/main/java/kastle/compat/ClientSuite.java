// The Java client suite: scenarios of the Apache Kafka Java client (Admin,
// KafkaProducer, KafkaConsumer) against one broker, driven by
// compat-tests/test_java_client.py. Usage:
//   ClientSuite SCENARIO BOOTSTRAP PREFIX
// Scenarios: admin, broker-configs, produce, groups-range, groups-cooperative,
// static, txn. Names (topics, groups, transactional ids) start with PREFIX, so a
// shared broker (the real Kafka) never sees a name twice. Each step prints a
// JSON line {"type":"step","name":...,"ok":...}; the JVM exits 0 after the last
// step whatever the steps did (pytest decides per step), 2 on a usage error.
package kastle.compat;

import static kastle.compat.Out.check;
import static kastle.compat.Out.eq;
import static kastle.compat.Out.expectError;
import static kastle.compat.Out.line;
import static kastle.compat.Out.step;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Future;
import java.util.function.Supplier;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeProducersResult;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.admin.MemberToRemove;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.ConsumerGroupState;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.FencedInstanceIdException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.OffsetOutOfRangeException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.SecurityDisabledException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownMemberIdException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class ClientSuite {
    static String bootstrap;
    static String prefix;
    static final Duration POLL = Duration.ofMillis(100);

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: ClientSuite SCENARIO BOOTSTRAP PREFIX");
            System.exit(2);
        }
        bootstrap = args[1];
        prefix = args[2];
        line("type", "start", "scenario", args[0], "client", clientVersion());
        switch (args[0]) {
            case "admin": adminScenario(); break;
            case "broker-configs": brokerConfigs(); break;
            case "produce": produce(); break;
            case "groups-range": groups(RangeAssignor.class.getName(), "range"); break;
            case "groups-cooperative": groups(CooperativeStickyAssignor.class.getName(), "cooperative-sticky"); break;
            case "static": staticMembership(); break;
            case "txn": transactions(); break;
            default:
                System.err.println("unknown scenario " + args[0]);
                System.exit(2);
        }
        line("type", "result", "failed", Out.FAILED);
        System.exit(0);
    }

    static String clientVersion() {
        // AppInfoParser moved to common.utils.internals in 4.x
        for (String cls : List.of("org.apache.kafka.common.utils.AppInfoParser",
                "org.apache.kafka.common.utils.internals.AppInfoParser")) {
            try {
                return (String) Class.forName(cls).getMethod("getVersion").invoke(null);
            } catch (ReflectiveOperationException ignored) {
                // try the next home
            }
        }
        return "unknown";
    }

    // -- client factories -------------------------------------------------------

    static Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, prefix + "-admin");
        return Admin.create(p);
    }

    /** The default producer: only the bootstrap address and serializers set
     * (acks=all and enable.idempotence=true are the defaults since 3.0). */
    static KafkaProducer<byte[], byte[]> producer(Map<String, Object> extra) {
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.putAll(extra);
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<byte[], byte[]> consumer(Map<String, Object> extra) {
        Map<String, Object> p = new HashMap<>();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.putAll(extra);
        return new KafkaConsumer<>(p);
    }

    static Map<String, Object> props(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    static byte[] b(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    static String s(byte[] v) {
        return v == null ? null : new String(v, StandardCharsets.UTF_8);
    }

    static void createTopic(Admin admin, String topic, int partitions) throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
    }

    /** Reads every partition of ``tps`` from the beginning up to its end offset
     * (for the consumer's isolation level) with manual assignment. */
    static List<ConsumerRecord<byte[], byte[]>> readAll(Collection<TopicPartition> tps, String isolation) {
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> c = consumer(props(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation,
                ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "2000"))) {
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            long deadline = System.currentTimeMillis() + 60_000;
            while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
                check(System.currentTimeMillis() < deadline, "readAll timed out", end, out.size());
                for (ConsumerRecord<byte[], byte[]> r : c.poll(POLL)) out.add(r);
            }
        }
        return out;
    }

    static Set<Integer> partitionsOf(Collection<TopicPartition> tps) {
        return tps.stream().map(TopicPartition::partition).collect(Collectors.toCollection(TreeSet::new));
    }

    // -- admin ------------------------------------------------------------------

    static void adminScenario() throws Exception {
        String topic = prefix + "-admin";
        try (Admin admin = admin()) {
            final int[] nodeId = {-1};
            step("describe_cluster", () -> {
                DescribeClusterResult r = admin.describeCluster();
                Collection<Node> nodes = r.nodes().get();
                eq(1, nodes.size(), "one node");
                Node n = nodes.iterator().next();
                nodeId[0] = n.id();
                Node controller = r.controller().get();
                check(controller != null && !controller.isEmpty(), "a controller", controller);
                String cid = r.clusterId().get();
                check(cid != null && !cid.isEmpty(), "a cluster id");
                eq(n.host() + ":" + n.port(), bootstrap, "the node is the bootstrap address");
                line("type", "cluster", "node", n.id(), "controller", controller.id(), "cluster_id", cid);
            });
            step("create_topics", () -> {
                NewTopic nt = new NewTopic(topic, 3, (short) 1).configs(Map.of("max.message.bytes", "500000"));
                CreateTopicsResult r = admin.createTopics(List.of(nt));
                r.all().get();
                eq(3, r.numPartitions(topic).get(), "numPartitions");
                eq(1, r.replicationFactor(topic).get(), "replicationFactor");
                Config cfg = r.config(topic).get();
                eq("500000", cfg.get("max.message.bytes").value(), "max.message.bytes in CreateTopics response");
                check(cfg.get("retention.ms") != null, "CreateTopics response lists default configs");
                check(admin.listTopics().names().get().contains(topic), "listTopics has the topic");
            });
            step("create_topics_errors", () -> {
                expectError(TopicExistsException.class, "existing topic",
                        () -> admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get());
                expectError(InvalidTopicException.class, "invalid name",
                        () -> admin.createTopics(List.of(new NewTopic(prefix + " bad/name", 1, (short) 1))).all().get());
                expectError(InvalidReplicationFactorException.class, "replication factor 3 on one node",
                        () -> admin.createTopics(List.of(new NewTopic(prefix + "-rf3", 1, (short) 3))).all().get());
                expectError(InvalidConfigurationException.class, "invalid config value",
                        () -> admin.createTopics(List.of(new NewTopic(prefix + "-badcfg", 1, (short) 1)
                                .configs(Map.of("retention.ms", "soon"))))
                                .all().get());
                // validateOnly: checked, answered with the would-be result, not created
                CreateTopicsResult v = admin.createTopics(List.of(new NewTopic(prefix + "-validate", 2, (short) 1)),
                        new CreateTopicsOptions().validateOnly(true));
                v.all().get();
                eq(2, v.numPartitions(prefix + "-validate").get(), "validateOnly numPartitions");
                check(!admin.listTopics().names().get().contains(prefix + "-validate"), "validateOnly created nothing");
            });
            step("describe_topics", () -> {
                TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
                eq(3, d.partitions().size(), "partitions");
                check(!d.isInternal(), "not internal");
                check(d.topicId() != null && !d.topicId().toString().equals("AAAAAAAAAAAAAAAAAAAAAA"), "a topic id", d.topicId());
                for (TopicPartitionInfo p : d.partitions()) {
                    eq(nodeId[0], p.leader().id(), "leader of " + p.partition());
                    eq(List.of(nodeId[0]), p.replicas().stream().map(Node::id).collect(Collectors.toList()), "replicas");
                    eq(List.of(nodeId[0]), p.isr().stream().map(Node::id).collect(Collectors.toList()), "isr");
                }
                expectError(UnknownTopicOrPartitionException.class, "unknown topic",
                        () -> admin.describeTopics(List.of(prefix + "-nosuch")).allTopicNames().get());
            });
            step("create_partitions", () -> {
                admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all().get();
                TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
                eq(5, d.partitions().size(), "partitions after increase");
                expectError(InvalidPartitionsException.class, "decrease",
                        () -> admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all().get());
                expectError(UnknownTopicOrPartitionException.class, "unknown topic",
                        () -> admin.createPartitions(Map.of(prefix + "-nosuch", NewPartitions.increaseTo(2))).all().get());
            });
            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            step("topic_configs", () -> {
                Config c = admin.describeConfigs(List.of(res)).all().get().get(res);
                ConfigEntry mmb = c.get("max.message.bytes");
                eq("500000", mmb.value(), "max.message.bytes");
                eq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, mmb.source(), "max.message.bytes source");
                ConfigEntry ret = c.get("retention.ms");
                eq("604800000", ret.value(), "retention.ms default");
                eq(ConfigEntry.ConfigSource.DEFAULT_CONFIG, ret.source(), "retention.ms source");
                eq("delete", c.get("cleanup.policy").value(), "cleanup.policy default");
                admin.incrementalAlterConfigs(Map.of(res, List.of(
                        new AlterConfigOp(new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET),
                        new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND),
                        new AlterConfigOp(new ConfigEntry("max.message.bytes", ""), AlterConfigOp.OpType.DELETE))))
                        .all().get();
                c = admin.describeConfigs(List.of(res)).all().get().get(res);
                eq("3600000", c.get("retention.ms").value(), "retention.ms after SET");
                eq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, c.get("retention.ms").source(), "retention.ms source after SET");
                eq("delete,compact", c.get("cleanup.policy").value(), "cleanup.policy after APPEND");
                eq(ConfigEntry.ConfigSource.DEFAULT_CONFIG, c.get("max.message.bytes").source(), "max.message.bytes after DELETE");
                admin.incrementalAlterConfigs(Map.of(res, List.of(
                        new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.SUBTRACT))))
                        .all().get();
                eq("delete", admin.describeConfigs(List.of(res)).all().get().get(res).get("cleanup.policy").value(),
                        "cleanup.policy after SUBTRACT");
                expectError(InvalidConfigurationException.class, "invalid value",
                        () -> admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                                new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET)))).all().get());
                expectError(UnknownTopicOrPartitionException.class, "unknown topic",
                        () -> admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, prefix + "-nosuch")))
                                .all().get());
            });
            // Admin.alterConfigs (AlterConfigs, API 33) was removed from the 4.x client
            // (KIP-896 era clean-up); it is called by reflection where it exists.
            java.lang.reflect.Method legacy = null;
            for (java.lang.reflect.Method m : Admin.class.getMethods()) {
                if (m.getName().equals("alterConfigs") && m.getParameterCount() == 1) legacy = m;
            }
            if (legacy != null) {
                final java.lang.reflect.Method alterConfigs = legacy;
                step("topic_alter_configs_legacy", () -> {
                    // AlterConfigs replaces the whole set of dynamic configs
                    Object r = alterConfigs.invoke(admin, Map.of(res, new Config(List.of(new ConfigEntry("segment.ms", "7200000")))));
                    ((org.apache.kafka.clients.admin.AlterConfigsResult) r).all().get();
                    Config c = admin.describeConfigs(List.of(res)).all().get().get(res);
                    eq("7200000", c.get("segment.ms").value(), "segment.ms");
                    eq(ConfigEntry.ConfigSource.DEFAULT_CONFIG, c.get("retention.ms").source(), "retention.ms reset by AlterConfigs");
                });
            }
            TopicPartition tp0 = new TopicPartition(topic, 0);
            long base = System.currentTimeMillis() - 600_000;
            step("list_offsets", () -> {
                // timestamps base, base+1000, ... except record 7 which carries the maximum
                try (KafkaProducer<byte[], byte[]> p = producer(Map.of())) {
                    for (int i = 0; i < 10; i++) {
                        long ts = i == 7 ? base + 100_000 : base + i * 1000L;
                        p.send(new ProducerRecord<>(topic, 0, ts, b("k" + i), b("v" + i))).get();
                    }
                }
                Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> r;
                r = admin.listOffsets(Map.of(tp0, OffsetSpec.earliest())).all().get();
                eq(0L, r.get(tp0).offset(), "earliest");
                r = admin.listOffsets(Map.of(tp0, OffsetSpec.latest())).all().get();
                eq(10L, r.get(tp0).offset(), "latest");
                r = admin.listOffsets(Map.of(tp0, OffsetSpec.forTimestamp(base + 3500))).all().get();
                eq(4L, r.get(tp0).offset(), "first offset with timestamp >= base+3500");
                eq(base + 4000, r.get(tp0).timestamp(), "its timestamp");
                r = admin.listOffsets(Map.of(tp0, OffsetSpec.maxTimestamp())).all().get();
                eq(7L, r.get(tp0).offset(), "offset of the max timestamp");
                eq(base + 100_000, r.get(tp0).timestamp(), "max timestamp");
                r = admin.listOffsets(Map.of(tp0, OffsetSpec.forTimestamp(base + 200_000))).all().get();
                eq(-1L, r.get(tp0).offset(), "no offset after the newest timestamp");
                r = admin.listOffsets(Map.of(tp0, OffsetSpec.latest()),
                        new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).all().get();
                eq(10L, r.get(tp0).offset(), "read_committed latest (no transactions: the high watermark)");
            });
            step("delete_records", () -> {
                long low = admin.deleteRecords(Map.of(tp0, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp0).get().lowWatermark();
                eq(4L, low, "low watermark");
                eq(4L, admin.listOffsets(Map.of(tp0, OffsetSpec.earliest())).all().get().get(tp0).offset(), "earliest after delete");
                expectError(OffsetOutOfRangeException.class, "beyond the high watermark",
                        () -> admin.deleteRecords(Map.of(tp0, RecordsToDelete.beforeOffset(100))).all().get());
                // -1 = up to the high watermark
                low = admin.deleteRecords(Map.of(tp0, RecordsToDelete.beforeOffset(-1))).lowWatermarks().get(tp0).get().lowWatermark();
                eq(10L, low, "delete all");
            });
            step("describe_log_dirs", () -> {
                Map<String, LogDirDescription> dirs = admin.describeLogDirs(List.of(nodeId[0])).allDescriptions().get().get(nodeId[0]);
                eq(1, dirs.size(), "one log dir");
                LogDirDescription d = dirs.values().iterator().next();
                check(d.error() == null, "no error", d.error());
                ReplicaInfo ri = d.replicaInfos().get(tp0);
                check(ri != null, "the topic's partition is listed", d.replicaInfos().keySet());
                check(ri.size() > 0, "it has bytes", ri.size());
                check(d.replicaInfos().containsKey(new TopicPartition(topic, 4)), "new partitions listed too");
                check(d.totalBytes().isPresent() && d.usableBytes().isPresent(), "total/usable bytes (v4+)");
            });
            step("describe_features", () -> {
                FeatureMetadata f = admin.describeFeatures().featureMetadata().get();
                line("type", "features", "supported", f.supportedFeatures().toString(), "finalized", f.finalizedFeatures().toString());
                check(f.supportedFeatures().containsKey("metadata.version"), "metadata.version supported", f.supportedFeatures());
                check(f.finalizedFeatures().containsKey("metadata.version"), "metadata.version finalized", f.finalizedFeatures());
                check(f.finalizedFeaturesEpoch().isPresent(), "a finalized features epoch");
            });
            step("acls_security_disabled", () -> {
                expectError(SecurityDisabledException.class, "describeAcls",
                        () -> admin.describeAcls(AclBindingFilter.ANY).values().get());
                AclBinding acl = new AclBinding(new ResourcePattern(ResourceType.TOPIC, topic, PatternType.LITERAL),
                        new AccessControlEntry("User:alice", "*", AclOperation.READ, AclPermissionType.ALLOW));
                expectError(SecurityDisabledException.class, "createAcls",
                        () -> admin.createAcls(List.of(acl)).all().get());
                expectError(SecurityDisabledException.class, "deleteAcls",
                        () -> admin.deleteAcls(List.of(new AclBindingFilter(
                                new ResourcePatternFilter(ResourceType.TOPIC, topic, PatternType.LITERAL),
                                AccessControlEntryFilter.ANY))).all().get());
            });
            step("delete_topics", () -> {
                admin.deleteTopics(List.of(topic)).all().get();
                long deadline = System.currentTimeMillis() + 15_000;
                while (admin.listTopics().names().get().contains(topic)) {
                    check(System.currentTimeMillis() < deadline, "topic still listed after delete");
                    Thread.sleep(100);
                }
                expectError(UnknownTopicOrPartitionException.class, "deleting an unknown topic",
                        () -> admin.deleteTopics(List.of(prefix + "-nosuch")).all().get());
            });
        }
    }

    /** Dynamic broker configs (AlterConfigs / IncrementalAlterConfigs on the BROKER
     * resource): Kafka applies and persists them, DescribeConfigs then reports
     * DYNAMIC_BROKER_CONFIG; deleting the key restores the static value. */
    static void brokerConfigs() throws Exception {
        try (Admin admin = admin()) {
            String id = String.valueOf(admin.describeCluster().nodes().get().iterator().next().id());
            ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, id);
            step("describe_broker_configs", () -> {
                Config c = admin.describeConfigs(List.of(broker)).all().get().get(broker);
                eq("1", c.get("num.partitions").value(), "num.partitions (set in the broker's configuration)");
                eq(ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG, c.get("log.dirs").source(), "log.dirs source");
                eq(ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG, c.get("num.partitions").source(),
                        "num.partitions source (configured explicitly, even if equal to the default)");
                eq("168", c.get("log.retention.hours").value(), "log.retention.hours default");
                check(c.get("log.dirs") != null, "log.dirs listed");
                eq("true", c.get("auto.create.topics.enable").value(), "auto.create.topics.enable");
                ConfigEntry mmb = c.get("message.max.bytes");
                check(mmb != null && !mmb.isReadOnly(), "message.max.bytes is dynamically updatable", mmb);
                check(c.get("log.dirs").isReadOnly(), "log.dirs is read-only");
            });
            step("incremental_alter_broker_config", () -> {
                admin.incrementalAlterConfigs(Map.of(broker, List.of(new AlterConfigOp(
                        new ConfigEntry("log.cleaner.backoff.ms", "20000"), AlterConfigOp.OpType.SET)))).all().get();
                // KRaft applies a dynamic config once the broker has replayed the
                // controller's record: poll DescribeConfigs briefly
                ConfigEntry e = awaitBrokerConfig(admin, broker, "log.cleaner.backoff.ms", "20000");
                eq(ConfigEntry.ConfigSource.DYNAMIC_BROKER_CONFIG, e.source(), "source after SET");
                admin.incrementalAlterConfigs(Map.of(broker, List.of(new AlterConfigOp(
                        new ConfigEntry("log.cleaner.backoff.ms", ""), AlterConfigOp.OpType.DELETE)))).all().get();
                e = awaitBrokerConfig(admin, broker, "log.cleaner.backoff.ms", "15000");
                eq(ConfigEntry.ConfigSource.DEFAULT_CONFIG, e.source(), "source after DELETE");
            });
            step("broker_config_read_only_refused", () -> {
                expectError(org.apache.kafka.common.errors.InvalidRequestException.class, "log.dirs cannot be changed at run time",
                        () -> admin.incrementalAlterConfigs(Map.of(broker, List.of(new AlterConfigOp(
                                new ConfigEntry("log.dirs", "/tmp/elsewhere"), AlterConfigOp.OpType.SET)))).all().get());
            });
        }
    }

    static ConfigEntry awaitBrokerConfig(Admin admin, ConfigResource broker, String key, String value) throws Exception {
        long deadline = System.currentTimeMillis() + 10_000;
        while (true) {
            ConfigEntry e = admin.describeConfigs(List.of(broker)).all().get().get(broker).get(key);
            if (e != null && value.equals(e.value())) return e;
            check(System.currentTimeMillis() < deadline, key + " never became " + value, e);
            Thread.sleep(100);
        }
    }

    // -- produce / read back -----------------------------------------------------

    static void produce() throws Exception {
        String topic = prefix + "-produce";
        int n = 3000;
        int parts = 3;
        long base = System.currentTimeMillis() - 3_600_000;
        List<ProducerRecord<byte[], byte[]>> sent = new ArrayList<>();
        List<RecordMetadata> acks = new ArrayList<>();
        try (Admin admin = admin()) {
            createTopic(admin, topic, parts);
            step("produce_default_producer", () -> {
                try (KafkaProducer<byte[], byte[]> p = producer(Map.of())) {
                    List<Future<RecordMetadata>> fs = new ArrayList<>();
                    for (int i = 0; i < n; i++) {
                        List<Header> hs = new ArrayList<>();
                        hs.add(new RecordHeader("idx", b(Integer.toString(i))));
                        if (i % 5 == 0) hs.add(new RecordHeader("empty", new byte[0]));
                        if (i % 7 == 0) hs.add(new RecordHeader("null", null));
                        String key = i % 100 == 99 ? null : "key-" + i;
                        String value = i % 97 == 96 ? null : "value-" + i + "-" + "x".repeat(i % 50);
                        ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(topic, i % parts, base + i, b(key), b(value), hs);
                        sent.add(r);
                        fs.add(p.send(r));
                    }
                    p.flush();
                    for (Future<RecordMetadata> f : fs) acks.add(f.get());
                }
                long[] next = new long[parts];
                for (int i = 0; i < n; i++) {
                    RecordMetadata m = acks.get(i);
                    eq(i % parts, m.partition(), "ack partition of " + i);
                    eq(next[m.partition()]++, m.offset(), "ack offset of " + i + " (contiguous per partition)");
                    eq(base + i, m.timestamp(), "ack timestamp (CreateTime) of " + i);
                }
            });
            step("read_back_exact", () -> {
                List<TopicPartition> tps = new ArrayList<>();
                for (int p = 0; p < parts; p++) tps.add(new TopicPartition(topic, p));
                List<ConsumerRecord<byte[], byte[]>> got = readAll(tps, "read_uncommitted");
                eq(n, got.size(), "records read");
                Map<String, ConsumerRecord<byte[], byte[]>> byPos = new HashMap<>();
                for (ConsumerRecord<byte[], byte[]> r : got) byPos.put(r.partition() + "@" + r.offset(), r);
                for (int i = 0; i < n; i++) {
                    ProducerRecord<byte[], byte[]> want = sent.get(i);
                    RecordMetadata m = acks.get(i);
                    ConsumerRecord<byte[], byte[]> r = byPos.get(m.partition() + "@" + m.offset());
                    check(r != null, "record " + i + " at " + m.partition() + "@" + m.offset());
                    check(Arrays.equals(want.key(), r.key()), "key of " + i, s(want.key()), s(r.key()));
                    check(Arrays.equals(want.value(), r.value()), "value of " + i, s(want.value()), s(r.value()));
                    eq(want.timestamp(), r.timestamp(), "timestamp of " + i);
                    eq(TimestampType.CREATE_TIME, r.timestampType(), "timestamp type of " + i);
                    Header[] wh = want.headers().toArray();
                    Header[] gh = r.headers().toArray();
                    eq(wh.length, gh.length, "header count of " + i);
                    for (int h = 0; h < wh.length; h++) {
                        eq(wh[h].key(), gh[h].key(), "header key " + h + " of " + i);
                        check(Arrays.equals(wh[h].value(), gh[h].value()), "header value " + h + " of " + i);
                    }
                }
            });
            for (String codec : List.of("gzip", "snappy", "lz4", "zstd")) {
                step("codec_" + codec, () -> {
                    String ct = topic + "-" + codec;
                    createTopic(admin, ct, 1);
                    try (KafkaProducer<byte[], byte[]> p = producer(props(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec,
                            ProducerConfig.LINGER_MS_CONFIG, "20"))) {
                        for (int i = 0; i < 500; i++) p.send(new ProducerRecord<>(ct, 0, base + i, b("k" + i), b(codec + "-" + i + "-" + "y".repeat(i % 100))));
                        p.flush();
                    }
                    List<ConsumerRecord<byte[], byte[]>> got = readAll(List.of(new TopicPartition(ct, 0)), "read_uncommitted");
                    eq(500, got.size(), "records");
                    for (int i = 0; i < 500; i++) {
                        ConsumerRecord<byte[], byte[]> r = got.get(i);
                        eq((long) i, r.offset(), "offset");
                        eq("k" + i, s(r.key()), "key");
                        eq(codec + "-" + i + "-" + "y".repeat(i % 100), s(r.value()), "value");
                        eq(base + i, r.timestamp(), "timestamp");
                    }
                });
            }
            step("describe_producers", () -> {
                List<TopicPartition> tps = new ArrayList<>();
                for (int p = 0; p < parts; p++) tps.add(new TopicPartition(topic, p));
                DescribeProducersResult r = admin.describeProducers(tps);
                Set<Long> pids = new HashSet<>();
                for (TopicPartition tp : tps) {
                    List<ProducerState> ps = r.partitionResult(tp).get().activeProducers();
                    eq(1, ps.size(), "one idempotent producer on " + tp);
                    ProducerState st = ps.get(0);
                    check(st.producerId() >= 0, "producer id", st);
                    eq(0, st.producerEpoch(), "epoch");
                    eq(n / parts - 1, st.lastSequence(), "last sequence on " + tp);
                    eq(base + n - parts + tp.partition(), st.lastTimestamp(), "last timestamp on " + tp);
                    check(st.currentTransactionStartOffset().isEmpty(), "no open transaction", st);
                    pids.add(st.producerId());
                }
                eq(1, pids.size(), "one producer id across partitions");
            });
        }
    }

    // -- consumer groups ---------------------------------------------------------

    /** A consumer that remembers its rebalance callbacks. */
    static final class Member implements ConsumerRebalanceListener {
        final String name;
        final KafkaConsumer<byte[], byte[]> c;
        final Set<TopicPartition> owned = new HashSet<>();
        final List<String> events = new ArrayList<>();
        final Set<TopicPartition> revoked = new HashSet<>();
        final List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();

        Member(String name, String topic, Map<String, Object> cfg) {
            this.name = name;
            this.c = consumer(cfg);
            c.subscribe(List.of(topic), this);
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> tps) {
            events.add("revoked " + partitionsOf(tps));
            revoked.addAll(tps);
            owned.removeAll(tps);
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> tps) {
            events.add("assigned " + partitionsOf(tps));
            owned.addAll(tps);
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> tps) {
            events.add("lost " + partitionsOf(tps));
            owned.removeAll(tps);
        }

        void poll() {
            for (ConsumerRecord<byte[], byte[]> r : c.poll(POLL)) records.add(r);
        }
    }

    /** Polls every member (one thread, round robin: a poll(100 ms) returns while
     * a JoinGroup is pending) until ``done`` holds. */
    static void pollUntil(List<Member> members, Supplier<Boolean> done, String what, long timeoutMs) {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (!done.get()) {
            if (System.currentTimeMillis() > deadline) {
                StringBuilder sb = new StringBuilder();
                for (Member m : members) sb.append(m.name).append(": owned ").append(partitionsOf(m.owned)).append(' ').append(m.events).append("; ");
                throw new AssertionError(what + " not reached within " + timeoutMs + " ms: " + sb);
            }
            for (Member m : members) m.poll();
        }
    }

    static void groups(String assignorClass, String assignorName) throws Exception {
        String topic = prefix + "-groups";
        String group = prefix + "-g";
        int parts = 4;
        int perPart = 10;
        Map<String, Object> cfg = props(ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignorClass,
                ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "30000",
                ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
        boolean cooperative = assignorName.equals("cooperative-sticky");
        try (Admin admin = admin()) {
            createTopic(admin, topic, parts);
            try (KafkaProducer<byte[], byte[]> p = producer(Map.of())) {
                for (int i = 0; i < parts * perPart; i++) p.send(new ProducerRecord<>(topic, i % parts, b("k" + i), b("v" + i)));
                p.flush();
            }
            Member a = new Member("a", topic, cfg);
            Member[] bHolder = new Member[1];
            try {
                step("join_single_member", () -> {
                    pollUntil(List.of(a), () -> a.owned.size() == parts, "a owns all partitions", 30_000);
                    eq(List.of("assigned " + Set.of(0, 1, 2, 3).stream().sorted().collect(Collectors.toList())),
                            a.events.stream().filter(e -> !e.equals("revoked []") && !e.equals("assigned []")).collect(Collectors.toList()),
                            "a's callbacks");
                });
                step("rebalance_on_join", () -> {
                    Member b = new Member("b", topic, cfg);
                    bHolder[0] = b;
                    a.events.clear();
                    a.revoked.clear();
                    List<Member> both = List.of(a, b);
                    pollUntil(both, () -> a.owned.size() == 2 && b.owned.size() == 2, "2 + 2 partitions", 60_000);
                    Set<TopicPartition> all = new HashSet<>(a.owned);
                    all.addAll(b.owned);
                    eq(parts, all.size(), "a and b own disjoint partitions covering the topic");
                    if (cooperative) {
                        // incremental: a gives up only the two partitions that move to b
                        eq(b.owned, a.revoked, "a revoked exactly what b got");
                    } else {
                        // eager: a gave up everything before the new assignment
                        eq(parts, a.revoked.size(), "a revoked all partitions (eager)");
                    }
                    line("type", "rebalance", "a", a.events, "b", b.events);
                });
                step("rebalance_on_leave", () -> {
                    Member b = bHolder[0];
                    b.c.close();
                    bHolder[0] = null;
                    pollUntil(List.of(a), () -> a.owned.size() == parts, "a owns all partitions again", 60_000);
                });
                step("consume_and_commit", () -> {
                    // positions, not records seen: after the rebalances a re-reads from the
                    // committed offsets (none yet), so count where it stands
                    pollUntil(List.of(a), () -> a.owned.stream().allMatch(tp -> a.c.position(tp) == perPart),
                            "every partition consumed to its end", 30_000);
                    a.c.commitSync();
                    Map<TopicPartition, OffsetAndMetadata> committed = a.c.committed(new HashSet<>(a.owned));
                    for (TopicPartition tp : a.owned) eq((long) perPart, committed.get(tp).offset(), "committed " + tp);
                });
                step("describe_group", () -> {
                    ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
                    eq(ConsumerGroupState.STABLE, d.state(), "state");
                    eq(assignorName, d.partitionAssignor(), "assignor");
                    eq(1, d.members().size(), "members");
                    MemberDescription m = d.members().iterator().next();
                    eq(parts, m.assignment().topicPartitions().size(), "member assignment");
                    check(!d.isSimpleConsumerGroup(), "not a simple group");
                    check(d.coordinator() != null && d.coordinator().id() >= 0, "a coordinator");
                });
                step("list_groups", () -> {
                    boolean found = false;
                    for (ConsumerGroupListing l : admin.listConsumerGroups().all().get()) {
                        if (l.groupId().equals(group)) {
                            found = true;
                            eq(Optional.of(ConsumerGroupState.STABLE), l.state(), "listed state");
                        }
                    }
                    check(found, "group listed");
                });
                step("list_group_offsets", () -> {
                    Map<TopicPartition, OffsetAndMetadata> o = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
                    eq(parts, o.size(), "partitions with offsets");
                    for (OffsetAndMetadata om : o.values()) eq((long) perPart, om.offset(), "offset");
                });
                step("delete_active_group_refused", () -> {
                    expectError(GroupNotEmptyException.class, "deleting a group with members",
                            () -> admin.deleteConsumerGroups(List.of(group)).all().get());
                });
                step("alter_offsets_of_active_group_refused", () -> {
                    expectError(UnknownMemberIdException.class, "altering offsets of a group with members",
                            () -> admin.alterConsumerGroupOffsets(group, Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(1)))
                                    .all().get());
                });
            } finally {
                if (bHolder[0] != null) bHolder[0].c.close();
                a.c.close();
            }
            step("alter_offsets", () -> {
                Map<TopicPartition, OffsetAndMetadata> to = new HashMap<>();
                to.put(new TopicPartition(topic, 0), new OffsetAndMetadata(1, "reset-by-admin"));
                to.put(new TopicPartition(topic, 1), new OffsetAndMetadata(2));
                admin.alterConsumerGroupOffsets(group, to).all().get();
                Map<TopicPartition, OffsetAndMetadata> o = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
                eq(1L, o.get(new TopicPartition(topic, 0)).offset(), "p0");
                eq("reset-by-admin", o.get(new TopicPartition(topic, 0)).metadata(), "p0 metadata");
                eq(2L, o.get(new TopicPartition(topic, 1)).offset(), "p1");
                eq((long) perPart, o.get(new TopicPartition(topic, 2)).offset(), "p2 untouched");
                ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
                eq(ConsumerGroupState.EMPTY, d.state(), "state after the last member left");
            });
            step("reset_offsets_to_earliest", () -> {
                // what kafka-consumer-groups --reset-offsets --to-earliest does: ListOffsets + OffsetCommit
                Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
                for (int p = 0; p < parts; p++) specs.put(new TopicPartition(topic, p), OffsetSpec.earliest());
                Map<TopicPartition, OffsetAndMetadata> to = new HashMap<>();
                admin.listOffsets(specs).all().get().forEach((tp, info) -> to.put(tp, new OffsetAndMetadata(info.offset())));
                admin.alterConsumerGroupOffsets(group, to).all().get();
                // a new member resumes from the reset offsets and sees everything again
                Member c = new Member("c", topic, cfg);
                try {
                    pollUntil(List.of(c), () -> c.records.size() >= parts * perPart, "all records re-read", 30_000);
                    eq(parts * perPart, c.records.size(), "records after reset");
                } finally {
                    c.c.close();
                }
            });
            step("delete_group_offsets", () -> {
                TopicPartition tp3 = new TopicPartition(topic, 3);
                admin.deleteConsumerGroupOffsets(group, Set.of(tp3)).all().get();
                Map<TopicPartition, OffsetAndMetadata> o = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
                check(!o.containsKey(tp3), "p3 offset deleted", o);
                check(o.containsKey(new TopicPartition(topic, 0)), "p0 offset kept", o);
            });
            step("delete_group", () -> {
                admin.deleteConsumerGroups(List.of(group)).all().get();
                check(admin.listConsumerGroups().all().get().stream().noneMatch(l -> l.groupId().equals(group)), "group gone");
                // the 3.x client reports a deleted group as Dead, the 4.x client raises
                // GroupIdNotFoundException (both brokers answer DescribeGroups alike)
                Throwable t = Out.failure(() -> eq(ConsumerGroupState.DEAD,
                        admin.describeConsumerGroups(List.of(group)).all().get().get(group).state(), "described as Dead"));
                check(t == null || t instanceof org.apache.kafka.common.errors.GroupIdNotFoundException,
                        "deleted group: Dead or GroupIdNotFoundException", t);
            });
        }
    }

    /** Static membership (KIP-345): group.instance.id members keep their
     * assignment across a restart within the session timeout; a second live
     * member with the same instance id fences the first. */
    static void staticMembership() throws Exception {
        String topic = prefix + "-static";
        String group = prefix + "-sg";
        int parts = 4;
        try (Admin admin = admin()) {
            createTopic(admin, topic, parts);
            Map<String, Object> base = props(ConsumerConfig.GROUP_ID_CONFIG, group,
                    ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName(),
                    ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "45000",
                    ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
            Map<String, Object> ca = new HashMap<>(base);
            ca.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "inst-a");
            Map<String, Object> cb = new HashMap<>(base);
            cb.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "inst-b");
            List<Member> open = new ArrayList<>();
            try {
                Member a = new Member("a", topic, ca);
                Member b = new Member("b", topic, cb);
                open.add(a);
                open.add(b);
                Set<TopicPartition> aOwned = new HashSet<>();
                int[] gen = {-1};
                step("static_join", () -> {
                    pollUntil(List.of(a, b), () -> a.owned.size() == 2 && b.owned.size() == 2, "2 + 2 partitions", 60_000);
                    aOwned.addAll(a.owned);
                    gen[0] = b.c.groupMetadata().generationId();
                    ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
                    Set<String> ids = d.members().stream().map(m -> m.groupInstanceId().orElse("-")).collect(Collectors.toSet());
                    eq(Set.of("inst-a", "inst-b"), ids, "group.instance.id of the members");
                    // b may have owned all four in a first generation without a
                    // (no initial rebalance delay); the next step counts from here.
                    b.revoked.clear();
                });
                step("static_restart_keeps_assignment", () -> {
                    a.c.close();  // a static member leaves no LeaveGroup behind
                    open.remove(a);
                    ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
                    eq(2, d.members().size(), "the closed static member is still a member");
                    Member a2 = new Member("a2", topic, ca);
                    open.add(a2);
                    pollUntil(List.of(a2, b), () -> a2.owned.size() == 2, "a2 gets a's partitions", 30_000);
                    eq(aOwned, a2.owned, "same partitions as before the restart");
                    for (int i = 0; i < 10; i++) b.poll();
                    eq(gen[0], b.c.groupMetadata().generationId(), "no rebalance: b's generation unchanged");
                    eq(List.of(), b.revoked.stream().collect(Collectors.toList()), "b revoked nothing");
                });
                step("static_duplicate_instance_fenced", () -> {
                    Member a2 = open.get(open.size() - 1);
                    Member a3 = new Member("a3", topic, ca);
                    open.add(a3);
                    pollUntil(List.of(a3, b), () -> a3.owned.size() == 2, "a3 takes over inst-a", 30_000);
                    Throwable t = null;
                    long deadline = System.currentTimeMillis() + 30_000;
                    while (t == null && System.currentTimeMillis() < deadline) {
                        try {
                            a2.poll();
                            a2.c.commitSync(Duration.ofSeconds(5));
                        } catch (KafkaException e) {
                            t = e;
                        }
                        a3.poll();
                        b.poll();
                    }
                    check(t instanceof FencedInstanceIdException, "the old inst-a member is fenced", t);
                    open.remove(a2);
                    try {
                        a2.c.close(Duration.ofSeconds(5));
                    } catch (KafkaException ignored) {
                        // closing a fenced member may report the fencing again
                    }
                });
                step("remove_static_members", () -> {
                    for (Member m : open) m.c.close();
                    open.clear();
                    admin.removeMembersFromConsumerGroup(group, new RemoveMembersFromConsumerGroupOptions(
                            List.of(new MemberToRemove("inst-a"), new MemberToRemove("inst-b")))).all().get();
                    ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
                    eq(0, d.members().size(), "no members left");
                    eq(ConsumerGroupState.EMPTY, d.state(), "state");
                });
            } finally {
                for (Member m : open) {
                    try {
                        m.c.close(Duration.ofSeconds(5));
                    } catch (KafkaException ignored) {
                        // best effort
                    }
                }
            }
        }
    }

    // -- transactions ------------------------------------------------------------

    static KafkaProducer<byte[], byte[]> txnProducer(String id) {
        return producer(props(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id, ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "60000"));
    }

    static void transactions() throws Exception {
        String topic = prefix + "-txn";
        String out = prefix + "-txn-out";
        String tid = prefix + "-tid";
        String group = prefix + "-txn-g";
        List<TopicPartition> tps = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1));
        try (Admin admin = admin()) {
            createTopic(admin, topic, 2);
            createTopic(admin, out, 2);
            try (KafkaProducer<byte[], byte[]> p = txnProducer(tid)) {
                step("init_transactions", p::initTransactions);
                step("commit_abort_commit", () -> {
                    p.beginTransaction();
                    for (int i = 0; i < 10; i++) p.send(new ProducerRecord<>(topic, i % 2, b("k" + i), b("committed-1-" + i)));
                    p.commitTransaction();
                    p.beginTransaction();
                    for (int i = 0; i < 5; i++) p.send(new ProducerRecord<>(topic, i % 2, b("k" + i), b("aborted-" + i)));
                    p.flush();
                    p.abortTransaction();
                    p.beginTransaction();
                    for (int i = 0; i < 10; i++) p.send(new ProducerRecord<>(topic, i % 2, b("k" + i), b("committed-2-" + i)));
                    p.commitTransaction();
                });
                step("read_committed", () -> {
                    List<String> values = readAll(tps, "read_committed").stream().map(r -> s(r.value())).sorted().collect(Collectors.toList());
                    eq(20, values.size(), "committed records only");
                    check(values.stream().noneMatch(v -> v.startsWith("aborted")), "no aborted record", values);
                });
                step("read_uncommitted", () -> {
                    List<ConsumerRecord<byte[], byte[]>> rs = readAll(tps, "read_uncommitted");
                    eq(25, rs.size(), "committed and aborted records");
                    // 3 transactions, one control record (marker) each per partition
                    Map<TopicPartition, Long> end = admin.listOffsets(Map.of(tps.get(0), OffsetSpec.latest(),
                            tps.get(1), OffsetSpec.latest())).all().get().entrySet().stream()
                            .collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().offset()));
                    eq(25L + 6, end.get(tps.get(0)) + end.get(tps.get(1)), "end offsets count the 6 markers");
                });
                step("last_stable_offset", () -> {
                    p.beginTransaction();
                    p.send(new ProducerRecord<>(topic, 0, b("k"), b("open"))).get();
                    ListOffsetsResult.ListOffsetsResultInfo rc = admin.listOffsets(Map.of(tps.get(0), OffsetSpec.latest()),
                            new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).all().get().get(tps.get(0));
                    ListOffsetsResult.ListOffsetsResultInfo ru = admin.listOffsets(Map.of(tps.get(0), OffsetSpec.latest()),
                            new ListOffsetsOptions(IsolationLevel.READ_UNCOMMITTED)).all().get().get(tps.get(0));
                    eq(ru.offset() - 1, rc.offset(), "read_committed latest = the open transaction's first offset");
                    TransactionDescription d = admin.describeTransactions(List.of(tid)).description(tid).get();
                    eq(TransactionState.ONGOING, d.state(), "describeTransactions state while open");
                    eq(Set.of(tps.get(0)), d.topicPartitions(), "partitions in the open transaction");
                    check(d.transactionStartTimeMs().isPresent(), "start time while open");
                    List<ProducerState> ps = admin.describeProducers(List.of(tps.get(0))).partitionResult(tps.get(0)).get().activeProducers();
                    eq(1, ps.size(), "one producer");
                    eq(rc.offset(), ps.get(0).currentTransactionStartOffset().orElse(-1L), "open txn start offset");
                    p.commitTransaction();
                });
                step("list_and_describe_transactions", () -> {
                    // with transaction version 2 (4.x client on Kafka 4.x) commitTransaction
                    // returns once PrepareCommit is logged and the markers follow: wait for it
                    long deadline = System.currentTimeMillis() + 10_000;
                    TransactionState listed = null;
                    while (listed != TransactionState.COMPLETE_COMMIT && System.currentTimeMillis() < deadline) {
                        listed = null;
                        for (TransactionListing l : admin.listTransactions().all().get()) {
                            if (l.transactionalId().equals(tid)) listed = l.state();
                        }
                        check(listed != null, "transactional id listed");
                        if (listed != TransactionState.COMPLETE_COMMIT) Thread.sleep(100);
                    }
                    eq(TransactionState.COMPLETE_COMMIT, listed, "listed state");
                    TransactionDescription d = admin.describeTransactions(List.of(tid)).description(tid).get();
                    eq(TransactionState.COMPLETE_COMMIT, d.state(), "state");
                    eq(60000L, (long) d.transactionTimeoutMs(), "timeout");
                    check(d.producerId() >= 0 && d.producerEpoch() >= 0, "producer id/epoch", d);
                    check(d.topicPartitions().isEmpty(), "no partitions after commit", d.topicPartitions());
                });
            }
            step("send_offsets_to_transaction", () -> {
                Map<String, Object> cc = props(ConsumerConfig.GROUP_ID_CONFIG, group,
                        ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
                try (KafkaConsumer<byte[], byte[]> c = consumer(cc);
                     KafkaProducer<byte[], byte[]> p = txnProducer(tid + "-ctp")) {
                    p.initTransactions();
                    c.subscribe(List.of(topic));
                    List<ConsumerRecord<byte[], byte[]>> in = new ArrayList<>();
                    long deadline = System.currentTimeMillis() + 30_000;
                    while (in.size() < 21) {
                        check(System.currentTimeMillis() < deadline, "consumed " + in.size() + " of 21");
                        for (ConsumerRecord<byte[], byte[]> r : c.poll(POLL)) in.add(r);
                    }
                    // aborted round first: the group's offsets must not move
                    p.beginTransaction();
                    for (ConsumerRecord<byte[], byte[]> r : in) p.send(new ProducerRecord<>(out, r.partition(), r.key(), b("dropped")));
                    p.sendOffsetsToTransaction(nextOffsets(in), c.groupMetadata());
                    p.abortTransaction();
                    check(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().isEmpty(),
                            "aborted sendOffsetsToTransaction committed nothing");
                    p.beginTransaction();
                    for (ConsumerRecord<byte[], byte[]> r : in) p.send(new ProducerRecord<>(out, r.partition(), r.key(), b("upper-" + s(r.value()).toUpperCase())));
                    p.sendOffsetsToTransaction(nextOffsets(in), c.groupMetadata());
                    p.commitTransaction();
                    Map<TopicPartition, OffsetAndMetadata> o = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
                    eq(nextOffsets(in), o.entrySet().stream().collect(Collectors.toMap(Map.Entry::getKey, e -> new OffsetAndMetadata(e.getValue().offset()))),
                            "group offsets = committed with the transaction");
                }
                List<String> values = readAll(List.of(new TopicPartition(out, 0), new TopicPartition(out, 1)), "read_committed")
                        .stream().map(r -> s(r.value())).collect(Collectors.toList());
                eq(21, values.size(), "transformed records visible to read_committed");
                check(values.stream().allMatch(v -> v.startsWith("upper-")), "only the committed round", values);
            });
            step("producer_fencing", () -> {
                String fid = tid + "-fence";
                try (KafkaProducer<byte[], byte[]> p1 = txnProducer(fid)) {
                    p1.initTransactions();
                    p1.beginTransaction();
                    p1.send(new ProducerRecord<>(topic, 0, b("f"), b("fenced-open"))).get();
                    // a second producer with the same transactional.id bumps the epoch and
                    // aborts p1's open transaction
                    try (KafkaProducer<byte[], byte[]> p2 = txnProducer(fid)) {
                        p2.initTransactions();
                        Throwable t = Out.failure(() -> {
                            p1.send(new ProducerRecord<>(topic, 0, b("f"), b("fenced-late"))).get();
                            p1.commitTransaction();
                        });
                        check(t instanceof ProducerFencedException || t instanceof InvalidProducerEpochException,
                                "p1 is fenced", t);
                        p2.beginTransaction();
                        p2.send(new ProducerRecord<>(topic, 0, b("f"), b("winner")));
                        p2.commitTransaction();
                    }
                }
                List<String> values = readAll(tps, "read_committed").stream().map(r -> s(r.value())).collect(Collectors.toList());
                check(values.contains("winner"), "the new producer's commit is visible", values);
                check(!values.contains("fenced-open") && !values.contains("fenced-late"), "the fenced producer's records are aborted", values);
            });
        }
    }

    static Map<TopicPartition, OffsetAndMetadata> nextOffsets(List<ConsumerRecord<byte[], byte[]>> in) {
        Map<TopicPartition, OffsetAndMetadata> m = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : in) {
            TopicPartition tp = new TopicPartition(r.topic(), r.partition());
            long next = r.offset() + 1;
            if (!m.containsKey(tp) || m.get(tp).offset() < next) m.put(tp, new OffsetAndMetadata(next));
        }
        return m;
    }
}
