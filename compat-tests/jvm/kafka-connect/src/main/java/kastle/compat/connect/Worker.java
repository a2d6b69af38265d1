// Kafka Connect driver for test_kafka_connect.py: one distributed worker, started
// in-process through Kafka's own ConnectDistributed (the same code path as
// bin/connect-distributed.sh), configured by a worker.properties file. Stops on
// SIGTERM through Connect's shutdown hook.
//
// stdout (JSON lines): {"event":"started","url":...} once the REST server is up,
// {"event":"stopped"} after a clean stop.
package kastle.compat.connect;

import java.io.FileInputStream;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.connect.cli.ConnectDistributed;
import org.apache.kafka.connect.runtime.Connect;
import org.apache.kafka.connect.runtime.distributed.DistributedHerder;

public final class Worker {
    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: Worker WORKER_PROPERTIES");
            System.exit(2);
        }
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        Map<String, String> workerProps = new HashMap<>();
        props.stringPropertyNames().forEach(k -> workerProps.put(k, props.getProperty(k)));

        Connect<DistributedHerder> connect = new ConnectDistributed().startConnect(workerProps);
        // Connect's own shutdown hook stops the worker; this one reports when that
        // finished (the JVM waits for every hook, so the line is not lost to the exit)
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            connect.awaitStop();
            System.out.println("{\"event\":\"stopped\"}");
            System.out.flush();
        }));
        System.out.println("{\"event\":\"started\",\"url\":\"" + connect.rest().serverUrl() + "\"}");
        System.out.flush();
        connect.awaitStop();
    }
}
