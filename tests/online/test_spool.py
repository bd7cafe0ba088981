"""The on-disk spool: durable appends, in-order reads, commit and truncation, a torn tail cut off."""

from __future__ import annotations

from pathlib import Path

from node.spool import Record, Spool


def records(n: int, start: int = 0) -> list[Record]:
    return [
        Record("edgerank.events.x", f"id{k}", f"payload {k}".encode() * (k % 3 + 1)) for k in range(start, start + n)
    ]


def test_reads_in_order_and_truncates_when_all_delivered(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "events")
    spool.append(records(5))
    spool.append(records(3, start=5))
    assert spool.pending() == 8
    first, offset = spool.read(6)
    assert [r.msg_id for r in first] == [f"id{k}" for k in range(6)]
    assert first[4] == records(5)[4]
    spool.commit(offset, len(first))
    rest, end = spool.read(100)
    assert [r.msg_id for r in rest] == ["id6", "id7"] and spool.pending() == 2
    spool.commit(end, len(rest))
    assert spool.pending() == 0 and spool.path.stat().st_size == 0
    spool.append(records(1, start=8))
    assert [r.msg_id for r in spool.read(10)[0]] == ["id8"]
    spool.close()


def test_reopening_resumes_after_the_committed_offset(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "events")
    spool.append(records(4))
    got, offset = spool.read(2)
    spool.commit(offset, len(got))
    spool.close()
    again = Spool(tmp_path, "events")
    assert again.pending() == 2
    assert [r.msg_id for r in again.read(10)[0]] == ["id2", "id3"]
    again.close()


def test_a_torn_tail_is_cut_off_on_open(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "events")
    spool.append(records(3))
    spool.close()
    with spool.path.open("ab") as f:
        f.write(b"\x40\x00\x00\x00\x01\x02")  # a crash mid-append: header without its body
    again = Spool(tmp_path, "events")
    assert again.pending() == 3
    again.append(records(1, start=3))
    assert [r.msg_id for r in again.read(10)[0]] == ["id0", "id1", "id2", "id3"]
    again.close()
