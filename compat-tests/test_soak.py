"""A short bounded soak (issue 19): the code of ``soak.py`` for 50 s against
a standalone durable kastle killed (SIGKILL) about every 12 s, with every
kind of client at once (idempotent and transactional producers, a
read_committed reader, a consumer group whose members come and go, a topic
under retention and a compacted one). The history checker must find nothing
and RSS, open fds, threads and produce latency must stay within the flatness
bounds. The long run is ``scripts/soak.sh`` (docs/soak.md)."""
import os
import random

import soak

MINUTES = 50 / 60
KILL_EVERY = 12.0


def test_short_soak(broker_factory, tmp_path, capsys):
    seed = int(os.environ.get("KASTLE_SOAK_SEED", random.randrange(1 << 30)))
    broker = broker_factory(soak.SOAK_OVERRIDES, start=False)
    lines = []
    run, anomalies, rows, failures = soak.soak(
        MINUTES, kill_every=KILL_EVERY, seed=seed, out=tmp_path / "soak", log=lines.append,
        env=soak.Standalone(tmp_path, broker=broker))
    s = run.summary()
    with capsys.disabled():
        print(f"\nshort soak: seed {seed}, {s['kills']} kills, acked {s['acked']}, "
              f"transactions {s['transactions']}, group assignments {s['group_assignments']}")
    report = "\n".join(lines)
    assert not anomalies, f"seed {seed} (replay: KASTLE_SOAK_SEED={seed}):\n{report}"
    assert not failures, f"seed {seed}: not flat:\n{report}"
    # the run did what it claims: kills, every kind of traffic, retention and compaction at work
    assert s["kills"] >= 2, report
    assert all(n > 1000 for n in s["acked"].values()), report
    assert s["transactions"].get("commit/committed", 0) > 50 and s["transactions"].get("abort/aborted", 0) > 20, report
    assert s["group_assignments"] > 10 and s["group_commits"] > 10 and s["committed_samples"] > 10, report
    assert s["retention_expired_acked"] > 0, report
    assert s["compact_records_now"] < s["acked"]["compact"] / 2 and s["compact_snapshots"] >= 2, report
