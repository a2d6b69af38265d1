"""DescribeQuorum in a kastle cluster (issue 17), driven by Kafka's own
``kafka-metadata-quorum`` (the 4.4 tool, ``MetadataQuorumCommand``) against
three combined nodes, through a broker (``--bootstrap-server``: the broker
forwards to the active controller) and through the controllers
(``--bootstrap-controller``: DescribeCluster finds the active one). After
metadata writes every voter's lag is 0; once the active controller is
killed, another leads with a higher epoch."""
import re
import time

import pytest

import jvm_lib
from cluster_lib import module_cluster
from compat_lib import ck_create_topic, unique_topic

pytestmark = [pytest.mark.timeout(300), pytest.mark.compat("kafka-tools", "admin")]

TOOL = "org.apache.kafka.tools.MetadataQuorumCommand"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # Killed, not stopped: the last test leaves one voter dead.
    yield from module_cluster(tmp_path_factory, name="quorum", graceful=False)


def run_tool(args, timeout=120):
    p = jvm_lib.jvm_run("kafka4", TOOL, args, timeout=timeout, jvm_opts=("-Xmx256m",),
                        check=False)
    return p.returncode, p.stdout, p.stderr


def bootstraps(cluster):
    """The tool's two ways in, over the alive nodes."""
    alive = [i for i, b in cluster.nodes.items() if b.alive()]
    brokers = ",".join(cluster.nodes[i].bootstrap for i in alive)
    controllers = ",".join(f"127.0.0.1:{cluster.controller_ports[i]}" for i in alive)
    return {"server": ["--bootstrap-server", brokers],
            "controller": ["--bootstrap-controller", controllers]}


def status(cluster, how):
    rc, out, err = run_tool(bootstraps(cluster)[how] + ["describe", "--status"])
    assert rc == 0, f"describe --status via {how} exited {rc}\n{out}\n{err[-4000:]}"
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", out, re.M))
    for k in ("LeaderId", "LeaderEpoch", "HighWatermark", "MaxFollowerLag", "CurrentVoters"):
        assert k in fields, f"no {k} in\n{out}"
    return fields, out


def replication(cluster, how):
    """``describe --replication`` rows: node id -> (log end offset, lag, status)."""
    rc, out, err = run_tool(bootstraps(cluster)[how] + ["describe", "--replication"])
    assert rc == 0, f"describe --replication via {how} exited {rc}\n{out}\n{err[-4000:]}"
    rows = {}
    for ln in out.splitlines():
        cells = ln.split()
        if cells and cells[0].isdigit():
            rows[int(cells[0])] = (int(cells[-5]), int(cells[-4]), cells[-1])
    return rows, out


def wait_caught_up(cluster, how, voters, timeout=60):
    """Polls ``--replication`` until every voter's lag is 0."""
    deadline = time.monotonic() + timeout
    while True:
        rows, out = replication(cluster, how)
        lags = {i: rows[i][1] for i in voters if i in rows}
        if set(lags) == set(voters) and all(v == 0 for v in lags.values()):
            return rows, out
        assert time.monotonic() < deadline, f"voters not caught up via {how}:\n{out}"
        time.sleep(1)


@pytest.mark.parametrize("how", ["server", "controller"])
def test_the_quorum_is_described_with_its_leader_and_caught_up_voters(cluster, how):
    # Metadata writes: topics the controller commits.
    for _ in range(2):
        ck_create_topic(cluster.bootstrap, unique_topic("quorum"), partitions=2, rf=3)
    leader = cluster.active_controller()
    fields, out = status(cluster, how)
    assert int(fields["LeaderId"]) == leader, out
    assert int(fields["LeaderEpoch"]) >= 1, out
    assert int(fields["HighWatermark"]) > 0, out
    voter_ids = sorted(int(i) for i in re.findall(r'"id":\s*(\d+)', fields["CurrentVoters"]))
    assert voter_ids == [1, 2, 3], out
    # v2's nodes: each voter's controller endpoint.
    for i in (1, 2, 3):
        assert f"CONTROLLER://127.0.0.1:{cluster.controller_ports[i]}" in fields["CurrentVoters"], out

    rows, out = wait_caught_up(cluster, how, {1, 2, 3})
    assert rows[leader][2] == "Leader", out
    assert sorted(i for i, r in rows.items() if r[2] == "Follower") == \
        sorted({1, 2, 3} - {leader}), out
    # Every voter at the leader's log end, which is past the high watermark's
    # committed entries.
    ends = {rows[i][0] for i in (1, 2, 3)}
    assert len(ends) == 1 and ends.pop() >= int(fields["HighWatermark"]) - 1, out
    fields, out = status(cluster, how)
    assert int(fields["MaxFollowerLag"]) == 0, out


def test_a_new_leader_with_a_higher_epoch_after_the_leader_dies(cluster):
    ck_create_topic(cluster.bootstrap, unique_topic("quorum-before"), partitions=1, rf=3)
    old = cluster.active_controller()
    before, out = status(cluster, "controller")
    assert int(before["LeaderId"]) == old, out
    cluster.kill(old)
    deadline = time.monotonic() + 60
    while True:
        try:
            after, out = status(cluster, "controller")
            if int(after["LeaderId"]) not in (old, -1):
                break
        except AssertionError:
            pass  # no leader yet: the tool fails until one is elected
        assert time.monotonic() < deadline, f"no new leader after killing {old}"
        time.sleep(1)
    assert int(after["LeaderEpoch"]) > int(before["LeaderEpoch"]), out
    # The same answer through a surviving broker, which forwards it.
    via_broker, out = status(cluster, "server")
    assert via_broker["LeaderId"] == after["LeaderId"], out
    assert int(via_broker["LeaderEpoch"]) >= int(after["LeaderEpoch"]), out
