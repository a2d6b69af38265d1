"""A log directory that fails with EIO takes the broker down (issue 19), as Kafka does
when its last online log directory fails (``LogManager.handleLogDirFailure``: "Shutdown
broker because all log dirs in ... have failed", ``Exit.halt(1)``); kastle has one log
directory.

The broker's ``log.dirs`` is a kastle-lazyfs mount (tools/lazyfs, as in
test_power_loss.py); records are produced and acknowledged (durable mode: fsynced),
then ``crash`` makes every later file operation on the mount answer EIO. Asserted: the
next produce is not acknowledged; the broker exits by itself with status 1 within
seconds; its log names the failed directory with Kafka's message; and after the
filesystem is remounted the broker starts, recovers and serves every acknowledged
record.
"""
import time

import pytest

from compat_lib import ck_consume, ck_create_topic, ck_producer, unique_topic
from test_power_loss import lazyfs_broker

ACKED = 20

pytestmark = pytest.mark.timeout(90)


def produce(bootstrap, topic, values, timeout):
    """Produces `values` one at a time: [(value, offset or error name)]."""
    prod = ck_producer(bootstrap, **{"message.timeout.ms": int(timeout * 1000),
                                     "request.timeout.ms": 2000, "linger.ms": 0})
    out = []
    for v in values:
        got = []
        prod.produce(topic, value=v, partition=0,
                     on_delivery=lambda err, msg: got.append(msg.offset() if err is None else err.name()))
        prod.flush(timeout + 5)
        out.append((v, got[0] if got else "no delivery report"))
    return out


def test_eio_on_the_only_log_dir_halts_the_broker(broker_factory, tmp_path):
    fs, broker = lazyfs_broker(broker_factory, tmp_path, {"offsets.topic.num.partitions": 1})
    mnt = broker.data_dir
    fs.mount()
    try:
        broker.start()
        topic = unique_topic("logdirfail")
        ck_create_topic(broker.bootstrap, topic, 1)
        acked = produce(broker.bootstrap, topic, [b"acked-%03d" % i for i in range(ACKED)], 10)
        assert [o for _, o in acked] == list(range(ACKED)), acked

        fs.ctl("crash")   # from here on the mount answers EIO
        t0 = time.monotonic()
        after = produce(broker.bootstrap, topic, [b"after-failure"], 5)
        assert not isinstance(after[0][1], int), f"acknowledged on a failed disk: {after}"
        deadline = t0 + 15
        while broker.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not broker.alive(), "the broker kept running on a failed log directory"
        rc = broker.stop(check=False)
        log = broker.log_tail(400)
        assert rc == 1, f"exit status {rc}\n{log}"
        assert f"Shutdown broker because all log dirs in {mnt} have failed" in log, log
        assert "Stopping serving logs in dir" in log, log

        fs.unmount()
        fs.mount()
        broker.start()
        recs = ck_consume(broker.bootstrap, topic, 1, until_counts={0: ACKED}, timeout=20)
        assert [(r.offset, r.value) for r in recs][:ACKED] == [(o, v) for v, o in acked]
        broker.stop()
    finally:
        fs.unmount()
