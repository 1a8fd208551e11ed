"""The one chunking of ``IN (...)`` lists every repository uses (storage/driver.py)."""

from __future__ import annotations

import sqlite3

from storage.driver import IN_CHUNK, chunked, qmarks


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
