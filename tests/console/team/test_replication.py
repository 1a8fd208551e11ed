"""Replication through a real PostgreSQL (the ``team_pg`` fixture): two or three local SQLite copies converge.

Every member here logs in as the test server's superuser, the team's owner (row-level security is tested in
tests/storage/team); what is tested is the push, the pull, the notifications and the modes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from console.team.keys import item_key, mention_uid
from console.team.replicator import Replicator, TeamChange
from storage.errors import TeamRefused, TeamUnavailable
from storage.rows import MentionStatus
from storage.team.claims import ClaimRepo
from storage.team.connect import TeamConnection, TeamPool, connect_conninfo, open_pool_conninfo
from storage.team.events import TeamEvent, TeamEventRepo
from storage.team.members import MemberRepo
from storage.team.migrations import migrate
from tests.console.team.test_applier import ACCOUNT, T0, Copy, make_copy, snapshot
from tests.fakes.clock import FakeClock
from tests.team_pg import TeamPg

#: A port nothing listens on: the team server "out of reach".
UNREACHABLE = 1


class Server:
    """How a copy reaches the test's schema; ``up = False`` points it at a closed port (a real refusal)."""

    def __init__(self, pg: TeamPg, login: tuple[str, str] | None = None) -> None:
        self.pg = pg
        self.up = True
        self.login = login  # (role, password) of a member; None: the superuser, the team's owner

    def conninfo(self, **override: str | int) -> str:
        params = conninfo_to_dict(self.pg.conninfo)
        if self.login is not None:
            params.update(user=self.login[0], password=self.login[1])
        if not self.up:
            params.update(host="127.0.0.1", port=UNREACHABLE, connect_timeout=1)
        params.update(override)
        return make_conninfo("", **params)

    async def pool(self) -> TeamPool:
        return await open_pool_conninfo(self.conninfo(), self.pg.schema, min_size=1, max_size=2, wait_s=3)

    async def listener(self) -> TeamConnection:
        return await connect_conninfo(self.conninfo(), self.pg.schema)


def replicator(
    copy: Copy,
    server: Server,
    *,
    member: str | None = None,
    notify: bool = True,
    poll_s: float = 0.2,
    open_listener: Callable[[], object] | None = None,
    probe_s: float = 2.0,
    reprobe_s: float = 60.0,
) -> Replicator:
    return Replicator(
        local=copy.local, applier=copy.applier, member=member or copy.name, member_uuid=copy.member_uuid, role="owner",
        server="test", schema=server.pg.schema, open_pool=server.pool,
        open_listener=open_listener or server.listener,  # type: ignore[arg-type]
        clock=copy.clock, sla=copy.engine, notify=notify, poll_s=poll_s, probe_s=probe_s,
        reprobe_s=reprobe_s,
    )  # fmt: skip


@pytest.fixture
def server(team_pg: TeamPg) -> Server:
    async def setup() -> None:
        conn = await connect_conninfo(team_pg.conninfo, team_pg.schema)
        try:
            await migrate(conn, team_pg.schema)
        finally:
            await conn.close()

    asyncio.run(setup())
    return Server(team_pg)


@pytest.fixture
def copies(tmp_path: Path) -> Iterator[tuple[Copy, Copy, Copy]]:
    clock = FakeClock(T0 + 600)
    made = tuple(make_copy(tmp_path, name, clock) for name in ("Sam", "Kim", "Lee"))
    yield made  # type: ignore[misc]
    for copy in made:
        copy.close()


async def server_digest(server: Server) -> tuple[int, str]:
    pool = await server.pool()
    try:
        return await TeamEventRepo(pool, server.pg.schema).digest()
    finally:
        await pool.close()


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait for ``condition`` (checked every 50 ms); fail the test after ``within`` seconds.

    The condition is what another connection or thread wrote (a SQLite row, a mode): no event to wait on.
    """
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (polls state written elsewhere; nothing to await)
            await asyncio.sleep(0.05)


def test_a_colleague_catches_up_with_the_items_and_their_status(
    server: Server, copies: tuple[Copy, Copy, Copy]
) -> None:
    sam, kim, _ = copies
    head = sam.post("100", T0)
    sam.post("101", T0 + 60, parent="100")
    sam.set_status(head, MentionStatus.OPEN, T0 + 120)
    sam.send_reply(head, "On it", T0 + 200)

    async def scenario() -> None:
        a, b = replicator(sam, server), replicator(kim, server)
        try:
            await a.sync_once()
            report = await b.sync_once()
            assert report.new_mentions == (kim.mention_id("100"),)
            await a.sync_once()  # Sam reads its own events back: their seqs are known now
            digest = await server_digest(server)
            assert sam.local.digest() == kim.local.digest() == digest
            assert digest[0] == 4  # two messages, the status change, the reply
            assert a.status().to_push == 0 and b.status().to_push == 0
            again = await b.sync_once()
            assert again.applied == 0
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(scenario())
    assert snapshot(kim) == snapshot(sam)
    assert kim.status("100") is MentionStatus.OPEN


def test_offline_changes_on_both_sides_converge_after_reconnect(
    server: Server, copies: tuple[Copy, Copy, Copy]
) -> None:
    sam, kim, lee = copies
    sam.post("100", T0)
    sam.post("200", T0 + 5)

    async def scenario() -> None:
        a, b, c = replicator(sam, server), replicator(kim, server), replicator(lee, server)
        try:
            await a.sync_once()
            await b.sync_once()
            server.up = False  # the team server goes out of reach for everyone
            await a.aclose()
            await b.aclose()
            with pytest.raises(TeamUnavailable):
                await a.sync_once()
            status = a.status()
            assert status.mode == "offline" and status.reason
            # Local work goes on: both change the same item, and each another one.
            sam.set_status(sam.mention_id("100"), MentionStatus.RESOLVED, T0 + 100)
            kim.set_status(kim.mention_id("100"), MentionStatus.WAITING, T0 + 90)
            kim.triage.set_priority(kim.mention_id("200"), 1, at=T0 + 95, actor="Kim")
            sam.post("300", T0 + 110)
            assert a.status().to_push == 2
            server.up = True
            await a.sync_once()
            await b.sync_once()
            await a.sync_once()
            await c.sync_once()
            assert a.status().mode != "offline"
            digest = await server_digest(server)
            assert sam.local.digest() == kim.local.digest() == lee.local.digest() == digest
        finally:
            for r in (a, b, c):
                await r.aclose()

    asyncio.run(scenario())
    assert sam.status("100") is kim.status("100") is lee.status("100") is MentionStatus.WAITING  # Kim's came last
    assert snapshot(sam) == snapshot(kim) == snapshot(lee)
    assert [c.winner for c in kim.local.conflicts()] == ["ours"]
    assert [c.winner for c in sam.local.conflicts()] == ["theirs"]


def test_notifications_bring_a_change_while_running(server: Server, copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, _ = copies
    heard: list[TeamChange] = []

    async def scenario() -> None:
        a, b = replicator(sam, server, poll_s=60), replicator(kim, server, poll_s=60)
        b.subscribe(heard.append)
        tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
        try:
            await until(lambda: a.status().mode == "live" and b.status().mode == "live")
            sam.post("100", T0)
            a.wake()
            await until(lambda: kim.has("100"))
            sam.set_status(sam.mention_id("100"), MentionStatus.WAITING, T0 + 30)
            a.wake()
            await until(lambda: kim.status("100") is MentionStatus.WAITING)
            # A claim on the server reaches the mirror through the claims notification.
            pool = await server.pool()
            try:
                await ClaimRepo(pool, server.pg.schema).claim(item_key(ACCOUNT, "100"), "Sam", 60)
            finally:
                await pool.close()
            await until(lambda: [c.holder for c in kim.local.claims()] == ["Sam"])
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await a.aclose()
            await b.aclose()

    asyncio.run(scenario())
    assert kim.local.claims()[0].mention_id == kim.mention_id("100")
    assert any(kim.mention_id("100") in change.mention_ids for change in heard)
    assert any(change.claims for change in heard)


def test_polling_when_notifications_are_switched_off(server: Server, copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, _ = copies

    async def scenario() -> None:
        a, b = replicator(sam, server, notify=False), replicator(kim, server, notify=False)
        tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
        try:
            await until(lambda: b.status().mode == "polling")
            assert "switched off" in b.status().reason
            sam.post("100", T0)
            await until(lambda: kim.has("100"))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await a.aclose()
            await b.aclose()

    asyncio.run(scenario())


def test_polling_when_a_notification_does_not_come_back(server: Server, copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, _ = copies

    async def elsewhere() -> TeamConnection:
        # A listener on another database never hears this one's NOTIFY, as behind a transaction-mode pooler.
        return await connect_conninfo(server.conninfo(dbname="postgres"), server.pg.schema)

    async def scenario() -> None:
        a = replicator(sam, server, notify=False)
        b = replicator(kim, server, open_listener=elsewhere, probe_s=0.5)
        tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
        try:
            await until(lambda: b.status().mode == "polling")
            assert "did not come back" in b.status().reason
            sam.post("100", T0)
            await until(lambda: kim.has("100"))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await a.aclose()
            await b.aclose()

    asyncio.run(scenario())


def test_polling_after_a_failed_probe_goes_live_when_a_later_probe_comes_back(
    server: Server, copies: tuple[Copy, Copy, Copy]
) -> None:
    sam, kim, _ = copies
    opened: list[str] = []

    async def busy_then_fine() -> TeamConnection:
        # The first listener hears nothing (as a probe timing out on a busy machine); the next ones are real.
        opened.append("listener")
        if len(opened) == 1:
            return await connect_conninfo(server.conninfo(dbname="postgres"), server.pg.schema)
        return await server.listener()

    async def scenario() -> None:
        a = replicator(sam, server, notify=False)
        b = replicator(kim, server, open_listener=busy_then_fine, probe_s=0.5, reprobe_s=0.3, poll_s=0.1)
        modes: list[tuple[str, str]] = []
        b.on_mode(lambda was, now: modes.append((was, now)))
        tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
        try:
            await until(lambda: ("connecting", "polling") in modes)
            await until(lambda: b.status().mode == "live")
            assert b.status().reason == ""
            assert len(opened) == 2  # one probe failed, the next came back; no reconnect in between
            sam.post("100", T0)
            await until(lambda: kim.has("100"))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await a.aclose()
            await b.aclose()

    asyncio.run(scenario())


def test_polling_because_notifications_are_switched_off_never_probes(
    server: Server, copies: tuple[Copy, Copy, Copy]
) -> None:
    _, kim, _ = copies
    opened: list[str] = []

    async def listener() -> TeamConnection:
        opened.append("listener")
        return await server.listener()

    async def scenario() -> None:
        b = replicator(kim, server, notify=False, open_listener=listener, reprobe_s=0.05, poll_s=0.05)
        task = asyncio.create_task(b.run())
        try:
            await until(lambda: b.status().mode == "polling")
            for _ in range(10):  # several polling rounds, each past the reprobe interval
                await b.sync_once()
                await asyncio.sleep(0.06)
            assert b.status().mode == "polling"
            assert opened == []
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await b.aclose()

    asyncio.run(scenario())


def test_run_goes_offline_and_catches_up_on_reconnect(server: Server, copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, _ = copies

    async def scenario() -> None:
        server.up = False
        b = replicator(kim, server, notify=False)
        task = asyncio.create_task(b.run())
        try:
            await until(lambda: b.status().mode == "offline")
            kim.post("500", T0)  # local work goes on while offline
            a = replicator(sam, server, notify=False)
            server.up = True
            await until(lambda: b.status().mode == "polling", within=15)
            await until(lambda: b.status().to_push == 0)
            await a.sync_once()
            assert sam.has("500")
            await a.aclose()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await b.aclose()

    asyncio.run(scenario())


def test_ten_thousand_events_catch_up(server: Server, copies: tuple[Copy, Copy, Copy]) -> None:
    _, kim, _ = copies
    events: list[TeamEvent] = []
    for i in range(5000):
        key = item_key(ACCOUNT, f"x{i}")
        data = {
            "account_key": ACCOUNT, "external_id": f"x{i}", "thread_key": f"x{i}", "parent_external_id": None,
            "head_external_id": None, "author_id": f"c{i % 40}", "author_handle": f"c{i % 40}", "author_name": "",
            "text": f"message {i}", "url": "", "posted_at": T0 + i, "kind": "public", "visibility": "public",
        }  # fmt: skip
        events.append(TeamEvent(uuid.UUID(mention_uid(key)), "Sam", T0 + i, "mention", key, data))
        events.append(
            TeamEvent(uuid.uuid4(), "Sam", T0 + 9000 + i, "status_changed", key, {"from": "new", "to": "open"})
        )

    async def scenario() -> None:
        pool = await server.pool()
        try:
            repo = TeamEventRepo(pool, server.pg.schema)
            for start in range(0, len(events), 2000):
                await repo.append(events[start : start + 2000])
        finally:
            await pool.close()
        b = replicator(kim, server)
        try:
            report = await b.sync_once()
            assert report.applied == 10_000
            assert kim.local.digest() == await server_digest(server)
        finally:
            await b.aclose()

    asyncio.run(scenario())
    assert kim.mentions.count() == 5000
    assert kim.db.conn.execute("SELECT count(*) FROM mentions WHERE status = 'open'").fetchone()[0] == 5000


def test_a_member_logged_in_as_an_agent_pushes_as_itself_and_is_refused_as_anyone_else(
    server: Server, copies: tuple[Copy, Copy, Copy]
) -> None:
    sam, kim, _ = copies

    async def scenario() -> None:
        pool = await server.pool()
        try:
            invited = await MemberRepo(pool, server.pg.schema).invite("Kim", "agent")
        finally:
            await pool.close()
        as_kim = Server(server.pg, (invited.pg_role, invited.password))
        kim.post("100", T0)
        kim.set_status(kim.mention_id("100"), MentionStatus.OPEN, T0 + 60)
        impostor = replicator(kim, as_kim, member="Sam")
        try:
            with pytest.raises(TeamRefused):
                await impostor.sync_once()
            assert impostor.status().mode == "offline" and "refused" in impostor.status().reason
            assert kim.local.to_push() == 2  # nothing passed over
        finally:
            await impostor.aclose()
        b, a = replicator(kim, as_kim), replicator(sam, server)
        try:
            await b.sync_once()
            assert kim.local.to_push() == 0 and kim.local.conflicts() == []
            await a.sync_once()
            assert sam.status("100") is MentionStatus.OPEN
        finally:
            await b.aclose()
            await a.aclose()

    asyncio.run(scenario())


def test_a_lost_listener_connection_is_replaced_and_changes_keep_coming(
    server: Server, copies: tuple[Copy, Copy, Copy]
) -> None:
    sam, kim, _ = copies

    async def scenario() -> None:
        a, b = replicator(sam, server, notify=False), replicator(kim, server, poll_s=60)
        tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
        try:
            await until(lambda: b.status().mode == "live")
            first_since = b.status().since
            kim.clock.advance(5)  # mode times come from the injected clock: a new mode shows a new time
            with server.pg.connect() as admin:  # the server drops the listening connection (a restart, a proxy)
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE %s",
                    (f'LISTEN "{server.pg.schema}_%',),
                )
            await until(lambda: b.status().mode == "live" and b.status().since != first_since, within=15)
            sam.post("100", T0)
            a.wake()
            await until(lambda: kim.has("100"))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await a.aclose()
            await b.aclose()

    asyncio.run(scenario())


def test_a_long_offline_stretch_goes_up_in_slices_and_batches(server: Server, copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, _ = copies
    for i in range(260):
        head = sam.post(f"m{i}", T0 + i)
        sam.triage.set_status(head, MentionStatus.OPEN, at=T0 + 1000 + i, actor="Sam")
    for i in range(0, 260, 2):
        sam.triage.set_priority(sam.mention_id(f"m{i}"), 1, at=T0 + 2000 + i, actor="Sam")

    async def scenario() -> None:
        a, b = replicator(sam, server), replicator(kim, server)
        try:
            assert a.status().to_push == 650
            await a.sync_once()
            assert a.status().to_push == 0
            report = await b.sync_once()
            assert report.applied == 650
            await a.sync_once()
            assert sam.local.digest() == kim.local.digest() == await server_digest(server)
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(scenario())
    assert snapshot(kim) == snapshot(sam)
