"""Machinery of the differential oracle (test_kafka_oracle.py): the same requests
to a real Apache Kafka and to kastle, answers compared after normalisation.

* ``OracleProxy`` drives ``kastle.compat.Oracle`` (jvm/kafka4), which builds each
  request from JSON with Kafka's own message classes, sends it on a raw socket
  and returns the answer as JSON (Kafka's *JsonConverter classes).
* ``Side`` is one broker within one scenario: it sends requests and logs every
  exchange (label, API, version, outcome).
* ``normalise`` and ``diff`` compare two logs. Each normalisation, and why it is
  legitimate, is listed in ``NORMALISATIONS``.
* ``batch`` builds v2 record batches (CRC-32C and all) for Produce.
"""
import base64
import itertools
import json
import re
import struct
import subprocess
import threading
from concurrent.futures import Future

import jvm_lib
from compat_lib import _crc32c

# what is normalised, and why each difference is not a deviation
NORMALISATIONS = {
    "throttleTimeMs": "set to 0: quota throttling depends on timing, not on behaviour",
    "clusterId": "replaced by <cluster-id>: random per cluster",
    "port": "replaced by <port> (and ':PORT' inside config values): free ports chosen per run",
    "topicId": "replaced by <topic-id:N>, N counting distinct ids in order of appearance "
               "within the scenario: random per topic, but a topic must keep its id",
    "sessionId": "replaced by <session:N> (same scheme) when not 0: fetch session ids are random",
    "producerId": "replaced by <pid:N> (same scheme): allocation order differs per broker "
                  "history; the zero/negative sentinels are kept",
    "memberId/leader": "replaced by <member:N> (same scheme): generated ids (client id + UUID)",
    "finalizedFeaturesEpoch": "replaced by <epoch> when known (>= 0): Kafka's is the offset of its "
                              "metadata log, which counts every change the cluster made so far",
    "time fields": "logAppendTimeMs (when not -1), transactionStartTimeMs, "
                   "totalBytes/usableBytes: wall clock and disk size",
    "logDir / paths": "replaced by <dir>: temp directories",
    "errorMessage": "both non-empty -> <message>: the text is free-form; one side empty or "
                    "null and the other not is still a difference",
    "unordered arrays": "apiKeys, configs, brokers, groups, transactionStates, members, "
                        "activeProducers, results, topics, partitions, supported/finalized "
                        "features are compared as multisets (Kafka fills them from hash maps)",
    "shared broker": "ListGroups / ListTransactions / DescribeLogDirs / ListConfigResources keep "
                     "only entries named with this scenario's prefix (and ListConfigResources the "
                     "node's BROKER / BROKER_LOGGER entries): the real Kafka serves the whole session",
}

SORTED_ARRAYS = {"apiKeys", "configResources", "configs", "brokers", "groups", "transactionStates", "members",
                 "activeProducers", "results", "topics", "partitions", "supportedFeatures",
                 "finalizedFeatures", "responses", "coordinators", "entries", "acls",
                 "partitionIndexes", "partitionResults", "topicPartitions", "replicaInfos"}
TIME_FIELDS = {"transactionStartTimeMs", "totalBytes", "usableBytes"}


class OracleProxy:
    """One Oracle JVM shared by every scenario; thread-safe."""

    def __init__(self):
        self.proc = subprocess.Popen(
            jvm_lib.jvm_argv("kafka4", "kastle.compat.Oracle", jvm_opts=("-Xmx256m",)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            bufsize=1)
        self._ids = itertools.count(1)
        self._pending = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for ln in self.proc.stdout:
            try:
                msg = json.loads(ln)
            except ValueError:
                continue
            fut = self._pending.pop(msg.get("id"), None)
            if fut is not None:
                fut.set_result(msg)
        for fut in list(self._pending.values()):
            fut.set_exception(RuntimeError("Oracle JVM exited"))

    def call(self, timeout=60, **req):
        fut = Future()
        with self._lock:
            rid = next(self._ids)
            self._pending[rid] = fut
            req["id"] = rid
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        return fut.result(timeout)

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(20)
        except Exception:  # noqa: BLE001 - best effort at teardown
            self.proc.kill()
            self.proc.wait()


class Side:
    """One broker's half of a scenario: requests and their logged outcomes."""

    def __init__(self, name, addr, proxy, scenario):
        self.name, self.addr, self.proxy, self.scenario = name, addr, proxy, scenario
        self.log = []  # (label, api, version, outcome)
        self.conns = set()

    def x(self, label, api, version, body=None, conn="main", record=True, **opts):
        """Sends one request; returns the response body (dict) or the outcome
        ({'closed': True} / {'timeout': True}) when there is none."""
        self.conns.add(conn)
        msg = self.proxy.call(addr=self.addr, conn=f"{self.scenario}/{conn}", api=api,
                              version=version, body=body or {}, **opts)
        if "error" in msg:
            raise AssertionError(f"{self.name}: cannot send {label} (api {api} v{version}): "
                                 f"{msg['error']}")
        outcome = {k: v for k, v in msg.items() if k not in ("id",)}
        if record:
            self.log.append((label, api, version, outcome))
        return msg.get("response", outcome)

    def close(self):
        for c in self.conns:
            self.proxy.call(op="close", addr=self.addr, conn=f"{self.scenario}/{c}")


# ---------------------------------------------------------------------------
# record batches
# ---------------------------------------------------------------------------

def _varint(n):
    n = (n << 1) ^ (n >> 63)  # zig-zag
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _bytes(b):
    return _varint(-1) if b is None else _varint(len(b)) + b


def batch(records, base_ts=1_700_000_000_000, producer_id=-1, epoch=-1, base_seq=-1,
          transactional=False, corrupt_crc=False):
    """A v2 record batch (uncompressed, CreateTime) of ``records``: list of
    (key, value) byte strings (None for null). Returns base64 for the JSON body."""
    body = b""
    for i, (k, v) in enumerate(records):
        r = b"\x00" + _varint(i * 10) + _varint(i) + _bytes(k) + _bytes(v) + _varint(0)
        body += _varint(len(r)) + r
    attrs = 0x10 if transactional else 0
    after_crc = struct.pack(">hiqqqhii", attrs, len(records) - 1, base_ts,
                            base_ts + (len(records) - 1) * 10, producer_id, epoch, base_seq,
                            len(records)) + body
    crc = _crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    head = struct.pack(">iBI", -1, 2, crc)  # partition leader epoch, magic, crc
    blob = head + after_crc
    return base64.b64encode(struct.pack(">qi", 0, len(blob)) + blob).decode()


def records(n, prefix="v", key=True, size=0):
    return [((f"k{i}".encode() if key else None), f"{prefix}{i}".encode() + b"x" * size)
            for i in range(n)]


# ---------------------------------------------------------------------------
# normalisation and comparison
# ---------------------------------------------------------------------------

class _Ids:
    def __init__(self):
        self.maps = {}

    def sub(self, kind, value):
        m = self.maps.setdefault(kind, {})
        if value not in m:
            m[value] = f"<{kind}:{len(m) + 1}>"
        return m[value]


def normalise(outcome, ports, prefix):
    """A copy of one exchange's outcome with what legitimately differs replaced
    (see NORMALISATIONS). ``ports``: the broker's own ports (strings)."""
    ids = _Ids()
    port_re = re.compile(r":(" + "|".join(re.escape(p) for p in ports) + r")\b") if ports else None

    def walk(v, key=None):
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                out[k] = walk(x, k)
            return out
        if isinstance(v, list):
            if key in ("groups", "transactionStates") and v and isinstance(v[0], dict):
                v = [x for x in v if str(x.get("groupId", x.get("transactionalId", "")))
                     .startswith(prefix)]
            if key == "configResources" and v and isinstance(v[0], dict):
                v = [x for x in v if x.get("resourceType") in (4, 8)
                     or str(x.get("resourceName", "")).startswith(prefix)]
            if key in SORTED_ARRAYS:
                # order by content without the generated ids, so that the
                # placeholders below are handed out in the same order on both sides
                # (nested sorted arrays compared sorted too: Kafka may list a
                # topic's error partitions before the others)
                v = sorted(v, key=lambda x: json.dumps(_canon(x), sort_keys=True))
            return [walk(x, key) for x in v]
        if key == "throttleTimeMs":
            return 0
        if key == "clusterId" and v:
            return "<cluster-id>"
        if key == "port":
            return "<port>"
        if key == "topicId" and v and v != "AAAAAAAAAAAAAAAAAAAAAA":
            return ids.sub("topic-id", v)
        if key == "sessionId" and isinstance(v, int) and v != 0:
            return ids.sub("session", v)
        if key == "producerId" and isinstance(v, int) and v > 0:
            return ids.sub("pid", v)
        if key in ("memberId", "leader") and v:
            return ids.sub("member", v)
        if key == "finalizedFeaturesEpoch" and isinstance(v, int) and v >= 0:
            return "<epoch>"
        if key == "logAppendTimeMs" and v != -1:
            return "<time>"
        if key in TIME_FIELDS and isinstance(v, int) and v >= 0:
            return "<n>"
        if key == "logDir":
            return "<dir>"
        if key == "errorMessage" and v:
            return "<message>"
        if isinstance(v, str) and port_re is not None:
            v = port_re.sub(":<port>", v)
            if v.startswith("/tmp/") or "/pytest-" in v:
                return "<dir>"
        return v

    return walk(outcome)


ID_FIELDS = {"producerId", "memberId", "leader", "topicId"}


def _canon(x, key=None):
    """``x`` without the generated ids, its nested SORTED_ARRAYS sorted: a sort key."""
    if isinstance(x, dict):
        return {k: _canon(v, k) for k, v in x.items() if k not in ID_FIELDS}
    if isinstance(x, list):
        items = [_canon(v, key) for v in x]
        if key in SORTED_ARRAYS:
            items.sort(key=lambda i: json.dumps(i, sort_keys=True))
        return items
    return x


def _without_ids(x):
    if isinstance(x, dict):
        return {k: _without_ids(v) for k, v in x.items() if k not in ID_FIELDS}
    if isinstance(x, list):
        return [_without_ids(v) for v in x]
    return x


def _elem_label(x, i):
    if isinstance(x, dict):
        for k in ("name", "partitionIndex", "index", "partition", "apiKey", "groupId",
                  "transactionalId", "topic", "memberId", "nodeId", "resourceName", "key"):
            if k in x:
                return f"[{k}={x[k]}]"
    return f"[{i}]"


def diff(a, b, path=""):
    """Differences between two normalised values: [(path, a, b)]."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append((f"{path}.{k}", a.get(k, "<absent>"), b.get(k, "<absent>")))
            else:
                out += diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        la = {_elem_label(x, i): x for i, x in enumerate(a)}
        lb = {_elem_label(x, i): x for i, x in enumerate(b)}
        if len(la) == len(a) and len(lb) == len(b):
            out = []
            for k in list(la) + [k for k in lb if k not in la]:
                if k not in la or k not in lb:
                    out.append((f"{path}{k}", _short(la.get(k, "<absent>")), _short(lb.get(k, "<absent>"))))
                else:
                    out += diff(la[k], lb[k], f"{path}{k}")
            return out
        if len(a) != len(b):
            return [(f"{path}.length", len(a), len(b))]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [(path, _short(a), _short(b))]


def _short(v, n=300):
    s = json.dumps(v) if not isinstance(v, str) else v
    return s if len(s) <= n else s[:n] + "..."
