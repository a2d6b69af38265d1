"""The verifier itself must catch what it claims to catch (no broker needed)."""
import dataclasses

import pytest

from compat_lib import Rec, make_messages, verify


def as_records(msgs):
    offs = {}
    out = []
    for m in msgs:
        o = offs.get(m.partition, 0)
        offs[m.partition] = o + 1
        out.append(Rec(m.partition, o, m.key, m.value, list(m.headers), m.timestamp, "create"))
    return out


MSGS = make_messages(3000, "t", 3)


def test_clean_passes():
    verify(as_records(MSGS), MSGS)


@pytest.mark.parametrize("mutate,needle", [
    (lambda rs: rs.pop(1234), "missing"),
    (lambda rs: rs.append(dataclasses.replace(rs[10], offset=10_000)), "duplicated"),
    (lambda rs: setattr(rs[5], "key", b"other"), "key"),
    (lambda rs: setattr(rs[5], "value", None), "value"),
    (lambda rs: setattr(rs[6], "headers", rs[6].headers[:1]), "headers"),
    (lambda rs: setattr(rs[7], "timestamp", rs[7].timestamp + 1), "timestamp"),
    (lambda rs: setattr(rs[7], "ts_type", "append"), "CreateTime"),
    (lambda rs: setattr(rs[8], "partition", (rs[8].partition + 1) % 3), "partition"),
    (lambda rs: setattr(rs[300], "offset", rs[300].offset + 1), "contiguous"),
])
def test_verifier_detects(mutate, needle):
    recs = as_records(MSGS)
    mutate(recs)
    with pytest.raises(AssertionError, match=needle):
        verify(recs, MSGS)


def test_verifier_detects_reordering():
    recs = as_records(MSGS)
    p0 = [k for k, r in enumerate(recs) if r.partition == 0]
    a, b = p0[10], p0[11]
    # swap payloads but keep offsets: message order within the partition is wrong
    recs[a], recs[b] = (dataclasses.replace(recs[b], offset=recs[a].offset),
                        dataclasses.replace(recs[a], offset=recs[b].offset))
    with pytest.raises(AssertionError, match="out of order"):
        verify(recs, MSGS)
