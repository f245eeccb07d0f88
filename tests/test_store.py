"""The run store: round trip, DataFrame view, two writers at once, a writer killed mid-run, bad paths."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import workbench as wb
from workbench.store.candidate import RECORD_COLUMNS


def _cand(i: int, model: str = "m", parent: str | None = None, status: str = "ok") -> wb.Candidate:
    return wb.Candidate(
        id=f"c{i:05d}",
        key=f"k{i}",
        model=model,
        recipe_name="r",
        recipe={"steps": []},
        runtime="onnxruntime",
        status=status,
        metrics={"p50_ms": 1.0 + i, "accuracy": 0.9},
        parent_id=parent,
    )


def test_round_trip_and_frame(store):
    a = store.add(_cand(1))
    b = store.add(_cand(2, parent=a.id))
    store.add(_cand(3, status="intermediate"))
    assert store.get(b.id) == b
    assert [c.id for c in store.lineage(b.id)] == [a.id, b.id]
    df = store.to_frame()
    assert list(df.columns) == list(RECORD_COLUMNS)
    assert list(df["id"]) == [a.id, b.id]  # intermediate steps hidden by default
    assert df["p50_ms"].tolist() == [2.0, 3.0]
    assert len(store.to_frame(include_intermediate=True)) == 3
    assert store.find("k2").id == b.id and store.find("nope") is None


def test_records_are_never_overwritten(store):
    store.add(_cand(1))
    with pytest.raises(wb.StoreError, match="never overwritten"):
        store.add(_cand(1))
    assert len(store.candidates()) == 1


def test_empty_frame_has_columns(store):
    assert list(store.to_frame().columns) == list(RECORD_COLUMNS)


_WRITER = textwrap.dedent("""
    import sys, time
    import workbench as wb
    store = wb.RunStore(sys.argv[1])
    tag, n = sys.argv[2], int(sys.argv[3])
    for i in range(n):
        store.add(wb.Candidate(id=f"{tag}{i:06d}", key=f"{tag}{i}", model=tag, recipe_name="r",
                               recipe={"steps": [{"kind": "x", "pad": "p" * 2000}]}, runtime="torch",
                               status="ok", metrics={"i": i}))
        print(i, flush=True)
""")


def test_two_processes_write_at_once(tmp_path):
    path = tmp_path / "runs.sqlite"
    wb.RunStore(path)  # create the schema once
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), tag, "150"], stdout=subprocess.DEVNULL)
        for tag in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    store = wb.RunStore(path)
    assert len(store.candidates("a")) == 150 and len(store.candidates("b")) == 150
    assert store.integrity_ok()


def test_writer_killed_mid_run_leaves_store_intact(tmp_path):
    path = tmp_path / "runs.sqlite"
    store = wb.RunStore(path)
    for i in range(5):
        store.add(_cand(i, model="earlier"))
    p = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "k", "100000"], stdout=subprocess.PIPE, text=True)
    for _ in range(50):  # wait until it is writing for real
        p.stdout.readline()
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    time.sleep(0.1)
    after = wb.RunStore(path)
    assert after.integrity_ok()
    assert [c.id for c in after.candidates("earlier")] == [f"c{i:05d}" for i in range(5)]
    killed = after.candidates("k")
    assert len(killed) >= 50
    assert all(c.metrics == {"i": int(c.id[1:])} for c in killed)  # every row that landed is whole
    after.add(_cand(99, model="later"))  # still writable
    assert len(after.candidates("later")) == 1


def test_unwritable_store_path(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions: use a path under a file instead
            target = tmp_path / "a_file"
            target.write_text("x")
            bad = target / "runs.sqlite"
        else:
            bad = ro / "runs.sqlite"
        with pytest.raises(wb.StoreError, match="run store"):
            wb.RunStore(bad)
    finally:
        ro.chmod(0o700)


def test_not_a_database(tmp_path):
    bad = tmp_path / "runs.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(wb.StoreError, match="cannot be used") as e:
        wb.RunStore(bad)
    assert "Move it aside" in str(e.value)
    assert bad.read_bytes() == b"this is not sqlite" * 100  # untouched


def _store_with_candidates(path, n: int = 40) -> list:
    store = wb.RunStore(path)
    cands = [
        wb.Candidate(
            id=wb.Candidate.new_id(), key=f"k{i}", model="m", recipe_name="r", recipe={}, runtime="torch",
            status="ok", metrics={"p50_ms": float(i), "pad": "x" * 2000},
        )
        for i in range(n)
    ]  # fmt: skip
    for c in cands:
        store.add(c)
    store.close()
    return cands


def test_a_damaged_database_is_detected_at_open(tmp_path):
    import sqlite3

    path = tmp_path / "runs.sqlite"
    _store_with_candidates(path)
    c = sqlite3.connect(path)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    raw = bytearray(path.read_bytes())
    page = 4096
    for off in range(page, len(raw), page):  # scribble over the b-tree header of every page but the first
        raw[off : off + 12] = b"\x07" * 12
    path.write_bytes(bytes(raw))
    with pytest.raises(wb.StoreError) as e:
        wb.RunStore(path)
    assert "damaged" in str(e.value) or "malformed" in str(e.value), str(e.value)


def test_a_full_disk_says_so_and_keeps_every_record(tmp_path):
    path = tmp_path / "runs.sqlite"
    kept = _store_with_candidates(path, 5)
    store = wb.RunStore(path)
    conn = store._conn()  # a full disk, emulated: SQLite may not grow the file any more
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    big = wb.Candidate(
        id=wb.Candidate.new_id(), key="big", model="m", recipe_name="r", recipe={}, runtime="torch", status="ok",
        metrics={"pad": "x" * 200_000},
    )  # fmt: skip
    with pytest.raises(wb.StoreError) as e:
        store.add(big)
    msg = str(e.value)
    assert "No space left" in msg and "cannot rollback" not in msg, msg
    assert {c.id for c in wb.RunStore(path).candidates()} == {c.id for c in kept}
