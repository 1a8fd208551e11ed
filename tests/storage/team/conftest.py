"""Helpers for the storage/team tests: a migrated schema and pools on it, on the real PostgreSQL of team_pg."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from storage.team.connect import TeamPool, connect_conninfo, open_pool_conninfo
from storage.team.events import TeamEvent, TeamEventRepo
from storage.team.migrations import migrate
from tests.team_pg import TeamPg


async def migrated(pg: TeamPg) -> None:
    """Run the migrations on the test's schema as the server's superuser (the team's owner)."""
    conn = await connect_conninfo(pg.conninfo, pg.schema)
    try:
        await migrate(conn, pg.schema)
    finally:
        await conn.close()


@asynccontextmanager
async def owner_pool(pg: TeamPg, *, max_size: int = 4, migrate_first: bool = True) -> AsyncIterator[TeamPool]:
    """A pool as the owner (the superuser that ran the migrations) on the test's schema."""
    if migrate_first:
        await migrated(pg)
    # min_size = max_size: every connection is open before the test races them
    pool = await open_pool_conninfo(pg.conninfo, pg.schema, min_size=max_size, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()


def as_role(pg: TeamPg, role: str, password: str) -> str:
    """The test server's connection string, logging in as ``role`` over TCP on 127.0.0.1 (or the embedded host)."""
    params: dict[str, Any] = conninfo_to_dict(pg.conninfo)
    params["user"] = role
    params["password"] = password
    return make_conninfo("", **params)


@asynccontextmanager
async def member_pool(pg: TeamPg, role: str, password: str, *, max_size: int = 2) -> AsyncIterator[TeamPool]:
    """A pool logged in as a member's own PostgreSQL role."""
    pool = await open_pool_conninfo(as_role(pg, role, password), pg.schema, min_size=1, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()


def mention(
    account_key: str,
    external_id: str,
    posted_at: int,
    *,
    author: str = "owner",
    head: str | None = None,
    author_id: str = "cust1",
) -> TeamEvent:
    """A ``mention`` event as the replicator pushes it (uid derived from the item key)."""
    item_key = f"{account_key}#{external_id}"
    return TeamEvent(
        uid=uuid.uuid5(uuid.NAMESPACE_URL, f"mention:{item_key}"),
        author=author,
        at=posted_at,
        kind="mention",
        item_key=item_key,
        data={
            "account_key": account_key,
            "external_id": external_id,
            "thread_key": head or external_id,
            "head_external_id": head,
            "author_id": author_id,
            "posted_at": posted_at,
            "text": "hello",
        },
    )


def event(kind: str, item_key: str | None, *, author: str = "owner", at: int = 1000, **data: Any) -> TeamEvent:
    return TeamEvent(uid=uuid.uuid4(), author=author, at=at, kind=kind, item_key=item_key, data=dict(data))


async def seed(pool: TeamPool, schema: str, events: Sequence[TeamEvent]) -> None:
    await TeamEventRepo(pool, schema).append(events)


async def item_row(pool: TeamPool, key: str) -> dict[str, Any] | None:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT * FROM items WHERE key = %s", (key,))
        row = await cur.fetchone()
        if row is None:
            return None
        assert cur.description is not None
        return {col.name: value for col, value in zip(cur.description, row, strict=True)}
