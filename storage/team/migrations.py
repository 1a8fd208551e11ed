"""Numbered migrations of the team schema (``sql/tNNN_*.sql``), safe when two members run ``team init`` at once.

Each file runs in its own transaction under a transaction-scoped advisory lock named after the schema, so a
second runner waits, then finds the version already recorded and skips the file. The version lives in
``team_meta.schema_version``; a schema newer than :data:`SCHEMA_VERSION` is refused, never touched.

In the files ``@schema@`` stands for the (validated) schema name, for the names that must carry it (group roles);
everything else is created through ``search_path``, which each migration sets to the schema alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from psycopg import sql

from storage.errors import TeamSchemaTooNew
from storage.team.connect import TeamConnection, converted, valid_schema

_FILE = re.compile(r"^t(\d{3})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str


def migrations() -> list[Migration]:
    """The packaged migrations, in version order (package data ``storage/team/sql/*.sql``)."""
    found: list[Migration] = []
    for entry in resources.files("storage.team").joinpath("sql").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"team migrations are not numbered 1..n: {[m.name for m in found]}")
    return found


#: The newest team schema this app knows.
SCHEMA_VERSION = len(migrations())


async def schema_version(conn: TeamConnection, schema: str) -> int | None:
    """The team schema's recorded version, or None when ``schema`` holds no team database (yet)."""
    valid_schema(schema)
    async with converted("Could not read the team database's version"):
        cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}".team_meta',))
        row = await cur.fetchone()
        if row is None or not row[0]:
            return None
        cur = await conn.execute(
            sql.SQL("SELECT value FROM {}.team_meta WHERE key = 'schema_version'").format(sql.Identifier(schema))
        )
        found = await cur.fetchone()
        return int(found[0]) if found else None


async def migrate(conn: TeamConnection, schema: str) -> int:
    """Bring ``schema`` to :data:`SCHEMA_VERSION` (creating it when missing) and return the version.

    The connection's role becomes the owner of everything created, and is registered in ``members`` with the
    role ``owner`` (by t002), so that its events pass the same checks as everyone's.

    Raises:
        TeamSchemaTooNew: the schema was set up by a newer Care Console; nothing was changed.
        TeamRefused: the role may not create the schema or roles.
        TeamUnavailable: the server went away.
    """
    valid_schema(schema)
    ident = sql.Identifier(schema)
    version = 0
    async with converted("Could not set up the team database"):
        for migration in migrations():
            async with conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('care_console.migrate'), hashtext(%s))", (schema,)
                )
                version = await schema_version(conn, schema) or 0
                if version > SCHEMA_VERSION:
                    raise TeamSchemaTooNew(version, SCHEMA_VERSION)
                if version >= migration.version:
                    continue
                await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
                await conn.execute(sql.SQL("SET LOCAL search_path TO {}, pg_temp").format(ident))
                await conn.execute(migration.text.replace("@schema@", schema).encode())
                await conn.execute(
                    "INSERT INTO team_meta (key, value) VALUES ('schema_version', %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (str(migration.version),),
                )
                if migration.version == 1:
                    await conn.execute(
                        "INSERT INTO team_meta (key, value) VALUES ('team_id', gen_random_uuid()::text),"
                        " ('created_at', extract(epoch FROM now())::bigint::text) ON CONFLICT (key) DO NOTHING"
                    )
                version = migration.version
        final = await schema_version(conn, schema) or 0
        if final > SCHEMA_VERSION:
            raise TeamSchemaTooNew(final, SCHEMA_VERSION)
    return final


async def team_id(conn: TeamConnection, schema: str) -> str | None:
    """The team's uuid (made once by the first migration), or None when there is no team database."""
    valid_schema(schema)
    if await schema_version(conn, schema) is None:
        return None
    async with converted("Could not read the team's id"):
        cur = await conn.execute(
            sql.SQL("SELECT value FROM {}.team_meta WHERE key = 'team_id'").format(sql.Identifier(schema))
        )
        row = await cur.fetchone()
        return str(row[0]) if row else None
