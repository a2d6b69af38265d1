// Protocol executor of the differential oracle (compat-tests/test_kafka_oracle.py).
// The test sends it JSON lines on stdin, one request each:
//   {"id": N, "addr": "127.0.0.1:PORT", "conn": NAME, "api": KEY, "version": V,
//    "body": {...}, "patch_version": V2 (optional), "timeout_ms": T (optional)}
// It builds the request with Kafka's own generated message classes (the body
// JSON is read by the message's *JsonConverter after missing fields are filled
// with the message's defaults for that version), frames it with a RequestHeader,
// sends it over a raw socket (one per addr+conn, kept open), parses the answer
// with the same classes and prints {"id": N, "response": {...}} with the
// response converted back to JSON by *JsonConverter (records as base64), or
// {"id": N, "closed": true} when the broker closed the connection, or
// {"id": N, "timeout": true}, or {"id": N, "error": "..."} when the request could
// not be built. "sasl_plain": ["user", "password"] on the request that opens a
// connection authenticates it first (SaslHandshake v1 + SaslAuthenticate v2,
// mechanism PLAIN), for SASL_PLAINTEXT listeners. {"id": N, "op": "close", "addr": ..., "conn": ...} closes a
// connection. Requests on different connections run concurrently.
package kastle.compat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.apache.kafka.common.message.ApiMessageType;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.ObjectSerializationCache;
import org.apache.kafka.common.requests.RequestHeader;

public final class Oracle {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Map<String, Conn> CONNS = new ConcurrentHashMap<>();
    static PrintStream out;

    static final class Conn {
        final Socket socket;
        final DataInputStream in;
        final OutputStream os;
        int correlation = 1;

        Conn(String addr) throws Exception {
            int colon = addr.lastIndexOf(':');
            socket = new Socket();
            socket.connect(new InetSocketAddress(addr.substring(0, colon), Integer.parseInt(addr.substring(colon + 1))), 10_000);
            socket.setTcpNoDelay(true);
            in = new DataInputStream(socket.getInputStream());
            os = socket.getOutputStream();
        }

        void close() {
            try {
                socket.close();
            } catch (Exception ignored) {
                // closing anyway
            }
        }
    }

    public static void main(String[] args) throws Exception {
        out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
        ExecutorService pool = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r);
            t.setDaemon(true);
            return t;
        });
        BufferedReader rd = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = rd.readLine()) != null) {
            if (line.isBlank()) continue;
            JsonNode req = JSON.readTree(line);
            pool.submit(() -> handle(req));
        }
        for (Conn c : CONNS.values()) c.close();
        System.exit(0);
    }

    static void handle(JsonNode req) {
        ObjectNode res = JSON.createObjectNode();
        res.set("id", req.get("id"));
        String key = req.path("addr").asText() + "/" + req.path("conn").asText();
        try {
            if (req.has("op") && req.get("op").asText().equals("names")) {
                // API key -> name, e.g. 75 -> DescribeTopicPartitions
                ObjectNode names = JSON.createObjectNode();
                for (ApiKeys k : ApiKeys.values()) names.put(String.valueOf(k.id), k.messageType.name());
                res.set("names", names);
            } else if (req.has("op") && req.get("op").asText().equals("close")) {
                Conn c = CONNS.remove(key);
                if (c != null) c.close();
                res.put("closed", true);
            } else {
                // one request at a time per connection (the test serialises them anyway)
                Conn c = CONNS.computeIfAbsent(key, k -> {
                    try {
                        Conn fresh = new Conn(req.get("addr").asText());
                        if (req.has("sasl_plain")) saslPlain(fresh, req.get("sasl_plain"));
                        return fresh;
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
                synchronized (c) {
                    exchange(c, req, res);
                }
                if (res.has("closed") || res.has("timeout")) {
                    CONNS.remove(key, c);
                    c.close();
                }
            }
        } catch (Throwable t) {
            res.put("error", t.getClass().getName() + ": " + t.getMessage());
        }
        synchronized (Oracle.class) {
            out.println(res);
        }
    }

    /** SASL PLAIN on a fresh connection; throws when the broker refuses it. */
    static void saslPlain(Conn c, JsonNode creds) throws Exception {
        ObjectNode hs = JSON.createObjectNode();
        hs.put("mechanism", "PLAIN");
        ObjectNode hsReq = JSON.createObjectNode();
        hsReq.put("api", ApiKeys.SASL_HANDSHAKE.id);
        hsReq.put("version", 1);
        hsReq.set("body", hs);
        ObjectNode hsRes = JSON.createObjectNode();
        exchange(c, hsReq, hsRes);
        if (hsRes.path("response").path("errorCode").asInt(-1) != 0) {
            throw new IllegalStateException("SaslHandshake refused: " + hsRes);
        }
        String token = "\0" + creds.get(0).asText() + "\0" + creds.get(1).asText();
        ObjectNode auth = JSON.createObjectNode();
        auth.put("authBytes", java.util.Base64.getEncoder().encodeToString(token.getBytes(StandardCharsets.UTF_8)));
        ObjectNode authReq = JSON.createObjectNode();
        authReq.put("api", ApiKeys.SASL_AUTHENTICATE.id);
        authReq.put("version", 2);
        authReq.set("body", auth);
        ObjectNode authRes = JSON.createObjectNode();
        exchange(c, authReq, authRes);
        if (authRes.path("response").path("errorCode").asInt(-1) != 0) {
            throw new IllegalStateException("SaslAuthenticate refused: " + authRes);
        }
    }

    static void exchange(Conn c, JsonNode req, ObjectNode res) throws Exception {
        ApiKeys api = ApiKeys.forId(req.get("api").asInt());
        short version = (short) req.get("version").asInt();
        ApiMessage body = build(api, version, req.get("body"));
        int corr = c.correlation++;
        RequestHeader header = new RequestHeader(api, version, req.has("client_id") ? req.get("client_id").asText() : "kastle-oracle", corr);
        short hv = header.headerVersion();
        ObjectSerializationCache cache = new ObjectSerializationCache();
        int size = header.data().size(cache, hv) + body.size(cache, version);
        ByteBuffer buf = ByteBuffer.allocate(4 + size);
        buf.putInt(size);
        ByteBufferAccessor acc = new ByteBufferAccessor(buf);
        header.data().write(acc, cache, hv);
        body.write(acc, cache, version);
        short sentVersion = version;
        if (req.has("patch_version")) {
            // a version the broker does not support, with the body of `version`
            sentVersion = (short) req.get("patch_version").asInt();
            buf.putShort(6, sentVersion);
        }
        c.socket.setSoTimeout(req.has("timeout_ms") ? req.get("timeout_ms").asInt() : 30_000);
        c.os.write(buf.array());
        c.os.flush();
        byte[] frame;
        try {
            int len = c.in.readInt();
            frame = new byte[len];
            c.in.readFully(frame);
        } catch (EOFException | java.net.SocketException e) {
            res.put("closed", true);
            return;
        } catch (SocketTimeoutException e) {
            res.put("timeout", true);
            return;
        }
        ByteBuffer rb = ByteBuffer.wrap(frame);
        // ApiVersions answers with header v0 whatever the version (KIP-511)
        short rhv = api == ApiKeys.API_VERSIONS ? 0 : api.responseHeaderVersion(version);
        ResponseHeaderData rh = new ResponseHeaderData(new ByteBufferAccessor(rb), rhv);
        res.put("correlation_ok", rh.correlationId() == corr);
        short parseVersion = version;
        if (api == ApiKeys.API_VERSIONS && sentVersion != version) parseVersion = 0;
        ApiMessage resp = ApiMessageType.fromApiKey(api.id).newResponse();
        int start = rb.position();
        try {
            resp.read(new ByteBufferAccessor(rb), parseVersion);
        } catch (RuntimeException e) {
            if (api == ApiKeys.API_VERSIONS && parseVersion != 0) {
                // an UNSUPPORTED_VERSION answer to ApiVersions is always v0
                rb.position(start);
                resp = ApiMessageType.fromApiKey(api.id).newResponse();
                resp.read(new ByteBufferAccessor(rb), (short) 0);
                parseVersion = 0;
            } else {
                res.put("unparseable", e.toString());
                return;
            }
        }
        res.put("trailing_bytes", rb.remaining());
        res.put("parsed_version", parseVersion);
        res.set("response", toJson(resp, parseVersion));
    }

    // -- JSON <-> messages through the generated converters ------------------------

    static Class<?> converterFor(Class<?> dataClass) throws ClassNotFoundException {
        Class<?> outer = dataClass.getEnclosingClass();
        if (outer == null) return Class.forName(dataClass.getName() + "JsonConverter");
        return Class.forName(outer.getName() + "JsonConverter$" + dataClass.getSimpleName() + "JsonConverter");
    }

    static JsonNode toJson(Object data, short version) throws Exception {
        Class<?> conv = converterFor(data.getClass());
        try {
            Method m = conv.getMethod("write", data.getClass(), short.class, boolean.class);
            return (JsonNode) m.invoke(null, data, version, true);
        } catch (NoSuchMethodException e) {
            return (JsonNode) conv.getMethod("write", data.getClass(), short.class).invoke(null, data, version);
        }
    }

    static ApiMessage build(ApiKeys api, short version, JsonNode body) throws Exception {
        Class<?> cls = ApiMessageType.fromApiKey(api.id).newRequest().getClass();
        JsonNode filled = fill(body == null ? JSON.createObjectNode() : body.deepCopy(), cls, version);
        try {
            return (ApiMessage) converterFor(cls).getMethod("read", JsonNode.class, short.class).invoke(null, filled, version);
        } catch (java.lang.reflect.InvocationTargetException e) {
            throw new IllegalArgumentException("cannot build " + api + " v" + version + " from " + filled + ": " + e.getCause(), e.getCause());
        }
    }

    /** Adds the fields the test left out, with the defaults the message class has
     * for this version (recursively, into array elements and structs). */
    static JsonNode fill(JsonNode user, Class<?> cls, short version) throws Exception {
        if (!(user instanceof ObjectNode)) return user;
        ObjectNode node = (ObjectNode) user;
        JsonNode defaults = toJson(cls.getDeclaredConstructor().newInstance(), version);
        // a misspelt field would be dropped silently by the converter: refuse it
        // (a real field that this version does not carry is fine, and ignored)
        Iterator<String> names = node.fieldNames();
        while (names.hasNext()) {
            String n = names.next();
            if (findField(cls, n) == null) {
                throw new IllegalArgumentException(cls.getSimpleName() + " has no field '" + n + "'");
            }
        }
        Iterator<Map.Entry<String, JsonNode>> it = defaults.fields();
        while (it.hasNext()) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            if (!node.has(name)) {
                node.set(name, e.getValue());
                continue;
            }
            JsonNode v = node.get(name);
            Field f = findField(cls, name);
            if (f == null) continue;
            if (v.isArray()) {
                Class<?> elem = elementClass(f);
                if (elem != null && isMessage(elem)) {
                    ArrayNode arr = (ArrayNode) v;
                    for (int i = 0; i < arr.size(); i++) arr.set(i, fill(arr.get(i), elem, version));
                }
            } else if (v.isObject() && isMessage(f.getType())) {
                node.set(name, fill(v, f.getType(), version));
            }
        }
        return node;
    }

    static boolean isMessage(Class<?> c) {
        return org.apache.kafka.common.protocol.Message.class.isAssignableFrom(c);
    }

    static Field findField(Class<?> cls, String name) {
        for (Field f : cls.getDeclaredFields()) if (f.getName().equals(name)) return f;
        return null;
    }

    static Class<?> elementClass(Field f) {
        Type t = f.getGenericType();
        if (t instanceof ParameterizedType) {
            Type a = ((ParameterizedType) t).getActualTypeArguments()[0];
            return a instanceof Class ? (Class<?>) a : null;
        }
        // XxxCollection extends ImplicitLinkedHashMultiCollection<Xxx>
        Type sup = f.getType().getGenericSuperclass();
        while (sup != null) {
            if (sup instanceof ParameterizedType) {
                Type a = ((ParameterizedType) sup).getActualTypeArguments()[0];
                return a instanceof Class ? (Class<?>) a : null;
            }
            sup = ((Class<?>) sup).getGenericSuperclass();
        }
        return null;
    }
}
