"""A first sync reads the backlog back to a horizon (issue 20, sync 1); ``sync --once`` honours a saved rate-limit
wait (sync 2); a partial failure says how much was stored (sync 9). Over real loopback servers, with a FakeClock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import sqlite_utils

from console.channels.base import AccountRef, Backfill, Batch, Connector
from console.channels.mastodon import MastodonConnector
from console.model import SyncReport
from console.ports import MemorySecretStore
from console.sandbox import SandboxServer
from console.sync.health import backfill_sentence, describe
from console.sync.inbox import Poller
from storage.accounts import AccountRepo, SyncStateRepo
from storage.health import HealthRepo
from storage.mentions import MentionRepo
from storage.rows import Health, MentionKind
from tests.fakes.clock import FakeClock
from tests.fakes.http_server import FakeHttpServer

T = TypeVar("T")
Arun = Callable[[Awaitable[T]], T]
DAY = 24 * 3600
HORIZON = 7 * DAY


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[SandboxServer]:
    with SandboxServer(seed=3, rate_per_minute=0.0, backlog=0, clock=clock) as server:
        yield server


async def run_sync(
    db: sqlite_utils.Database,
    clock: FakeClock,
    secrets: MemorySecretStore,
    base_url: str,
    token: str,
    *,
    passes: int = 1,
    reports: list[SyncReport] | None = None,
    **options: Any,
) -> list[SyncReport]:
    """One account on ``base_url`` (no saved cursor: a first sync), synced ``passes`` times with sync_once."""
    accounts = AccountRepo(db)
    row = next((a for a in accounts.list() if a.handle == "care"), None)
    if row is None:
        row = accounts.add(kind="mastodon", handle="care", base_url=base_url, now=int(clock.now()))
    secrets.set(f"mastodon:{row.id}", token)
    out: list[SyncReport] = []
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(5.0)) as client:
        ref = AccountRef(row.id, "mastodon", "care", base_url)
        connector: Connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock, **options)
        poller = Poller(
            MentionRepo(db), accounts, SyncStateRepo(db), {row.id: connector}, clock, health=HealthRepo(db),
            horizon=HORIZON,
        )  # fmt: skip
        if reports is not None:
            poller.subscribe(reports.append)
        for _ in range(passes):
            (report,) = await poller.sync_once()
            out.append(report)
    return out


def statuses(sandbox: SandboxServer, ids: list[str]) -> list[dict[str, Any]]:
    """The statuses behind notification ids, as the sandbox serves them."""
    return [sandbox_notification(sandbox, nid)["status"] for nid in ids]


def sandbox_notification(sandbox: SandboxServer, nid: str) -> dict[str, Any]:
    response = httpx.get(
        f"{sandbox.base_url}/api/v1/notifications/{nid}",
        headers={"Authorization": f"Bearer {sandbox.token}"},
        timeout=5.0,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def test_first_sync_reads_the_whole_backlog_back_to_the_horizon(
    db: sqlite_utils.Database,
    clock: FakeClock,
    secrets: MemorySecretStore,
    sandbox: SandboxServer,
    arun: Arun[list[SyncReport]],
) -> None:
    sandbox.generate(10)  # ten days old: beyond the horizon
    clock.advance(10 * DAY)
    waiting = sandbox.generate(137)  # the backlog: mentions and direct messages of the last days
    clock.advance(60)
    progress: list[SyncReport] = []

    (report,) = arun(
        run_sync(db, clock, secrets, sandbox.base_url, sandbox.token, reports=progress, page_limit=40, max_pages=1)
    )

    assert report.ok, report.error
    assert report.stored == MentionRepo(db).total_messages() == 137
    wanted = statuses(sandbox, waiting)
    direct = sum(1 for status in wanted if status["visibility"] == "direct")
    rows = MentionRepo(db).rows_by_id(range(1, 1000))
    assert direct > 0 and sum(1 for r in rows.values() if r.kind is MentionKind.DIRECT) == direct
    assert report.backfill == Backfill(
        horizon=int(clock.now()) - HORIZON, oldest=report.backfill.oldest if report.backfill else None, done=True,
        reached_horizon=True,
    )  # fmt: skip
    assert "first sync reached its horizon" in describe(report)
    # Progress while it ran: batch after batch, each saying how far back it had got.
    running = [r for r in progress if r.backfill is not None and not r.backfill.done]
    assert len(running) >= 2
    assert [r.caught_up for r in running] == sorted(r.caught_up for r in running)
    assert "first sync reading back to" in backfill_sentence(running[0].backfill)  # type: ignore[arg-type]


def test_after_the_backfill_sync_moves_forward_from_the_newest_item(
    db: sqlite_utils.Database,
    clock: FakeClock,
    secrets: MemorySecretStore,
    sandbox: SandboxServer,
    arun: Arun[list[SyncReport]],
) -> None:
    sandbox.generate(50)
    clock.advance(60)

    async def go() -> list[SyncReport]:
        first = await run_sync(db, clock, secrets, sandbox.base_url, sandbox.token, page_limit=20)
        clock.advance(60)
        sandbox.generate(5)
        return first + await run_sync(db, clock, secrets, sandbox.base_url, sandbox.token, page_limit=20)

    first, later = arun(go())
    assert first.stored == 50
    assert first.backfill is not None and first.backfill.done and not first.backfill.reached_horizon
    assert "first sync read all the server has" in describe(first)
    assert later.ok and later.stored == 5 and later.backfill is None


def test_sync_once_honours_a_saved_rate_limit_and_says_until_when(
    db: sqlite_utils.Database,
    clock: FakeClock,
    secrets: MemorySecretStore,
    sandbox: SandboxServer,
    arun: Arun[list[SyncReport]],
) -> None:
    sandbox.generate(3)
    accounts = AccountRepo(db)
    row = accounts.add(kind="mastodon", handle="care", base_url=sandbox.base_url, now=int(clock.now()))
    until = int(clock.now()) + 90
    accounts.set_health(row.id, Health.RATE_LIMITED, "retry in 90 s")
    SyncStateRepo(db).record_failure(row.id, error="429", next_attempt_at=until)
    asked_before = len(sandbox.requests)

    (report,) = arun(run_sync(db, clock, secrets, sandbox.base_url, sandbox.token))

    assert len(sandbox.requests) == asked_before  # the server was not called
    assert (report.health, report.next_attempt_at, report.stored) == (Health.RATE_LIMITED, until, 0)
    assert describe(report).startswith("rate limited: the channel asked this account to wait")
    assert "(until " in describe(report)
    clock.advance(91)
    (after,) = arun(run_sync(db, clock, secrets, sandbox.base_url, sandbox.token))
    assert after.ok and after.stored == 3


def page(*nids: str) -> list[dict[str, Any]]:
    return [
        {
            "id": nid,
            "type": "mention",
            "created_at": "2026-01-01T00:00:00.000Z",
            "status": {
                "id": f"s{nid}",
                "created_at": "2026-01-01T00:00:00.000Z",
                "visibility": "public",
                "url": f"https://other.example/@c/{nid}",
                "content": f"<p>@brand help {nid}</p>",
                "account": {"id": f"a{nid}", "username": f"c{nid}", "acct": f"c{nid}@other.example"},
            },
        }
        for nid in nids
    ]


def test_a_partial_failure_says_how_much_was_stored(
    db: sqlite_utils.Database, clock: FakeClock, secrets: MemorySecretStore, arun: Arun[list[SyncReport]]
) -> None:
    with FakeHttpServer() as server:
        server.reply(200, json=page("4", "3"))  # a full page of two
        server.reply(503, json={"error": "down"})
        accounts = AccountRepo(db)
        row = accounts.add(kind="mastodon", handle="care", base_url=server.base_url, now=int(clock.now()))
        SyncStateRepo(db).record_success(row.id, cursor={"min_id": "2"}, at=0, next_attempt_at=0)

        (report,) = arun(run_sync(db, clock, secrets, server.base_url, "token", page_limit=2))

    assert not report.ok and report.stored == 2
    assert report.error is not None
    assert report.error.startswith("stored 2 of 2 fetched, then the server failed on page 2 (")
    assert "server error" in report.error and "503" in report.error
    assert SyncStateRepo(db).get(row.id).cursor == {"min_id": "4"}  # what was stored is not fetched again


def test_bluesky_first_sync_pages_back_to_the_horizon_then_polls_from_the_newest(
    clock: FakeClock, secrets: MemorySecretStore, arun: Arun[Any]
) -> None:
    from console.channels.bluesky import BlueskyConnector
    from tests.fakes.bluesky_server import FakeBlueskyServer

    now = clock.now()
    secrets.set("bluesky:3", "app-pass-1234")
    with FakeBlueskyServer() as server:
        server.post("old.test", "two weeks ago", at=now - 14 * DAY)
        for n in range(23):
            server.post("cust.test", f"backlog {n}", at=now - 6 * DAY + n * 3600)

        async def scenario() -> list[Batch]:
            async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
                ref = AccountRef(id=3, kind="bluesky", handle=server.handle, base_url=server.base_url)
                connector = BlueskyConnector(
                    client, account=ref, secrets=secrets, clock=clock, page_limit=5, max_pages=2
                )
                batches = [await connector.fetch_new(connector.backfill_cursor(int(now - HORIZON)))]
                while batches[-1].backfill is not None and not batches[-1].backfill.done:
                    batches.append(await connector.fetch_new(batches[-1].next_cursor))
                server.post("new.test", "arrived after the backfill", at=now + 60)
                batches.append(await connector.fetch_new(batches[-1].next_cursor))
                return batches

        batches = arun(scenario())

    *backfill, after = batches
    texts = [item.text for batch in backfill for item in batch.items]
    assert sorted(texts) == sorted(f"backlog {n}" for n in range(23))  # all of them, none twice, none too old
    assert len(backfill) == 3  # 2 pages of 5 per call: progress in steps
    final = backfill[-1].backfill
    assert final is not None and final.done and final.reached_horizon
    assert [item.text for item in after.items] == ["arrived after the backfill"]


def test_bluesky_after_a_long_gap_reads_everything_down_to_the_old_watermark(
    clock: FakeClock, secrets: MemorySecretStore, arun: Arun[Any]
) -> None:
    from console.channels.bluesky import BlueskyConnector
    from tests.fakes.bluesky_server import FakeBlueskyServer

    secrets.set("bluesky:3", "app-pass-1234")
    with FakeBlueskyServer() as server:
        server.post("cust.test", "before the gap")

        async def scenario() -> list[Batch]:
            async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
                ref = AccountRef(id=3, kind="bluesky", handle=server.handle, base_url=server.base_url)
                connector = BlueskyConnector(
                    client, account=ref, secrets=secrets, clock=clock, page_limit=5, max_pages=2
                )
                batches = [await connector.fetch_new(None)]
                for n in range(33):  # a weekend without the app: more than one poll's pages
                    server.post("cust.test", f"during the gap {n}")
                batches.append(await connector.fetch_new(batches[-1].next_cursor))
                while batches[-1].backfill is not None and not batches[-1].backfill.done:
                    batches.append(await connector.fetch_new(batches[-1].next_cursor))
                return batches

        first, *after = arun(scenario())

    assert [item.text for item in first.items] == ["before the gap"]
    texts = [item.text for batch in after for item in batch.items]
    assert sorted(texts) == sorted(f"during the gap {n}" for n in range(33))  # none skipped, none twice
    assert len(after) >= 3  # read in steps, each one stored as it lands


def test_x_first_sync_reads_every_mention_back_to_the_horizon(
    clock: FakeClock, secrets: MemorySecretStore, arun: Arun[Any]
) -> None:
    from console.channels.x import XConnector, XTokens
    from tests.fakes.x_server import FakeXServer

    with FakeXServer() as server:
        access, refresh = server.issue()
        secrets.set("x:9", XTokens(access, refresh, clock.now() + 7200, "client-abc").dumps())
        server.now = clock.now() - 9 * DAY
        server.mention("old", "@brand nine days ago")
        server.now = clock.now() - 5 * DAY
        waiting = [server.mention("cust", f"@brand backlog {n}") for n in range(12)]

        async def scenario() -> Batch:
            async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
                ref = AccountRef(id=9, kind="x", handle="brand", base_url=server.base_url)
                connector = XConnector(client, account=ref, secrets=secrets, clock=clock, page_size=5)
                return await connector.fetch_new(connector.backfill_cursor(int(clock.now() - HORIZON)))

        batch = arun(scenario())

    assert [item.external_id for item in batch.items] == waiting  # three pages, oldest first, none too old
    assert batch.next_cursor == {"since_id": waiting[-1]}
    assert batch.backfill is not None and batch.backfill.done and batch.backfill.reached_horizon


def test_youtube_first_sync_reads_comments_back_to_the_horizon(
    clock: FakeClock, secrets: MemorySecretStore, arun: Arun[Any]
) -> None:
    import json

    from console.channels.youtube import YouTubeConnector
    from tests.fakes.youtube_server import CHANNEL, FakeYouTubeServer

    tokens = {
        "access_token": "access-0",
        "refresh_token": "refresh-0",
        "expires_at": clock.now() + 3600,
        "client_id": "cid",
    }
    secrets.set("youtube:4", json.dumps(tokens))
    with FakeYouTubeServer() as server:
        server.now = clock.now() - 9 * DAY
        server.comment("Old", "nine days ago")
        server.now = clock.now() - 5 * DAY
        for n in range(9):
            server.comment("Bob", f"backlog {n}")

        async def scenario() -> Batch:
            async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
                ref = AccountRef(id=4, kind="youtube", handle=CHANNEL, base_url=server.base_url)
                connector = YouTubeConnector(
                    client, account=ref, secrets=secrets, clock=clock, token_url=server.base_url + "/token",
                    page_size=2, max_pages=1,
                )  # fmt: skip
                return await connector.fetch_new(connector.backfill_cursor(int(clock.now() - HORIZON)))

        batch = arun(scenario())

    assert [item.text for item in batch.items] == [f"backlog {n}" for n in range(9)]  # five pages, none too old
    assert batch.backfill is not None and batch.backfill.done and batch.backfill.reached_horizon


def test_discourse_first_sync_reads_notifications_back_to_the_horizon(
    clock: FakeClock, secrets: MemorySecretStore, arun: Arun[Any]
) -> None:
    from console.channels.discourse import DiscourseConnector
    from tests.fakes.discourse_server import FakeDiscourseServer

    secrets.set("discourse:5", "admin-key-1")
    with FakeDiscourseServer() as server:
        server.now = clock.now() - 9 * DAY
        server.topic("old", "@brand nine days ago, long answered")
        server.now = clock.now() - 5 * DAY
        for n in range(7):
            server.topic("cust", f"@brand backlog question number {n}")

        async def scenario() -> Batch:
            async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
                ref = AccountRef(id=5, kind="discourse", handle="brand", base_url=server.base_url)
                connector = DiscourseConnector(
                    client, account=ref, secrets=secrets, clock=clock, page_limit=2, max_pages=1
                )
                return await connector.fetch_new(connector.backfill_cursor(int(clock.now() - HORIZON)))

        batch = arun(scenario())

    assert [item.text for item in batch.items] == [f"@brand backlog question number {n}" for n in range(7)]
    assert batch.backfill is not None and batch.backfill.done and batch.backfill.reached_horizon


def test_facebook_first_sync_reads_every_comment_and_message_back_to_the_horizon(
    clock: FakeClock, secrets: MemorySecretStore, arun: Arun[Any]
) -> None:
    from console.channels.facebook import FacebookConnector
    from tests.fakes.facebook_server import PAGE, VERSION, FakeFacebookServer

    secrets.set("facebook:6", "page-token-1")
    with FakeFacebookServer(now=clock.now() - 9 * DAY) as server:
        post = server.post()
        server.comment(post, "Old", "nine days ago")
        server.message("p1", "Pat", "an old message, nine days ago")
        server.now = clock.now() - 3 * DAY
        comments = [server.comment(post, "Cust", f"backlog comment {n}") for n in range(4)]
        messages = [server.message("p1", "Pat", f"backlog message {n}") for n in range(3)]

        async def scenario() -> Batch:
            async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
                ref = AccountRef(id=6, kind="facebook", handle=PAGE, base_url=server.base_url + VERSION)
                connector = FacebookConnector(client, account=ref, secrets=secrets, clock=clock)
                return await connector.fetch_new(connector.backfill_cursor(int(clock.now() - HORIZON)))

        batch = arun(scenario())

    assert [item.external_id for item in batch.items] == comments + messages  # all of them, none too old
    assert batch.backfill is not None and batch.backfill.done and batch.backfill.reached_horizon


def test_sync_once_on_the_command_line_says_how_far_back_the_first_sync_went(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import main

    assert main.main(["--data-dir", str(tmp_path), "sync", "--once"]) == 0
    first = capsys.readouterr().out
    assert "stored 12 (12 new items" in first  # the sandbox's whole backlog
    assert "first sync read all the server has (back to " in first and "UTC); its horizon (" in first
    assert main.main(["--data-dir", str(tmp_path), "sync", "--once"]) == 0
    assert "first sync" not in capsys.readouterr().out  # later syncs page forward
