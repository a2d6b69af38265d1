// Spark driver for test_spark.py, on a local[2] master (UI off) in this JVM.
//
// args: BOOTSTRAP SPEC_JSON, the spec holding either or both of
//   "stream": {input, output, checkpoint, maxOffsetsPerTrigger, trigger: "processing"|"available-now"}
//     Structured Streaming: Kafka source -> value upper-cased and tagged with its
//     source partition and offset -> Kafka sink, checkpointed. "processing" runs
//     micro-batches every 300 ms until the JVM is killed; "available-now" processes
//     what is there and stops.
//   "timestamps": {topic, startingOffsetsByTimestamp (JSON), strategy}
//     a batch read from those timestamps to the latest offsets.
//   "copies": [{bootstrap, options: {kafka client key: value}, input, output}]
//     batch jobs, one after the other: read the input from the earliest to the
//     latest offsets, tag each value with "|spark", write it to the output, both
//     through that bootstrap with those client options (security.protocol, SASL,
//     TLS stores: the listener under test).
// stdout (JSON lines): {"event":"progress","batch":N,"rows":N,"start":..,"end":..}
// per micro-batch; {"event":"stream-done"}; {"event":"row","partition":..,
// "offset":..,"timestamp":..,"value":..} per row of the batch read; {"event":"done"}.
package kastle.compat.spark;

import java.io.File;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.apache.spark.sql.streaming.StreamingQueryListener;
import org.apache.spark.sql.streaming.Trigger;

public final class KafkaJobs {
    static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: KafkaJobs BOOTSTRAP SPEC_JSON_FILE");
            System.exit(2);
        }
        String bootstrap = args[0];
        JsonNode spec = JSON.readTree(new File(args[1]));

        SparkSession spark = SparkSession.builder()
                .appName("kastle-compat-spark")
                .master("local[2]")
                .config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.sql.shuffle.partitions", "2")
                .config("spark.sql.streaming.stopGracefullyOnShutdown", "false")
                .getOrCreate();

        if (spec.has("stream")) {
            runStream(spark, bootstrap, spec.get("stream"));
        }
        if (spec.has("timestamps")) {
            readByTimestamps(spark, bootstrap, spec.get("timestamps"));
        }
        if (spec.has("copies")) {
            for (JsonNode c : spec.get("copies")) {
                copy(spark, c);
            }
        }
        emit(JSON.createObjectNode().put("event", "done"));
        spark.stop();
        System.exit(0);
    }

    static void runStream(SparkSession spark, String bootstrap, JsonNode s) throws Exception {
        spark.streams().addListener(new StreamingQueryListener() {
            @Override
            public void onQueryStarted(QueryStartedEvent e) {
            }

            @Override
            public void onQueryProgress(QueryProgressEvent e) {
                var p = e.progress();
                if (p.sources().length == 0) {
                    return;
                }
                ObjectNode ev = JSON.createObjectNode().put("event", "progress")
                        .put("batch", p.batchId()).put("rows", p.numInputRows());
                ev.put("start", p.sources()[0].startOffset());
                ev.put("end", p.sources()[0].endOffset());
                emit(ev);
            }

            @Override
            public void onQueryTerminated(QueryTerminatedEvent e) {
            }
        });

        Dataset<Row> in = spark.readStream().format("kafka")
                .option("kafka.bootstrap.servers", bootstrap)
                .option("subscribe", s.get("input").asText())
                .option("startingOffsets", "earliest")
                .option("maxOffsetsPerTrigger", s.get("maxOffsetsPerTrigger").asLong())
                .load();
        Dataset<Row> out = in.selectExpr(
                "key",
                "concat(upper(cast(value as string)), '|', cast(partition as string), '|', "
                        + "cast(offset as string)) as value");
        Trigger trigger = s.get("trigger").asText().equals("available-now")
                ? Trigger.AvailableNow() : Trigger.ProcessingTime(300);
        StreamingQuery q = out.writeStream().format("kafka")
                .option("kafka.bootstrap.servers", bootstrap)
                .option("topic", s.get("output").asText())
                .option("checkpointLocation", s.get("checkpoint").asText())
                .trigger(trigger)
                .start();
        q.awaitTermination();
        emit(JSON.createObjectNode().put("event", "stream-done"));
    }

    static void readByTimestamps(SparkSession spark, String bootstrap, JsonNode t) {
        List<Row> rows = spark.read().format("kafka")
                .option("kafka.bootstrap.servers", bootstrap)
                .option("subscribe", t.get("topic").asText())
                .option("startingOffsetsByTimestamp", t.get("startingOffsetsByTimestamp").toString())
                .option("startingOffsetsByTimestampStrategy", t.get("strategy").asText())
                .option("endingOffsets", "latest")
                .load()
                .selectExpr("partition", "offset", "unix_millis(timestamp) as ts",
                        "cast(value as string) as value")
                .collectAsList();
        for (Row r : rows) {
            emit(JSON.createObjectNode().put("event", "row").put("partition", r.getInt(0))
                    .put("offset", r.getLong(1)).put("timestamp", r.getLong(2))
                    .put("value", r.getString(3)));
        }
    }

    static void copy(SparkSession spark, JsonNode c) {
        String bootstrap = c.get("bootstrap").asText();
        var read = spark.read().format("kafka")
                .option("kafka.bootstrap.servers", bootstrap)
                .option("subscribe", c.get("input").asText())
                .option("startingOffsets", "earliest")
                .option("endingOffsets", "latest");
        var options = c.get("options").fields();
        java.util.Map<String, String> kafka = new java.util.HashMap<>();
        while (options.hasNext()) {
            var o = options.next();
            kafka.put("kafka." + o.getKey(), o.getValue().asText());
        }
        read = read.options(kafka);
        read.load()
                .selectExpr("key", "concat(cast(value as string), '|spark') as value")
                .write().format("kafka")
                .option("kafka.bootstrap.servers", bootstrap)
                .option("topic", c.get("output").asText())
                .options(kafka)
                .save();
        emit(JSON.createObjectNode().put("event", "copied").put("output", c.get("output").asText()));
    }

    static synchronized void emit(JsonNode ev) {
        System.out.println(ev.toString());
        System.out.flush();
    }
}
