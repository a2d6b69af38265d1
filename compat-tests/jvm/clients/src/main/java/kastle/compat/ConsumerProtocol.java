// The Java consumer with group.protocol=consumer (KIP-848) against a broker:
// three consumers of one group over a 6-partition topic, a member leaving,
// every record consumed exactly once with synchronous commits, the group
// listed and described through the Admin client, and (phase "after-restart",
// run after the broker restarted) the committed offsets surviving the
// restart. Phase "regex": a member subscribing with an RE2J
// SubscriptionPattern (resolved by the broker) gets the topics whose whole
// name matches, a matching topic created later, and an invalid pattern is
// refused with Kafka's INVALID_REGULAR_EXPRESSION message. Phase
// "migration": a rolling upgrade (two consumers with group.protocol=classic,
// restarted one by one with group.protocol=consumer: the classic group is
// converted online) and the rolling downgrade back (the last consumer-protocol
// member leaving turns the group classic again), consuming every record
// exactly once with synchronous commits throughout. Compiled against kafka-clients 3.4 like the rest of the module but
// meant to run on jvm/kafka4's classpath (4.x): 4.x-only Admin calls go
// through reflection. Prints one JSON line per step (see Out).
package kastle.compat;

import static kastle.compat.Out.check;
import static kastle.compat.Out.eq;
import static kastle.compat.Out.line;
import static kastle.compat.Out.step;

import java.lang.reflect.Method;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class ConsumerProtocol {
    static String bootstrap;
    static String topic;
    static String group;
    static final int PARTITIONS = 6;
    static final Duration POLL = Duration.ofMillis(100);
    /** (partition, offset) -> times consumed, over every consumer of the group. */
    static final Map<TopicPartition, Map<Long, Integer>> SEEN = new HashMap<>();

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: ConsumerProtocol run|after-restart|regex BOOTSTRAP PREFIX");
            System.exit(2);
        }
        bootstrap = args[1];
        topic = args[2] + "-t";
        group = args[2] + "-g";
        line("type", "start", "phase", args[0]);
        try (Admin admin = Admin.create(adminProps())) {
            if (args[0].equals("run")) {
                run(admin);
            } else if (args[0].equals("regex")) {
                regex(admin, args[2]);
            } else if (args[0].equals("migration")) {
                migration(admin);
            } else {
                afterRestart(admin);
            }
        }
        line("type", "end", "failed", Out.FAILED);
        System.exit(0);
    }

    static Properties adminProps() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return p;
    }

    static KafkaConsumer<byte[], byte[]> consumer(String clientId) {
        KafkaConsumer<byte[], byte[]> c = unsubscribed(clientId, group);
        c.subscribe(List.of(topic));
        return c;
    }

    static KafkaConsumer<byte[], byte[]> unsubscribed(String clientId, String groupId) {
        return unsubscribed(clientId, groupId, "consumer");
    }

    /** A consumer of the topic using the `classic` or the `consumer` protocol. */
    static KafkaConsumer<byte[], byte[]> consumerOf(String clientId, String protocol) {
        KafkaConsumer<byte[], byte[]> c = unsubscribed(clientId, group, protocol);
        c.subscribe(List.of(topic));
        return c;
    }

    static KafkaConsumer<byte[], byte[]> unsubscribed(String clientId, String groupId, String protocol) {
        Properties p = new Properties();
        if (protocol.equals("classic")) {
            // Heartbeats often enough to learn of a rebalance quickly.
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
        }
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        p.put("group.protocol", protocol);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }

    /** `c.subscribe(new SubscriptionPattern(regex))` (4.x only: reflection). */
    static void subscribePattern(KafkaConsumer<byte[], byte[]> c, String regex) throws Exception {
        Class<?> sp = Class.forName("org.apache.kafka.clients.consumer.SubscriptionPattern");
        Object pattern = sp.getConstructor(String.class).newInstance(regex);
        c.getClass().getMethod("subscribe", sp).invoke(c, pattern);
    }

    /** Polls `c` until its assignment is `want`. */
    static void awaitAssignment(KafkaConsumer<byte[], byte[]> c, Set<TopicPartition> want, long deadlineMs) {
        long deadline = System.currentTimeMillis() + deadlineMs;
        while (!c.assignment().equals(want)) {
            c.poll(POLL);
            check(System.currentTimeMillis() < deadline, "assignment never became " + want, c.assignment());
        }
    }

    static void regex(Admin admin, String prefix) throws Exception {
        String a = prefix + "-rx-a";
        String b = prefix + "-rx-b";
        String later = prefix + "-rx-c";
        // Contains a match but is not one: RE2J's matches() takes whole names.
        String outside = "z" + prefix + "-rx-a";
        admin.createTopics(List.of(new NewTopic(a, 2, (short) 1), new NewTopic(b, 1, (short) 1),
            new NewTopic(outside, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        Set<TopicPartition> want = new HashSet<>(List.of(new TopicPartition(a, 0),
            new TopicPartition(a, 1), new TopicPartition(b, 0)));
        try (KafkaConsumer<byte[], byte[]> c = unsubscribed("rx-0", prefix + "-rxg")) {
            subscribePattern(c, prefix + "-rx-.*");
            step("regex_assigns_matching_topics", () -> awaitAssignment(c, want, 30_000));
            step("regex_new_topic_assigned", () -> {
                long t0 = System.currentTimeMillis();
                admin.createTopics(List.of(new NewTopic(later, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
                want.add(new TopicPartition(later, 0));
                awaitAssignment(c, want, 40_000);
                line("type", "info", "new_topic_assigned_after_ms", System.currentTimeMillis() - t0);
            });
        }
        step("invalid_regex_refused", () -> {
            String bad = prefix + "-rx-(";
            try (KafkaConsumer<byte[], byte[]> c = unsubscribed("rx-bad", prefix + "-rxbad")) {
                subscribePattern(c, bad);
                long deadline = System.currentTimeMillis() + 15_000;
                String error = null;
                while (error == null) {
                    try {
                        c.poll(POLL);
                    } catch (RuntimeException e) {
                        error = e.getClass().getSimpleName() + ": " + e.getMessage();
                    }
                    check(System.currentTimeMillis() < deadline, "the invalid pattern was not refused");
                }
                // The client puts its own sentence before the coordinator's message.
                eq("InvalidRegularExpression: Invalid RE2J SubscriptionPattern provided in the call to subscribe. "
                    + "SubscribedTopicRegex `" + bad
                    + "` is not a valid regular expression: missing closing ).", error, "error");
            }
        });
    }

    static void produce(int n, int from) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        try (KafkaProducer<byte[], byte[]> pr = new KafkaProducer<>(p)) {
            for (int i = from; i < from + n; i++) {
                pr.send(new ProducerRecord<>(topic, i % PARTITIONS, null, ("v" + i).getBytes()));
            }
            pr.flush();
        }
    }

    /** One poll of `c`: what it got is recorded and committed before the next poll. */
    static int pollOnce(KafkaConsumer<byte[], byte[]> c) {
        ConsumerRecords<byte[], byte[]> recs = c.poll(POLL);
        if (recs.isEmpty()) {
            return 0;
        }
        Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : recs) {
            TopicPartition tp = new TopicPartition(r.topic(), r.partition());
            SEEN.computeIfAbsent(tp, k -> new HashMap<>()).merge(r.offset(), 1, Integer::sum);
            commit.put(tp, new OffsetAndMetadata(r.offset() + 1));
        }
        // A commit racing an epoch bump gets STALE_MEMBER_EPOCH (as on
        // Kafka): the client must retry once its heartbeat brought the new
        // epoch.
        for (int attempt = 0; ; attempt++) {
            try {
                c.commitSync(commit);
                break;
            } catch (CommitFailedException e) {
                if (attempt >= 50 || !String.valueOf(e.getMessage()).contains("stale member epoch")) {
                    throw e;
                }
                line("type", "info", "commit_retry", String.valueOf(e.getMessage()));
                try {
                    Thread.sleep(100);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw e;
                }
            }
        }
        return recs.count();
    }

    static int seenTotal() {
        return SEEN.values().stream().mapToInt(Map::size).sum();
    }

    static void checkExactlyOnce(int expected) {
        for (Map.Entry<TopicPartition, Map<Long, Integer>> e : SEEN.entrySet()) {
            for (Map.Entry<Long, Integer> o : e.getValue().entrySet()) {
                eq(1, o.getValue(), "times " + e.getKey() + "@" + o.getKey() + " was consumed");
            }
        }
        eq(expected, seenTotal(), "records consumed");
    }

    /** Polls every consumer until their assignments are disjoint and cover the topic. */
    static void awaitCover(List<KafkaConsumer<byte[], byte[]>> cs, long deadlineMs) {
        long deadline = System.currentTimeMillis() + deadlineMs;
        while (true) {
            for (KafkaConsumer<byte[], byte[]> c : cs) {
                pollOnce(c);
            }
            Set<TopicPartition> union = new HashSet<>();
            int total = 0;
            boolean everyoneHasSome = true;
            for (KafkaConsumer<byte[], byte[]> c : cs) {
                Set<TopicPartition> a = c.assignment();
                everyoneHasSome &= !a.isEmpty();
                union.addAll(a);
                total += a.size();
            }
            if (everyoneHasSome && union.size() == PARTITIONS && total == PARTITIONS) {
                List<Object> sizes = new ArrayList<>();
                for (KafkaConsumer<byte[], byte[]> c : cs) {
                    sizes.add(c.assignment().size());
                }
                line("type", "info", "assignment_sizes", sizes);
                return;
            }
            check(System.currentTimeMillis() < deadline, "assignments did not converge",
                union, total);
        }
    }

    static void consumeUntil(List<KafkaConsumer<byte[], byte[]>> cs, int expected, long deadlineMs) {
        long deadline = System.currentTimeMillis() + deadlineMs;
        while (seenTotal() < expected) {
            for (KafkaConsumer<byte[], byte[]> c : cs) {
                pollOnce(c);
            }
            check(System.currentTimeMillis() < deadline, "not everything was consumed", seenTotal());
        }
        // A little longer: nothing is delivered twice.
        for (int i = 0; i < 5; i++) {
            for (KafkaConsumer<byte[], byte[]> c : cs) {
                pollOnce(c);
            }
        }
    }

    static Object call(Object o, String name) throws Exception {
        Method m = o.getClass().getMethod(name);
        return m.invoke(o);
    }

    static String lower(Object o) {
        return String.valueOf(o).toLowerCase(java.util.Locale.ROOT);
    }

    static ConsumerGroupDescription describe(Admin admin) throws Exception {
        return admin.describeConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS).get(group);
    }

    static long committedSum(Admin admin) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> offs = admin.listConsumerGroupOffsets(group)
            .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
        long sum = 0;
        for (OffsetAndMetadata o : offs.values()) {
            sum += o.offset();
        }
        return sum;
    }

    static void run(Admin admin) throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all().get(30, TimeUnit.SECONDS);
        produce(600, 0);
        List<KafkaConsumer<byte[], byte[]>> cs = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            cs.add(consumer("cp-" + i));
        }
        try {
            step("three_members_disjoint_cover", () -> awaitCover(cs, 90_000));
            step("describe_group", () -> {
                // Assignments may cover the topic while a member is still
                // reconciling to the latest epoch: wait for Stable.
                long deadline = System.currentTimeMillis() + 30_000;
                while (!lower(call(describe(admin), "groupState")).equals("stable")) {
                    check(System.currentTimeMillis() < deadline, "group not stable",
                        call(describe(admin), "groupState"));
                    for (KafkaConsumer<byte[], byte[]> c : cs) {
                        pollOnce(c);
                    }
                }
                ConsumerGroupDescription d = describe(admin);
                eq(3, d.members().size(), "members");
                eq("consumer", lower(call(d, "type")), "group type");
                eq("stable", lower(call(d, "groupState")), "group state");
                Set<TopicPartition> all = new HashSet<>();
                for (MemberDescription m : d.members()) {
                    all.addAll(m.assignment().topicPartitions());
                }
                eq(PARTITIONS, all.size(), "described assignment");
            });
            step("list_groups", () -> {
                Collection<ConsumerGroupListing> ls = admin.listConsumerGroups().all().get(30, TimeUnit.SECONDS);
                boolean found = false;
                for (ConsumerGroupListing l : ls) {
                    if (l.groupId().equals(group)) {
                        found = true;
                        eq("optional[consumer]", lower(call(l, "type")), "listed type");
                    }
                }
                check(found, "group not listed", ls);
            });
            step("consume_exactly_once", () -> {
                consumeUntil(cs, 600, 60_000);
                checkExactlyOnce(600);
            });
            step("member_leaving_reassigns", () -> {
                cs.remove(2).close();
                awaitCover(cs, 60_000);
                eq(2, describe(admin).members().size(), "members after one left");
            });
            step("consume_after_leave_exactly_once", () -> {
                produce(300, 600);
                consumeUntil(cs, 900, 60_000);
                checkExactlyOnce(900);
            });
            step("committed_offsets", () -> eq(900L, committedSum(admin), "sum of committed offsets"));
        } finally {
            for (KafkaConsumer<byte[], byte[]> c : cs) {
                c.close();
            }
        }
        step("empty_after_close", () -> {
            ConsumerGroupDescription d = describe(admin);
            eq(0, d.members().size(), "members after close");
            eq("empty", lower(call(d, "groupState")), "group state");
        });
    }

    /** Replaces consumer `i` of `cs` by a new one using `protocol`; all then cover the topic. */
    static void restartAs(List<KafkaConsumer<byte[], byte[]>> cs, int i, String name, String protocol) {
        cs.get(i).close();
        cs.set(i, consumerOf(name, protocol));
        awaitCover(cs, 90_000);
    }

    static void groupTypeIs(Admin admin, String want) throws Exception {
        long deadline = System.currentTimeMillis() + 30_000;
        String type = "";
        while (!type.equals(want)) {
            type = lower(call(describe(admin), "type"));
            check(System.currentTimeMillis() < deadline, "group type never became " + want, type);
        }
    }

    static void migration(Admin admin) throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all().get(30, TimeUnit.SECONDS);
        List<KafkaConsumer<byte[], byte[]>> cs = new ArrayList<>();
        cs.add(consumerOf("mg-0", "classic"));
        cs.add(consumerOf("mg-1", "classic"));
        // Records are produced once the members cover the topic: a classic
        // group rejects commits while it rebalances, and a record processed
        // but not committed would be consumed again.
        try {
            step("classic_members_cover", () -> {
                awaitCover(cs, 90_000);
                eq("classic", lower(call(describe(admin), "type")), "group type");
                produce(300, 0);
                consumeUntil(cs, 300, 60_000);
                checkExactlyOnce(300);
            });
            step("upgrade_first_member", () -> {
                restartAs(cs, 1, "mg-1c", "consumer");
                groupTypeIs(admin, "consumer");
                produce(300, 300);
                consumeUntil(cs, 600, 60_000);
                checkExactlyOnce(600);
            });
            step("upgrade_second_member", () -> {
                restartAs(cs, 0, "mg-0c", "consumer");
                eq("consumer", lower(call(describe(admin), "type")), "group type");
                eq(2, describe(admin).members().size(), "members");
                produce(300, 600);
                consumeUntil(cs, 900, 60_000);
                checkExactlyOnce(900);
            });
            step("downgrade_first_member", () -> {
                restartAs(cs, 0, "mg-0k", "classic");
                eq("consumer", lower(call(describe(admin), "type")), "group type");
                produce(300, 900);
                consumeUntil(cs, 1200, 60_000);
                checkExactlyOnce(1200);
            });
            step("downgrade_second_member", () -> {
                restartAs(cs, 1, "mg-1k", "classic");
                groupTypeIs(admin, "classic");
                produce(300, 1200);
                consumeUntil(cs, 1500, 60_000);
                checkExactlyOnce(1500);
            });
            step("migration_committed_offsets", () -> eq(1500L, committedSum(admin), "sum of committed offsets"));
        } finally {
            for (KafkaConsumer<byte[], byte[]> c : cs) {
                c.close();
            }
        }
    }

    static void afterRestart(Admin admin) throws Exception {
        step("offsets_survive_restart", () -> eq(900L, committedSum(admin), "sum of committed offsets"));
        step("resume_from_committed", () -> {
            produce(60, 900);
            List<KafkaConsumer<byte[], byte[]>> cs = new ArrayList<>();
            cs.add(consumer("cp-after"));
            try {
                consumeUntil(cs, 60, 60_000);
                checkExactlyOnce(60);
                eq(1, describe(admin).members().size(), "members");
            } finally {
                cs.get(0).close();
            }
            eq(960L, committedSum(admin), "sum of committed offsets");
        });
    }
}
