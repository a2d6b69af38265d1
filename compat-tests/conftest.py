"""pytest harness for the kastle compatibility suite.

Starts the real broker binary (``KASTLE_BIN``, default ``target/release/kastle``)
on a free port with a temp data dir, and exposes it as the ``broker`` fixture.
The broker's stderr is captured to ``<tmp>/kastle.log``; when a test fails the
tail of every log of every broker it started is attached to the failure report.
"""
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_BIN = REPO / "target" / "release" / "kastle"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOG_TAIL_LINES = int(os.environ.get("KASTLE_LOG_TAIL", "150"))


def kastle_bin() -> Path:
    return Path(os.environ.get("KASTLE_BIN", str(DEFAULT_BIN))).resolve()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, timeout: float = 0.2, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class BrokerError(AssertionError):
    pass


class Broker:
    """One kastle process (restartable) bound to a fixed port and data dir."""

    def __init__(self, workdir: Path, overrides=None, port=None, name="kastle",
                 host="127.0.0.1", netns=None):
        """``host``: the address it listens on and clients use; ``netns``: a
        network namespace to run it in (``ip netns exec``; cluster_lib.NetNs)."""
        self.bin = kastle_bin()
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host, self.netns = host, netns
        self.name = name
        self.overrides = dict(overrides or {})
        self.proc = None
        self.starts = 0
        self.log_paths = []
        self.last_returncode = None

    # -- addresses ---------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_paths[-1] if self.log_paths else self.workdir / "kastle.log"

    def argv(self):
        props = {
            "listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            # As Kafka's own config/server.properties for development: a new
            # classic group rebalances at once instead of after 3 s (most tests
            # join fresh groups). test_groups.py sets its own delay and tests it.
            "group.initial.rebalance.delay.ms": "0",
        }
        props.update({k: str(v) for k, v in self.overrides.items()})
        # `ip netns exec` execs the binary in place: the pid stays kastle's.
        argv = ["ip", "netns", "exec", self.netns] if self.netns else []
        argv.append(str(self.bin))
        for k, v in props.items():
            argv += ["--override", f"{k}={v}"]
        return argv

    # -- lifecycle ---------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT):
        if self.proc is not None and self.proc.poll() is None:
            raise BrokerError(f"{self.name} already running (pid {self.proc.pid})")
        if not self.bin.exists():
            raise BrokerError(
                f"kastle binary not found at {self.bin} "
                "(build it with `cargo build --release` or set KASTLE_BIN)")
        self.starts += 1
        log_path = self.workdir / f"kastle.{self.starts}.log"
        self.log_paths.append(log_path)
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")
        with open(log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=logf,
                stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.last_returncode = rc
                self.proc = None
                raise BrokerError(
                    f"{self.name} exited during startup with code {rc}; "
                    f"log:\n{self.log_tail()}")
            if port_open(self.port, host=self.host):
                return self
            time.sleep(0.02)
        self.kill()
        raise BrokerError(
            f"{self.name} did not accept connections on {self.bootstrap} within "
            f"{timeout}s; log:\n{self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT, check: bool = True):
        """Graceful stop: SIGTERM, wait. Returns the exit code."""
        if self.proc is None:
            return self.last_returncode
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                self.last_returncode = proc.returncode
                if check:
                    raise BrokerError(
                        f"{self.name} did not exit within {timeout}s of SIGTERM; "
                        f"log:\n{self.log_tail()}")
                return proc.returncode
        self.last_returncode = proc.returncode
        return proc.returncode

    def kill(self):
        """Crash: SIGKILL, no chance to flush anything."""
        if self.proc is None:
            return self.last_returncode
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.last_returncode = proc.returncode
        return proc.returncode

    def restart(self, graceful: bool = True):
        if graceful:
            self.stop()
        else:
            self.kill()
        return self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- logs --------------------------------------------------------------
    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        out = []
        for i, p in enumerate(self.log_paths, 1):
            try:
                text = ANSI.sub("", p.read_text(errors="replace")).splitlines()
            except OSError:
                continue
            cut = text[-lines:]
            head = f"--- {self.name} run #{i} ({p}) "
            if len(text) > len(cut):
                head += f"[last {len(cut)} of {len(text)} lines] "
            out.append(head + "---")
            out.extend(cut)
        return "\n".join(out)


# -- fixtures ---------------------------------------------------------------

@pytest.fixture
def broker_factory(request, tmp_path):
    """Start extra/customised brokers: ``broker_factory(**{'auto.create.topics.enable': 'false'})``."""
    brokers = []
    request.node._kastle_brokers = brokers

    def make(overrides=None, start=True, **kw):
        b = Broker(tmp_path / f"broker{len(brokers)}", overrides=overrides, **kw)
        b.name = f"kastle#{len(brokers)}"
        brokers.append(b)
        if start:
            b.start()
        return b

    yield make
    for b in brokers:
        if b.alive():
            try:
                b.stop(check=False)
            except Exception:  # noqa: BLE001 - teardown must not mask test result
                b.kill()


@pytest.fixture
def broker(broker_factory):
    """A fresh single-node kastle with default settings (num.partitions=1)."""
    return broker_factory()


@pytest.fixture
def recorded_broker(broker_factory):
    """(broker, recorder, bootstrap): a fresh broker that clients reach through a
    compat_lib.VersionRecorder, which notes every request's client id, API and
    version (old-protocol tests assert what the clients really sent)."""
    from compat_lib import recorded_broker as make
    b, rec, bootstrap = make(broker_factory)
    yield b, rec, bootstrap
    rec.close()


# The real Apache Kafka broker (session-scoped, started on first use): kafka_oracle.py
from kafka_oracle import real_kafka, session_kafka  # noqa: E402,F401 - fixture re-export


@pytest.fixture(params=["kastle", "kafka"])
def any_broker(request):
    """The test runs twice: against a fresh kastle (``broker``) and against the
    session's real Apache Kafka (``real_kafka``), so that a failure on kastle
    alone is a kastle deviation, one on both a client or test quirk. Tests must
    use fresh topic / group / transactional-id names (Kafka is shared)."""
    return request.getfixturevalue("broker" if request.param == "kastle" else "real_kafka")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        for b in getattr(item, "_kastle_brokers", []):
            tail = b.log_tail()
            if tail:
                rep.sections.append((f"{b.name} log ({b.bootstrap})", tail))
        k = session_kafka()
        if k is not None and "real_kafka" in getattr(item, "fixturenames", ()):
            rep.sections.append((f"{k.name} log ({k.bootstrap})", k.log_tail(60)))
        for p in getattr(item, "_jvm_procs", []):  # jvm_lib.jvm_procs
            rep.sections.append((f"JVM {p.label}", p.output(60)))


def pytest_sessionstart(session):
    # Fail once, clearly, instead of erroring every test the same way.
    if not kastle_bin().exists() and not session.config.option.collectonly:
        pytest.exit(f"kastle binary {kastle_bin()} does not exist "
                    "(cargo build --release, or set KASTLE_BIN)", returncode=1)


# -- compatibility matrix (COMPATIBILITY.md) -----------------------------------
#
# Tests tagged @pytest.mark.compat(client, capability, ...) feed the client x
# capability table in the repo's COMPATIBILITY.md (rendering: compat_matrix.py).
# A full run (every test file, nothing deselected, nothing cut short) compares the
# table it observed with the committed file and fails the session on any
# difference; KASTLE_UPDATE_COMPAT=1 writes the file instead. Partial runs
# (-k, -m, a file or node id, -x stopping early) only report that they did not check.

import compat_matrix  # noqa: E402 - grouped with the hooks that use it

# overridable so test_compat_matrix.py can run the check on a scratch copy
COMPAT_FILE = Path(os.environ.get("KASTLE_COMPAT_FILE", str(REPO / "COMPATIBILITY.md")))
UPDATE_ENV = "KASTLE_UPDATE_COMPAT"
_CURRENT = {}  # the session's _CompatRun, for hooks that get no config (logreport)


class _CompatRun:
    def __init__(self):
        self.tags = {}            # nodeid -> [(client, capability)], every collected tagged test
        self.oracle = {}          # nodeid -> [(API, version|'range'|'features')], kafka_oracle marks
        self.files = set()        # test files collected from (before deselection)
        self.n_collected = 0      # items before -k/-m/--deselect
        self.selected = set()     # nodeids left to run
        self.outcome = {}         # nodeid -> passed/failed/skipped
        self.finished = set()     # nodeids whose teardown was reported
        self.message = []         # lines for the terminal summary
        self.file_seconds = {}    # test file -> seconds (setup + call + teardown)


def _compat_state(config) -> _CompatRun:
    st = getattr(config, "_kastle_compat", None)
    if st is None:
        st = config._kastle_compat = _CompatRun()
    return st


def pytest_configure(config):
    _CURRENT["state"] = _compat_state(config)
    config.addinivalue_line(
        "markers", "compat(client, capability, ...): cell(s) of COMPATIBILITY.md this test "
                   "proves; {param} placeholders are filled from parametrize")
    config.addinivalue_line(
        "markers", "kafka_oracle(*cells): 'API:version' (or API, 'range'/'features') cells of "
                   "the 'matches Apache Kafka' table this differential test decides")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    # tryfirst: runs before -k/-m/--deselect remove items, so this sees everything
    # the given paths contain.
    st = _compat_state(config)
    st.n_collected = len(items)
    for item in items:
        st.files.add(Path(str(item.fspath)).resolve())
        omarks = [m.args for m in item.iter_markers(name="kafka_oracle")]
        if omarks:
            try:
                st.oracle[item.nodeid] = compat_matrix.oracle_cells(omarks)
            except ValueError as e:
                raise pytest.UsageError(f"{item.nodeid}: {e}") from None
        marks = [m.args for m in item.iter_markers(name="compat")]
        if not marks:
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        try:
            st.tags[item.nodeid] = compat_matrix.tags_for(marks, params)
        except ValueError as e:
            raise pytest.UsageError(f"{item.nodeid}: {e}") from None


def pytest_collection_finish(session):
    _compat_state(session.config).selected = {i.nodeid for i in session.items}


def pytest_runtest_logreport(report):
    st = _CURRENT.get("state")
    if st is None:
        return
    prev = st.outcome.get(report.nodeid)
    if report.failed:
        st.outcome[report.nodeid] = "failed"
    elif prev != "failed":
        if report.skipped and hasattr(report, "wasxfail"):
            st.outcome[report.nodeid] = "xfailed"  # a known deviation (strict xfail)
        elif report.skipped:
            st.outcome[report.nodeid] = "skipped"
        elif report.when == "call" and report.passed:
            st.outcome[report.nodeid] = "passed"
    if report.when == "teardown":
        st.finished.add(report.nodeid)
    f = report.nodeid.split("::", 1)[0]
    st.file_seconds[f] = st.file_seconds.get(f, 0.0) + report.duration



def _partial_reason(st: _CompatRun, config):
    picked = [a for a in config.args if "::" in a]
    if picked:
        return f"node ids given: {picked[0]}" + (" ..." if len(picked) > 1 else "")
    all_files = {p.resolve() for p in HERE.glob("test_*.py")}
    missing = sorted(p.name for p in all_files - st.files)
    if missing:
        return f"test files not collected: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "")
    if len(st.selected) != st.n_collected:
        return f"{st.n_collected - len(st.selected)} tests deselected (-k/-m/--deselect)"
    unfinished = st.selected - st.finished
    if unfinished:
        return f"{len(unfinished)} selected tests did not run (stopped early)"
    return None


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if config.option.collectonly or _CURRENT.get("state") is None:
        return
    st = _compat_state(config)
    results = [(client, cap, nodeid, st.outcome[nodeid])
               for nodeid, pairs in st.tags.items() if nodeid in st.outcome
               for client, cap in pairs]
    oracle = [(api, what, nodeid, st.outcome[nodeid])
              for nodeid, pairs in st.oracle.items() if nodeid in st.outcome
              for api, what in pairs]
    generated = compat_matrix.render(results, oracle)
    reason = _partial_reason(st, config)
    update = os.environ.get(UPDATE_ENV) == "1"
    if reason is not None:
        st.message.append(f"COMPATIBILITY.md not checked: partial run ({reason}).")
        # the oracle's per-API table is worth seeing after a run of its file alone
        st.message.extend(compat_matrix.render_oracle(oracle))
        if update:
            st.message.append(f"{UPDATE_ENV}=1 ignored: only a full compat run may write the file.")
        return
    committed = COMPAT_FILE.read_text() if COMPAT_FILE.exists() else None
    diff = compat_matrix.drift(committed, generated)
    if diff is None:
        st.message.append(f"COMPATIBILITY.md matches this run ({len(st.tags)} tagged tests).")
    elif update:
        COMPAT_FILE.write_text(generated)
        st.message.append(f"COMPATIBILITY.md updated from this run ({len(st.tags)} tagged tests).")
    else:
        st.message.append("COMPATIBILITY.md differs from what this run observed:")
        st.message.extend(diff.rstrip("\n").splitlines())
        st.message.append(f"If the change is intended, regenerate it: {UPDATE_ENV}=1 bash scripts/test.sh")
        if session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    st = getattr(config, "_kastle_compat", None)
    if st is None:
        return
    # The test command has a time budget (README): show where it goes.
    if len(st.file_seconds) > 1:
        terminalreporter.section("slowest test files")
        ranked = sorted(st.file_seconds.items(), key=lambda kv: -kv[1])
        for f, secs in ranked[:20]:
            terminalreporter.write_line(f"{secs:8.1f} s  {f}")
        terminalreporter.write_line(f"{sum(st.file_seconds.values()):8.1f} s  in all")
    if not st.message:
        return
    terminalreporter.section("compatibility matrix")
    for line in st.message:
        terminalreporter.write_line(line)
