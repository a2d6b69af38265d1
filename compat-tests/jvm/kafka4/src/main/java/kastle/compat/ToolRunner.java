// Runs a sequence of Kafka's own command-line tools (their main classes, as the
// kafka-*.sh scripts do) in one JVM, so that test_kafka_tools.py pays for one JVM
// start instead of twenty. Usage: ToolRunner SCRIPT.json, where the script is a
// JSON array of {"name", "main", "args": [...], "stdin": text or null}. Prints one
// JSON line per invocation: {"name", "rc", "out", "err", "ms"}. Exit.exit in a
// tool ends that invocation with its status, not the JVM.
package kastle.compat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.apache.kafka.common.utils.internals.Exit;

public final class ToolRunner {
    /** Thrown by the overridden exit procedure to unwind a tool's main. */
    static final class ToolExit extends RuntimeException {
        final int code;

        ToolExit(int code, String message) {
            super(message, null, false, false);
            this.code = code;
        }
    }

    /** System.out/err stay these objects (tools may keep a reference); only the
     * buffer behind them changes per invocation. */
    static final class Switch extends OutputStream {
        volatile OutputStream target;

        Switch(OutputStream t) {
            target = t;
        }

        @Override
        public void write(int b) {
            try {
                target.write(b);
            } catch (java.io.IOException e) {
                throw new RuntimeException(e);
            }
        }

        @Override
        public void write(byte[] b, int off, int len) {
            try {
                target.write(b, off, len);
            } catch (java.io.IOException e) {
                throw new RuntimeException(e);
            }
        }
    }

    static volatile Integer firstExit;
    static final List<Runnable> hooks = new ArrayList<>();

    public static void main(String[] argv) throws Exception {
        ObjectMapper json = new ObjectMapper();
        JsonNode script = json.readTree(new File(argv[0]));
        PrintStream realOut = System.out;
        Switch out = new Switch(System.out);
        Switch err = new Switch(System.err);
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        // Some tools catch Throwable around their own Exit.exit and exit again with
        // 1: the first status a tool asked for is the one it meant.
        Exit.setExitProcedure((code, message) -> {
            if (firstExit == null) firstExit = code;
            throw new ToolExit(code, message);
        });
        Exit.setHaltProcedure((code, message) -> {
            if (firstExit == null) firstExit = code;
            throw new ToolExit(code, message);
        });
        // Shutdown hooks (VerifiableProducer prints its summary and closes its
        // producer in one) run when the invocation ends, as at a real JVM exit.
        Exit.setShutdownHookAdder((name, hook) -> hooks.add(hook));
        InputStream realIn = System.in;
        for (JsonNode inv : script) {
            ByteArrayOutputStream o = new ByteArrayOutputStream();
            ByteArrayOutputStream e = new ByteArrayOutputStream();
            out.target = o;
            err.target = e;
            JsonNode stdin = inv.get("stdin");
            System.setIn(stdin == null || stdin.isNull() ? realIn
                    : new ByteArrayInputStream(stdin.asText().getBytes(StandardCharsets.UTF_8)));
            List<String> args = new ArrayList<>();
            inv.get("args").forEach(a -> args.add(a.asText()));
            long t0 = System.nanoTime();
            int rc = 0;
            try {
                Class.forName(inv.get("main").asText()).getMethod("main", String[].class)
                        .invoke(null, (Object) args.toArray(new String[0]));
            } catch (InvocationTargetException ite) {
                Throwable t = ite.getCause();
                if (t instanceof ToolExit) {
                    rc = ((ToolExit) t).code;
                } else {
                    rc = 99;
                    t.printStackTrace(System.err);
                }
            } catch (Throwable t) {
                rc = 98;
                t.printStackTrace(System.err);
            }
            for (Runnable hook : hooks) {
                try {
                    hook.run();
                } catch (Throwable t) {
                    t.printStackTrace(System.err);
                }
            }
            hooks.clear();
            if (firstExit != null) rc = firstExit;
            firstExit = null;
            System.out.flush();
            System.err.flush();
            ObjectNode res = json.createObjectNode();
            res.put("name", inv.get("name").asText());
            res.put("rc", rc);
            res.put("out", o.toString(StandardCharsets.UTF_8));
            res.put("err", e.toString(StandardCharsets.UTF_8));
            res.put("ms", (System.nanoTime() - t0) / 1_000_000);
            realOut.println(json.writeValueAsString(res));
            realOut.flush();
        }
        out.target = OutputStream.nullOutputStream();
        err.target = OutputStream.nullOutputStream();
        // tools leave shutdown hooks and non-daemon threads behind: leave now
        Runtime.getRuntime().halt(0);
    }
}
