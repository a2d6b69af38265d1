// JSON-lines output and step bookkeeping shared by the client drivers: each step
// prints {"type":"step","name":...,"ok":...} and a failed step does not stop the
// scenario, so pytest can report (and xfail) steps one by one from one JVM run.
package kastle.compat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;

final class Out {
    private Out() {}

    interface Body {
        void run() throws Exception;
    }

    static final List<String> FAILED = new ArrayList<>();

    /** Runs one named step; its failure is printed and remembered, not thrown. */
    static void step(String name, Body body) {
        long t0 = System.nanoTime();
        try {
            body.run();
            line("type", "step", "name", name, "ok", true, "ms", (System.nanoTime() - t0) / 1_000_000);
        } catch (Throwable t) {
            FAILED.add(name);
            Throwable cause = t instanceof ExecutionException && t.getCause() != null ? t.getCause() : t;
            StringWriter sw = new StringWriter();
            cause.printStackTrace(new PrintWriter(sw));
            System.err.println("step " + name + " failed: " + sw);
            line("type", "step", "name", name, "ok", false, "error", cause.getClass().getSimpleName() + ": " + cause.getMessage());
        }
    }

    static void check(boolean cond, String what, Object... detail) {
        if (!cond) {
            StringBuilder sb = new StringBuilder(what);
            for (Object d : detail) sb.append(" | ").append(d);
            throw new AssertionError(sb.toString());
        }
    }

    static void eq(Object expected, Object actual, String what) {
        if (expected == null ? actual != null : !expected.equals(actual)) {
            throw new AssertionError(what + ": expected <" + expected + "> but got <" + actual + ">");
        }
    }

    /** The exception a failed future/call ends with (unwrapping ExecutionException). */
    static Throwable failure(Body body) {
        try {
            body.run();
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (Throwable t) {
            return t;
        }
        return null;
    }

    static void expectError(Class<? extends Throwable> type, String what, Body body) {
        Throwable t = failure(body);
        if (t == null || !type.isInstance(t)) {
            throw new AssertionError(what + ": expected " + type.getSimpleName() + " but got "
                    + (t == null ? "success" : t.getClass().getName() + ": " + t.getMessage()));
        }
    }

    static void line(Object... kv) {
        StringBuilder sb = new StringBuilder("{");
        for (int i = 0; i + 1 < kv.length; i += 2) {
            if (i > 0) sb.append(',');
            sb.append(json(String.valueOf(kv[i]))).append(':').append(json(kv[i + 1]));
        }
        System.out.println(sb.append('}'));
        System.out.flush();
    }

    static String json(Object v) {
        if (v == null) return "null";
        if (v instanceof Boolean || v instanceof Number) return v.toString();
        if (v instanceof Map) {
            StringBuilder sb = new StringBuilder("{");
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) sb.append(',');
                first = false;
                sb.append(json(String.valueOf(e.getKey()))).append(':').append(json(e.getValue()));
            }
            return sb.append('}').toString();
        }
        if (v instanceof Collection) {
            StringBuilder sb = new StringBuilder("[");
            boolean first = true;
            for (Object o : (Collection<?>) v) {
                if (!first) sb.append(',');
                first = false;
                sb.append(json(o));
            }
            return sb.append(']').toString();
        }
        String s = v.toString();
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                default:
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
            }
        }
        return sb.append('"').toString();
    }
}
