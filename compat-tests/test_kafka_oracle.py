"""Differential oracle: the same requests to a real Apache Kafka 4.4 and to kastle,
responses compared after normalisation.

Requests are built and answers parsed by Kafka's own message classes
(``kastle.compat.Oracle`` in jvm/kafka4: ``*Data`` + ``RequestHeader`` over a raw
socket, ``*JsonConverter`` for the comparison); the scenarios are in
``oracle_scenarios.py``, the normalisations in ``oracle_lib.NORMALISATIONS``, the
known and deliberate differences in ``oracle_deviations.py``.

Tests:
* ``test_api_range[API]``: the version range each broker advertises, for every API
  either advertises (ApiVersions itself; a missing API is a difference too), and
  ``test_features``: the supported / finalized features of ApiVersions.
* ``test_oracle[scenario-vN]``: one scenario at one version (or one index of a
  lifecycle family), every exchange compared. A version kastle does not
  advertise is reported as an xfail (the range test is the strict check).

The per-API / per-version result feeds the "matches Apache Kafka" table of
COMPATIBILITY.md (markers ``kafka_oracle(API, version)``).
"""
import fnmatch
import json
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

import oracle_deviations as dev
import oracle_scenarios as sc
from conftest import Broker
from oracle_lib import OracleProxy, Side, diff, normalise

# Apache Kafka 4.4.0's broker ApiVersions (the specification this suite pins;
# test_kafka_ranges_are_the_pinned_ones checks the live broker against it)
KAFKA_44 = {0: (0, 13), 1: (4, 18), 2: (1, 11), 3: (0, 13), 8: (2, 10), 9: (1, 10), 10: (0, 6),
            11: (0, 9), 12: (0, 4), 13: (0, 5), 14: (0, 5), 15: (0, 6), 16: (0, 5), 17: (0, 1),
            18: (0, 5), 19: (2, 7), 20: (1, 6), 21: (0, 2), 22: (0, 5), 23: (2, 4), 24: (0, 5),
            25: (0, 4), 26: (0, 5), 27: (1, 2), 28: (0, 6), 29: (1, 3), 30: (1, 3), 31: (1, 3),
            32: (1, 4), 33: (0, 2), 34: (1, 2), 35: (1, 5), 36: (0, 2), 37: (0, 3), 38: (1, 3),
            39: (1, 2), 40: (1, 2), 41: (1, 3), 42: (0, 3), 43: (0, 2), 44: (0, 1), 45: (0, 1),
            46: (0, 0), 47: (0, 0), 48: (0, 1), 49: (0, 1), 50: (0, 0), 51: (0, 0), 55: (0, 2),
            57: (0, 2), 60: (0, 2), 61: (0, 0), 64: (0, 0), 65: (0, 0), 66: (0, 2), 68: (0, 1),
            69: (0, 1), 74: (0, 1), 75: (0, 0), 76: (1, 1), 77: (1, 1), 78: (1, 2), 79: (1, 2),
            80: (0, 1), 81: (0, 0), 83: (0, 0), 84: (0, 0), 85: (0, 1), 86: (0, 0), 87: (0, 1),
            88: (0, 1), 89: (0, 1), 90: (0, 1), 91: (0, 0), 92: (0, 0), 93: (0, 0), 94: (0, 0)}

API_NAMES = {0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
             9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
             13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
             17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics",
             21: "DeleteRecords", 22: "InitProducerId", 23: "OffsetForLeaderEpoch",
             24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn", 27: "WriteTxnMarkers",
             28: "TxnOffsetCommit", 29: "DescribeAcls", 30: "CreateAcls", 31: "DeleteAcls",
             32: "DescribeConfigs", 33: "AlterConfigs", 34: "AlterReplicaLogDirs",
             35: "DescribeLogDirs", 36: "SaslAuthenticate", 37: "CreatePartitions",
             38: "CreateDelegationToken", 39: "RenewDelegationToken", 40: "ExpireDelegationToken",
             41: "DescribeDelegationToken", 42: "DeleteGroups", 43: "ElectLeaders",
             44: "IncrementalAlterConfigs", 45: "AlterPartitionReassignments",
             46: "ListPartitionReassignments", 47: "OffsetDelete", 48: "DescribeClientQuotas",
             49: "AlterClientQuotas", 50: "DescribeUserScramCredentials",
             51: "AlterUserScramCredentials", 55: "DescribeQuorum", 57: "UpdateFeatures",
             60: "DescribeCluster", 61: "DescribeProducers", 64: "UnregisterBroker",
             65: "DescribeTransactions", 66: "ListTransactions", 68: "ConsumerGroupHeartbeat",
             69: "ConsumerGroupDescribe", 74: "ListConfigResources", 75: "DescribeTopicPartitions",
             76: "ShareGroupHeartbeat", 77: "ShareGroupDescribe", 78: "ShareFetch",
             79: "ShareAcknowledge", 80: "AddRaftVoter", 81: "RemoveRaftVoter",
             83: "InitializeShareGroupState", 84: "ReadShareGroupState",
             85: "WriteShareGroupState", 86: "DeleteShareGroupState",
             87: "ReadShareGroupStateSummary", 88: "StreamsGroupHeartbeat",
             89: "StreamsGroupDescribe", 90: "DescribeShareGroupOffsets",
             91: "AlterShareGroupOffsets", 92: "DeleteShareGroupOffsets",
             93: "StreamsGroupTopologyDescriptionUpdate", 94: "UnregisterController"}

PARALLEL = 12  # scenarios in flight (group joins wait 3 s each, so run them side by side)


def _kversion(api, i):
    lo, hi = KAFKA_44[api]
    return min(lo + i, hi)


def _instances():
    """(id, scenario name, primary api, mode, fn, version-or-index, tags)."""
    out = []
    for name, api, mode, fn in sc.SCENARIOS:
        if mode == "version":
            lo, hi = KAFKA_44[api]
            for v in range(lo, hi + 1):
                out.append((f"{name}-v{v}", name, api, mode, fn, v, [(api, v)]))
        elif mode == "once":
            out.append((name, name, api, mode, fn, KAFKA_44[api][1], [(api, KAFKA_44[api][1])]))
        else:
            apis = mode[1]
            n = max(KAFKA_44[a][1] - KAFKA_44[a][0] + 1 for a in apis)
            for i in range(n):
                tags = sorted({(a, _kversion(a, i)) for a in apis})
                out.append((f"{name}-{i}", name, api, "family", fn, i, tags))
    return out


INSTANCES = _instances()


def _selected(inst):
    """KASTLE_ORACLE_ONLY=name,name runs only those scenarios (by name, every
    version), for a quick look at one family; unset, all of them run."""
    import os
    only = os.environ.get("KASTLE_ORACLE_ONLY")
    return not only or inst[1] in only.split(",")


class OracleRun:
    """Both brokers, the Oracle JVM, and every scenario's result (run on first use)."""

    def __init__(self, kafka, kastle, workdir):
        self.kafka, self.kastle, self.workdir = kafka, kastle, workdir
        self.proxy = OracleProxy()
        self.token = uuid.uuid4().hex[:6]
        self.ranges = {}
        self.features = {}
        self.results = {}
        self._lock = threading.Lock()
        self.elapsed = None

    def api_versions(self):
        for side, b in (("kafka", self.kafka), ("kastle", self.kastle)):
            r = self.proxy.call(addr=b.bootstrap, conn="apiversions", api=18, version=3,
                                body={"clientSoftwareName": "kastle-oracle", "clientSoftwareVersion": "1"})
            resp = r["response"]
            assert resp["errorCode"] == 0, (side, resp)
            self.ranges[side] = {a["apiKey"]: (a["minVersion"], a["maxVersion"]) for a in resp["apiKeys"]}
            self.features[side] = {k: resp.get(k) for k in ("supportedFeatures", "finalizedFeatures")}
        common = {}
        for api, (klo, khi) in self.ranges["kastle"].items():
            if api in self.ranges["kafka"]:
                flo, fhi = self.ranges["kafka"][api]
                lo, hi = max(klo, flo), min(khi, fhi)
                if lo <= hi:
                    common[api] = (lo, hi)
        sc.VERSIONS.clear()
        sc.VERSIONS.update(common)
        for side, b in (("kafka", self.kafka), ("kastle", self.kastle)):
            warm = Side(side, b.bootstrap, self.proxy, f"o{self.token}-warm-up")
            sc.warm_up(warm)
            warm.close()

    def run_all(self):
        t0 = time.monotonic()
        self.api_versions()
        todo = [inst for inst in INSTANCES if self.runnable(inst) is None and _selected(inst)]
        with ThreadPoolExecutor(PARALLEL) as pool:
            for inst, res in zip(todo, pool.map(self.run_one, todo)):
                self.results[inst[0]] = res
        self.elapsed = time.monotonic() - t0

    def runnable(self, inst):
        """None if the instance can run; else why not (a version kastle lacks)."""
        iid, name, api, mode, fn, v, tags = inst
        if api not in sc.VERSIONS:
            return f"kastle does not advertise {API_NAMES.get(api, api)}"
        if mode == "version" and not (sc.VERSIONS[api][0] <= v <= sc.VERSIONS[api][1]):
            return (f"kastle does not advertise {API_NAMES[api]} v{v} "
                    f"(kastle {self.ranges['kastle'].get(api)}, Kafka {KAFKA_44[api]})")
        return None

    def run_one(self, inst):
        iid, name, api, mode, fn, v, tags = inst
        prefix = f"o{self.token}-{iid}"
        counter = {}

        def names(x):
            return f"{prefix}-{x}"

        sides = {"kafka": Side("kafka", self.kafka.bootstrap, self.proxy, prefix),
                 "kastle": Side("kastle", self.kastle.bootstrap, self.proxy, prefix)}
        errors = {}

        def go(side):
            try:
                fn(sides[side], v, names)
            except Exception as e:  # noqa: BLE001 - reported by the test
                errors[side] = f"{type(e).__name__}: {e}"
            finally:
                try:
                    sides[side].close()
                except Exception:  # noqa: BLE001
                    pass

        if mode == "once":
            v = min(v, sc.VERSIONS[api][1])
        threads = [threading.Thread(target=go, args=(s,)) for s in sides]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        del counter
        return {"prefix": prefix, "errors": errors, "kafka": sides["kafka"].log,
                "kastle": sides["kastle"].log}

    def compare(self, iid):
        """(exchange table rows, remaining diffs, deliberate diffs); each diff is
        (label, path, kafka value, kastle value, API key or None when it concerns
        the scenario as a whole)."""
        res = self.results[iid]
        ports = {"kafka": [str(self.kafka.port), str(self.kafka.controller_port)],
                 "kastle": [str(self.kastle.port)] + [str(p) for p in getattr(self.kastle, "extra_ports", ())]}
        rows, remaining, deliberate = [], [], []
        ka, ks = res["kafka"], res["kastle"]
        for i in range(max(len(ka), len(ks))):
            if i >= len(ka) or i >= len(ks):
                extra = (ka if i < len(ka) else ks)[i]
                remaining.append((extra[0], f"exchange only on {'kafka' if i < len(ka) else 'kastle'}", "", "", None))
                continue
            (la, api, va, oa), (lb, _, vb, ob) = ka[i], ks[i]
            if la != lb:
                remaining.append((la, "scenario diverged", la, lb, None))
                break
            na = normalise(oa, ports["kafka"], res["prefix"])
            nb = normalise(ob, ports["kastle"], res["prefix"])
            for path, x, y in diff(na, nb):
                why = deliberate_reason(api, iid, path)
                (deliberate if why else remaining).append((la, path, x, y, api))
            rows.append((la, api, va))
        return rows, remaining, deliberate


def deliberate_reason(api, iid, path):
    for api_name, glob, rx, reason in dev.DELIBERATE:
        if api_name not in ("*", API_NAMES.get(api)):
            continue
        if fnmatch.fnmatch(iid, glob) and re.search(rx, path):
            return reason
    return None


def _same_configuration_as(kafka, port, controller_port, data_dir):
    """Kafka's server.properties with kastle's own ports and directory: both
    brokers run the same static configuration, so what DescribeConfigs reports
    as set in it (STATIC_BROKER_CONFIG) is the same on both. kastle accepts the
    controller settings (a controller listener is never bound)."""
    out = {}
    for k, v in kafka.properties().items():
        v = v.replace(f":{kafka.controller_port}", f":{controller_port}").replace(
            f":{kafka.port}", f":{port}")
        out[k] = str(data_dir) if k == "log.dirs" else v
    return out


@pytest.fixture(scope="module")
def oracle(real_kafka, tmp_path_factory):
    from conftest import free_port
    workdir = tmp_path_factory.mktemp("oracle-kastle")
    port, controller_port = free_port(), free_port()
    kastle = Broker(workdir, name="kastle (oracle)", port=port, overrides=_same_configuration_as(
        real_kafka, port, controller_port, workdir / "data"))
    # the controller port appears in kastle's configuration only (never bound)
    kastle.extra_ports = (controller_port,)
    kastle.start()
    run = OracleRun(real_kafka, kastle, tmp_path_factory.mktemp("oracle"))
    try:
        run.run_all()
        yield run
    finally:
        run.proxy.close()
        kastle.stop(check=False)
        _write_report(run)


def _write_report(run):
    """Every exchange's comparison, for reading a whole run: oracle-report.json in
    the module's temp dir (KASTLE_ORACLE_REPORT=path to put it elsewhere)."""
    import os
    out = {}
    for iid in run.results:
        rows, remaining, deliberate = run.compare(iid)
        out[iid] = {"exchanges": rows, "differences": remaining, "deliberate": deliberate,
                    "errors": run.results[iid]["errors"]}
    path = os.environ.get("KASTLE_ORACLE_REPORT") or str(run.workdir / "oracle-report.json")
    with open(path, "w") as f:
        json.dump({"ranges": {s: {str(a): r for a, r in run.ranges[s].items()} for s in run.ranges},
                   "scenarios": out}, f, indent=1, default=str)


# -- ApiVersions: ranges and features ---------------------------------------------------

ALL_APIS = sorted(set(KAFKA_44) | {0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21, 22,
                                   23, 24, 25, 26, 28, 29, 30, 31, 32, 33, 35, 37, 42, 43, 44, 45, 46,
                                   47, 48, 49, 60, 61, 65, 66})


def _range_params():
    out = []
    for api in ALL_APIS:
        name = API_NAMES.get(api, str(api))
        marks = [pytest.mark.kafka_oracle(name, "range")]
        if name in dev.KNOWN_RANGES:
            marks.append(pytest.mark.xfail(strict=True, reason=dev.KNOWN_RANGES[name]))
        out.append(pytest.param(api, id=name, marks=marks))
    return out


@pytest.mark.parametrize("api", _range_params())
def test_api_range(oracle, api):
    k = oracle.ranges["kafka"].get(api)
    s = oracle.ranges["kastle"].get(api)
    assert k == KAFKA_44.get(api), f"live Kafka advertises {k}, the pinned table says {KAFKA_44.get(api)}"
    assert s == k, f"{API_NAMES.get(api, api)}: Kafka 4.4 advertises {k}, kastle {s}"


@pytest.mark.kafka_oracle("ApiVersions", "features")
@pytest.mark.xfail(strict=True, reason=dev.KNOWN_RANGES["features"])
def test_features(oracle):
    def names(side, key):
        return {f["name"]: f for f in (oracle.features[side][key] or [])}
    for key in ("supportedFeatures", "finalizedFeatures"):
        assert names("kastle", key) == names("kafka", key), key


# -- scenarios ---------------------------------------------------------------------------

def _scenario_params():
    """One test per (scenario instance, API it tests): the exchanges of that API
    at that version. Exchanges of other APIs a scenario needs on the way (a
    Metadata after CreateTopics, a Produce inside a transaction) form one more
    test, ``<id>-other``, which feeds no table cell."""
    out = []
    for inst in INSTANCES:
        iid, name, api, mode, fn, v, tags = inst
        for a, tv in tags + [(None, None)]:
            aname = API_NAMES[a] if a is not None else "other"
            key = name if a == api and mode != "family" else f"{name}/{aname}"
            marks = [pytest.mark.kafka_oracle(f"{aname}:{tv}")] if a is not None else []
            reason = next((r for vs, r in dev.KNOWN.get(key, ()) if vs is None or v in vs), None)
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            tid = iid if a == api and mode != "family" else f"{iid}-{aname}"
            out.append(pytest.param(inst, a, tv, id=tid, marks=marks))
    return out


@pytest.mark.parametrize("inst,api,version", _scenario_params())
def test_oracle(oracle, inst, api, version):
    iid = inst[0]
    why_not = oracle.runnable(inst)
    if why_not is None and api is not None and api in sc.VERSIONS and \
            not sc.VERSIONS[api][0] <= version <= sc.VERSIONS[api][1]:
        # a lifecycle index whose version of this API kastle does not advertise ran
        # at kastle's newest: that proves nothing about this version
        why_not = (f"kastle does not advertise {API_NAMES[api]} v{version} "
                   f"(kastle {oracle.ranges['kastle'].get(api)}, Kafka {KAFKA_44[api]})")
    if why_not is not None:
        pytest.xfail(f"kastle deviation: {why_not} (test_api_range is the strict check)")
    if not _selected(inst):
        pytest.skip("not in KASTLE_ORACLE_ONLY")
    res = oracle.results[iid]
    assert "kafka" not in res["errors"], f"the scenario fails on Kafka itself: {res['errors']['kafka']}"
    tested = {a for a, _ in inst[6]}
    rows, remaining, deliberate = oracle.compare(iid)
    mine = [d for d in remaining
            if d[4] is None or d[4] == api or (api is None and d[4] not in tested)]
    lines = [f"{label} ({API_NAMES.get(a, a)}): {path}: kafka={x} kastle={y}"
             for label, path, x, y, a in mine]
    if "kastle" in res["errors"]:
        lines.append(f"scenario stopped on kastle: {res['errors']['kastle']}")
    assert not lines, f"{iid}: kastle differs from Kafka 4.4:\n" + "\n".join(lines[:60])
