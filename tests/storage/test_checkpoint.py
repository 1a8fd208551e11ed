"""The WAL checkpoint thread: writers never checkpoint themselves below the backstop; the thread does it."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from storage.checkpoint import BACKSTOP_PAGES, Checkpointer
from storage.db import DB_FILENAME, open_database


def _rows_in_main_file(path: Path, tmp: Path) -> int:
    # Copy the database file alone: what is not checkpointed yet lives only in the -wal file.
    copy = tmp / "main-only.sqlite3"
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
        return int(conn.execute("SELECT count(*) FROM settings").fetchone()[0])
    finally:
        conn.close()


def _write(conn: sqlite3.Connection, start: int, n: int) -> None:
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO settings (key, value) VALUES (?, ?)", [(f"k{i}", "x" * 200) for i in range(start, start + n)]
    )
    conn.execute("COMMIT")


def test_commits_reach_the_database_file_through_the_checkpoint_thread(tmp_path: Path) -> None:
    path = tmp_path / "data" / DB_FILENAME
    db = open_database(path)
    assert int(db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == BACKSTOP_PAGES
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # start from a database file with the schema in it
    before = _rows_in_main_file(path, tmp_path)
    _write(db.conn, 0, 2_000)  # ~120 pages: far below the backstop, so the writer does not checkpoint
    assert _rows_in_main_file(path, tmp_path) == before

    checkpointer = Checkpointer(path, interval=60)  # only the nudge below and the start make it run
    checkpointer.start()
    try:
        assert checkpointer.wait_for_pass(0, timeout=30)
        assert _rows_in_main_file(path, tmp_path) == before + 2_000
        passes = checkpointer.passes
        _write(db.conn, 2_000, 500)
        checkpointer.nudge()
        assert checkpointer.wait_for_pass(passes, timeout=30)
        assert _rows_in_main_file(path, tmp_path) == before + 2_500
    finally:
        checkpointer.close()
        db.conn.close()


def test_close_runs_a_last_checkpoint_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    db = open_database(path)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpointer = Checkpointer(path, interval=60)
    checkpointer.start()
    assert checkpointer.wait_for_pass(0, timeout=30)
    before = _rows_in_main_file(path, tmp_path)
    _write(db.conn, 0, 300)
    checkpointer.close()
    checkpointer.close()
    assert _rows_in_main_file(path, tmp_path) == before + 300
    db.conn.close()


def test_an_unopenable_database_leaves_the_backstop_in_charge(tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path / "missing-folder" / DB_FILENAME, interval=60)
    checkpointer.start()
    checkpointer.close()  # the thread gave up with a warning; closing does not hang
    assert checkpointer.passes == 0
