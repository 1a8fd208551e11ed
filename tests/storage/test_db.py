"""Opening the database: file mode, migrations with backup, newer and corrupt files, the instance lock."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from storage import migrations
from storage.db import DB_FILENAME, move_aside, open_database
from storage.errors import DatabaseCorrupt, DatabaseLocked, DatabaseTooNew
from storage.lock import InstanceLock


def test_open_database_creates_private_wal_file_with_full_schema(tmp_path: Path) -> None:
    path = tmp_path / "data" / DB_FILENAME
    db = open_database(path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert migrations.current_version(db.conn) == migrations.LATEST
        tables = set(db.table_names())
        assert {"accounts", "sync_state", "customers", "mentions", "deadlines", "replies", "templates",
                "surveys", "shifts", "events", "settings", "mentions_fts"} <= tables  # fmt: skip
    finally:
        db.conn.close()


def test_open_database_is_idempotent_and_writes_no_backup_when_nothing_to_migrate(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    open_database(path).conn.close()
    open_database(path).conn.close()
    assert not list(tmp_path.glob("*.bak"))


def test_open_database_backs_up_before_applying_pending_migrations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / DB_FILENAME
    open_database(path).conn.close()
    before = migrations.LATEST
    extra = migrations.Migration(
        migrations.LATEST + 1, "test column", lambda c: c.execute("ALTER TABLE shifts ADD COLUMN extra TEXT")
    )
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, extra))
    monkeypatch.setattr(migrations, "LATEST", extra.number)
    db = open_database(path)
    db.conn.close()
    backups = list(tmp_path.glob(f"{DB_FILENAME}.v{before}-*.bak"))
    assert len(backups) == 1
    assert not list(tmp_path.glob("*.partial"))  # written under a temporary name, then renamed
    assert stat.S_IMODE(backups[0].stat().st_mode) == 0o600
    old = sqlite3.connect(backups[0])
    try:
        assert old.execute("PRAGMA user_version").fetchone()[0] == before
    finally:
        old.close()


def test_failed_migration_rolls_back_and_keeps_the_version(db_path: Path) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        with pytest.raises(RuntimeError):
            migrations.apply(conn, [*migrations.MIGRATIONS, migrations.Migration(migrations.LATEST + 1, "x", broken)])
        assert migrations.current_version(conn) == migrations.LATEST
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0
    finally:
        conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / DB_FILENAME
    open_database(path).conn.close()
    return path


def test_newer_database_is_refused_and_not_modified(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {migrations.LATEST + 5}")
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(DatabaseTooNew) as info:
        open_database(db_path)
    assert str(db_path) in str(info.value)
    assert "newer" in str(info.value)
    assert db_path.read_bytes() == before


def test_corrupt_file_gives_clear_error_and_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    garbage = b"this is not a database at all\n" * 200
    path.write_bytes(garbage)
    with pytest.raises(DatabaseCorrupt) as info:
        open_database(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == garbage


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE other_app (x)")
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseCorrupt, match="not a Care Console database"):
        open_database(path)


def test_damaged_pages_are_reported_as_corrupt(db_path: Path) -> None:
    data = bytearray(db_path.read_bytes())
    # Keep the header (so SQLite recognises the file) and scribble over the schema pages.
    for i in range(100, min(len(data), 8192)):
        data[i] = 0xA5
    db_path.write_bytes(bytes(data))
    for side in ("-wal", "-shm"):
        db_path.with_name(db_path.name + side).unlink(missing_ok=True)
    with pytest.raises(DatabaseCorrupt):
        open_database(db_path)


def test_move_aside_keeps_the_old_file_and_allows_a_fresh_start(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    path.write_bytes(b"garbage" * 100)
    moved = move_aside(path)
    assert moved.exists() and moved.read_bytes() == b"garbage" * 100
    db = open_database(path)
    db.conn.close()
    assert path.exists()


def test_instance_lock_refuses_a_second_holder_and_frees_on_release(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(DatabaseLocked, match="already running"):
            InstanceLock(tmp_path).acquire()
    finally:
        first.release()
    with InstanceLock(tmp_path):
        pass
