"""Open the Care Console database: PRAGMAs, file mode, integrity, backup before migrating, migrations."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import time
from pathlib import Path

import sqlite_utils

from storage import migrations
from storage.checkpoint import BACKSTOP_PAGES, WAL_SIZE_LIMIT
from storage.driver import unwritable
from storage.errors import DatabaseCorrupt, DatabaseTooNew, DatabaseUnwritable, StorageError

DB_FILENAME = "care-console.sqlite3"


def _connect(target: str) -> sqlite3.Connection:
    # Autocommit at the driver level: transactions are explicit (db.atomic(), BEGIN IMMEDIATE).
    conn = sqlite3.connect(target, isolation_level=None, timeout=5.0)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA foreign_keys = ON")
    # Checkpoints normally run on storage.checkpoint.Checkpointer's thread; this is the backstop.
    conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
    return conn


def _probe(conn: sqlite3.Connection, path: Path) -> int:
    """Read the schema version, turning "not a database" into a clear DatabaseCorrupt."""
    try:
        version = migrations.current_version(conn)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise unwritable(exc, path) or DatabaseCorrupt(path, str(exc)) from exc
    # No PRAGMA quick_check here: it reads the whole file (2 s at a million mentions) and start-up has a 1.5 s
    # budget. A damaged header or schema fails above; damage deeper in the file surfaces as a DatabaseError
    # when its pages are read (wrapped in StorageError), and `care-console doctor` runs the full integrity check.
    return version


def backup_path_for(path: Path, version: int, *, now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now if now is not None else time.time()))
    return path.with_name(f"{path.name}.v{version}-{stamp}.bak")


def _backup(conn: sqlite3.Connection, path: Path, version: int) -> Path:
    """Write a consistent copy of the database next to it (SQLite online backup API)."""
    target = backup_path_for(path, version)
    # Written under a temporary name and renamed: a crash mid-backup never leaves a partial file that looks
    # like a good backup.
    partial = target.with_name(target.name + ".partial")
    fd = os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    os.close(fd)
    dest = sqlite3.connect(str(partial))
    try:
        conn.backup(dest)
    finally:
        dest.close()
    os.replace(partial, target)
    return target


def open_database(path: Path | None, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open (creating if needed) the database at ``path``; ``None`` gives an in-memory database.

    Args:
        path: the SQLite file; its parent directory is created with mode 0700.
        migrate: apply pending migrations (a backup copy is written first for an existing file).

    Returns:
        A sqlite-utils Database in WAL mode with foreign keys on.

    Raises:
        DatabaseCorrupt: the file is not a readable database; it is never modified.
        DatabaseTooNew: the schema is newer than this app knows; the file is never modified.
        StorageError: the file or its folder cannot be created or opened.
    """
    if path is None:
        conn = _connect(":memory:")
        migrations.apply(conn)
        return _database(conn)

    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        existed = path.exists() and path.stat().st_size > 0
        if not path.exists():
            # Create the file ourselves so that it is 0600 from the first byte.
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        conn = _connect(str(path))
    except sqlite3.Error as exc:
        raise unwritable(exc, path) or StorageError(f"Cannot open the database {path}: {exc}") from exc
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM):
            raise DatabaseUnwritable(path, exc.strerror or str(exc)) from exc
        raise StorageError(f"Cannot open the database {path}: {exc}") from exc

    try:
        version = _probe(conn, path)
        if version > migrations.LATEST:
            raise DatabaseTooNew(path, version, migrations.LATEST)
        if existed and version == 0 and _has_tables(conn):
            raise DatabaseCorrupt(path, "it is an SQLite file, but not a Care Console database")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        if migrate and migrations.pending(conn):
            if existed and version > 0:
                _backup(conn, path, version)
            migrations.apply(conn)
    except StorageError:
        conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise unwritable(exc, path) or DatabaseCorrupt(path, str(exc)) from exc
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)
    return _database(conn)


def _database(conn: sqlite3.Connection) -> sqlite_utils.Database:
    # No sqlite-utils plugins: the app uses none, and finding them scans every installed package (~20 ms of
    # start-up).
    return sqlite_utils.Database(conn, execute_plugins=False)


def close_database(db: sqlite_utils.Database) -> None:
    """Close the connection ``open_database`` opened; callers outside storage never touch the connection."""
    db.conn.close()


def _has_tables(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
    return bool(row and row[0])


def move_aside(path: Path, *, now: float | None = None) -> Path:
    """Rename an unusable database (and its WAL files) so that a fresh one can be created.

    Returns:
        The new name of the old file; nothing is deleted.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now if now is not None else time.time()))
    target = path.with_name(f"{path.name}.unreadable-{stamp}")
    try:
        shutil.move(str(path), str(target))
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                shutil.move(str(side), str(target) + suffix)
    except OSError as exc:
        raise StorageError(f"Cannot move {path} aside: {exc}") from exc
    return target
