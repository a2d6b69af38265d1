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


def port_open(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


class BrokerError(AssertionError):
    pass


class Broker:
    """One kastle process (restartable) bound to a fixed port and data dir."""

    def __init__(self, workdir: Path, overrides=None, port=None, name="kastle"):
        self.bin = kastle_bin()
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.name = name
        self.overrides = dict(overrides or {})
        self.proc = None
        self.starts = 0
        self.log_paths = []
        self.last_returncode = None

    # -- addresses ---------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_paths[-1] if self.log_paths else self.workdir / "kastle.log"

    def argv(self):
        props = {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
        }
        props.update({k: str(v) for k, v in self.overrides.items()})
        argv = [str(self.bin)]
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
            if port_open(self.port):
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        for b in getattr(item, "_kastle_brokers", []):
            tail = b.log_tail()
            if tail:
                rep.sections.append((f"{b.name} log ({b.bootstrap})", tail))


def pytest_sessionstart(session):
    # Fail once, clearly, instead of erroring every test the same way.
    if not kastle_bin().exists() and not session.config.option.collectonly:
        pytest.exit(f"kastle binary {kastle_bin()} does not exist "
                    "(cargo build --release, or set KASTLE_BIN)", returncode=1)
