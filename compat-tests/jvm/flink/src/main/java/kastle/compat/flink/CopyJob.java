// Flink driver for test_secure_clients.py: one bounded job on a local mini
// cluster with a KafkaSource -> map -> KafkaSink pipeline per listener, each
// with its own client properties (security.protocol, SASL, TLS stores), so the
// connector both consumes and produces through that listener.
//
// args: (BOOTSTRAP CLIENT_PROPERTIES_FILE INPUT OUTPUT)+
// Each source reads its input from the earliest to the latest offset as of
// the start (bounded), the map appends "|flink", and the sink writes with
// at-least-once delivery (flushed when the job finishes).
//
// stdout (JSON lines): {"event":"finished"} or {"event":"failed",...} (exit 1).
package kastle.compat.flink;

import java.io.FileInputStream;
import java.io.InputStream;
import java.util.Properties;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.serialization.SimpleStringSchema;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

public final class CopyJob {
    public static void main(String[] args) throws Exception {
        if (args.length == 0 || args.length % 4 != 0) {
            System.err.println("usage: CopyJob (BOOTSTRAP CLIENT_PROPERTIES INPUT OUTPUT)+");
            System.exit(2);
        }
        Configuration conf = new Configuration();
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(1);
        for (int i = 0; i < args.length; i += 4) {
            String bootstrap = args[i], input = args[i + 2], output = args[i + 3];
            Properties props = new Properties();
            try (InputStream in = new FileInputStream(args[i + 1])) {
                props.load(in);
            }
            KafkaSource<String> source = KafkaSource.<String>builder()
                    .setBootstrapServers(bootstrap)
                    .setProperties(props)
                    .setTopics(input)
                    .setGroupId(output + "-group")
                    .setStartingOffsets(OffsetsInitializer.earliest())
                    .setBounded(OffsetsInitializer.latest())
                    .setValueOnlyDeserializer(new SimpleStringSchema())
                    .build();
            KafkaSink<String> sink = KafkaSink.<String>builder()
                    .setBootstrapServers(bootstrap)
                    .setKafkaProducerConfig(props)
                    .setRecordSerializer(KafkaRecordSerializationSchema.builder()
                            .setTopic(output)
                            .setValueSerializationSchema(new SimpleStringSchema())
                            .build())
                    .setDeliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE)
                    .build();
            env.fromSource(source, WatermarkStrategy.noWatermarks(), "in-" + input)
                    .map(v -> v + "|flink").name("tag-" + input)
                    .sinkTo(sink).name("out-" + output);
        }
        try {
            env.execute("kastle-compat-flink-copy");
            System.out.println("{\"event\":\"finished\"}");
        } catch (Exception e) {
            System.out.println("{\"event\":\"failed\",\"error\":\""
                    + e.toString().replace("\\", "/").replace("\"", "'") + "\"}");
            e.printStackTrace();
            System.exit(1);
        }
        System.out.flush();
        System.exit(0);
    }
}
