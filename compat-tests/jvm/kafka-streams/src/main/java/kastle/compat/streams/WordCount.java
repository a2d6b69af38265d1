// Kafka Streams driver for test_kafka_streams.py: an exactly_once_v2 word count
// over a RocksDB key-value store, run until the test kills it (SIGKILL) or stops
// it (SIGTERM, closed through the shutdown hook).
//
// Record caching is off, so every input word yields one output record carrying
// that word's new count: read with read_committed, each word's output must be
// exactly 1, 2, ..., n however often the application was killed and restored.
//
// stdout (JSON lines): {"event":"state","state":...} on each state change and
// {"event":"processed","n":...} every PROGRESS_EVERY input lines, printed from
// inside the processing loop, i.e. while that work's transaction is still open;
// {"event":"restored",...} when a store partition finished restoring;
// {"event":"tasks","active":[...],"standby":[...]} whenever the instance's
// assigned tasks (metadataForLocalThreads) change, e.g. standby tasks under
// the streams rebalance protocol.
package kastle.compat.streams;

import java.time.Duration;
import java.util.Arrays;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.state.KeyValueStore;

public final class WordCount {
    static final int PROGRESS_EVERY = 100;

    public static void main(String[] args) throws Exception {
        if (args.length != 5 && args.length != 6) {
            System.err.println("usage: WordCount BOOTSTRAP APPLICATION_ID STATE_DIR INPUT OUTPUT [CLIENT_PROPERTIES]");
            System.exit(2);
        }
        String bootstrap = args[0], appId = args[1], stateDir = args[2], input = args[3], output = args[4];

        Properties p = new Properties();
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        // A killed member must leave the group quickly so the restarted one is
        // not kept waiting for the default 45 s session timeout.
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 6000);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1000);
        // The transaction a kill leaves open must be aborted by the broker's timeout
        // when the restarted instance uses another transactional id (wiped state dir).
        p.put(StreamsConfig.producerPrefix(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG), 5000);
        // Send within the transaction quickly (Streams' default linger is 100 ms), so
        // a kill leaves records of the open transaction on the broker.
        p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 5);
        if (args.length == 6) {
            // security.protocol, SASL and TLS settings (test_secure_clients.py)
            try (java.io.FileInputStream in = new java.io.FileInputStream(args[5])) {
                p.load(in);
            }
        }

        AtomicLong processed = new AtomicLong();
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
                .peek((k, v) -> {
                    long n = processed.incrementAndGet();
                    if (n % PROGRESS_EVERY == 0) {
                        emit("{\"event\":\"processed\",\"n\":" + n + "}");
                    }
                })
                .flatMapValues(line -> Arrays.asList(line.split(" ")))
                .groupBy((k, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
                .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("word-counts")
                        .withKeySerde(Serdes.String())
                        .withValueSerde(Serdes.Long())
                        .withCachingDisabled())
                .toStream()
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));

        KafkaStreams streams = new KafkaStreams(builder.build(), p);
        CountDownLatch closed = new CountDownLatch(1);
        streams.setStateListener((now, before) -> emit("{\"event\":\"state\",\"state\":\"" + now + "\"}"));
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override
            public void onRestoreStart(TopicPartition tp, String store, long start, long end) {
            }

            @Override
            public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long n) {
            }

            @Override
            public void onRestoreEnd(TopicPartition tp, String store, long total) {
                emit("{\"event\":\"restored\",\"store\":\"" + store + "\",\"partition\":\"" + tp
                        + "\",\"records\":" + total + "}");
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            emit("{\"event\":\"error\",\"error\":" + quote(e.toString()) + "}");
            e.printStackTrace();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(30));
            emit("{\"event\":\"closed\",\"processed\":" + processed.get() + "}");
            closed.countDown();
        }));
        streams.start();
        Thread tasks = new Thread(() -> reportTasks(streams), "task-report");
        tasks.setDaemon(true);
        tasks.start();
        closed.await();
    }

    /** Prints the instance's active and standby task ids when they change. */
    static void reportTasks(KafkaStreams streams) {
        String last = "";
        while (true) {
            try {
                java.util.TreeSet<String> active = new java.util.TreeSet<>();
                java.util.TreeSet<String> standby = new java.util.TreeSet<>();
                for (org.apache.kafka.streams.ThreadMetadata t : streams.metadataForLocalThreads()) {
                    t.activeTasks().forEach(m -> active.add(m.taskId().toString()));
                    t.standbyTasks().forEach(m -> standby.add(m.taskId().toString()));
                }
                String now = "{\"event\":\"tasks\",\"active\":" + jsonList(active)
                        + ",\"standby\":" + jsonList(standby) + "}";
                if (!now.equals(last)) {
                    emit(now);
                    last = now;
                }
                Thread.sleep(300);
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                // not running (yet, or any more): try again
                try {
                    Thread.sleep(300);
                } catch (InterruptedException ie) {
                    return;
                }
            }
        }
    }

    static String jsonList(java.util.Collection<String> items) {
        StringBuilder b = new StringBuilder("[");
        for (String i : items) {
            if (b.length() > 1) {
                b.append(',');
            }
            b.append(quote(i));
        }
        return b.append(']').toString();
    }

    static synchronized void emit(String json) {
        System.out.println(json);
        System.out.flush();
    }

    static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\"";
    }
}
