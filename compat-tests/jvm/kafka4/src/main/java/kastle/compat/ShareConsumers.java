package kastle.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * KIP-932 share groups with kafka-clients 4.4's KafkaShareConsumer. Phases (argv[0]),
 * each printing JSON lines ({"type":"step",...} per check, exit 1 on a failed one):
 *
 * <ul>
 *   <li>{@code setup bootstrap topic n group...}: creates a 1-partition topic, produces n
 *       records, sets share.auto.offset.reset=earliest on each group.
 *   <li>{@code implicit bootstrap topic n group}: two consumers of one group share the
 *       partition; every record is delivered once (implicit acknowledgement).
 *   <li>{@code explicit bootstrap topic n group}: offsets % 3 == 0 are REJECTed and never
 *       come back; % 3 == 1 are RELEASEd once and come back with delivery count 2; the
 *       rest ACCEPTed.
 *   <li>{@code hold bootstrap topic group}: acquires records, prints them, and waits to
 *       be killed without acknowledging.
 *   <li>{@code after_kill bootstrap topic group offsets}: gets the held records again
 *       (delivery count 2) once their acquisition lock has timed out.
 *   <li>{@code ack_first bootstrap topic group k}: ACCEPTs the records at offsets below k
 *       (committed with commitSync) and closes, releasing whatever else it got.
 *   <li>{@code rest bootstrap topic n group k}: after a broker restart, gets exactly the
 *       records at offsets k..n-1, each once, none of the accepted ones.
 *   <li>{@code renew bootstrap topic group lockMs}: explicit mode; RENEWs the records of
 *       one poll halfway through their acquisition lock (AcknowledgeType.RENEW, which the
 *       client sends only on ShareAcknowledge v2): committed without error.
 *   <li>{@code record_limit bootstrap topic n group}: share.acquire.mode=record_limit
 *       (ShareFetch v2) and max.poll.records=3: every record once, no poll above 3.
 *   <li>{@code dlq bootstrap topic n group dlqTopic}: KIP-1191's dead-letter queue: the group's
 *       DLQ topic (created DLQ-enabled), copy.record on, delivery limit 2; even offsets are
 *       REJECTed, odd ones RELEASEd on each delivery (archived at the limit); the DLQ topic
 *       then holds one record per offset, the original key and value with Kafka's
 *       __dlq.errors.* headers (delivery count 1 and the client-reject message for the
 *       rejected, 2 and the limit message for the released).
 *   <li>{@code admin bootstrap topic group n}: the Admin share-group offset APIs on an empty
 *       group: list (start offset n, lag 0), alter to 0, list again (lag n), delete the
 *       topic's offsets, delete the group.
 * </ul>
 */
public final class ShareConsumers {
    private static boolean failed;

    private static void step(String name, boolean ok, String detail) {
        System.out.println("{\"type\":\"step\",\"name\":\"" + name + "\",\"ok\":" + ok
            + ",\"error\":\"" + detail.replace("\\", "\\\\").replace("\"", "'") + "\"}");
        System.out.flush();
        if (!ok) {
            failed = true;
        }
    }

    private static Properties consumerProps(String bootstrap, String group, String mode) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("group.id", group);
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        p.put("share.acknowledgement.mode", mode);
        return p;
    }

    public static void main(String[] args) throws Exception {
        String phase = args[0];
        String bootstrap = args[1];
        switch (phase) {
            case "setup" -> setup(bootstrap, args[2], Integer.parseInt(args[3]),
                List.of(args).subList(4, args.length));
            case "implicit" -> implicit(bootstrap, args[2], Integer.parseInt(args[3]), args[4]);
            case "explicit" -> explicit(bootstrap, args[2], Integer.parseInt(args[3]), args[4]);
            case "hold" -> hold(bootstrap, args[2], args[3]);
            case "after_kill" -> afterKill(bootstrap, args[2], args[3], args[4]);
            case "ack_first" -> ackFirst(bootstrap, args[2], args[3], Integer.parseInt(args[4]));
            case "rest" -> rest(bootstrap, args[2], Integer.parseInt(args[3]), args[4],
                Integer.parseInt(args[5]));
            case "renew" -> renew(bootstrap, args[2], args[3], Integer.parseInt(args[4]));
            case "record_limit" -> recordLimit(bootstrap, args[2], Integer.parseInt(args[3]), args[4]);
            case "dlq" -> dlq(bootstrap, args[2], Integer.parseInt(args[3]), args[4], args[5]);
            case "admin" -> admin(bootstrap, args[2], args[3], Integer.parseInt(args[4]),
                Integer.parseInt(args[5]));
            default -> throw new IllegalArgumentException(phase);
        }
        System.exit(failed ? 1 : 0);
    }

    private static void setup(String bootstrap, String topic, int n, List<String> groups)
        throws Exception {
        Properties a = new Properties();
        a.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(a)) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
            Map<ConfigResource, Collection<AlterConfigOp>> ops = new HashMap<>();
            for (String g : groups) {
                ops.put(new ConfigResource(ConfigResource.Type.GROUP, g), List.of(new AlterConfigOp(
                    new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET)));
            }
            admin.incrementalAlterConfigs(ops).all().get();
        }
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("linger.ms", "5");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < n; i++) {
                producer.send(new ProducerRecord<>(topic, "k" + i, "v" + i));
            }
            producer.flush();
        }
        step("setup", true, "");
    }

    private static void implicit(String bootstrap, String topic, int n, String group)
        throws Exception {
        Map<Long, Integer> seen = new ConcurrentHashMap<>();
        Map<Integer, Integer> perConsumer = new ConcurrentHashMap<>();
        AtomicBoolean done = new AtomicBoolean();
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < 2; c++) {
            final int id = c;
            Thread t = new Thread(() -> {
                try (KafkaShareConsumer<String, String> consumer =
                         new KafkaShareConsumer<>(consumerProps(bootstrap, group, "implicit"))) {
                    consumer.subscribe(List.of(topic));
                    while (!done.get()) {
                        ConsumerRecords<String, String> rs = consumer.poll(Duration.ofMillis(200));
                        for (ConsumerRecord<String, String> r : rs) {
                            seen.merge(r.offset(), 1, Integer::sum);
                            perConsumer.merge(id, 1, Integer::sum);
                        }
                        // Slow down so that both members get a share.
                        if (!rs.isEmpty()) {
                            Thread.sleep(20);
                        }
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            t.start();
            threads.add(t);
        }
        long deadline = System.currentTimeMillis() + 20_000;
        while (seen.size() < n && System.currentTimeMillis() < deadline) {
            Thread.sleep(50);
        }
        // A little longer: a duplicate delivery would show now.
        Thread.sleep(500);
        done.set(true);
        for (Thread t : threads) {
            t.join(30_000);
        }
        long dups = seen.values().stream().filter(v -> v > 1).count();
        step("implicit_all_delivered", seen.size() == n, "distinct " + seen.size() + " of " + n);
        step("implicit_once", dups == 0, dups + " offsets delivered more than once");
        System.out.println("{\"type\":\"info\",\"per_consumer\":\"" + perConsumer + "\"}");
    }

    private static void explicit(String bootstrap, String topic, int n, String group) {
        Map<Long, List<Short>> deliveries = new TreeMap<>();
        Set<Long> accepted = new TreeSet<>();
        try (KafkaShareConsumer<String, String> consumer =
                 new KafkaShareConsumer<>(consumerProps(bootstrap, group, "explicit"))) {
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 20_000;
            long expected = java.util.stream.LongStream.range(0, n).filter(o -> o % 3 != 0).count();
            while (accepted.size() < expected && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> rs = consumer.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> r : rs) {
                    short count = r.deliveryCount().orElse((short) -1);
                    deliveries.computeIfAbsent(r.offset(), k -> new ArrayList<>()).add(count);
                    AcknowledgeType t;
                    if (r.offset() % 3 == 0) {
                        t = AcknowledgeType.REJECT;
                    } else if (r.offset() % 3 == 1 && count == 1) {
                        t = AcknowledgeType.RELEASE;
                    } else {
                        t = AcknowledgeType.ACCEPT;
                        accepted.add(r.offset());
                    }
                    consumer.acknowledge(r, t);
                }
                if (!rs.isEmpty()) {
                    consumer.commitSync();
                }
            }
            // Nothing more may come: rejected and accepted records are done.
            long until = System.currentTimeMillis() + 1_000;
            int extra = 0;
            while (System.currentTimeMillis() < until) {
                extra += consumer.poll(Duration.ofMillis(200)).count();
            }
            step("explicit_nothing_after", extra == 0, extra + " records after all were acknowledged");
        }
        boolean rejectedOnce = deliveries.entrySet().stream()
            .filter(e -> e.getKey() % 3 == 0).allMatch(e -> e.getValue().equals(List.of((short) 1)));
        boolean releasedTwice = deliveries.entrySet().stream()
            .filter(e -> e.getKey() % 3 == 1)
            .allMatch(e -> e.getValue().equals(List.of((short) 1, (short) 2)));
        boolean acceptedOnce = deliveries.entrySet().stream()
            .filter(e -> e.getKey() % 3 == 2).allMatch(e -> e.getValue().equals(List.of((short) 1)));
        step("explicit_every_record", deliveries.size() == n, deliveries.size() + " of " + n);
        step("explicit_reject_not_redelivered", rejectedOnce, deliveries.toString());
        step("explicit_release_redelivered", releasedTwice, deliveries.toString());
        step("explicit_accept_once", acceptedOnce, deliveries.toString());
    }

    private static void renew(String bootstrap, String topic, String group, int lockMs)
        throws Exception {
        try (KafkaShareConsumer<String, String> consumer =
                 new KafkaShareConsumer<>(consumerProps(bootstrap, group, "explicit"))) {
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 20_000;
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            while (got.isEmpty() && System.currentTimeMillis() < deadline) {
                consumer.poll(Duration.ofMillis(200)).forEach(got::add);
            }
            long acquired = System.currentTimeMillis();
            step("renew_got_records", !got.isEmpty(), "nothing polled");
            // Halfway through the lock; the client sends it on ShareAcknowledge v2 with
            // IsRenewAck (a RENEWed record is not acknowledged again in the same batch).
            Thread.sleep(lockMs / 2);
            for (ConsumerRecord<String, String> r : got) {
                consumer.acknowledge(r, AcknowledgeType.RENEW);
            }
            var renewed = consumer.commitSync();
            boolean ok = !renewed.isEmpty()
                && renewed.values().stream().allMatch(java.util.Optional::isEmpty);
            step("renew_committed", ok, renewed.toString());
            step("renew_within_the_lock", System.currentTimeMillis() - acquired < lockMs,
                "renewed " + (System.currentTimeMillis() - acquired) + " ms after the poll");
        }
    }

    private static void recordLimit(String bootstrap, String topic, int n, String group) {
        Map<Long, Integer> seen = new TreeMap<>();
        int largest = 0;
        Properties p = consumerProps(bootstrap, group, "implicit");
        p.put("share.acquire.mode", "record_limit");
        p.put("max.poll.records", "3");
        try (KafkaShareConsumer<String, String> consumer = new KafkaShareConsumer<>(p)) {
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 20_000;
            while (seen.size() < n && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> rs = consumer.poll(Duration.ofMillis(200));
                largest = Math.max(largest, rs.count());
                for (ConsumerRecord<String, String> r : rs) {
                    seen.merge(r.offset(), 1, Integer::sum);
                }
            }
        } catch (Exception e) {
            step("record_limit_consumer", false, e.toString());
            return;
        }
        long dups = seen.values().stream().filter(v -> v > 1).count();
        step("record_limit_all_delivered", seen.size() == n, "distinct " + seen.size() + " of " + n);
        step("record_limit_once", dups == 0, dups + " offsets delivered more than once");
        step("record_limit_max_poll", largest > 0 && largest <= 3, "largest poll " + largest);
    }

    private static void hold(String bootstrap, String topic, String group) throws Exception {
        KafkaShareConsumer<String, String> consumer =
            new KafkaShareConsumer<>(consumerProps(bootstrap, group, "explicit"));
        consumer.subscribe(List.of(topic));
        long deadline = System.currentTimeMillis() + 20_000;
        TreeSet<Long> held = new TreeSet<>();
        while (held.isEmpty() && System.currentTimeMillis() < deadline) {
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                held.add(r.offset());
            }
        }
        System.out.println("{\"type\":\"held\",\"offsets\":\"" + held.first() + "-" + held.last()
            + "\",\"count\":" + held.size() + "}");
        System.out.flush();
        // Killed here by the test, without acknowledging or closing.
        Thread.sleep(600_000);
    }

    private static void afterKill(String bootstrap, String topic, String group, String range) {
        String[] lr = range.split("-");
        long first = Long.parseLong(lr[0]);
        long last = Long.parseLong(lr[1]);
        Map<Long, Short> got = new TreeMap<>();
        long start = System.currentTimeMillis();
        try (KafkaShareConsumer<String, String> consumer =
                 new KafkaShareConsumer<>(consumerProps(bootstrap, group, "implicit"))) {
            consumer.subscribe(List.of(topic));
            long deadline = start + 20_000;
            while (got.size() < last - first + 1 && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    if (r.offset() >= first && r.offset() <= last) {
                        got.put(r.offset(), r.deliveryCount().orElse((short) -1));
                    }
                }
            }
        }
        boolean all = got.size() == last - first + 1;
        boolean second = got.values().stream().allMatch(c -> c == 2);
        step("killed_records_redelivered", all, got.size() + " of " + (last - first + 1)
            + " after " + (System.currentTimeMillis() - start) + " ms");
        step("killed_records_delivery_count_2", second, got.toString());
    }

    private static void ackFirst(String bootstrap, String topic, String group, int k) {
        Set<Long> accepted = new TreeSet<>();
        try (KafkaShareConsumer<String, String> consumer =
                 new KafkaShareConsumer<>(consumerProps(bootstrap, group, "explicit"))) {
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 20_000;
            while (accepted.size() < k && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> rs = consumer.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> r : rs) {
                    if (r.offset() < k) {
                        consumer.acknowledge(r, AcknowledgeType.ACCEPT);
                        accepted.add(r.offset());
                    } else {
                        consumer.acknowledge(r, AcknowledgeType.RELEASE);
                    }
                }
                if (!rs.isEmpty()) {
                    consumer.commitSync();
                }
            }
        }
        step("first_accepted", accepted.size() == k, accepted.size() + " of " + k);
    }

    private static void rest(String bootstrap, String topic, int n, String group, int k) {
        Map<Long, Integer> seen = new TreeMap<>();
        try (KafkaShareConsumer<String, String> consumer =
                 new KafkaShareConsumer<>(consumerProps(bootstrap, group, "implicit"))) {
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 20_000;
            while (seen.size() < n - k && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    seen.merge(r.offset(), 1, Integer::sum);
                }
            }
            // A redelivery would show now.
            long until = System.currentTimeMillis() + 500;
            while (System.currentTimeMillis() < until) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                    seen.merge(r.offset(), 1, Integer::sum);
                }
            }
        }
        boolean none = seen.keySet().stream().noneMatch(o -> o < k);
        boolean all = java.util.stream.LongStream.range(k, n).allMatch(seen::containsKey);
        boolean once = seen.values().stream().allMatch(c -> c == 1);
        step("rest_no_accepted_redelivered", none, seen.keySet().toString());
        step("rest_all_delivered", all, seen.size() + " of " + (n - k));
        step("rest_once", once, seen.toString());
    }

    private static void admin(String bootstrap, String topic, String group, int n, int k)
        throws Exception {
        Properties a = new Properties();
        a.put("bootstrap.servers", bootstrap);
        org.apache.kafka.common.TopicPartition tp = new org.apache.kafka.common.TopicPartition(topic, 0);
        try (Admin admin = Admin.create(a)) {
            Map<org.apache.kafka.common.TopicPartition, org.apache.kafka.clients.admin.SharePartitionOffsetInfo>
                before = admin.listShareGroupOffsets(Map.of(group,
                    new org.apache.kafka.clients.admin.ListShareGroupOffsetsSpec()))
                .partitionsToOffsetInfo(group).get();
            // The start offset the share partition's last state write carried:
            // Kafka writes it as it was before the acknowledgement being written
            // moved it, so after the first k it lies in [k, n].
            step("admin_list", before.get(tp) != null && before.get(tp).startOffset() >= k
                && before.get(tp).startOffset() <= n, before.toString());
            // KIP-1226 (DescribeShareGroupOffsets v1): every record delivered, none left.
            step("admin_list_lag", before.get(tp) != null
                && before.get(tp).lag().equals(java.util.Optional.of(0L)), before.toString());
            admin.alterShareGroupOffsets(group, Map.of(tp, 0L)).all().get();
            Map<org.apache.kafka.common.TopicPartition, org.apache.kafka.clients.admin.SharePartitionOffsetInfo>
                after = admin.listShareGroupOffsets(Map.of(group,
                    new org.apache.kafka.clients.admin.ListShareGroupOffsetsSpec().topicPartitions(List.of(tp))))
                .partitionsToOffsetInfo(group).get();
            step("admin_alter", after.get(tp) != null && after.get(tp).startOffset() == 0,
                after.toString());
            step("admin_alter_lag", after.get(tp) != null
                && after.get(tp).lag().equals(java.util.Optional.of((long) n)), after.toString());
            admin.deleteShareGroupOffsets(group, Set.of(topic)).all().get();
            Map<org.apache.kafka.common.TopicPartition, org.apache.kafka.clients.admin.SharePartitionOffsetInfo>
                gone = admin.listShareGroupOffsets(Map.of(group,
                    new org.apache.kafka.clients.admin.ListShareGroupOffsetsSpec()))
                .partitionsToOffsetInfo(group).get();
            step("admin_delete_offsets", gone.get(tp) == null, gone.toString());
            admin.deleteShareGroups(List.of(group)).all().get();
            step("admin_delete_group", true, "");
        }
    }

    private static void dlq(String bootstrap, String topic, int n, String group, String dlqTopic)
        throws Exception {
        Properties a = new Properties();
        a.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(a)) {
            admin.createTopics(List.of(new NewTopic(dlqTopic, 1, (short) 1)
                .configs(Map.of("errors.deadletterqueue.group.enable", "true")))).all().get();
            ConfigResource g = new ConfigResource(ConfigResource.Type.GROUP, group);
            List<AlterConfigOp> ops = new ArrayList<>();
            for (String[] kv : new String[][] {
                {"errors.deadletterqueue.topic.name", dlqTopic},
                {"errors.deadletterqueue.copy.record.enable", "true"},
                {"share.delivery.count.limit", "2"}}) {
                ops.add(new AlterConfigOp(new ConfigEntry(kv[0], kv[1]), AlterConfigOp.OpType.SET));
            }
            admin.incrementalAlterConfigs(Map.of(g, ops)).all().get();
        }
        Map<Long, List<Short>> deliveries = new TreeMap<>();
        try (KafkaShareConsumer<String, String> consumer =
                 new KafkaShareConsumer<>(consumerProps(bootstrap, group, "explicit"))) {
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 30_000;
            while (System.currentTimeMillis() < deadline && !dlqDone(deliveries, n)) {
                ConsumerRecords<String, String> rs = consumer.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> r : rs) {
                    short count = r.deliveryCount().orElse((short) -1);
                    deliveries.computeIfAbsent(r.offset(), k -> new ArrayList<>()).add(count);
                    consumer.acknowledge(r, r.offset() % 2 == 0
                        ? AcknowledgeType.REJECT : AcknowledgeType.RELEASE);
                }
                if (!rs.isEmpty()) {
                    consumer.commitSync();
                }
            }
        }
        step("dlq_deliveries", dlqDone(deliveries, n), deliveries.toString());
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        Map<Long, ConsumerRecord<String, String>> dead = new TreeMap<>();
        try (org.apache.kafka.clients.consumer.KafkaConsumer<String, String> consumer =
                 new org.apache.kafka.clients.consumer.KafkaConsumer<>(c)) {
            org.apache.kafka.common.TopicPartition tp =
                new org.apache.kafka.common.TopicPartition(dlqTopic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long deadline = System.currentTimeMillis() + 30_000;
            while (dead.size() < n && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    dead.put(Long.parseLong(header(r, "__dlq.errors.offset")), r);
                }
            }
        }
        step("dlq_one_record_per_offset", dead.size() == n, dead.keySet().toString());
        List<String> wrong = new ArrayList<>();
        for (Map.Entry<Long, ConsumerRecord<String, String>> e : dead.entrySet()) {
            long o = e.getKey();
            ConsumerRecord<String, String> r = e.getValue();
            boolean rejected = o % 2 == 0;
            Map<String, String> want = new java.util.LinkedHashMap<>();
            want.put("__dlq.errors.topic", topic);
            want.put("__dlq.errors.partition", "0");
            want.put("__dlq.errors.offset", Long.toString(o));
            want.put("__dlq.errors.group", group);
            want.put("__dlq.errors.delivery.count", rejected ? "1" : "2");
            want.put("__dlq.errors.message", rejected
                ? "Offset rejected by client." : "Offset delivery count exceeded the threshold.");
            Map<String, String> got = new java.util.LinkedHashMap<>();
            for (org.apache.kafka.common.header.Header h : r.headers()) {
                got.put(h.key(), h.value() == null ? null
                    : new String(h.value(), java.nio.charset.StandardCharsets.UTF_8));
            }
            if (!got.equals(want) || !List.copyOf(got.keySet()).equals(List.copyOf(want.keySet()))
                || !("k" + o).equals(r.key()) || !("v" + o).equals(r.value())) {
                wrong.add(o + ": " + r.key() + "/" + r.value() + " " + got);
            }
        }
        step("dlq_records_are_kafkas", wrong.isEmpty(), wrong.toString());
    }

    /** Every even offset rejected once; every odd one released at deliveries 1 and 2. */
    private static boolean dlqDone(Map<Long, List<Short>> deliveries, int n) {
        for (long o = 0; o < n; o++) {
            List<Short> want = o % 2 == 0 ? List.of((short) 1) : List.of((short) 1, (short) 2);
            if (!want.equals(deliveries.get(o))) {
                return false;
            }
        }
        return true;
    }

    private static String header(ConsumerRecord<String, String> r, String key) {
        org.apache.kafka.common.header.Header h = r.headers().lastHeader(key);
        return h == null || h.value() == null ? "-1"
            : new String(h.value(), java.nio.charset.StandardCharsets.UTF_8);
    }
}
