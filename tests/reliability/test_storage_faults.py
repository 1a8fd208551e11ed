"""Storage faults through the real app paths: disk full, read-only file system, a database held by another
program, a corrupt database and one from a newer version each give a clear message and lose nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import main
from console.ports import MemorySecretStore
from console.runtime import SandboxOptions, open_runtime
from storage import migrations
from storage.db import DB_FILENAME
from storage.errors import DatabaseCorrupt, DatabaseTooNew, DatabaseUnwritable
from storage.lock import InstanceLock
from tests.fakes.clock import FakeClock
from tests.reliability.conftest import TALLY, Tmpfs

SYNC = ["sync", "--once"]


def _mentions(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return [row[0] for row in conn.execute("SELECT external_id FROM mentions ORDER BY id")]
    finally:
        conn.close()


def _first_sync(data_dir: Path) -> list[str]:
    assert main.main(["--data-dir", str(data_dir), *SYNC]) == 0
    stored = _mentions(data_dir / DB_FILENAME)
    assert len(stored) == 12  # the sandbox's default backlog
    return stored


def test_disk_full_at_start_names_the_cause_and_keeps_the_data(
    tmpfs: Tmpfs, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmpfs.path / "data"
    stored = _first_sync(data_dir)
    capsys.readouterr()
    # New posts wait on the server (the sandbox keeps its world in the data folder: a new world is all new posts),
    # so the next sync has something to store on the full disk.
    (data_dir / "sandbox.json").unlink()
    tmpfs.fill()
    # Either the database cannot even be opened (exit 2) or the sync cannot store (exit 1): said plainly.
    assert main.main(["--data-dir", str(data_dir), *SYNC]) in (1, main.EXIT_DATABASE)
    err = capsys.readouterr().err
    assert "disk is full" in err
    assert "Traceback" not in err
    assert "move it aside" not in err  # never the advice for a damaged file: that would hide the data
    tmpfs.free()
    assert _mentions(data_dir / DB_FILENAME) == stored
    assert main.main(["--data-dir", str(data_dir), *SYNC]) == 0  # space back: the app just works again
    TALLY["storage faults survived"] += 1


def test_disk_full_during_sync_stores_nothing_twice_and_catches_up(tmpfs: Tmpfs, arun: Callable[..., Any]) -> None:
    data_dir = tmpfs.path / "data"
    clock = FakeClock()
    runtime = open_runtime(
        data_dir, clock=clock, secrets=MemorySecretStore(), sandbox=SandboxOptions(rate_per_minute=0.0)
    )
    try:
        assert runtime.sandbox is not None
        (first,) = arun(runtime.poller.sync_once())
        assert first.ok and first.stored == 12
        for i in range(300):
            runtime.sandbox.post_mention(author=f"big{i}@shop.example", text=f"@care order {i} " + "details " * 400)
        tmpfs.fill()
        clock.advance(60)
        (full,) = arun(runtime.poller.sync_once())
        tmpfs.free()
        clock.advance(60)
        reports = [full]
        while True:
            (report,) = arun(runtime.poller.sync_once())
            reports.append(report)
            clock.advance(60)
            if report.ok and report.fetched == 0:
                break
            assert len(reports) < 20
    finally:
        arun(runtime.aclose())
    if not full.ok:
        assert full.error is not None
        assert "disk is full" in full.error
    ids = _mentions(data_dir / DB_FILENAME)
    assert len(ids) == len(set(ids)) == 312
    TALLY["storage faults survived"] += 1


def test_read_only_file_system_is_a_clear_message(tmpfs: Tmpfs, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmpfs.path / "data"
    stored = _first_sync(data_dir)
    capsys.readouterr()
    tmpfs.remount("ro")
    try:
        assert main.main(["--data-dir", str(data_dir), *SYNC]) == main.EXIT_DATABASE
        err = capsys.readouterr().err
        assert "read-only" in err.lower()
        assert "move it aside" not in err
        assert "Traceback" not in err
    finally:
        tmpfs.remount("rw")
    assert _mentions(data_dir / DB_FILENAME) == stored
    TALLY["storage faults survived"] += 1


_HOLDER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("held", flush=True)
    sys.stdin.read()
    """
)


@pytest.mark.slow
def test_database_held_by_another_program_is_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = _first_sync(tmp_path)
    capsys.readouterr()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path / DB_FILENAME)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        # Waits out SQLite's busy timeout (5 s), then gives up with a message, not a traceback.
        assert main.main(["--data-dir", str(tmp_path), *SYNC]) == main.EXIT_DATABASE
        err = capsys.readouterr().err
        assert "locked" in err or "another program holds the database" in err
        assert "move it aside" not in err
    finally:
        holder.communicate("", timeout=10)
    assert _mentions(tmp_path / DB_FILENAME) == stored
    TALLY["storage faults survived"] += 1


def test_second_instance_process_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    with InstanceLock(tmp_path):
        done = subprocess.run(
            [sys.executable, "-m", "main", "--data-dir", str(tmp_path), *SYNC],
            cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == main.EXIT_LOCKED
    assert "already running" in done.stderr
    assert "Traceback" not in done.stderr


def _damage(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 3 * page
    for offset in range(page, len(data), page):  # every page but the header: the schema cannot be read
        data[offset : offset + 64] = b"\xa5" * 64
    path.write_bytes(bytes(data))
    return bytes(data)


def _checkpoint(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()


def test_corrupt_database_is_refused_by_every_path_and_never_modified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _first_sync(tmp_path)
    path = tmp_path / DB_FILENAME
    _checkpoint(path)
    damaged = _damage(path)
    capsys.readouterr()
    with pytest.raises(DatabaseCorrupt) as caught:
        open_runtime(tmp_path, clock=FakeClock(), secrets=MemorySecretStore())
    assert str(path) in str(caught.value)
    with InstanceLock(tmp_path):  # the failed open released the lock (acquire would raise otherwise)
        pass
    for argv in (SYNC, ["export", "-o", str(tmp_path / "out.json")], ["doctor"]):
        assert main.main(["--data-dir", str(tmp_path), *argv]) != 0
        err = capsys.readouterr()
        assert str(path) in err.err + err.out
    assert path.read_bytes() == damaged
    assert not (tmp_path / "out.json").exists()
    TALLY["storage faults survived"] += 1


def test_newer_database_is_refused_by_every_path_and_never_modified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _first_sync(tmp_path)
    path = tmp_path / DB_FILENAME
    _checkpoint(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    conn.close()
    before = path.read_bytes()
    capsys.readouterr()
    with pytest.raises(DatabaseTooNew):
        open_runtime(tmp_path, clock=FakeClock(), secrets=MemorySecretStore())
    for argv in (SYNC, ["export", "-o", str(tmp_path / "out.json")]):
        assert main.main(["--data-dir", str(tmp_path), *argv]) != 0
        assert "newer" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert not (tmp_path / "out.json").exists()
    TALLY["storage faults survived"] += 1


def test_unwritable_error_is_a_storage_error_with_the_path(tmp_path: Path) -> None:
    exc = DatabaseUnwritable(tmp_path / DB_FILENAME, "the disk is full")
    assert str(tmp_path) in str(exc) and "Nothing stored so far is lost" in str(exc)


def test_export_to_a_full_disk_is_a_clear_message_and_leaves_no_file(
    tmp_path: Path, tmpfs: Tmpfs, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.shifts.service import ShiftService
    from storage.db import open_database
    from storage.settings import SettingsRepo
    from storage.shifts import ShiftRepo

    clock = FakeClock()
    db = open_database(tmp_path / DB_FILENAME)
    shifts = ShiftService(ShiftRepo(db), SettingsRepo(db), clock)
    shifts.start("Robin")
    clock.advance(60)
    shifts.end()
    db.conn.close()
    tmpfs.fill()
    capsys.readouterr()
    for fmt in ("json", "csv", "pdf"):
        out = tmpfs.path / f"summary.{fmt}"
        assert main.main(["--data-dir", str(tmp_path), "export", "-o", str(out)]) == 1
        err = capsys.readouterr().err
        assert str(out) in err and "No space left" in err and "Traceback" not in err
        assert not out.exists()
    assert [p.name for p in tmpfs.path.iterdir()] == ["filler.bin"]  # no half-written temporary file either
    TALLY["storage faults survived"] += 1


def test_migration_on_a_full_disk_leaves_the_old_database_and_no_partial_backup(
    tmpfs: Tmpfs, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmpfs.path / "data" / DB_FILENAME
    path.parent.mkdir()
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.apply(conn, migrations.MIGRATIONS[:1])
    conn.executemany("INSERT INTO settings (key, value) VALUES (?, ?)", [(f"k{i}", "1") for i in range(200)])
    conn.close()
    before = path.read_bytes()
    tmpfs.fill()
    assert main.main(["--data-dir", str(path.parent), *SYNC]) == main.EXIT_DATABASE
    assert "disk is full" in capsys.readouterr().err
    tmpfs.free()
    assert path.read_bytes() == before
    backups = [p.name for p in path.parent.iterdir() if ".bak" in p.name]
    assert backups == [], f"a partial backup was left under a final name: {backups}"
    TALLY["storage faults survived"] += 1
