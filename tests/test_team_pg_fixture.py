"""The PostgreSQL fixture itself: a schema of the test's own that really exists on a real server."""

from __future__ import annotations

from tests.team_pg import TeamPg, drop_schema


def test_each_test_gets_its_own_schema_and_it_is_dropped(team_pg: TeamPg) -> None:
    with team_pg.connect() as conn:
        conn.execute(f'CREATE SCHEMA "{team_pg.schema}"')
        conn.execute("CREATE TABLE probe (n int)")
        conn.execute("INSERT INTO probe VALUES (1)")
        assert conn.execute("SELECT n FROM probe").fetchone() == (1,)
        conn.execute(f'CREATE ROLE "{team_pg.role_prefix}someone"')
    drop_schema(team_pg)
    with team_pg.connect() as conn:
        gone = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (team_pg.schema,)).fetchone()
        roles = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE %s", (team_pg.role_prefix + "%",))
        assert gone == (0,)
        assert roles.fetchone() == (0,)
