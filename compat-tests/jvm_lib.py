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
