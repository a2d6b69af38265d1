"""Tests of the COMPATIBILITY.md generator and drift check (compat_matrix.py and
the hooks in conftest.py), so that the check provably fails when the table is
stale. The session-level tests run an inner pytest session (pytester) over a
scratch directory holding this suite's conftest.py and compat_matrix.py."""
import shutil
import sys
from pathlib import Path

import pytest

import compat_matrix as cm

pytest_plugins = ["pytester"]
HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------
# pure functions
# ---------------------------------------------------------------------------

def test_tags_fill_parameters_and_aliases():
    tags = cm.tags_for([("{kind}", "groups"), ("sarama", "produce", "{codec}")],
                       {"kind": "kp", "codec": "zstd"})
    assert tags == [("kafka-python", "groups"), ("sarama", "produce"), ("sarama", "zstd")]


@pytest.mark.parametrize("args,params,needle", [
    (("kafka-pithon", "produce"), {}, "unknown client"),
    (("sarama", "teleport"), {}, "unknown capability"),
    (("{nope}", "produce"), {}, "unknown parameter"),
    (("sarama",), {}, "needs (client, capability"),
])
def test_tags_reject_typos(args, params, needle):
    with pytest.raises(ValueError, match=None) as e:
        cm.tags_for([args], params)
    assert needle in str(e.value)


def row(text, client):
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {client} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def col(cap):
    return list(cm.CAPABILITIES).index(cap)


def test_render_cells():
    results = [
        ("aiokafka", "produce", "t.py::a", "passed"),
        ("aiokafka", "produce", "t.py::b", "passed"),
        ("aiokafka", "fetch", "t.py::a", "passed"),
        ("aiokafka", "fetch", "t.py::c", "failed"),   # one failure spoils the cell
        ("aiokafka", "gzip", "t.py::d", "skipped"),   # skipped only: no proof
        ("aiokafka", "lz4", "t.py::e", "passed"),
        ("aiokafka", "lz4", "t.py::f", "skipped"),    # partly skipped: no full proof
    ]
    text = cm.render(results)
    r = row(text, "aiokafka")
    assert r[col("produce")] == "pass"
    assert r[col("fetch")] == "FAIL"
    assert r[col("gzip")] == "not tested"
    assert r[col("lz4")] == "not tested"
    assert r[col("admin")] == "not tested"
    # n/a cells carry a numbered note that is printed below the table
    s = row(text, "sarama")
    assert s[col("transactions")].startswith("n/a [")
    n = s[col("transactions")].split("[")[1].rstrip("]")
    assert f"\n{n}. " in text
    assert "* aiokafka / fetch (FAIL): `t.py::a`, `t.py::c`" in text
    # deterministic: same outcomes in another order render the same text
    assert cm.render(list(reversed(results))) == text


def test_every_client_and_capability_has_a_row_and_column():
    text = cm.render([])
    for c in cm.CLIENTS:
        assert len(row(text, c)) == len(cm.CAPABILITIES)
    header = next(ln for ln in text.splitlines() if ln.startswith("| client |"))
    for heading in cm.CAPABILITIES.values():
        assert f" {heading} |" in header


def test_known_deviations_render_as_deviation():
    r = cm.render([("java-4.4", "admin", "t.py::a", "passed"),
                   ("java-4.4", "admin", "t.py::b", "xfailed"),
                   ("java-3.x", "admin", "t.py::c", "xfailed"),
                   ("java-3.x", "admin", "t.py::d", "failed"),    # a failure still wins
                   ("kafka-tools", "admin", "t.py::e", "xfailed"),
                   ("kafka-tools", "admin", "t.py::f", "skipped")])  # skipped: no proof
    assert row(r, "java-4.4")[col("admin")].startswith("deviation")  # (+ its remark)
    assert row(r, "java-3.x")[col("admin")] == "FAIL"
    assert row(r, "kafka-tools")[col("admin")] == "not tested"
    assert "* java-4.4 / admin (deviation): `t.py::a`, `t.py::b`" in r


def test_oracle_cells_parse_markers():
    assert cm.oracle_cells([("Produce:3", "JoinGroup:0")]) == [("Produce", "3"), ("JoinGroup", "0")]
    assert cm.oracle_cells([("Produce", "range")]) == [("Produce", "range")]
    with pytest.raises(ValueError):
        cm.oracle_cells([("Produce-3",)])


def test_oracle_table():
    results = [("Produce", "range", "o::r", "xfailed"),
               ("Produce", "3", "o::a3", "passed"), ("Produce", "4", "o::a4", "passed"),
               ("Produce", "5", "o::a5", "passed"), ("Produce", "5", "o::b5", "xfailed"),
               ("Produce", "8", "o::a8", "xfailed"), ("Produce", "9", "o::a9", "failed"),
               ("Fetch", "range", "o::fr", "passed"), ("Fetch", "4", "o::f4", "passed")]
    text = cm.render([], results)
    assert "## Matches Apache Kafka" in text
    lines = text.splitlines()
    produce = next(ln for ln in lines if ln.startswith("| Produce |"))
    cells = [c.strip() for c in produce.strip("|").split("|")]
    # v5 has one xfailed scenario: not a match; v9 failed
    assert cells == ["Produce", "deviation", "3-4", "5, 8", "9"]
    fetch = next(ln for ln in lines if ln.startswith("| Fetch |"))
    assert [c.strip() for c in fetch.strip("|").split("|")] == ["Fetch", "match", "4", "-", "-"]
    # no oracle results: no section (the client table alone, as before)
    assert "Matches Apache Kafka" not in cm.render([])


def test_drift_detection():
    a = cm.render([("sarama", "produce", "t.py::x", "passed")])
    b = cm.render([("sarama", "produce", "t.py::x", "failed")])
    assert cm.drift(a, a) is None
    d = cm.drift(a, b)
    assert d is not None and "-| sarama | pass" in d and "+| sarama | FAIL" in d
    assert "does not exist" in cm.drift(None, a)


# ---------------------------------------------------------------------------
# the session hooks, end to end in an inner pytest session
# ---------------------------------------------------------------------------

INNER_TESTS = '''
import os
import pytest

@pytest.mark.compat("kcat", "produce")
def test_one():
    pass

@pytest.mark.compat("{client}", "fetch")
@pytest.mark.parametrize("client", ["kp", "sarama"])
def test_two(client):
    assert os.environ.get("INNER_FAIL") != client
'''


@pytest.fixture
def inner(pytester, monkeypatch):
    for name in ("conftest.py", "compat_matrix.py", "pytest.ini", "kafka_oracle.py", "jvm_lib.py"):
        shutil.copy(HERE / name, pytester.path / name)
    pytester.makepyfile(test_inner=INNER_TESTS)
    target = pytester.path / "COMPAT.md"
    monkeypatch.setenv("KASTLE_COMPAT_FILE", str(target))
    monkeypatch.setenv("KASTLE_BIN", sys.executable)  # conftest only checks that it exists
    monkeypatch.delenv("KASTLE_UPDATE_COMPAT", raising=False)
    monkeypatch.delenv("INNER_FAIL", raising=False)

    def run(*args, **env):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        res = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
        for k in env:
            monkeypatch.delenv(k)
        return res
    return run, target


def test_session_writes_then_accepts_then_rejects_drift(inner):
    run, target = inner
    # no file yet: the full run fails and says how to create it
    res = run()
    assert res.ret == 1, res.stdout.str()
    res.stdout.fnmatch_lines(["*COMPATIBILITY.md differs*", "*does not exist*",
                              "*KASTLE_UPDATE_COMPAT=1 bash scripts/test.sh*"])
    # update mode writes it
    res = run(KASTLE_UPDATE_COMPAT="1")
    assert res.ret == 0, res.stdout.str()
    text = target.read_text()
    assert row(text, "kafka-python")[col("fetch")] == "pass"
    assert row(text, "sarama")[col("fetch")] == "pass"
    assert row(text, "kcat")[col("produce")] == "pass"
    # a clean full run matches
    res = run()
    assert res.ret == 0, res.stdout.str()
    res.stdout.fnmatch_lines(["*COMPATIBILITY.md matches this run (3 tagged tests)*"])
    # a test of one cell fails: table differs, diff printed, session fails
    res = run(INNER_FAIL="sarama")
    assert res.ret == 1
    res.stdout.fnmatch_lines(["*-| sarama |*pass*", "*+| sarama |*FAIL*"])
    assert target.read_text() == text, "a check run must not rewrite the file"
    # the committed file edited by hand (a stale claim) is caught too
    target.write_text(text.replace("| kcat | pass", "| kcat | FAIL"))
    assert run().ret == 1


def test_partial_runs_are_not_checked(inner):
    run, target = inner
    target.write_text("stale\n")
    for args in (["-k", "test_one"], ["test_inner.py::test_one"], ["-x"]):
        env = {"INNER_FAIL": "kp"} if args == ["-x"] else {}
        res = run(*args, **env)
        res.stdout.fnmatch_lines(["*COMPATIBILITY.md not checked: partial run*"])
        if args != ["-x"]:
            assert res.ret == 0, res.stdout.str()
    res = run("-k", "test_one", KASTLE_UPDATE_COMPAT="1")
    res.stdout.fnmatch_lines(["*ignored: only a full compat run may write the file*"])
    assert target.read_text() == "stale\n"
