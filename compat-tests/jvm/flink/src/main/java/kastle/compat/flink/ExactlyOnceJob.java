// Flink driver for test_flink.py: KafkaSource -> map -> KafkaSink with
// DeliveryGuarantee.EXACTLY_ONCE, on a local mini cluster in this JVM,
// checkpointing every second to a local directory (retained, so the test can
// restore from the last completed checkpoint after SIGKILLing this JVM).
//
// args: BOOTSTRAP INPUT OUTPUT GROUP CHECKPOINT_DIR TXN_PREFIX NAMING_STRATEGY
//       RESTORE_PATH|- SLEEP_MS_PER_RECORD
// The source is unbounded: the test stops the JVM once the output is complete
// (a bounded KafkaSource restored from a checkpoint never finishes in connector
// 5.0.0: its enumerator does not signal "no more splits" when the restored
// assignment has no partition changes, FLINK-31006). No restarts: any failure
// (a refused commit, say) fails the job and ends this process, so the test sees it.
//
// stdout (JSON lines): {"event":"submitted","job":ID}; {"event":"processed","n":N}
// whenever the count of records this JVM's map handled changed (sampled every
// 200 ms); {"event":"failed",...} if the job fails.
package kastle.compat.flink;

import java.time.Duration;

import java.util.concurrent.atomic.AtomicLong;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.serialization.SimpleStringSchema;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExternalizedCheckpointRetention;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.sink.TransactionNamingStrategy;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

public final class ExactlyOnceJob {
    public static void main(String[] args) throws Exception {
        if (args.length != 9) {
            System.err.println("usage: ExactlyOnceJob BOOTSTRAP INPUT OUTPUT GROUP CHECKPOINT_DIR "
                    + "TXN_PREFIX INCREMENTING|POOLING RESTORE_PATH|- SLEEP_MS_PER_RECORD");
            System.exit(2);
        }
        String bootstrap = args[0], input = args[1], output = args[2], group = args[3];
        String checkpoints = args[4], prefix = args[5], restore = args[7];
        TransactionNamingStrategy naming = TransactionNamingStrategy.valueOf(args[6]);
        long sleepMs = Long.parseLong(args[8]);

        Configuration conf = new Configuration();
        conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, Duration.ofSeconds(1));
        conf.set(CheckpointingOptions.CHECKPOINTING_CONSISTENCY_MODE, CheckpointingMode.EXACTLY_ONCE);
        conf.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
        conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, "file://" + checkpoints);
        conf.set(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION,
                ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION);
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        if (!restore.equals("-")) {
            conf.set(StateRecoveryOptions.SAVEPOINT_PATH, restore);
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(2);

        KafkaSource<String> source = KafkaSource.<String>builder()
                .setBootstrapServers(bootstrap)
                .setTopics(input)
                .setGroupId(group)
                .setStartingOffsets(OffsetsInitializer.earliest())
                .setValueOnlyDeserializer(new SimpleStringSchema())
                .build();
        KafkaSink<String> sink = KafkaSink.<String>builder()
                .setBootstrapServers(bootstrap)
                .setRecordSerializer(KafkaRecordSerializationSchema.builder()
                        .setTopic(output)
                        .setValueSerializationSchema(new SimpleStringSchema())
                        .build())
                .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
                .setTransactionalIdPrefix(prefix)
                .setTransactionNamingStrategy(naming)
                // below the broker's transaction.max.timeout.ms (15 min by default);
                // Flink's own default (1 h) is refused by InitProducerId
                .setProperty("transaction.timeout.ms", "120000")
                .build();

        env.fromSource(source, WatermarkStrategy.noWatermarks(), "kafka-in")
                .map(new Tag(sleepMs)).name("tag")
                .sinkTo(sink).name("kafka-out");

        JobClient job = env.executeAsync("kastle-compat-flink-eos");
        emit("{\"event\":\"submitted\",\"job\":\"" + job.getJobID() + "\"}");
        Thread reporter = new Thread(() -> {
            long last = -1;
            while (true) {
                long n = Tag.PROCESSED.get();
                if (n != last) {
                    emit("{\"event\":\"processed\",\"n\":" + n + "}");
                    last = n;
                }
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        reporter.setDaemon(true);
        reporter.start();
        try {
            job.getJobExecutionResult().get();
            emit("{\"event\":\"finished\"}");
        } catch (Exception e) {
            emit("{\"event\":\"failed\",\"error\":\"" + e.toString().replace("\\", "/").replace("\"", "'") + "\"}");
            e.printStackTrace();
            System.exit(1);
        }
        System.exit(0);
    }

    /** Appends "|flink" to each value; sleeps to stretch the stream over several checkpoints. */
    static final class Tag implements MapFunction<String, String> {
        // The mini cluster runs the operators in this JVM, with classes from the
        // application class path, so main's reporter sees this counter.
        static final AtomicLong PROCESSED = new AtomicLong();
        private final long sleepMs;

        Tag(long sleepMs) {
            this.sleepMs = sleepMs;
        }

        @Override
        public String map(String value) throws InterruptedException {
            if (sleepMs > 0) {
                Thread.sleep(sleepMs);
            }
            PROCESSED.incrementAndGet();
            return value + "|flink";
        }
    }

    static synchronized void emit(String json) {
        System.out.println(json);
        System.out.flush();
    }
}
