#!/usr/bin/env python3
# Start-up time (issue 18): spawn -> first ApiVersions answer of a kastle binary,
# on an empty data directory and on a restart of it, RUNS times each.
# Usage: python3 scripts/startup_time.py BIN RUNS [--override k=v ...]
# COORD=1: before the restart, FindCoordinator for a group and a transactional
# id, so the restart has both internal topics to load.
import os, socket, struct, subprocess, sys, tempfile, time, shutil, signal, statistics
bin_, runs = sys.argv[1], int(sys.argv[2])
extra = sys.argv[3:]
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
REQ = struct.pack(">hhi", 18, 0, 7) + struct.pack(">h", 4) + b"meas"
REQ = struct.pack(">i", len(REQ)) + REQ
def probe(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        return False
    try:
        s.sendall(REQ)
        hdr = s.recv(4)
        return len(hdr) == 4
    except OSError:
        return False
    finally:
        s.close()
def start(data, port):
    args = [bin_, "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
            "--override", f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "--override", f"log.dirs={data}"] + extra
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not probe(port):
        if p.poll() is not None: raise SystemExit("broker exited")
        time.sleep(0.0002)
    return p, (time.perf_counter() - t0) * 1000
def stop(p):
    p.send_signal(signal.SIGTERM); p.wait(30)
firsts, restarts = [], []
for _ in range(runs):
    d = tempfile.mkdtemp(prefix="startup-meas-")
    port = free_port()
    p, ms = start(d + "/data", port); firsts.append(ms)
    if os.environ.get("COORD"):
        for kt in (0, 1):
            body = struct.pack(">hhi", 10, 1, 9) + struct.pack(">h", 4) + b"meas" + struct.pack(">h", 1) + b"k" + struct.pack(">b", kt)
            s = socket.create_connection(("127.0.0.1", port)); s.sendall(struct.pack(">i", len(body)) + body); s.recv(100); s.close()
    stop(p)
    p, ms = start(d + "/data", port); restarts.append(ms); stop(p)
    shutil.rmtree(d)
f = lambda xs: f"median {statistics.median(xs):.1f} min {min(xs):.1f} max {max(xs):.1f}"
print(f"first start (empty dir): {f(firsts)}  [{', '.join(f'{x:.1f}' for x in firsts)}]")
print(f"restart:                 {f(restarts)}  [{', '.join(f'{x:.1f}' for x in restarts)}]")
