"""The app as a real process, SIGKILLed at seeded random points during sync, migrations and exports, then
restarted: the database passes ``PRAGMA integrity_check``, nothing is lost or doubled, and no half-written
export ever sits under the final name. (Sends: tests/console/test_outbox_crash.py kills the outbox.)"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from console.sandbox import SandboxServer
from console.shifts.service import ShiftService
from storage import migrations
from storage.accounts import AccountRepo, SyncStateRepo
from storage.db import open_database
from storage.settings import SettingsRepo
from storage.shifts import ShiftRepo
from tests.fakes.clock import FakeClock
from tests.reliability.conftest import TALLY, rounds

ROOT = Path(__file__).resolve().parents[2]


def _worker(*args: str) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.crash_worker", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode in (0, -9), done.stderr[-3000:]
    return done.returncode


def _check(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    return conn


def test_sync_killed_at_random_points_stores_every_mention_once(tmp_path: Path) -> None:
    clock = FakeClock()
    db_path = tmp_path / "care.db"
    total = kills = runs = 0
    with SandboxServer(backlog=0, clock=clock, seed=5) as server:
        db = open_database(db_path)
        account = AccountRepo(db).add(kind="mastodon", handle="care", base_url=server.base_url, now=int(clock.now()))
        SyncStateRepo(db).record_success(account.id, cursor={"min_id": "0"}, at=int(clock.now()), next_attempt_at=0)
        db.conn.close()
        for cycle in range(rounds(2)):
            for i in range(60):
                server.post_mention(author=f"c{cycle}x{i}@shop.example", text=f"@care cycle {cycle} question {i}")
            total += 60
            for attempt in range(200):
                runs += 1
                code = _worker(
                    "sync", "--db", str(db_path), "--seed", str(cycle * 1000 + attempt), "--kill-p", "0.004",
                    "--base-url", server.base_url, "--token", server.token, "--account-id", str(account.id),
                )  # fmt: skip
                conn = _check(db_path)
                count, distinct = conn.execute("SELECT count(*), count(DISTINCT external_id) FROM mentions").fetchone()
                conn.close()
                assert count == distinct, "a mention was stored twice"
                kills += code == -9
                if code == 0:
                    break
            else:
                pytest.fail("sync never finished")
            assert count == total, f"{total - count} mentions lost"
    assert kills >= 3, "the test must actually kill the sync"
    TALLY["crash rounds: sync runs"] += runs
    TALLY["crashes survived (SIGKILL)"] += kills
    TALLY["mentions lost or doubled"] += 0


def _schema(conn: sqlite3.Connection) -> set[tuple[str, str]]:
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
    return {(name, " ".join(sql.split())) for name, sql in rows}


def test_migrations_killed_at_random_points_leave_a_whole_database(tmp_path: Path) -> None:
    fresh = open_database(tmp_path / "fresh.db")
    want = _schema(fresh.conn)
    fresh.conn.close()
    kills = runs = 0
    for round_ in range(rounds(3)):
        path = tmp_path / f"old{round_}.db"
        conn = sqlite3.connect(path, isolation_level=None)
        migrations.apply(conn, migrations.MIGRATIONS[:1])
        conn.executemany(
            "INSERT INTO settings (key, value) VALUES (?, ?)", [(f"k{i}", json.dumps(i)) for i in range(50)]
        )
        conn.close()
        known = {0, *(m.number for m in migrations.MIGRATIONS)}
        for attempt in range(300):
            runs += 1
            code = _worker("migrate", "--db", str(path), "--seed", str(round_ * 1000 + attempt), "--kill-p", "0.02")
            conn = _check(path)
            assert conn.execute("PRAGMA user_version").fetchone()[0] in known
            assert conn.execute("SELECT count(*) FROM settings WHERE key LIKE 'k%'").fetchone()[0] == 50
            conn.close()
            for backup in tmp_path.glob(f"{path.name}.*.bak"):
                _check(backup).close()  # a backup is whole or absent, never half-written
            kills += code == -9
            if code == 0:
                break
        else:
            pytest.fail("the migration never finished")
        conn = _check(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == migrations.LATEST
        assert _schema(conn) == want
        conn.close()
    assert kills >= 1
    TALLY["crash rounds: migration runs"] += runs
    TALLY["crashes survived (SIGKILL)"] += kills


def _complete(path: Path, fmt: str) -> bool:
    data = path.read_bytes()
    if fmt == "json":
        json.loads(data)
        return True
    if fmt == "xlsx":
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    if fmt == "pdf":
        return data.rstrip().endswith(b"%%EOF")
    if fmt == "html":
        return data.rstrip().lower().endswith(b"</html>")
    return data.endswith(b"\n")


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx", "html", "pdf"])
def test_exports_killed_at_random_points_never_leave_a_partial_file(tmp_path: Path, fmt: str) -> None:
    clock = FakeClock()
    db_path = tmp_path / "care.db"
    db = open_database(db_path)
    shifts = ShiftService(ShiftRepo(db), SettingsRepo(db), clock)
    shifts.start("Robin")
    clock.advance(3600)
    shifts.end("all quiet")
    db.conn.close()
    out = tmp_path / f"summary.{fmt}"
    kills = runs = 0
    for attempt in range(rounds(3)):
        runs += 1
        code = _worker(
            "export", "--db", str(db_path), "--seed", str(attempt), "--kill-p", "0.3", "--out", str(out),
            "--now", str(clock.now()),
        )  # fmt: skip
        kills += code == -9
        if out.exists():
            assert _complete(out, fmt), f"a half-written {fmt} export under the final name"
        _check(db_path).close()
    assert _worker("export", "--db", str(db_path), "--seed", "0", "--out", str(out), "--now", str(clock.now())) == 0
    assert _complete(out, fmt)
    assert kills >= 1
    TALLY["crash rounds: export runs"] += runs
    TALLY["crashes survived (SIGKILL)"] += kills
