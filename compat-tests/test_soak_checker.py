"""The soak's history checker (soak.check) must catch every anomaly kind it
claims (soak.KINDS): a clean synthetic history passes, and each mutation of it
is reported under its kind. No broker."""

import pytest

import soak
from soak import PARTITIONS, History, check, compact_key


def clean_history():
    h = History()
    # main: two idempotent producers, interleaved, offsets contiguous per partition
    nxt = [0] * PARTITIONS
    for seq in range(200):
        for prod in ("a.1", "b.1"):
            p = (seq * 31 + (prod == "b.1")) % PARTITIONS
            h.acks["main"].append((prod, seq, p, nxt[p]))
            h.final.setdefault("main", []).append((p, nxt[p], prod, seq))
            nxt[p] += 1
    h.final["main"].sort()
    # the group: one assignment per partition, then another from the committed offset
    t = 0.0
    for p in range(PARTITIONS):
        recs = [r for r in h.final["main"] if r[0] == p]
        half = len(recs) // 2
        for epoch, part in ((2 * p + 1, recs[:half]), (2 * p + 2, recs[half:])):
            for _, o, prod, seq in part:
                h.group_reads.append((epoch, p, o, prod, seq))
            t += 1
            h.commits.append((t, p, part[-1][1] + 1))
            h.committed_samples.append((t + 0.5, {p: part[-1][1] + 1}))
    # retention: records below offset 20 of each partition expired
    nxt = [0] * PARTITIONS
    for seq in range(300):
        p = seq % PARTITIONS
        h.acks["retention"].append(("r.1", seq, p, nxt[p]))
        if nxt[p] >= 20:
            h.final.setdefault("retention", []).append((p, nxt[p], "r.1", seq))
        nxt[p] += 1
    for t, start in ((1.0, 0), (2.0, 10), (3.0, 20)):
        h.log_starts += [("retention", t, p, start) for p in range(PARTITIONS)]
    # transactions: committed ones readable (a marker after each), aborted ones not
    off = [0] * PARTITIONS
    reads = []
    for n in range(30):
        decision = "commit" if n % 3 else "abort"
        recs = [[(n + i) % PARTITIONS, i] for i in range(1 + n % 4)]
        h.txns.append(["tx0", n, decision, "committed" if decision == "commit" else "aborted", recs])
        for p, i in recs:
            if decision == "commit":
                reads.append((p, off[p], "tx0", n, i))
            off[p] += 1
        for p in {p for p, _ in recs}:
            off[p] += 1  # the marker
    h.rc_reads = list(reads)
    h.final["txn"] = sorted(reads)
    # compaction: 300 values of 100 keys; an early read after one cleaning,
    # then the final one with only the newest value of each key
    offs = {}
    nxt = [0] * PARTITIONS
    for seq in range(300):
        k = compact_key(seq)
        p = k % PARTITIONS
        h.acks["compact"].append(("c.1", seq, p, nxt[p]))
        offs[seq] = (p, nxt[p])
        nxt[p] += 1

    def snap(upto):
        newest = {}
        for seq in range(upto):
            newest[compact_key(seq)] = seq
        s = {p: [0, 0, {}] for p in range(PARTITIONS)}
        for seq in range(upto):
            p, o = offs[seq]
            s[p][1] = max(s[p][1], o + 1)
            if newest[compact_key(seq)] == seq or seq >= upto - 10:  # the dirty tail is uncleaned
                s[p][2][o] = [seq, compact_key(seq)]
        return s
    h.snapshots = [snap(150)]
    h.final["compact"] = snap(300)
    h.log_starts += [("compact", 1.0, p, 0) for p in range(PARTITIONS)]
    return h


def test_clean_history_passes():
    assert check(clean_history()) == {}


def _drop(lst, pred):
    k = next(k for k, r in enumerate(lst) if pred(r))
    return lst.pop(k)


def _committed(h, outcome="committed"):
    return next(t for t in h.txns if t[2] == "commit" and t[3] == outcome and len(t[4]) > 1)


def m_lost(h):
    _drop(h.final["main"], lambda r: r[0] == 1 and r[1] == len([x for x in h.final["main"] if x[0] == 1]) - 1)


def m_duplicated(h):
    last = max(r for r in h.final["main"] if r[0] == 0)
    first = min(r for r in h.final["main"] if r[0] == 0)
    h.final["main"].append((0, last[1] + 1, first[2], first[3]))


def m_reordered(h):
    f = h.final["main"]
    ks = [k for k, r in enumerate(f) if r[0] == 2 and r[2] == "a.1"][3:5]
    (p1, o1, a1, s1), (p2, o2, a2, s2) = f[ks[0]], f[ks[1]]
    f[ks[0]], f[ks[1]] = (p1, o1, a2, s2), (p2, o2, a1, s1)
    for k, a in enumerate(h.acks["main"]):  # the acks as the broker would have answered
        if (a[0], a[1]) == (a1, s1):
            h.acks["main"][k] = (a1, s1, p2, o2)
        elif (a[0], a[1]) == (a2, s2):
            h.acks["main"][k] = (a2, s2, p1, o1)


def m_lost_offset_unknown(h):
    prod, seq, p, o = h.acks["main"][20]
    h.acks["main"][20] = (prod, seq, p, None)  # acknowledged without an offset ...
    _drop(h.final["main"], lambda r: (r[2], r[3]) == (prod, seq))  # ... and not in the log


def m_wrong_offset(h):
    prod, seq, p, o = h.acks["main"][10]
    h.acks["main"][10] = (prod, seq, p, o + 1)


def m_gap(h):
    f = h.final["retention"]
    k = max(k for k, r in enumerate(f) if r[0] == 1)
    p, o, prod, seq = f[k]
    f[k] = (p, o + 1, prod, seq)
    h.acks["retention"] = [(a, s, q, o + 1) if (a, s) == (prod, seq) else (a, s, q, x)
                           for a, s, q, x in h.acks["retention"]]


def m_retention_lost(h):
    _drop(h.final["retention"], lambda r: r[0] == 0 and r[1] == 40)


def m_aborted_read(h):
    tid, n, _, _, recs = next(t for t in h.txns if t[2] == "abort")
    p, i = recs[0]
    h.rc_reads.append((p, 10_000, tid, n, i))


def m_aborted_final(h):
    tid, n, _, _, recs = next(t for t in h.txns if t[2] == "abort")
    p, i = recs[0]
    h.final["txn"].append((p, 10_000, tid, n, i))


def m_torn(h):
    t = _committed(h)
    t[3] = "unknown"
    tid, n = t[0], t[1]
    for lst in (h.rc_reads, h.final["txn"]):
        _drop(lst, lambda r: (r[2], r[3], r[4]) == (tid, n, 0))


def m_committed_not_read(h):
    t = _committed(h)
    _drop(h.rc_reads, lambda r: (r[2], r[3]) == (t[0], t[1]))


def m_txn_lost(h):
    t = _committed(h)
    _drop(h.final["txn"], lambda r: (r[2], r[3]) == (t[0], t[1]))


def m_rc_duplicated(h):
    r = h.rc_reads[5]
    h.rc_reads.append((r[0], 10_000) + r[2:])


def m_group_backwards(h):
    k = next(k for k, r in enumerate(h.group_reads) if r[0] == 1 and r[2] == 5)
    h.group_reads.insert(k + 3, h.group_reads[k])


def m_rc_backwards(h):
    h.rc_reads.append(h.rc_reads[0])


def m_read_then_lost(h):
    e, p, o, prod, seq = h.group_reads[7]
    h.group_reads[7] = (e, p, o, prod, seq + 1000)


def m_committed_sample_backwards(h):
    t, s = h.committed_samples[-1]
    h.committed_samples.append((t + 1, {p: o - 1 for p, o in s.items()}))


def m_committed_below_ack(h):
    t, p, o = h.commits[-1]
    h.commits.append((t + 1, p, o + 5))
    h.committed_samples.append((t + 2, {p: o}))


def m_log_start_backwards(h):
    h.log_starts.append(("retention", 4.0, 2, 15))


def m_final_below_log_start(h):
    h.log_starts.append(("retention", 4.0, 2, 25))


def m_resurrected(h):
    s1 = h.snapshots[0]
    p, (st, end, recs) = next((p, v) for p, v in s1.items() if len(v[2]) < v[1] - v[0])
    o = next(o for o in range(st, end) if o not in recs)
    seq = next(a[1] for a in h.acks["compact"] if (a[2], a[3]) == (p, o))
    h.final["compact"][p][2][o] = [seq, compact_key(seq)]


def m_compact_lost(h):
    p, (st, end, recs) = next(iter(h.final["compact"].items()))
    del recs[max(recs)]


def m_compact_reordered(h):
    p, (st, end, recs) = next(iter(h.final["compact"].items()))
    o = max(recs)
    seq, key = recs[o]
    recs[end + 1] = [seq - soak.COMPACT_KEYS, key]  # an older value of the same key
    h.final["compact"][p][1] = end + 2


def m_corrupt(h):
    p, o, _, _ = h.final["main"][3]
    h.final["main"][3] = (p, o, None, None)


def m_compact_corrupt(h):
    p, (st, end, recs) = next(iter(h.final["compact"].items()))
    o = min(recs)
    recs[o] = [recs[o][0], recs[o][1] + 1]


MUTATIONS = [
    (m_lost, "lost"), (m_duplicated, "duplicated"), (m_reordered, "reordered"),
    (m_lost_offset_unknown, "lost"), (m_wrong_offset, "wrong offset"), (m_gap, "gap"), (m_retention_lost, "lost"),
    (m_aborted_read, "aborted read"), (m_aborted_final, "aborted read"), (m_torn, "torn transaction"),
    (m_committed_not_read, "committed not read"), (m_txn_lost, "lost"), (m_rc_duplicated, "duplicated"),
    (m_group_backwards, "offsets backwards"), (m_rc_backwards, "offsets backwards"),
    (m_read_then_lost, "read then lost"), (m_committed_sample_backwards, "committed offset backwards"),
    (m_committed_below_ack, "committed offset backwards"), (m_log_start_backwards, "log start backwards"),
    (m_final_below_log_start, "log start backwards"), (m_resurrected, "resurrected"),
    (m_compact_lost, "lost"), (m_compact_reordered, "reordered"), (m_corrupt, "corrupt"),
    (m_compact_corrupt, "corrupt"),
]


@pytest.mark.parametrize("mutate,kind", MUTATIONS, ids=[m.__name__[2:] for m, _ in MUTATIONS])
def test_checker_detects(mutate, kind):
    h = clean_history()
    mutate(h)
    found = check(h)
    assert kind in found, f"{mutate.__name__}: expected {kind!r}, checker said {found}"


def test_ack_without_offset_is_not_an_anomaly():
    # librdkafka acknowledges a batch the broker took for a duplicate of a
    # retried one without an offset; the record is in the log: no anomaly
    h = clean_history()
    for role in ("main", "retention", "compact"):
        prod, seq, p, _ = h.acks[role][7]
        h.acks[role][7] = (prod, seq, p, None)
    assert check(h) == {}


def test_every_kind_is_tested():
    assert {k for _, k in MUTATIONS} == set(soak.KINDS)


def test_history_survives_json():
    import json
    h = clean_history()
    m_resurrected(h)
    again = History.from_json(json.loads(json.dumps(h.to_json())))
    assert check(again) == check(h) != {}


def test_flatness_bounds():
    # a leak: RSS and fds grow linearly; a flat run: noise around a level
    leak = [(t, 1, 20 + t, 100 + t, 9) for t in range(0, 400, 2)]
    flat = [(t, 1, 40 + (t % 7), 160 + (t % 5), 9) for t in range(0, 400, 2)]
    lat = [(t, 5.0, 50.0, 100) for t in range(0, 400, 2)]
    _, fails = soak.flatness(leak, lat, 400)
    assert any("rss_mib" in f for f in fails) and any("fds" in f for f in fails), fails
    rows, fails = soak.flatness(flat, lat, 400)
    assert not fails and len(rows) == 4
    slow = [(t, 5.0 if t < 300 else 80.0, 100.0, 100) for t in range(0, 400, 2)]
    _, fails = soak.flatness(flat, slow, 400)
    assert any("latency" in f for f in fails), fails
