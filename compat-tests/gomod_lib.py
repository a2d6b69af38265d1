"""Building and running the Go-module drivers of the compat suite (``compat-tests/gomod``:
franz-go in ``gomod/franz``, IBM sarama in ``gomod/sarama``).

``scripts/test.sh`` (``install_go_modules``) downloads the module's dependencies
once into Go's module cache; each test session builds the driver it needs once
(``build_driver``, into a temp dir, with a per-user build cache under
``~/.cache`` so later sessions only link). Drivers take ``CMD SPEC.json`` and
print JSON lines, like the Debian sarama driver (``go/``) and kafkajs' driver.
"""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List

import pytest

from compat_lib import Rec, _unb64, go_driver_run

HERE = Path(__file__).resolve().parent
GOMOD = HERE / "gomod"
GO_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kastle-compat-go"


def build_driver(tmp_path_factory, pkg: str) -> Path:
    """``go build ./pkg`` of the gomod module into a session temp dir."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go-module driver tests need Go (bash scripts/test.sh --install-only)")
    out = tmp_path_factory.mktemp(f"gomod-{pkg}") / pkg
    # -mod=readonly: go.mod/go.sum are committed and never rewritten by a test run
    env = dict(os.environ, GOCACHE=str(GO_CACHE), GOFLAGS="-mod=readonly -buildvcs=false",
               GO111MODULE="on")
    p = subprocess.run(["nice", "-n", "10", go, "build", "-o", str(out), f"./{pkg}"], cwd=GOMOD,
                       env=env, capture_output=True, timeout=900)
    assert p.returncode == 0, f"go build of compat-tests/gomod/{pkg} failed:\n{p.stderr.decode()[-4000:]}"
    return out


# Running a driver: compat_lib.go_driver_run, shared with Debian's sarama.
go_run = go_driver_run


def records(lines) -> List[Rec]:
    return [Rec(r["p"], int(r["o"]), _unb64(r["k"]), _unb64(r["v"]),
                [(k, _unb64(v)) for k, v in r["h"]], int(r["t"]), r.get("tt"))
            for r in lines if r.get("type") == "record"]


def acks(lines) -> Dict[int, tuple]:
    """{message idx: (partition, offset)} from "ack" lines."""
    return {a["i"]: (a["p"], a["o"]) for a in lines if a.get("type") == "ack"}


def assert_acks_contiguous(acked, counts):
    for p, n in counts.items():
        got = sorted(o for (q, o) in acked.values() if q == p)
        assert got == list(range(n)), f"partition {p}: acked offsets {got[:5]}..{got[-5:]} not 0..{n - 1}"


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Member:
    """One consumer-group member process (``DRIVER group spec``) whose JSON lines
    go to a file; ``stop()`` creates its stop file and waits for a clean exit."""

    def __init__(self, binary, spec: dict, name: str, workdir: Path):
        self.name, self.stop_file = name, workdir / f"stop-{name}"
        self.out_path, self.err_path = workdir / f"{name}.out", workdir / f"{name}.err"
        spec_path = workdir / f"{name}.json"
        spec_path.write_text(json.dumps({**spec, "name": name, "stopFile": str(self.stop_file)}))
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([str(binary), "group", str(spec_path)], stdout=out, stderr=err)
        self.stopped = False

    def lines(self):
        text = self.out_path.read_text()
        # the last line may still be incomplete while the member runs
        return [json.loads(ln) for ln in text.splitlines() if ln.endswith("}")]

    def events(self, *kinds):
        return [ln for ln in self.lines() if ln["type"] in kinds]

    def assignment(self):
        """(generation, set of partitions) after the member's last assignment change."""
        ev = self.events("assigned", "revoked", "lost")
        return (ev[-1]["generation"], set(ev[-1]["partitions"] or [])) if ev else (None, set())

    def values(self):
        return [_unb64(ln["v"]).decode() for ln in self.lines() if ln["type"] == "record"]

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        self.stop_file.write_text("stop")
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        result = [ln for ln in self.lines() if ln["type"] == "result"]
        assert self.proc.returncode == 0 and result and result[-1]["ok"], \
            f"group member {self.name} rc={self.proc.returncode} result={result}\n" \
            f"stderr: {self.err_path.read_text()[-2000:]}"


def stop_all(members):
    """Stop every member (all of them even if one fails), then raise the first failure."""
    errors = []
    for m in members:
        try:
            m.stop()
        except AssertionError as e:
            errors.append(e)
    if errors:
        raise errors[0]


def committed(bootstrap, group, topic, partitions) -> Dict[int, int]:
    """The group's committed offsets (OffsetFetch through confluent-kafka)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}
    finally:
        c.close()


def produce_values(bootstrap, topic, partitions, start, n):
    """Plain values ``v<i>`` (i in start..start+n) to partition i % partitions."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(start, start + n):
        p.produce(topic, value=f"v{i}".encode(), partition=i % partitions)
    assert p.flush(30) == 0
