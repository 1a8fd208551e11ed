"""`care-console team init|join|status|leave|invite` against a real PostgreSQL (a fresh schema per test).

The password is given once (standard input, the address, or the prompt), lands in the keyring under a key naming
the server, and is never in the settings, the SQLite file, the log or the output.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

import main
from console.cli.team import run_team_command
from console.ports import MemorySecretStore
from console.runtime import open_runtime
from storage.db import DB_FILENAME
from tests.fakes.clock import FakeClock
from tests.team_pg import TeamPg

PASSWORD = "pw-Kq3-never-shown-7f"


def refuse_prompt(prompt: str) -> str:
    raise AssertionError(f"unexpected prompt: {prompt}")


def run(
    argv: list[str],
    data_dir: Path,
    secrets: MemorySecretStore,
    *,
    stdin: str = "",
    ask: object = refuse_prompt,
) -> tuple[int, str, str]:
    args: argparse.Namespace = main.build_parser().parse_args(["--data-dir", str(data_dir), *argv])
    out, err = io.StringIO(), io.StringIO()
    code = run_team_command(
        args, data_dir=data_dir, secrets=secrets, clock=FakeClock(), stdin=io.StringIO(stdin), out=out, err=err,
        ask=ask,  # type: ignore[arg-type]
    )  # fmt: skip
    return code, out.getvalue(), err.getvalue()


def dsn_of(pg: TeamPg) -> str:
    return f"{pg.conninfo} schema={pg.schema}"


def settings_text(data_dir: Path) -> str:
    conn = sqlite3.connect(data_dir / DB_FILENAME)
    try:
        return "\n".join(f"{k}={v}" for k, v in conn.execute("SELECT key, value FROM settings"))
    finally:
        conn.close()


def assert_password_nowhere(data_dir: Path, *texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_init_status_leave_keeps_the_password_in_the_keyring_only(
    team_pg: TeamPg, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = MemorySecretStore()
    code, out, err = run(
        ["team", "init", dsn_of(team_pg), "--member", "Alex", "--password-stdin"], tmp_path, secrets,
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert "set up the team database on 127.0.0.1:5432/test as Alex (owner)" in out
    assert secrets.get("team:127.0.0.1:5432:test:postgres") == PASSWORD
    stored = settings_text(tmp_path)
    assert f"schema={team_pg.schema}" in stored and '"Alex"' in stored
    with team_pg.connect() as conn:
        row = conn.execute("SELECT name, role, member_uuid IS NOT NULL FROM members").fetchall()
    assert row == [("Alex", "owner", True)]

    code, out, err = run(["team", "status"], tmp_path, secrets)
    assert (code, err) == (0, "")
    assert "mode: live" in out
    assert "member: Alex (owner)" in out
    assert "server: 127.0.0.1:5432/test" in out
    assert "lag: 0 events not pulled yet" in out
    assert "to push: " in out and "conflicts: 0" in out
    assert "online: Alex" in out
    assert "polls: nobody holds" in out

    code, out, err = run(["team", "leave"], tmp_path, secrets)
    assert code == 0 and "works solo" in out
    assert secrets.get("team:127.0.0.1:5432:test:postgres") is None
    code, out, _ = run(["team", "status"], tmp_path, secrets)
    assert code == 0 and out.startswith("solo:")
    assert_password_nowhere(tmp_path, out, err, caplog.text)


def test_join_takes_the_password_from_the_address_once_and_from_the_prompt(team_pg: TeamPg, tmp_path: Path) -> None:
    owner, member = tmp_path / "owner", tmp_path / "member"
    secrets = MemorySecretStore()
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return PASSWORD

    assert run(["team", "init", dsn_of(team_pg), "--member", "Alex"], owner, secrets, ask=prompt)[0] == 0
    assert asked == ["Password for postgres on 127.0.0.1:5432/test: "]
    # A second copy joins with the password inside a URI: it is moved to the keyring and kept nowhere else.
    uri = f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/test?schema={team_pg.schema}"
    code, out, err = run(["team", "join", uri], member, MemorySecretStore())
    assert (code, err) == (0, "")
    assert "joined the team on 127.0.0.1:5432/test as Alex" in out
    assert PASSWORD not in settings_text(member)
    assert_password_nowhere(member, out, err)


def test_join_refuses_a_newer_schema_and_a_missing_one_with_their_reasons(team_pg: TeamPg, tmp_path: Path) -> None:
    secrets = MemorySecretStore()
    code, _, err = run(["team", "join", dsn_of(team_pg), "--password-stdin"], tmp_path / "a", secrets, stdin="x\n")
    assert code == 1 and f"no team database in schema {team_pg.schema}" in err
    assert run(["team", "init", dsn_of(team_pg), "--password-stdin"], tmp_path / "a", secrets, stdin="x\n")[0] == 0
    with team_pg.connect() as conn:
        conn.execute("UPDATE team_meta SET value = '999' WHERE key = 'schema_version'")
    code, out, err = run(["team", "join", dsn_of(team_pg), "--password-stdin"], tmp_path / "b", secrets, stdin="x\n")
    assert code == 1 and out == ""
    assert "set up by a newer Care Console (schema 999" in err and "update the app" in err
    code, _, err = run(["team", "init", dsn_of(team_pg), "--password-stdin"], tmp_path / "b", secrets, stdin="x\n")
    assert code == 1 and "newer Care Console" in err  # init never touches it either
    with team_pg.connect() as conn:
        assert conn.execute("SELECT value FROM team_meta WHERE key = 'schema_version'").fetchone() == ("999",)
    assert 'team.dsn=""' in settings_text(tmp_path / "b") or "team.dsn" not in settings_text(tmp_path / "b")


def test_bad_usage_and_unreachable_server_say_so(team_pg: TeamPg, tmp_path: Path) -> None:
    secrets = MemorySecretStore()
    code, _, err = run(
        ["team", "join", "host=127.0.0.1 dbname=test", "--password-stdin"], tmp_path, secrets, stdin="x\n"
    )
    assert code == 1 and "names no user" in err
    code, _, err = run(["team", "join", dsn_of(team_pg), "--password-stdin"], tmp_path, secrets, stdin="\n")
    assert code == 2 and "no password" in err
    closed = "host=127.0.0.1 port=1 dbname=test user=postgres schema=care_console"
    code, _, err = run(["team", "join", closed, "--password-stdin"], tmp_path, secrets, stdin=PASSWORD + "\n")
    assert code == 1 and "cannot be reached" in err and PASSWORD not in err
    code, _, err = run(["team", "invite", "Sam"], tmp_path, secrets)
    assert code == 1 and "works solo" in err


def test_invite_creates_a_member_who_joins_as_itself(team_pg: TeamPg, tmp_path: Path) -> None:
    secrets = MemorySecretStore()
    owner = tmp_path / "owner"
    assert run(["team", "init", dsn_of(team_pg), "--member", "Alex", "--password-stdin"], owner, secrets,
               stdin=PASSWORD + "\n")[0] == 0  # fmt: skip
    code, out, err = run(["team", "invite", f"{team_pg.role_prefix}sam", "--role", "supervisor"], owner, secrets)
    assert (code, err) == (0, ""), err
    uri = next(line for line in out.splitlines() if line.startswith("postgresql://"))
    assert f"schema={team_pg.schema}" in uri
    member = tmp_path / "member"
    code, out, err = run(["team", "join", uri], member, MemorySecretStore())
    assert (code, err) == (0, ""), err
    assert f"as {team_pg.role_prefix}sam (supervisor)" in out
    with psycopg.connect(team_pg.conninfo, autocommit=True) as conn:
        row = conn.execute(
            f'SELECT role, member_uuid IS NOT NULL FROM "{team_pg.schema}".members WHERE name = %s',
            (f"{team_pg.role_prefix}sam",),
        ).fetchone()
    assert row == ("supervisor", True)


def test_open_runtime_builds_the_team_service_only_in_a_team_and_wires_its_gates(
    team_pg: TeamPg, tmp_path: Path, arun: Any
) -> None:
    secrets = MemorySecretStore()
    assert run(["team", "init", dsn_of(team_pg), "--member", "Alex", "--password-stdin"], tmp_path, secrets,
               stdin=PASSWORD + "\n")[0] == 0  # fmt: skip

    def count_items() -> int:
        with team_pg.connect() as conn:
            row = conn.execute("SELECT count(*) FROM items").fetchone()
        return int(row[0]) if row else 0

    async def scenario() -> tuple[str, bool, bool]:
        rt = open_runtime(tmp_path, clock=FakeClock(), secrets=secrets, force_sandbox=True)
        try:
            team = rt.team
            assert team is not None
            assert rt.replies.outbox.gate is team.send_gate
            assert rt.poller.poll_gate is team.leases
            admin = rt.team_admin()
            assert admin.config == team.config and team.config.member == "Alex"
            rt.start_team()
            await team.start()  # idempotent: the second call finds it started
            for _ in range(200):
                if team.status().mode in ("live", "polling"):
                    break
                await asyncio.sleep(0.05)
            # The sandbox's messages go up: the poll stores them, which wakes the replicator.
            reports = await rt.poller.sync_once()
            assert reports and reports[0].new_items
            for _ in range(200):
                if team.status().to_push == 0 and count_items() > 0:
                    break
                await asyncio.sleep(0.05)
            return team.status().mode, team.status().to_push == 0, team.claims.member == "Alex"
        finally:
            await rt.aclose()

    mode, pushed, member = arun(scenario(), timeout=30.0)
    assert mode == "live" and pushed and member
    assert count_items() > 0
    with team_pg.connect() as conn:
        seen = conn.execute("SELECT last_seen_at IS NOT NULL FROM members WHERE name = 'Alex'").fetchone()
    assert seen == (True,)
    # Leaving: the next start is solo again, with no team service at all.
    assert run(["team", "leave"], tmp_path, secrets)[0] == 0
    rt = open_runtime(tmp_path, clock=FakeClock(), secrets=secrets, force_sandbox=True)
    try:
        assert rt.team is None and rt.replies.outbox.gate is None and rt.poller.poll_gate is None
    finally:
        arun(rt.aclose())


def test_a_solo_start_does_not_import_psycopg(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from console.runtime import open_runtime;"
        "from console.ports import MemorySecretStore, SystemClock;"
        f"rt = open_runtime(Path({str(tmp_path)!r}), clock=SystemClock(), secrets=MemorySecretStore());"
        "print(rt.team is None, 'psycopg' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=Path(main.__file__).parent,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "False"]


def test_backup_of_a_team_server_dumps_the_team_schema_only(team_pg: TeamPg, tmp_path: Path) -> None:
    from storage.team import server

    secrets = MemorySecretStore()
    data = tmp_path / "data"
    assert run(["team", "init", dsn_of(team_pg), "--password-stdin"], data, secrets, stdin=PASSWORD + "\n")[0] == 0
    target = tmp_path / "backups"
    target.mkdir()
    code, out, err = run(["team", "backup", str(target)], data, secrets)
    assert (code, err) == (0, ""), err
    dumps = list(target.glob("care-console-team-*.dump"))
    assert len(dumps) == 1 and f"backup written to {dumps[0]}" in out
    listing = server.restore_list(dumps[0])
    assert f"TABLE {team_pg.schema} events" in listing and f"TABLE {team_pg.schema} members" in listing
    assert " public " not in listing  # only the team's schema


def test_backup_without_a_team_says_so(tmp_path: Path) -> None:
    code, _, err = run(["team", "backup"], tmp_path, MemorySecretStore())
    assert code == 1 and "nothing to back up" in err


def test_joining_another_team_reads_its_log_from_the_start_and_rejoining_keeps_the_cursor(
    team_pg: TeamPg, tmp_path: Path
) -> None:
    from storage.db import close_database, open_database
    from storage.team_local import PULLED_SEQ, TeamLocalRepo

    secrets = MemorySecretStore()
    other = f"{team_pg.schema}_b"  # a second team on the same server (dropped with the test's roles' prefix)
    data = tmp_path / "data"

    def pulled() -> int:
        db = open_database(data / DB_FILENAME)
        try:
            return TeamLocalRepo(db).watermarks().pulled_seq
        finally:
            close_database(db)

    def set_pulled(seq: int) -> None:
        db = open_database(data / DB_FILENAME)
        try:
            TeamLocalRepo(db).set_state(PULLED_SEQ, str(seq))
        finally:
            close_database(db)

    try:
        assert run(["team", "init", dsn_of(team_pg), "--password-stdin"], data, secrets, stdin="x\n")[0] == 0
        set_pulled(42)  # as after pulling 42 events of the first team
        assert run(["team", "init", dsn_of(team_pg), "--password-stdin"], data, secrets, stdin="x\n")[0] == 0
        assert pulled() == 42  # the same team again: the cursor stays
        assert run(["team", "leave"], data, secrets)[0] == 0
        second = f"{team_pg.conninfo} schema={other}"
        assert run(["team", "init", second, "--password-stdin"], data, secrets, stdin="x\n")[0] == 0
        assert pulled() == 0  # another team: its log from the start
    finally:
        with psycopg.connect(team_pg.conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{other}" CASCADE')
            for role in ("agent", "supervisor"):
                conn.execute(f'DROP ROLE IF EXISTS "{other}_{role}"')
