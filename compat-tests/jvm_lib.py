"""Running the JVM drivers of the compat suite (``compat-tests/jvm/<module>/``).

Each module is a standalone Maven project built by ``scripts/test.sh`` (step 1,
``install_jvm``): ``mvn package`` plus ``dependency:build-classpath`` into
``target/classpath.txt``, skipped while a stamp keyed on the module's pom and
sources matches. Tests then start ``java`` directly on that classpath: no Maven
at test time, nothing resolved online after the first build.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
JVM_DIR = HERE / "jvm"


def java_bin() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        pytest.skip("JVM tests need a JDK (java on PATH or JAVA_HOME)")
    return found


def jvm_module(name: str) -> Path:
    """The module's directory; skips the test when ``scripts/test.sh`` has not built it."""
    mod = JVM_DIR / name
    if not (mod / "target" / "classpath.txt").exists() or not (mod / "target" / "classes").is_dir():
        pytest.skip(f"JVM module {name} is not built "
                    "(bash scripts/test.sh --install-only builds every compat-tests/jvm module)")
    return mod


def jvm_classpath(name: str, deps: str = None) -> str:
    """The module's classes plus the dependencies of module ``deps`` (default: its
    own). Another module's dependencies run the same driver classes on other
    library versions (the Java client suite: compiled against kafka-clients 3.x,
    run on 3.x and on jvm/kafka4's 4.x)."""
    mod = jvm_module(name)
    dep_mod = jvm_module(deps or name)
    dep_cp = (dep_mod / "target" / "classpath.txt").read_text().strip()
    parts = [str(mod / "target" / "classes")]
    if deps and deps != name:
        parts.append(str(dep_mod / "target" / "classes"))  # its resources (logging config)
    return os.pathsep.join(p for p in parts + [dep_cp] if p)


def jvm_argv(name: str, main_class: str, args=(), jvm_opts=(), deps: str = None) -> list:
    """argv for ``java`` running ``main_class`` of module ``name``."""
    return [java_bin(), "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", *jvm_opts,
            "-cp", jvm_classpath(name, deps), main_class, *[str(a) for a in args]]


def step_results(stdout: str) -> dict:
    """{step name: (ok, error)} from the JSON step lines a driver (ClientSuite,
    ConsumerProtocol) prints on stdout; other lines are skipped."""
    import json
    steps = {}
    for ln in stdout.splitlines():
        try:
            o = json.loads(ln)
        except ValueError:
            continue
        if isinstance(o, dict) and o.get("type") == "step":
            steps[o["name"]] = (o["ok"], o.get("error"))
    return steps


def jvm_run(name: str, main_class: str, args=(), timeout=300, jvm_opts=(), env=None, check=True,
            cwd=None, deps: str = None) -> subprocess.CompletedProcess:
    """Runs a driver to completion; with ``check`` a non-zero exit fails the test
    with the driver's output."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(jvm_argv(name, main_class, args, jvm_opts, deps), capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{name}/{main_class} {list(args)} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-20000:]}\n--- stderr ---\n{proc.stderr[-20000:]}")
    return proc


class JvmProcess:
    """A driver running in the background, for scenarios that kill and restart it.

    stdout is read by a thread: JSON lines become ``events`` (dicts), anything else is
    kept as text; stderr (the frameworks' logging) goes to ``log_path``. Use as a
    context manager or through the ``jvm_procs`` fixture so no JVM outlives its test.
    """

    def __init__(self, name: str, main_class: str, args=(), jvm_opts=(), env=None, cwd=None,
                 log_path=None, label=None, deps: str = None):
        import tempfile
        import threading
        self.label = label or f"{name}/{main_class.rsplit('.', 1)[-1]}"
        self.argv = jvm_argv(name, main_class, args, jvm_opts, deps)
        full_env = dict(os.environ)
        full_env.update(env or {})
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="jvm-", suffix=".log")
            os.close(fd)
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        self.events, self.text = [], []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._log, env=full_env, cwd=cwd, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        import json
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            with self._cond:
                try:
                    ev = json.loads(line)
                except ValueError:
                    ev = None
                if isinstance(ev, dict):
                    self.events.append(ev)
                else:
                    self.text.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, pred, timeout: float, what: str) -> dict:
        """The first event (in order of arrival) for which ``pred(event)`` holds; fails
        with the driver's output when the process exits or the time runs out first."""
        import time
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for ev in self.events[seen:]:
                    if pred(ev):
                        return ev
                seen = len(self.events)
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"{self.label} exited ({self.proc.returncode}) before {what}\n"
                                         + self.output())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.label}: no {what} within {timeout:.0f}s\n" + self.output())
                self._cond.wait(min(left, 0.5))

    def kill(self):
        """SIGKILL: the JVM gets no chance to run shutdown hooks or flush anything."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode

    def stop(self, timeout: float = 60):
        """SIGTERM (shutdown hooks run) and wait; fails if the JVM does not exit in time."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"{self.label} did not exit within {timeout}s of SIGTERM\n"
                                     + self.output())
        self._reader.join(5)
        return self.proc.returncode

    def output(self, lines: int = 120) -> str:
        import json
        with self._cond:
            out = [json.dumps(e) for e in self.events[-lines:]] + self.text[-lines:]
        self._log.flush()
        try:
            err = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            err = []
        return (f"--- {self.label} stdout ---\n" + "\n".join(out)
                + f"\n--- {self.label} stderr ({self.log_path}) ---\n" + "\n".join(err))

    def close(self):
        if self.proc.poll() is None:
            self.kill()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture
def jvm_procs(request, tmp_path):
    """Factory for JvmProcess (``jvm_procs(module, main_class, args, ...)``) whose JVMs
    are killed at teardown; a failing test gets each one's output attached."""
    procs = []
    request.node._jvm_procs = procs  # conftest attaches their output to a failure

    def start(name, main_class, args=(), **kw):
        kw.setdefault("log_path", tmp_path / f"jvm{len(procs)}-{name}.log")
        p = JvmProcess(name, main_class, args, **kw)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.close()
