"""The command line as a user runs it: sync --once, the instance lock, unusable databases, the headless demo."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import main
from storage import migrations
from storage.db import DB_FILENAME
from storage.lock import InstanceLock


def test_sync_once_on_the_sandbox_prints_what_it_stored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["--data-dir", str(tmp_path), "sync", "--once"]) == 0
    out = capsys.readouterr().out
    assert "stored 12 (12 new items" in out  # the sandbox's default backlog
    assert main.main(["--data-dir", str(tmp_path), "sync", "--once"]) == 0
    # A second run on the same data directory stores nothing twice.
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    try:
        count = conn.execute("SELECT count(*) FROM mentions").fetchone()[0]
        external = conn.execute("SELECT count(DISTINCT external_id) FROM mentions").fetchone()[0]
    finally:
        conn.close()
    assert count == external >= 12


def test_second_instance_is_refused_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with InstanceLock(tmp_path):
        assert main.main(["--data-dir", str(tmp_path), "sync", "--once"]) == 1
    assert "already running" in capsys.readouterr().err


def test_corrupt_database_exits_2_naming_the_file_and_keeps_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / DB_FILENAME
    path.write_bytes(b"\x00garbage" * 512)
    assert main.main(["--data-dir", str(tmp_path), "sync", "--once"]) == 2
    assert str(path) in capsys.readouterr().err
    assert path.read_bytes() == b"\x00garbage" * 512


def test_newer_database_exits_2_and_is_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / DB_FILENAME
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    conn.close()
    before = path.read_bytes()
    assert main.main(["--data-dir", str(tmp_path), "sync", "--once"]) == 2
    assert "newer" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_doctor_reports_database_and_accounts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main.main(["--data-dir", str(tmp_path), "sync", "--once"])
    capsys.readouterr()
    code = main.main(["--data-dir", str(tmp_path), "doctor"])
    out = capsys.readouterr().out
    assert code == (1 if "\n!! " in "\n" + out else 0)
    assert "ok database:" in out
    assert "integrity ok" in out
    assert "ok account 1: mastodon @care enabled: ok" in out
    assert "keyring:" in out
    assert (tmp_path / "logs" / "care-console.log").exists()


@pytest.mark.slow
def test_headless_demo_syncs_and_saves_a_screenshot(tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, "-m", "main", "--data-dir", str(tmp_path / "data"), "--demo", "--demo-seconds", "4",
         "--screenshot", str(shot)],
        capture_output=True, text=True, timeout=60, env=env, cwd=Path(main.__file__).parent, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "mentions synced" in proc.stdout
    assert "demo agent: replied to @" in proc.stdout
    assert "queue" in proc.stdout
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Nothing failed on the way out (a tick reading the database while it closed, issue 19).
    assert "unhandled error" not in proc.stderr
    assert not list((tmp_path / "data" / "logs").glob("crash-*.txt"))
