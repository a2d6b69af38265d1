"""Lines up the stalls kastle-perf saw with a `perf sched timehist` trace
and on-CPU samples of the broker (scripts/bench_stall.sh). Usage:
stall_report.py OUT_DIR BROKER_PID CLIENT_PID

For each `stall:` line of OUT_DIR/producer.err (send times on
CLOCK_MONOTONIC, the clock the trace was recorded with) the window is
[first send, last send + max latency]. Reported for it:
* the longest off-CPU waits that overlap it (a thread blocked or preempted:
  its state when switched out, and the kernel path where it blocked when the
  trace has call chains), broker threads marked;
* the longest run-queue delays (runnable, not running: the CPUs were busy);
* CPU time per command in the window (who had the CPUs);
* the broker's on-CPU samples in the window against the whole run's: the
  functions it spent its time in (leaf and caller), so a busy broker's stall
  is named by what it was busy with;
* vmstat's lines of those seconds (steal, dirty writeback: bo, wa).
"""
import re
import sys
from collections import defaultdict
from pathlib import Path

STALL = re.compile(r"^stall: sent ([\d.]+)\.\.([\d.]+) \(CLOCK_MONOTONIC s\), (\d+) records, max ([\d.]+) ms")
# "  12345.678901 [0001]  comm[tid/pid]   wait  sch  run  S"
LINE = re.compile(r"^\s*([\d.]+)\s+\[(\d+)\]\s+(.+?)\[(\d+)(?:/(\d+))?\]\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\S+)(.*)$")
TOP = 8


def parse_timehist(path):
    """One event per switch-out: the run before it, and the wait before that
    run, whose cause is the state and kernel path of the thread's previous
    switch-out (a line's own chain is where it blocks next)."""
    events = []
    last = {}  # tid -> (state, chain) of its previous switch-out
    for ln in Path(path).read_text(errors="replace").splitlines():
        m = LINE.match(ln)
        if m:
            t, cpu, comm, tid, pid, wait, sch, run, state, rest = m.groups()
            tid = int(tid)
            prev_state, prev_chain = last.get(tid, ("?", ""))
            last[tid] = (state, rest.strip())
            events.append({"t": float(t), "cpu": int(cpu), "comm": comm.strip(), "tid": tid,
                           "pid": int(pid or tid), "wait": float(wait) / 1e3, "sch": float(sch) / 1e3,
                           "run": float(run) / 1e3, "state": prev_state, "chain": prev_chain})
    return events


SAMPLE = re.compile(r"^\s*(\d+)\s+([\d.]+):\s*$")
FRAME = re.compile(r"^\s+[0-9a-f]+\s+(.+)$")


def parse_oncpu(path):
    """[(time, [frames leaf first])] from `perf script -F tid,time,ip,sym`."""
    out, cur = [], None
    p = Path(path)
    if not p.exists():
        return out
    for ln in p.read_text(errors="replace").splitlines():
        m = SAMPLE.match(ln)
        if m:
            cur = (float(m[2]), [])
            out.append(cur)
            continue
        f = FRAME.match(ln)
        if f and cur is not None and len(cur[1]) < 6:
            cur[1].append(f[1].split("+")[0].strip())
    return out


def top_frames(samples, depth):
    c = defaultdict(int)
    for _, frames in samples:
        if frames:
            c[" <- ".join(frames[:depth])] += 1
    return sorted(c.items(), key=lambda kv: -kv[1])


def main():
    out, broker, client = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    stalls = []
    for ln in (out / "producer.err").read_text(errors="replace").splitlines():
        m = STALL.match(ln)
        if m:
            a, b, n, mx = float(m[1]), float(m[2]), int(m[3]), float(m[4])
            stalls.append((a, b + mx / 1e3, n, mx))
    print((out / "machine.txt").read_text().strip())
    summary = [ln for ln in (out / "producer.out").read_text().splitlines() if "99th" in ln]
    print(summary[-1] if summary else "(no producer summary)")
    print(f"{len(stalls)} stall(s) of deliveries slower than the threshold")
    if not stalls:
        return
    ev = parse_timehist(out / "timehist.txt")
    print(f"{len(ev)} context switches traced"
          + (f", {ev[0]['t']:.3f}..{ev[-1]['t']:.3f}" if ev else " (none: see timehist.err)"))
    vm = (out / "vmstat.txt").read_text().splitlines()
    oncpu = parse_oncpu(out / "oncpu.txt")
    whole = top_frames(oncpu, 3)
    total = max(1, len(oncpu))
    for a, b, n, mx in sorted(stalls, key=lambda s: -s[3])[:10]:
        print(f"\n== stall {a:.3f}..{b:.3f} ({(b - a) * 1e3:.0f} ms window): {n} records, max {mx:.0f} ms")
        waits, delays, cpu = [], [], defaultdict(float)
        for e in ev:
            on = e["t"] - e["run"]  # switched in
            off_from = on - e["wait"]  # switched out before (or woken: sch)
            if e["comm"].startswith("<idle>") or e["comm"].startswith("swapper"):
                continue
            mine = e["pid"] in (broker, client)
            if mine and off_from < b and on > a and e["wait"] >= 0.005:
                waits.append(e)
            if on - e["sch"] < b and on > a and e["sch"] >= 0.002:
                delays.append(e)
            lo, hi = max(on, a), min(e["t"], b)
            if hi > lo:
                cpu[e["comm"]] += hi - lo
        who = lambda e: ("BROKER " if e["pid"] == broker else "") + f"{e['comm']}[{e['tid']}]"
        print(" longest off-CPU of the broker's and the client's threads (wait ms; state and "
              "kernel path where it was switched out):")
        for e in sorted(waits, key=lambda e: -e["wait"])[:TOP]:
            print(f"   {e['wait'] * 1e3:8.1f}  {e['state']:2} {who(e):40} {e['chain'][:150]}")
        print(" longest run-queue delays (ms):")
        for e in sorted(delays, key=lambda e: -e["sch"])[:TOP]:
            print(f"   {e['sch'] * 1e3:8.1f}  cpu{e['cpu']} {who(e)}")
        print(" CPU time in the window (ms) by command:")
        for comm, s in sorted(cpu.items(), key=lambda kv: -kv[1])[:TOP]:
            print(f"   {s * 1e3:8.1f}  {comm}")
        inside = [x for x in oncpu if a <= x[0] <= b]
        base = dict(whole)
        print(f" broker on-CPU samples in the window: {len(inside)} (run: {len(oncpu)}); "
              "top stacks (share in the window / in the run):")
        for stack, n in top_frames(inside, 3)[:TOP]:
            print(f"   {n / max(1, len(inside)):6.1%} / {base.get(stack, 0) / total:6.1%}  {stack[:160]}")
    print("\nvmstat (1 s; st = steal, bo = blocks written, wa = I/O wait):")
    print("\n".join(vm))


if __name__ == "__main__":
    main()
