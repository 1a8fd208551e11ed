"""The one chunking of ``IN (...)`` lists every repository uses (storage/driver.py)."""

from __future__ import annotations

import sqlite3

from storage.driver import IN_CHUNK, chunked, fetch_in, qmarks


def test_chunked_keeps_order_and_caps_each_slice() -> None:
    values = list(range(2 * IN_CHUNK + 3))
    slices = list(chunked(values))
    assert [len(s) for s in slices] == [IN_CHUNK, IN_CHUNK, 3]
    assert [v for s in slices for v in s] == values


def test_chunked_of_nothing_is_no_slice() -> None:
    assert list(chunked([])) == []
    assert list(chunked(["a", "b", "c"], size=2)) == [["a", "b"], ["c"]]


def test_qmarks_bind_one_value_each() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1, 1201)])
    wanted = list(range(2, 1201, 2))
    found: list[int] = []
    for chunk in chunked(wanted):
        found += [i for (i,) in conn.execute(f"SELECT id FROM t WHERE id IN ({qmarks(len(chunk))}) ORDER BY id", chunk)]
    assert found == wanted
    assert qmarks(3) == "?,?,?"


def test_fetch_in_reads_every_chunk_by_name_with_parameters_around_the_ids() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, grp TEXT, n INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, "a" if i % 3 else "b", i) for i in range(1, 1301)])
    wanted = range(1, 1301)
    rows = list(
        fetch_in(
            conn,
            lambda marks: f"SELECT id, n FROM t WHERE grp = ? AND id IN ({marks}) AND n > ? ORDER BY id DESC",
            wanted,
            before=("a",),
            after=(10,),
        )
    )
    expected_per_chunk = [
        [i for i in reversed(chunk) if i % 3 and i > 10]
        for chunk in (range(1, 501), range(501, 1001), range(1001, 1301))
    ]
    assert [r["id"] for r in rows] == [i for chunk in expected_per_chunk for i in chunk]
    assert list(fetch_in(conn, lambda marks: f"SELECT id FROM t WHERE id IN ({marks})", [])) == []
