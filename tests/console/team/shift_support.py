"""What the hand-over and supervisor tests share: a migrated team schema whose members log in as their own roles.

Every member (agent or supervisor) gets a pool connected as its own PostgreSQL role, so the server's grants and
row-level security decide what each may do; the owner's connection writes the customers' messages (as the
replicator pushes them). Nothing is mocked.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from storage.team.connect import TeamConnection, TeamPool, connect_conninfo, open_pool_conninfo
from storage.team.members import MemberRepo
from storage.team.migrations import migrate
from tests.team_pg import TeamPg

ACCOUNT = "mastodon:https://social.example:care"


def key(ext: str, account: str = ACCOUNT) -> str:
    return f"{account}#{ext}"


@dataclass
class Team:
    owner: TeamConnection
    pools: dict[str, TeamPool]
    schema: str

    async def event(self, author: str, at: int, kind: str, item_key: str | None, data: Mapping[str, Any]) -> None:
        """Write an event as the owner (which may write for anyone, as the replicator's pushes arrive)."""
        await self.owner.execute(
            "INSERT INTO events (uid, author, at, kind, item_key, data) VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
            (str(uuid.uuid4()), author, at, kind, item_key, json.dumps(dict(data))),
        )

    async def mention(
        self, ext: str, posted_at: int, *, by: str = "alex", customer: str = "ana", account: str = ACCOUNT
    ) -> str:
        """A customer's message on the team log (its item appears in the queue); returns the item key."""
        item = key(ext, account)
        await self.event(
            by, posted_at, "mention", item,
            {
                "account_key": account, "external_id": ext, "thread_key": ext, "parent_external_id": None,
                "head_external_id": None, "author_id": customer, "author_handle": customer, "author_name": customer,
                "text": "where is my order", "url": f"https://social.example/{ext}", "posted_at": posted_at,
                "kind": "mention", "visibility": "public",
            },
        )  # fmt: skip
        return item

    async def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        cur = await self.owner.execute(query.encode(), params)
        return list(await cur.fetchall())


def _as_role(pg: TeamPg, role: str, password: str) -> str:
    params: dict[str, Any] = conninfo_to_dict(pg.conninfo)
    params["user"] = role
    params["password"] = password
    return make_conninfo("", **params)


@asynccontextmanager
async def team(pg: TeamPg, roles: Mapping[str, str]) -> AsyncIterator[Team]:
    """A migrated team schema with members ``{name: "agent" | "supervisor"}``, each with a pool as itself."""
    owner = await connect_conninfo(pg.conninfo, pg.schema)
    try:
        await migrate(owner, pg.schema)
        invited = {name: await MemberRepo(owner, pg.schema).invite(name, role) for name, role in roles.items()}
        async with AsyncExitStack() as stack:
            pools: dict[str, TeamPool] = {}
            for name, (role, password) in invited.items():
                pool = await open_pool_conninfo(_as_role(pg, role, password), pg.schema, min_size=1, max_size=2)
                stack.push_async_callback(pool.close)
                pools[name] = pool
            yield Team(owner, pools, pg.schema)
    finally:
        await owner.close()
