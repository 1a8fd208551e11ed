"""Team schema migrations on a real PostgreSQL: fresh, re-run, concurrent runners, and a newer schema refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from storage.errors import TeamSchemaTooNew
from storage.team.connect import connect_conninfo
from storage.team.migrations import SCHEMA_VERSION, migrate, migrations, schema_version, team_id
from tests.team_pg import TeamPg


async def _migrate(pg: TeamPg) -> int:
    conn = await connect_conninfo(pg.conninfo, pg.schema)
    try:
        return await migrate(conn, pg.schema)
    finally:
        await conn.close()


def test_fresh_schema_is_created_and_versioned(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> tuple[int | None, int, int | None, str | None]:
        conn = await connect_conninfo(team_pg.conninfo, team_pg.schema)
        try:
            before = await schema_version(conn, team_pg.schema)
            version = await migrate(conn, team_pg.schema)
            return before, version, await schema_version(conn, team_pg.schema), await team_id(conn, team_pg.schema)
        finally:
            await conn.close()

    before, version, after, tid = arun(go())
    assert before is None
    assert version == after == SCHEMA_VERSION == len(migrations())
    assert tid is not None and len(tid) == 36
    with team_pg.connect() as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (team_pg.schema,)
            )
        }
        owner = conn.execute("SELECT name, pg_role, role FROM members").fetchall()
        groups = {
            r[0]
            for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (team_pg.role_prefix + "%",))
        }
    assert {"team_meta", "members", "accounts", "events", "items", "claims", "leases"} <= tables
    assert owner == [("postgres", "postgres", "owner")] or [r[2] for r in owner] == ["owner"]
    assert groups == {team_pg.role_prefix + "agent", team_pg.role_prefix + "supervisor"}


def test_rerun_changes_nothing(team_pg: TeamPg, arun: Any) -> None:
    first = arun(_migrate(team_pg))
    with team_pg.connect() as conn:
        tid = conn.execute("SELECT value FROM team_meta WHERE key = 'team_id'").fetchone()
    assert arun(_migrate(team_pg)) == first
    with team_pg.connect() as conn:
        assert conn.execute("SELECT value FROM team_meta WHERE key = 'team_id'").fetchone() == tid
        assert conn.execute("SELECT count(*) FROM members").fetchone() == (1,)


def test_concurrent_inits_are_safe(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> list[int]:
        return list(await asyncio.gather(*(_migrate(team_pg) for _ in range(4))))

    assert arun(go()) == [SCHEMA_VERSION] * 4
    with team_pg.connect() as conn:
        assert conn.execute("SELECT count(*) FROM team_meta WHERE key = 'team_id'").fetchone() == (1,)


def test_newer_schema_is_refused_untouched(team_pg: TeamPg, arun: Any) -> None:
    arun(_migrate(team_pg))
    newer = SCHEMA_VERSION + 1
    with team_pg.connect() as conn:
        conn.execute("UPDATE team_meta SET value = %s WHERE key = 'schema_version'", (str(newer),))
    with pytest.raises(TeamSchemaTooNew) as caught:
        arun(_migrate(team_pg))
    assert caught.value.found == newer
    assert "newer Care Console" in str(caught.value) and "update the app" in str(caught.value)
    with team_pg.connect() as conn:
        assert conn.execute("SELECT value FROM team_meta WHERE key = 'schema_version'").fetchone() == (str(newer),)


def test_schema_name_is_validated(arun: Any) -> None:
    with pytest.raises(ValueError, match="schema"):
        arun(migrate(None, 'x"; DROP TABLE y; --'))  # type: ignore[arg-type]
