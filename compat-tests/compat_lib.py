"""Shared message model, verification and per-client helpers for the compat suite.

Every client writes the same deterministic messages (``make_messages``) and every
consumer returns plain ``Rec`` tuples, so any producer can be checked against any
consumer with ``verify``.
"""
import base64
import json
import os
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
NODE_DRIVER = NODE_DIR / "driver.js"

# Message counts can be scaled down for quick local iterations: COMPAT_SCALE=0.1
SCALE = float(os.environ.get("COMPAT_SCALE", "1"))
N_MESSAGES = max(100, int(100_000 * SCALE))


def scaled(n: int) -> int:
    return max(10, int(n * SCALE))


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------------------
# message model
# ---------------------------------------------------------------------------

@dataclass
class Msg:
    idx: int
    partition: int
    key: Optional[bytes]
    value: Optional[bytes]
    headers: List[Tuple[str, bytes]]
    timestamp: int


@dataclass
class Rec:
    partition: int
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]
    headers: List[Tuple[str, bytes]] = field(default_factory=list)
    timestamp: Optional[int] = None
    ts_type: Optional[str] = None  # "create" | "append" | None (unknown)


def now_ms() -> int:
    return int(time.time() * 1000)


def make_messages(n: int, src: str, partitions: int, base_ts: Optional[int] = None,
                  start: int = 0) -> List[Msg]:
    """Deterministic messages. Every message carries an ``idx`` header (its identity).

    * key: ``key-<i>``, except every 1000th message has a NULL key
    * value: variable length, every 997th message is a NULL value (tombstone)
    * headers: idx, src, and every 5th message an extra empty-valued header
    * timestamp: explicit CreateTime, base_ts + i (distinct, one hour in the past
      so that no retention policy can touch it)
    """
    if base_ts is None:
        base_ts = now_ms() - 3_600_000
    out = []
    for i in range(start, start + n):
        key = None if i % 1000 == 999 else f"key-{i}".encode()
        value = None if i % 997 == 996 else (f"{src}-value-{i}-".encode() + b"x" * (i % 64))
        headers = [("idx", str(i).encode()), ("src", src.encode())]
        if i % 5 == 0:
            headers.append(("empty", b""))
        out.append(Msg(i, i % partitions, key, value, headers, base_ts + i))
    return out


def rec_idx(r: Rec) -> Optional[int]:
    for k, v in r.headers:
        if k == "idx":
            return int(v)
    return None


# ---------------------------------------------------------------------------
# verification
# ---------------------------------------------------------------------------

def _fmt(problems, limit=15):
    head = problems[:limit]
    more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
    return "\n  " + "\n  ".join(head) + more


def verify(records: List[Rec], expected: List[Msg], *, check_timestamp=True,
           check_headers=True, contiguous_from=0, idx_of=rec_idx):
    """Assert every expected message is present exactly once, with its key, value,
    headers and timestamp, in its expected partition, in production order, and that
    each partition's offsets are contiguous starting at ``contiguous_from``."""
    problems = []
    exp = {m.idx: m for m in expected}
    seen = Counter()
    by_part = defaultdict(list)
    for r in records:
        by_part[r.partition].append(r)
        i = idx_of(r)
        if i is None or i not in exp:
            problems.append(f"unexpected record p{r.partition}@{r.offset}: key={r.key!r} "
                            f"value={(r.value or b'')[:40]!r} headers={r.headers}")
            continue
        seen[i] += 1
        m = exp[i]
        if r.partition != m.partition:
            problems.append(f"msg {i}: partition {r.partition} != expected {m.partition}")
        if r.key != m.key:
            problems.append(f"msg {i}: key {r.key!r} != {m.key!r}")
        if r.value != m.value:
            problems.append(f"msg {i}: value {(r.value or b'')[:60]!r} != {(m.value or b'')[:60]!r}"
                            f" (null? got {r.value is None} want {m.value is None})")
        if check_headers and list(r.headers) != list(m.headers):
            problems.append(f"msg {i}: headers {r.headers} != {m.headers}")
        if check_timestamp:
            if r.timestamp != m.timestamp:
                problems.append(f"msg {i}: timestamp {r.timestamp} != {m.timestamp}")
            if r.ts_type not in (None, "create"):
                problems.append(f"msg {i}: timestamp type {r.ts_type} != CreateTime")
    missing = [i for i in exp if seen[i] == 0]
    dups = {i: c for i, c in seen.items() if c > 1}
    if missing:
        problems.insert(0, f"{len(missing)} of {len(exp)} messages missing, e.g. {missing[:10]}")
    if dups:
        problems.insert(0, f"{len(dups)} messages duplicated, e.g. {list(dups.items())[:10]}")
    for p, recs in sorted(by_part.items()):
        offs = [r.offset for r in recs]
        if contiguous_from is not None:
            want = list(range(contiguous_from, contiguous_from + len(offs)))
            if offs != want:
                bad = next(k for k, (a, b) in enumerate(zip(offs, want + [None] * len(offs))) if a != b)
                problems.append(f"partition {p}: offsets not contiguous from {contiguous_from}: "
                                f"position {bad} has offset {offs[bad]} (want {want[bad] if bad < len(want) else '-'})")
        idxs = [idx_of(r) for r in recs if idx_of(r) is not None]
        if idxs != sorted(idxs):
            bad = next(k for k in range(1, len(idxs)) if idxs[k] < idxs[k - 1])
            problems.append(f"partition {p}: out of order at position {bad}: msg {idxs[bad - 1]} then {idxs[bad]}")
    assert not problems, (f"verification failed ({len(records)} records read, "
                          f"{len(expected)} expected):" + _fmt(problems))


def per_partition_counts(msgs: List[Msg]):
    c = Counter(m.partition for m in msgs)
    return dict(c)


# ---------------------------------------------------------------------------
# kafka-python
# ---------------------------------------------------------------------------

def kp_admin(bootstrap, **kw):
    from kafka import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="compat-kp-admin",
                            request_timeout_ms=10_000, **kw)


def kp_producer(bootstrap, **kw):
    from kafka import KafkaProducer
    cfg = dict(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
               linger_ms=5, batch_size=64 * 1024, retries=5, request_timeout_ms=10_000,
               max_in_flight_requests_per_connection=1, client_id="compat-kp-producer")
    cfg.update(kw)
    return KafkaProducer(**cfg)


def kp_consumer(bootstrap, **kw):
    from kafka import KafkaConsumer
    cfg = dict(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
               auto_offset_reset="earliest", client_id="compat-kp-consumer",
               request_timeout_ms=15_000, fetch_max_wait_ms=200)
    cfg.update(kw)
    return KafkaConsumer(**cfg)


def kp_produce(bootstrap, topic, msgs: List[Msg], **kw):
    """Send all messages (explicit partition + CreateTime), wait for every ack.
    Returns {idx: (partition, offset)}."""
    prod = kp_producer(bootstrap, **kw)
    try:
        futs = [(m.idx, prod.send(topic, value=m.value, key=m.key, headers=m.headers,
                                  partition=m.partition, timestamp_ms=m.timestamp))
                for m in msgs]
        prod.flush(timeout=120)
        acks = {}
        for i, f in futs:
            md = f.get(timeout=30)
            acks[i] = (md.partition, md.offset)
        return acks
    finally:
        prod.close(timeout=10)


def kp_consume(bootstrap, topic, partitions, until_counts, timeout=120.0, start_offsets=None, **kw):
    """Read by assignment from the beginning (or start_offsets) until each partition's
    position reaches until_counts[p] (an end offset). Returns [Rec]."""
    from kafka import TopicPartition
    cons = kp_consumer(bootstrap, **kw)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        cons.assign(tps)
        for tp in tps:
            off = (start_offsets or {}).get(tp.partition, 0)
            cons.seek(tp, off)
        out = []
        deadline = time.monotonic() + timeout
        def done():
            return all(cons.position(tp) >= until_counts.get(tp.partition, 0) for tp in tps)
        while not done():
            if time.monotonic() > deadline:
                pos = {tp.partition: cons.position(tp) for tp in tps}
                raise AssertionError(f"kafka-python consumer timed out after {timeout}s: "
                                     f"positions {pos}, wanted {until_counts}, got {len(out)} records")
            batch = cons.poll(timeout_ms=500, max_records=10_000)
            for tp, recs in batch.items():
                for r in recs:
                    out.append(Rec(r.partition, r.offset, r.key, r.value,
                                   [(k, v) for k, v in (r.headers or [])], r.timestamp,
                                   {0: "create", 1: "append"}.get(r.timestamp_type)))
        return out
    finally:
        cons.close()


# ---------------------------------------------------------------------------
# confluent-kafka
# ---------------------------------------------------------------------------

CK_GROUP = "kastle-compat-unused"  # confluent-kafka refuses to build a Consumer without one;
                                   # it is never used: we only assign() and never commit.


def ck_admin(bootstrap, **kw):
    from confluent_kafka.admin import AdminClient
    cfg = {"bootstrap.servers": bootstrap, "client.id": "compat-ck-admin"}
    cfg.update(kw)
    return AdminClient(cfg)


def ck_create_topic(bootstrap, topic, partitions=3, rf=1, timeout=15):
    from confluent_kafka.admin import NewTopic
    a = ck_admin(bootstrap)
    futs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=rf)],
                           operation_timeout=timeout, request_timeout=timeout)
    futs[topic].result(timeout=timeout)


def ck_producer(bootstrap, **kw):
    from confluent_kafka import Producer
    cfg = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False,
           "linger.ms": 5, "client.id": "compat-ck-producer", "message.timeout.ms": 60_000,
           "max.in.flight.requests.per.connection": 1}
    cfg.update(kw)
    return Producer(cfg)


def ck_consumer(bootstrap, **kw):
    from confluent_kafka import Consumer
    cfg = {"bootstrap.servers": bootstrap, "group.id": CK_GROUP, "enable.auto.commit": False,
           "enable.auto.offset.store": False, "enable.partition.eof": True,
           "auto.offset.reset": "earliest", "client.id": "compat-ck-consumer",
           "fetch.wait.max.ms": 200}
    cfg.update(kw)
    return Consumer(cfg)


def ck_produce(bootstrap, topic, msgs: List[Msg], **kw):
    """Produce with delivery reports; raises if any delivery failed.
    Returns {idx: (partition, offset)}."""
    prod = ck_producer(bootstrap, **kw)
    acks, errors = {}, []

    def cb_for(i):
        def cb(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                acks[i] = (msg.partition(), msg.offset())
        return cb

    for m in msgs:
        while True:
            try:
                prod.produce(topic, value=m.value, key=m.key, partition=m.partition,
                             timestamp=m.timestamp, headers=m.headers, on_delivery=cb_for(m.idx))
                break
            except BufferError:
                prod.poll(0.05)
        prod.poll(0)
    remaining = prod.flush(120)
    assert remaining == 0, f"confluent-kafka: {remaining} messages still undelivered after flush"
    assert not errors, f"confluent-kafka delivery errors ({len(errors)}): {errors[:5]}"
    return acks


def ck_consume(bootstrap, topic, partitions, until_counts=None, timeout=120.0, start_offsets=None, **kw):
    """Read by assignment until EOF on every partition and (if given) each partition
    reached until_counts[p]. Returns [Rec]."""
    from confluent_kafka import KafkaError, TopicPartition, TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME
    cons = ck_consumer(bootstrap, **kw)
    try:
        cons.assign([TopicPartition(topic, p, (start_offsets or {}).get(p, 0)) for p in range(partitions)])
        out, eof, next_off = [], set(), {}
        errors = []
        deadline = time.monotonic() + timeout

        def done():
            if len(eof) < partitions:
                return False
            if until_counts:
                return all(next_off.get(p, 0) >= c for p, c in until_counts.items())
            return True

        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"confluent-kafka consumer timed out after {timeout}s: eof={sorted(eof)} "
                                     f"next={next_off} wanted={until_counts} got {len(out)} records; "
                                     f"errors={errors[:5]}")
            for m in cons.consume(num_messages=10_000, timeout=0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                    else:
                        errors.append(str(err))
                        if err.fatal():
                            raise AssertionError(f"fatal consumer error: {err}")
                    continue
                tstype, ts = m.timestamp()
                out.append(Rec(m.partition(), m.offset(), m.key(), m.value(),
                               [(k, v) for k, v in (m.headers() or [])], ts,
                               {TIMESTAMP_CREATE_TIME: "create", TIMESTAMP_LOG_APPEND_TIME: "append"}.get(tstype)))
                next_off[m.partition()] = m.offset() + 1
                eof.discard(m.partition())
        return out
    finally:
        cons.close()


# ---------------------------------------------------------------------------
# kafkajs (node driver)
# ---------------------------------------------------------------------------

def _b64(b):
    return None if b is None else base64.b64encode(b).decode()


def _unb64(s):
    return None if s is None else base64.b64decode(s)


def node_run(cmd: str, spec: dict, timeout=240, stdin_lines=None):
    """Run ``node driver.js CMD`` with spec JSON as argv; JSON lines on stdout.
    Returns (list of record dicts, final result dict)."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
        spec_path = f.name
    try:
        env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
        p = subprocess.run(["node", str(NODE_DRIVER), cmd, spec_path], cwd=NODE_DIR,
                           capture_output=True, timeout=timeout, env=env)
    finally:
        os.unlink(spec_path)
    lines = p.stdout.decode().splitlines()
    records, result = [], None
    for ln in lines:
        if not ln.strip():
            continue
        obj = json.loads(ln)
        if obj.get("type") == "record":
            records.append(obj)
        elif obj.get("type") == "result":
            result = obj
    if p.returncode != 0 or result is None or not result.get("ok"):
        raise AssertionError(f"kafkajs driver `{cmd}` failed (rc={p.returncode}): result={result}\n"
                             f"stderr:\n{p.stderr.decode()[-4000:]}")
    return records, result


def msgs_to_spec(msgs: List[Msg]):
    return [{"i": m.idx, "p": m.partition, "k": _b64(m.key), "v": _b64(m.value),
             "h": [[k, _b64(v)] for k, v in m.headers], "t": m.timestamp} for m in msgs]


def kjs_produce(bootstrap, topic, msgs: List[Msg], create_partitions=None, gzip=False):
    spec = {"bootstrap": bootstrap, "topic": topic, "messages": msgs_to_spec(msgs),
            "createPartitions": create_partitions, "gzip": gzip}
    _, res = node_run("produce", spec)
    return res


def kjs_consume(bootstrap, topic, partitions, until_counts, timeout_ms=120_000):
    spec = {"bootstrap": bootstrap, "topic": topic, "partitions": partitions,
            "until": {str(p): c for p, c in until_counts.items()}, "timeoutMs": timeout_ms}
    recs, res = node_run("consume", spec)
    out = [Rec(r["p"], int(r["o"]), _unb64(r["k"]), _unb64(r["v"]),
               [(k, _unb64(v)) for k, v in r["h"]], int(r["t"]), None) for r in recs]
    return out, res


# ---------------------------------------------------------------------------
# kcat
# ---------------------------------------------------------------------------

def kcat(*args, input_bytes=None, timeout=120, check=True):
    p = subprocess.run(["kcat", *args], input=input_bytes, capture_output=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"kcat {' '.join(args)} failed rc={p.returncode}:\n{p.stderr.decode()[-4000:]}")
    return p


# ---------------------------------------------------------------------------
# raw wire protocol (for things no client exposes, e.g. timing a single Fetch)
# ---------------------------------------------------------------------------

def _kstr(s: str) -> bytes:
    import struct
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def raw_request(bootstrap: str, api_key: int, api_version: int, body: bytes, timeout=30.0,
                correlation_id=7) -> bytes:
    """Send one request with a v1 (non-flexible) header; return the response body after
    the correlation id."""
    import socket
    import struct
    host, port = bootstrap.rsplit(":", 1)
    hdr = struct.pack(">hhi", api_key, api_version, correlation_id) + _kstr("compat-raw")
    payload = hdr + body
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(payload)) + payload)

        def read(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise AssertionError(f"connection closed by broker after {len(buf)}/{n} bytes")
                buf += chunk
            return buf
        size = struct.unpack(">i", read(4))[0]
        resp = read(size)
    cid = struct.unpack(">i", resp[:4])[0]
    assert cid == correlation_id, f"correlation id {cid} != {correlation_id}"
    return resp[4:]


def finalized_features(bootstrap: str, timeout=30.0) -> dict:
    """{feature: finalized level} from ApiVersions v3 (the response's tagged field 2,
    as clients read it to choose e.g. transaction version 2); level 0 is absent."""
    import struct

    def cstr(s):
        return _uvarint(len(s) + 1) + s.encode()
    # request header v2: the v1 header raw_request writes, then its tagged fields
    body = b"\x00" + cstr("compat-raw") + cstr("1") + b"\x00"
    r = raw_request(bootstrap, 18, 3, body, timeout=timeout)

    def skip_tags(pos):
        n, pos = _uvarint_at(r, pos)
        for _ in range(n):
            _tag, pos = _uvarint_at(r, pos)
            size, pos = _uvarint_at(r, pos)
            pos += size
        return pos
    (err,) = struct.unpack_from(">h", r, 0)
    assert err == 0, f"ApiVersions v3: error {err}"
    n, pos = _uvarint_at(r, 2)
    for _ in range(n - 1):
        pos = skip_tags(pos + 6)
    pos += 4  # throttle_time_ms
    out = {}
    ntags, pos = _uvarint_at(r, pos)
    for _ in range(ntags):
        tag, pos = _uvarint_at(r, pos)
        size, pos = _uvarint_at(r, pos)
        end = pos + size
        if tag == 2:
            count, pos = _uvarint_at(r, pos)
            for _ in range(count - 1):
                ln, pos = _uvarint_at(r, pos)
                name = r[pos:pos + ln - 1].decode()
                pos += ln - 1
                (max_level, _min_level) = struct.unpack_from(">hh", r, pos)
                pos = skip_tags(pos + 4)
                out[name] = max_level
        pos = end
    return out


def raw_fetch_v4(bootstrap, topic, partition, offset, max_wait_ms, min_bytes=1, timeout=30.0):
    """Fetch v4 for one partition. Returns (error_code, high_watermark, records_bytes_len)."""
    import struct
    body = struct.pack(">iiiib", -1, max_wait_ms, min_bytes, 1 << 20, 0)
    body += struct.pack(">i", 1) + _kstr(topic) + struct.pack(">i", 1)
    body += struct.pack(">iqi", partition, offset, 1 << 20)
    r = raw_request(bootstrap, 1, 4, body, timeout=timeout)
    pos = 4  # throttle_time_ms
    (ntopics,) = struct.unpack_from(">i", r, pos); pos += 4
    assert ntopics == 1, ntopics
    (tlen,) = struct.unpack_from(">h", r, pos); pos += 2 + tlen
    (nparts,) = struct.unpack_from(">i", r, pos); pos += 4
    assert nparts == 1, nparts
    p, err, hw, lso = struct.unpack_from(">ihqq", r, pos); pos += 22
    (naborted,) = struct.unpack_from(">i", r, pos); pos += 4
    assert naborted <= 0, naborted
    (rlen,) = struct.unpack_from(">i", r, pos)
    return err, hw, rlen


# ---------------------------------------------------------------------------
# idempotent producers (test_idempotence.py)
# ---------------------------------------------------------------------------

def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def raw_describe_producers(bootstrap: str, topic: str, partitions, timeout=30.0, correlation_id=11):
    """DescribeProducers v0 (flexible: request header v2, response header v1) for one topic.
    Returns {partition: (error_code, [(producer_id, epoch, last_sequence, last_timestamp,
    coordinator_epoch, current_txn_start_offset)])}."""
    import socket
    import struct

    host, port = bootstrap.rsplit(":", 1)
    cid = b"compat-raw"
    hdr = struct.pack(">hhih", 61, 0, correlation_id, len(cid)) + cid + b"\x00"
    t = topic.encode()
    body = _uvarint(2) + _uvarint(len(t) + 1) + t + _uvarint(len(partitions) + 1)
    body += b"".join(struct.pack(">i", p) for p in partitions) + b"\x00" + b"\x00"
    payload = hdr + body
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(payload)) + payload)

        def read(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise AssertionError(f"connection closed by broker after {len(buf)}/{n} bytes")
                buf += chunk
            return buf
        (size,) = struct.unpack(">i", read(4))
        r = read(size)
    pos = 0

    def uvarint():
        nonlocal pos
        v, shift = 0, 0
        while True:
            b = r[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from(fmt, r, pos)
        pos += struct.calcsize(fmt)
        return vals

    def skip_tags():
        nonlocal pos
        for _ in range(uvarint()):
            uvarint()
            n = uvarint()  # (read before updating pos: uvarint() moves it)
            pos += n

    (got,) = take(">i")
    assert got == correlation_id, f"correlation id {got} != {correlation_id}"
    skip_tags()  # response header v1
    take(">i")  # throttle_time_ms
    out = {}
    for _ in range(uvarint() - 1):
        n = uvarint()
        pos += n - 1  # topic name
        for _ in range(uvarint() - 1):
            pidx, err = take(">ih")
            n = uvarint()
            if n:
                pos += n - 1  # error message
            producers = []
            for _ in range(uvarint() - 1):
                producers.append(take(">qiiqiq"))
                skip_tags()
            skip_tags()
            out[pidx] = (err, producers)
        skip_tags()
    return out


# ---------------------------------------------------------------------------
# stored record batches (test_compression.py): what the broker hands out on Fetch
# ---------------------------------------------------------------------------

CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@dataclass
class RawBatch:
    base_offset: int
    attributes: int
    records_count: int
    producer_id: int
    crc_ok: Optional[bool]  # None when crc32c is not importable

    @property
    def codec(self) -> int:
        return self.attributes & 0x07


def _crc32c(data: bytes) -> int:
    """Plain-Python CRC-32C (Castagnoli), table-driven; fine for test-sized batches."""
    tbl = _crc32c.table
    if tbl is None:
        tbl = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            tbl.append(c)
        _crc32c.table = tbl
    crc = 0xFFFFFFFF
    for b in data:
        crc = tbl[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_crc32c.table = None


def parse_batches(records: bytes, check_crc: bool = True) -> List[RawBatch]:
    """Split a Fetch records blob into v2 batch headers (a trailing partial batch is ignored)."""
    import struct
    out, pos = [], 0
    while len(records) - pos >= 61:
        base, blen = struct.unpack_from(">qi", records, pos)
        if pos + 12 + blen > len(records):
            break
        magic = records[pos + 16]
        assert magic == 2, f"batch at {base}: magic {magic}"
        (crc,) = struct.unpack_from(">I", records, pos + 17)
        attrs, = struct.unpack_from(">h", records, pos + 21)
        pid, = struct.unpack_from(">q", records, pos + 43)
        count, = struct.unpack_from(">i", records, pos + 57)
        ok = _crc32c(records[pos + 21:pos + 12 + blen]) == crc if check_crc else None
        out.append(RawBatch(base, attrs, count, pid, ok))
        pos += 12 + blen
    return out


def raw_fetch_batches(bootstrap, topic, partition=0, timeout=30.0) -> List[RawBatch]:
    """Every batch of a partition, read with raw Fetch v4 requests from offset 0 to the
    high watermark (8 MiB per request)."""
    import struct
    out, offset = [], 0
    while True:
        body = struct.pack(">iiiib", -1, 0, 1, 8 << 20, 0)
        body += struct.pack(">i", 1) + _kstr(topic) + struct.pack(">i", 1)
        body += struct.pack(">iqi", partition, offset, 8 << 20)
        r = raw_request(bootstrap, 1, 4, body, timeout=timeout)
        pos = 4 + 4  # throttle_time_ms, topic count
        (tlen,) = struct.unpack_from(">h", r, pos); pos += 2 + tlen
        pos += 4  # partition count
        p, err, hw, lso = struct.unpack_from(">ihqq", r, pos); pos += 22
        assert err == 0, f"raw fetch {topic}-{partition}@{offset}: error {err}"
        (naborted,) = struct.unpack_from(">i", r, pos); pos += 4
        pos += max(naborted, 0) * 16
        (rlen,) = struct.unpack_from(">i", r, pos); pos += 4
        batches = parse_batches(r[pos:pos + max(rlen, 0)])
        if not batches:
            return out
        for b in batches:
            if b.base_offset >= offset:
                out.append(b)
        last = batches[-1]
        offset = last.base_offset + last.records_count
        if offset >= hw:
            return out


def assert_one_idempotent_producer(bootstrap, topic, counts, what):
    """DescribeProducers: each partition of ``counts`` ({partition: messages}) knows
    exactly one idempotent producer, at epoch 0, whose last sequence is the
    partition's message count - 1, and it is the same producer id everywhere."""
    parts = sorted(counts)
    desc = raw_describe_producers(bootstrap, topic, parts)
    pids = set()
    for p in parts:
        err, producers = desc[p]
        assert err == 0, f"{what}: DescribeProducers partition {p} error {err}"
        assert len(producers) == 1, f"{what}: partition {p} producers {producers}"
        pid, epoch, last_seq, last_ts, coord_epoch, txn_start = producers[0]
        assert pid >= 0 and epoch == 0, f"{what}: partition {p} producer {producers[0]}"
        assert last_seq == counts[p] - 1, (f"{what}: partition {p} last sequence {last_seq}, "
                                          f"expected {counts[p] - 1} ({counts[p]} messages)")
        assert (coord_epoch, txn_start) == (-1, -1), f"{what}: partition {p} {producers[0]}"
        pids.add(pid)
    assert len(pids) == 1, f"{what}: one producer id for all partitions, got {pids}"


# ---------------------------------------------------------------------------
# request-version recorder (old protocol versions): a TCP relay in front of the
# broker that notes the (api key, api version) of every request passing through
# ---------------------------------------------------------------------------

API_NAMES = {0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
             9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
             13: "LeaveGroup", 14: "SyncGroup", 18: "ApiVersions", 19: "CreateTopics",
             20: "DeleteTopics", 22: "InitProducerId", 32: "DescribeConfigs",
             15: "DescribeGroups", 16: "ListGroups", 23: "OffsetForLeaderEpoch", 24: "AddPartitionsToTxn",
             25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit", 37: "CreatePartitions",
             42: "DeleteGroups", 44: "IncrementalAlterConfigs", 60: "DescribeCluster",
             61: "DescribeProducers", 65: "DescribeTransactions", 66: "ListTransactions",
             88: "StreamsGroupHeartbeat", 89: "StreamsGroupDescribe",
             93: "StreamsGroupTopologyDescriptionUpdate"}


# InitProducerId v2+ and EndTxn v3+ (flexible versions) are decoded when a
# VersionRecorder is asked to capture transaction calls
_TXN_CAPTURE = {(22, v) for v in range(2, 7)} | {(26, v) for v in range(3, 6)}


def _uvarint_at(b: bytes, pos: int):
    v, shift = 0, 0
    while True:
        x = b[pos]
        pos += 1
        v |= (x & 0x7F) << shift
        if not x & 0x80:
            return v, pos
        shift += 7


def _decode_txn_request(key: int, rest: bytes) -> dict:
    """rest: the request after the client id (header tagged fields, then body)."""
    import struct
    n, pos = _uvarint_at(rest, 0)  # header tagged fields
    for _ in range(n):
        _tag, pos = _uvarint_at(rest, pos)
        ln, pos = _uvarint_at(rest, pos)
        pos += ln
    ln, pos = _uvarint_at(rest, pos)  # compact nullable string
    txn_id = rest[pos:pos + ln - 1].decode() if ln else None
    pos += max(ln - 1, 0)
    if key == 22:
        (timeout,) = struct.unpack_from(">i", rest, pos)
        pid, epoch = struct.unpack_from(">qh", rest, pos + 4) if len(rest) >= pos + 14 else (-1, -1)
        return {"api": "InitProducerId", "txn_id": txn_id, "timeout_ms": timeout,
                "producer_id": pid, "epoch": epoch}
    pid, epoch, committed = struct.unpack_from(">qhb", rest, pos)
    return {"api": "EndTxn", "txn_id": txn_id, "producer_id": pid, "epoch": epoch,
            "commit": bool(committed)}


def _decode_txn_response(entry: dict, rest: bytes):
    """rest: the response after the correlation id (header v1 tagged fields, body)."""
    import struct
    n, pos = _uvarint_at(rest, 0)
    for _ in range(n):
        _tag, pos = _uvarint_at(rest, pos)
        ln, pos = _uvarint_at(rest, pos)
        pos += ln
    _throttle, err = struct.unpack_from(">ih", rest, pos)
    entry["error"] = err
    if entry["api"] == "InitProducerId":
        entry["resp_producer_id"], entry["resp_epoch"] = struct.unpack_from(">qh", rest, pos + 6)
    elif len(rest) >= pos + 6 + 10:
        # EndTxn v5+ (transaction version 2) answers the bumped producer id and epoch
        entry["resp_producer_id"], entry["resp_epoch"] = struct.unpack_from(">qh", rest, pos + 6)


class VersionRecorder:
    """Listens on ``port`` and relays every connection to the broker on
    ``upstream_port``, recording each request's (client id, api key, api version)
    from its header. Start the broker with ``advertised.listeners`` pointing at ``port``
    so that clients reconnect through the relay after Metadata.

    Bytes are forwarded as they arrive (no re-framing); the recorder only reads
    the length prefix and the header up to the client id of each request."""

    def __init__(self, port: int, upstream_port: int, capture_txn: bool = False):
        import socket
        import threading
        self.port, self.upstream_port = port, upstream_port
        self.seen = Counter()  # (client_id, api_key, api_version) -> count
        # capture_txn: also decode InitProducerId and EndTxn (flexible versions) with
        # their responses into txn_log, in the order the requests were sent
        self.capture_txn = capture_txn
        self.txn_log = []
        self._lock = threading.Lock()
        self._srv = socket.create_server(("127.0.0.1", port))
        self._srv.settimeout(0.2)
        self._stop = threading.Event()
        self._socks = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        import socket
        import threading
        while not self._stop.is_set():
            try:
                client, _ = self._srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            self._socks += [client, upstream]
            pending = {}  # correlation id -> txn_log entry awaiting its response
            threading.Thread(target=self._pump, args=(client, upstream, True, pending), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False, pending), daemon=True).start()

    def _pump(self, src, dst, requests: bool, pending=None):
        import socket
        import struct
        buf = b""  # request bytes not yet looked at
        skip = 0   # bytes of the current request still to pass over
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not requests:
                    dst.sendall(data)
                    if self.capture_txn:
                        buf, skip = self._responses(buf + data, skip, pending)
                    continue
                buf += data
                while True:
                    if skip:
                        n = min(skip, len(buf))
                        buf, skip = buf[n:], skip - n
                        if skip:
                            break
                    # size(4) api_key(2) api_version(2) correlation_id(4) client_id(2+n):
                    # every header version from v1 up starts this way
                    if len(buf) < 14:
                        break
                    size, key, ver, cid, clen = struct.unpack_from(">ihhih", buf, 0)
                    if len(buf) < 14 + max(clen, 0):
                        break
                    txn = self.capture_txn and (key, ver) in _TXN_CAPTURE
                    if txn and len(buf) < 4 + size:
                        break  # decode the whole frame once it is here
                    client = buf[14:14 + clen].decode(errors="replace") if clen > 0 else ""
                    with self._lock:
                        self.seen[(client, key, ver)] += 1
                        if txn:
                            try:
                                entry = _decode_txn_request(key, buf[14 + max(clen, 0):4 + size])
                            except (struct.error, IndexError, UnicodeDecodeError) as e:
                                entry = {"api": API_NAMES[key], "decode_error": repr(e)}
                            entry.update(client=client, version=ver)
                            self.txn_log.append(entry)
                            pending[cid] = entry
                    skip = 4 + size
                # forwarded after the look: a captured request is pending before
                # its response can come back
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _responses(self, buf, skip, pending):
        """Matches response frames to captured requests by correlation id."""
        import struct
        while True:
            if skip:
                n = min(skip, len(buf))
                buf, skip = buf[n:], skip - n
                if skip:
                    return buf, skip
            if len(buf) < 8:
                return buf, skip
            size, cid = struct.unpack_from(">ii", buf, 0)
            if cid in pending:
                if len(buf) < 4 + size:
                    return buf, skip
                with self._lock:
                    entry = pending.pop(cid)
                    try:
                        _decode_txn_response(entry, buf[8:4 + size])
                    except (struct.error, IndexError) as e:
                        entry["decode_error"] = repr(e)
            skip = 4 + size

    def versions(self, api_key: int, client_prefix: str = ""):
        """Sorted versions of one API sent by clients whose client.id starts with
        client_prefix."""
        with self._lock:
            return sorted({v for (c, k, v) in self.seen if k == api_key and c.startswith(client_prefix)})

    def counts(self) -> Counter:
        """A copy of what was seen so far: (client id, api key, version) -> requests."""
        with self._lock:
            return Counter(self.seen)

    def summary(self, client_prefix: str = "") -> str:
        with self._lock:
            items = sorted(self.seen.items())
        return ", ".join(f"{c}: {API_NAMES.get(k, k)} v{v} x{n}" for (c, k, v), n in items
                         if c.startswith(client_prefix))

    def close(self):
        self._stop.set()
        try:
            self._srv.close()
        except OSError:
            pass
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass
        self._thread.join(2)


# ---------------------------------------------------------------------------
# sarama (Go driver in go/main.go; built per session by test_sarama.py)
# ---------------------------------------------------------------------------

def go_driver_run(binary, cmd: str, spec: dict, timeout=180):
    """Run a Go driver (``DRIVER CMD spec.json``; JSON lines on stdout), as
    the sarama, modern sarama and franz-go drivers are run.
    Returns (list of non-result line dicts, result dict)."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
        spec_path = f.name
    try:
        p = subprocess.run([str(binary), cmd, spec_path], capture_output=True, timeout=timeout)
    finally:
        os.unlink(spec_path)
    lines, result = [], None
    for ln in p.stdout.decode().splitlines():
        if not ln.strip():
            continue
        obj = json.loads(ln)
        if obj.get("type") == "result":
            result = obj
        else:
            lines.append(obj)
    if p.returncode != 0 or result is None or not result.get("ok"):
        raise AssertionError(f"{Path(str(binary)).name} driver `{cmd}` failed (rc={p.returncode}): "
                             f"result={result}\nstderr:\n{p.stderr.decode()[-4000:]}")
    return lines, result


def sarama_records(lines) -> List[Rec]:
    return [Rec(r["p"], int(r["o"]), _unb64(r["k"]), _unb64(r["v"]),
                [(k, _unb64(v)) for k, v in r["h"]], int(r["t"]), None)
            for r in lines if r.get("type") == "record"]


def recorded_broker(broker_factory, overrides=None, capture_txn=False):
    """A broker behind a VersionRecorder: (broker, recorder, bootstrap via recorder)."""
    from conftest import free_port
    relay_port, broker_port = free_port(), free_port()
    rec = VersionRecorder(relay_port, broker_port, capture_txn=capture_txn)
    props = {"advertised.listeners": f"PLAINTEXT://127.0.0.1:{relay_port}"}
    props.update(overrides or {})
    b = broker_factory(props, port=broker_port)
    return b, rec, f"127.0.0.1:{relay_port}"
