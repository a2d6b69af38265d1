// Long-running Java client loops for the cluster failover tests
// (compat-tests/test_cluster_jvm.py): they keep working while the test kills a
// broker under them, and print what they did as JSON lines on stdout.
//
//   ClusterLoops copy BOOTSTRAP IN OUT GROUP TXN_ID SLEEP_MS
//     Exactly-once read-process-write: a read_committed consumer in GROUP
//     (classic protocol, subscribe) and a transactional producer TXN_ID copy
//     every record of IN to the same partition of OUT, one transaction per poll,
//     the consumed offsets committed with sendOffsetsToTransaction. On any
//     error the consumer and producer are closed and made again with the same
//     group and transactional.id (initTransactions fences the old producer and
//     aborts its open transaction; the consumer resumes at the group's committed
//     offsets), as an application restarting would. Ends (exit 0) once the
//     group's committed offsets reach IN's end offsets (taken at start: IN is
//     filled first). Events: assigned, committed {n, offsets}, error, done.
//
//   ClusterLoops group BOOTSTRAP TOPIC GROUP SLEEP_MS STOP_AFTER
//     A consumer group member (classic protocol, subscribe, auto commit off)
//     that commits synchronously after every poll. Events: assigned {positions}
//     (its position in each partition it was given: the group's committed
//     offset), poll {recs: {partition: [offsets]}}, commit {offsets} (after
//     commitSync returned), commit_failed, done. Stops (closing, so it leaves
//     the group) once it committed STOP_AFTER records in this run (0: never) or
//     the committed offsets reach TOPIC's end offsets.
package kastle.compat;

import static kastle.compat.Out.line;

import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class ClusterLoops {
    static String bootstrap;
    static final int MAX_ATTEMPTS = 30;

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: ClusterLoops copy|group BOOTSTRAP ...");
            System.exit(2);
        }
        bootstrap = args[1];
        line("type", "start", "mode", args[0], "client", ClientSuite.clientVersion());
        switch (args[0]) {
            case "copy":
                copy(args[2], args[3], args[4], args[5], Long.parseLong(args[6]));
                break;
            case "group":
                group(args[2], args[3], Long.parseLong(args[4]), Long.parseLong(args[5]));
                break;
            default:
                System.err.println("unknown mode " + args[0]);
                System.exit(2);
        }
        System.exit(0);
    }

    static KafkaConsumer<byte[], byte[]> consumer(String group, Map<String, Object> extra) {
        Map<String, Object> p = new HashMap<>();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, group + "-consumer");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "25");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
        p.putAll(extra);
        return new KafkaConsumer<>(p);
    }

    static Map<TopicPartition, Long> endOffsets(KafkaConsumer<byte[], byte[]> c, String topic) {
        List<TopicPartition> tps = c.partitionsFor(topic, Duration.ofSeconds(60)).stream()
                .map(pi -> new TopicPartition(topic, pi.partition())).collect(Collectors.toList());
        return c.endOffsets(tps, Duration.ofSeconds(60));
    }

    static Map<String, Long> byPartition(Map<TopicPartition, ?> m) {
        Map<String, Long> out = new TreeMap<>();
        for (Map.Entry<TopicPartition, ?> e : m.entrySet()) {
            Object v = e.getValue();
            long off = v instanceof OffsetAndMetadata ? ((OffsetAndMetadata) v).offset() : (Long) v;
            out.put(String.valueOf(e.getKey().partition()), off);
        }
        return out;
    }

    static Map<TopicPartition, OffsetAndMetadata> nextOffsets(ConsumerRecords<byte[], byte[]> rs) {
        Map<TopicPartition, OffsetAndMetadata> m = new HashMap<>();
        for (TopicPartition tp : rs.partitions()) {
            List<ConsumerRecord<byte[], byte[]>> l = rs.records(tp);
            m.put(tp, new OffsetAndMetadata(l.get(l.size() - 1).offset() + 1));
        }
        return m;
    }

    static boolean reached(Map<TopicPartition, Long> end, Map<TopicPartition, Long> committed) {
        for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
            if (committed.getOrDefault(e.getKey(), 0L) < e.getValue()) return false;
        }
        return true;
    }

    static ConsumerRebalanceListener reporter(KafkaConsumer<byte[], byte[]> c) {
        return new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                line("type", "revoked", "partitions", parts.stream().map(TopicPartition::partition).sorted()
                        .collect(Collectors.toList()));
            }

            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                Map<TopicPartition, Long> pos = new HashMap<>();
                for (TopicPartition tp : parts) pos.put(tp, c.position(tp));
                line("type", "assigned", "positions", byPartition(pos));
            }
        };
    }

    static void error(String where, int attempt, Throwable t) {
        System.err.println(where + " attempt " + attempt + " failed:");
        t.printStackTrace();
        line("type", "error", "where", where, "attempt", attempt,
                "error", t.getClass().getSimpleName() + ": " + t.getMessage());
    }

    // -- exactly-once copy ---------------------------------------------------------

    static void copy(String in, String out, String group, String txnId, long sleepMs) throws Exception {
        Map<TopicPartition, Long> end = null;
        Map<TopicPartition, Long> committed = new HashMap<>();
        for (int attempt = 1; ; attempt++) {
            KafkaConsumer<byte[], byte[]> c = null;
            KafkaProducer<byte[], byte[]> p = null;
            try {
                c = consumer(group, Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"));
                Map<String, Object> pp = new HashMap<>();
                pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
                pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
                pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
                pp.put(ProducerConfig.CLIENT_ID_CONFIG, txnId + "-" + attempt);
                pp.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "30000");
                pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
                pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "40000");
                pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "40000");
                pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");
                p = new KafkaProducer<>(pp);
                p.initTransactions();
                line("type", "init", "attempt", attempt);
                if (end == null) {
                    end = endOffsets(c, in);
                    line("type", "end_offsets", "offsets", byPartition(end));
                }
                c.subscribe(List.of(in), reporter(c));
                while (true) {
                    ConsumerRecords<byte[], byte[]> rs = c.poll(Duration.ofMillis(200));
                    if (rs.isEmpty()) {
                        if (c.assignment().size() == end.size()) {
                            Map<TopicPartition, OffsetAndMetadata> cm = c.committed(end.keySet());
                            for (Map.Entry<TopicPartition, OffsetAndMetadata> e : cm.entrySet()) {
                                if (e.getValue() != null) committed.put(e.getKey(), e.getValue().offset());
                            }
                            if (reached(end, committed)) {
                                line("type", "done", "committed", byPartition(committed), "attempts", attempt);
                                c.close(Duration.ofSeconds(10));
                                p.close(Duration.ofSeconds(10));
                                return;
                            }
                        }
                        continue;
                    }
                    p.beginTransaction();
                    for (ConsumerRecord<byte[], byte[]> r : rs) {
                        p.send(new ProducerRecord<>(out, r.partition(), r.key(), r.value()));
                    }
                    Map<TopicPartition, OffsetAndMetadata> next = nextOffsets(rs);
                    p.sendOffsetsToTransaction(next, c.groupMetadata());
                    p.commitTransaction();
                    for (Map.Entry<TopicPartition, OffsetAndMetadata> e : next.entrySet()) {
                        committed.put(e.getKey(), e.getValue().offset());
                    }
                    line("type", "committed", "n", rs.count(), "offsets", byPartition(next), "attempt", attempt);
                    if (sleepMs > 0) Thread.sleep(sleepMs);
                }
            } catch (Exception e) {
                error("copy", attempt, e);
                if (attempt >= MAX_ATTEMPTS) {
                    line("type", "gave_up", "attempts", attempt);
                    System.exit(1);
                }
                // As an application restarting: nothing of the failed round is
                // kept; the next producer's initTransactions aborts it.
                try {
                    if (p != null) p.close(Duration.ZERO);
                } catch (Exception ignored) {
                    // closing a failed producer
                }
                try {
                    if (c != null) c.close(Duration.ofSeconds(5));
                } catch (Exception ignored) {
                    // closing a failed consumer
                }
                Thread.sleep(1000);
            }
        }
    }

    // -- consumer group --------------------------------------------------------------

    static void group(String topic, String group, long sleepMs, long stopAfter) throws Exception {
        try (KafkaConsumer<byte[], byte[]> c = consumer(group, Map.of())) {
            Map<TopicPartition, Long> end = endOffsets(c, topic);
            line("type", "end_offsets", "offsets", byPartition(end));
            Map<TopicPartition, Long> committed = new HashMap<>();
            long committedRecords = 0;
            c.subscribe(List.of(topic), reporter(c));
            long deadline = System.currentTimeMillis() + 170_000;
            while (System.currentTimeMillis() < deadline) {
                ConsumerRecords<byte[], byte[]> rs = c.poll(Duration.ofMillis(200));
                if (rs.isEmpty()) {
                    if (c.assignment().size() == end.size()) {
                        for (TopicPartition tp : end.keySet()) committed.putIfAbsent(tp, c.position(tp));
                    }
                    if (reached(end, committed) && committed.size() == end.size()) break;
                    continue;
                }
                Map<String, List<Long>> recs = new TreeMap<>();
                for (TopicPartition tp : rs.partitions()) {
                    recs.put(String.valueOf(tp.partition()), rs.records(tp).stream().map(ConsumerRecord::offset)
                            .collect(Collectors.toList()));
                }
                line("type", "poll", "recs", recs);
                Map<TopicPartition, OffsetAndMetadata> next = nextOffsets(rs);
                for (int tries = 1; ; tries++) {
                    try {
                        c.commitSync(next);
                        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : next.entrySet()) {
                            committed.put(e.getKey(), e.getValue().offset());
                        }
                        committedRecords += rs.count();
                        line("type", "commit", "offsets", byPartition(next), "tries", tries);
                        break;
                    } catch (CommitFailedException e) {
                        // the group rebalanced: these records go to whoever owns them now
                        error("commit", tries, e);
                        line("type", "commit_failed", "offsets", byPartition(next));
                        break;
                    } catch (RetriableException e) {
                        error("commit", tries, e);
                        if (tries >= MAX_ATTEMPTS) throw e;
                        Thread.sleep(500);
                    } catch (KafkaException e) {
                        error("commit", tries, e);
                        if (tries >= MAX_ATTEMPTS) throw e;
                        Thread.sleep(500);
                    }
                }
                if (stopAfter > 0 && committedRecords >= stopAfter) break;
                if (sleepMs > 0) Thread.sleep(sleepMs);
            }
            line("type", "done", "committed", byPartition(committed), "records", committedRecords);
        }
    }
}
