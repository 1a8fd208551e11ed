"""What the claims, send-gate and lease tests share: a migrated team schema with members, and local SQLite copies.

Everything is real: PostgreSQL through the ``team_pg`` fixture (each member logs in as its own role, so the
server's row-level security applies), SQLite files on disk, the storage repositories. Nothing is mocked.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from console.sla.bands import SlaPolicy
from console.team.keys import account_key, item_key
from console.team.replicator import push_mention
from storage.accounts import AccountRepo
from storage.db import open_database
from storage.events import EventRepo
from storage.mentions import MentionRepo
from storage.replies import ReplyRepo
from storage.rows import MentionKind, NewMention
from storage.team.claims import ClaimRepo
from storage.team.connect import TeamPool, connect_conninfo, open_pool_conninfo
from storage.team.events import TeamEvent, TeamEventRepo
from storage.team.leases import LeaseRepo
from storage.team.members import MemberRepo
from storage.team.migrations import migrate
from storage.team_local import TeamLocalRepo
from tests.fakes.clock import FakeClock
from tests.team_pg import TeamPg

BASE = "https://social.example"
HANDLE = "care"
T0 = 1_767_225_600


@dataclass
class Member:
    """One member on the team server: its name and a pool logged in as its own PostgreSQL role."""

    name: str
    pool: TeamPool
    schema: str

    @property
    def claims(self) -> ClaimRepo:
        return ClaimRepo(self.pool, self.schema)

    @property
    def leases(self) -> LeaseRepo:
        return LeaseRepo(self.pool, self.schema)

    @property
    def events(self) -> TeamEventRepo:
        return TeamEventRepo(self.pool, self.schema)


def _as_role(pg: TeamPg, role: str, password: str) -> str:
    params: dict[str, Any] = conninfo_to_dict(pg.conninfo)
    params["user"] = role
    params["password"] = password
    return make_conninfo("", **params)


@asynccontextmanager
async def team(pg: TeamPg, names: Sequence[str], *, pool_size: int = 3) -> AsyncIterator[dict[str, Member]]:
    """A migrated team schema with agents ``names``, each with a pool logged in as itself."""
    owner = await connect_conninfo(pg.conninfo, pg.schema)
    try:
        await migrate(owner, pg.schema)
        invited = {name: await MemberRepo(owner, pg.schema).invite(name, "agent") for name in names}
    finally:
        await owner.close()
    async with AsyncExitStack() as stack:
        members: dict[str, Member] = {}
        for name, (role, password) in invited.items():
            pool = await open_pool_conninfo(_as_role(pg, role, password), pg.schema, min_size=1, max_size=pool_size)
            stack.push_async_callback(pool.close)
            members[name] = Member(name, pool, pg.schema)
        yield members


@dataclass
class Copy:
    """One member's machine: its SQLite file and the repositories over it."""

    name: str
    db: sqlite_utils.Database
    clock: FakeClock
    account_id: int
    base_url: str = BASE
    handle: str = HANDLE
    pushed: set[int] = field(default_factory=set)

    @property
    def mentions(self) -> MentionRepo:
        return MentionRepo(self.db)

    @property
    def accounts(self) -> AccountRepo:
        return AccountRepo(self.db)

    @property
    def replies(self) -> ReplyRepo:
        return ReplyRepo(self.db)

    @property
    def local(self) -> TeamLocalRepo:
        return TeamLocalRepo(self.db)

    @property
    def events(self) -> EventRepo:
        return EventRepo(self.db)

    @property
    def account_key(self) -> str:
        return account_key("mastodon", self.base_url, self.handle)

    def key(self, external_id: str) -> str:
        return item_key(self.account_key, external_id)

    def post(self, external_id: str, at: int, *, text: str = "help please") -> int:
        """A customer's message fetched by this copy; returns its mention id."""
        item = NewMention(
            account_id=self.account_id, external_id=external_id, author_external_id=f"c{external_id}",
            author_handle=f"cust{external_id}", author_name="Customer", text=text,
            url=f"{self.base_url}/@cust/{external_id}", posted_at=at, kind=MentionKind.PUBLIC, visibility="public",
            parent_external_id=None, raw_json="{}",
        )  # fmt: skip
        self.mentions.store_batch([item], channel="mastodon", fetched_at=at, plan=SlaPolicy().plan)
        return self.mention_id(external_id)

    def mention_id(self, external_id: str) -> int:
        return self.local.mention_ids([self.key(external_id)])[self.key(external_id)]

    async def push(self, member: Member) -> int:
        """Push this copy's messages to the team log (what the replicator's push does for mentions)."""
        outgoing = [m for m in self.local.outgoing_mentions(0, limit=10_000) if m.mention_id not in self.pushed]
        events = []
        for mention in outgoing:
            event = push_mention(mention, member=member.name)
            events.append(
                TeamEvent(uuid.UUID(event.uid), event.author, event.at, event.kind, event.item_key, event.data)
            )
        stored = await member.events.append(events)
        self.pushed.update(m.mention_id for m in outgoing)
        return stored


def open_copy(tmp_path: Path, name: str, clock: FakeClock, *, base_url: str = BASE, handle: str = HANDLE) -> Copy:
    """A member's local copy on a file, with the shared channel account added."""
    db = open_database(tmp_path / f"{name}.db")
    row = AccountRepo(db).add(kind="mastodon", handle=handle, base_url=base_url, now=int(clock.now()))
    return Copy(name, db, clock, row.id, base_url, handle)
