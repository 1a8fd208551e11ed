"""Hostile servers (issue 20, sync 3-5): an answer that trickles, an answer that never ends, JSON nested without
end. Each costs one account one clear error, or one item its place in the queue; never the whole sync."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import sqlite_utils

from console.channels.base import AccountRef, Connector
from console.channels.errors import Transient
from console.channels.http import MAX_JSON_DEPTH, MAX_RESPONSE_BYTES, TOO_DEEP, loads_bounded, request_deadline, send
from console.channels.mastodon import MastodonConnector
from console.model import SyncReport
from console.ports import MemorySecretStore
from console.sync.inbox import Poller
from storage.accounts import AccountRepo, SyncStateRepo
from storage.health import HealthRepo
from storage.mentions import MAX_RAW_CHARS, MAX_TEXT_CHARS, MentionRepo
from tests.fakes.clock import FakeClock
from tests.fakes.hostile_server import HostileServer, deep_json
from tests.fakes.http_server import FakeHttpServer
from tests.reliability.conftest import TALLY

T = TypeVar("T")
Arun = Callable[[Awaitable[T]], T]

#: Per-read timeout a trickle never trips (a byte comes every 0.05 s); the overall deadline is 4 of them.
SHORT = httpx.Timeout(5.0, read=0.25)


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


def status(sid: str, content: Any = None) -> dict[str, Any]:
    return {
        "id": sid,
        "created_at": "2026-01-01T00:00:00.000Z",
        "in_reply_to_id": None,
        "visibility": "public",
        "uri": f"https://other.example/users/x/statuses/{sid}",
        "url": f"https://other.example/@x/{sid}",
        "content": f"<p>@brand message {sid}</p>" if content is None else content,
        "account": {"id": f"acc-{sid}", "username": f"c{sid}", "acct": f"c{sid}@other.example", "display_name": ""},
    }


def notification(nid: str, content: Any = None) -> dict[str, Any]:
    return {
        "id": nid,
        "type": "mention",
        "created_at": "2026-01-01T00:00:00.000Z",
        "status": status(f"s{nid}", content),
    }


def test_send_abandons_a_trickling_answer_at_its_overall_deadline(hostile: HostileServer, arun: Arun[Any]) -> None:
    hostile.trickle(b"[" + b" " * 10_000 + b"]", every=0.05)  # 500 s at this pace; each read well inside 0.25 s

    async def go() -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=SHORT) as client:
            assert request_deadline(client) == pytest.approx(1.0)
            await send(client, "GET", hostile.base_url + "/api/v1/notifications", host="slow.example")

    with pytest.raises(Transient, match=r"slow\.example did not finish answering GET /api/v1/notifications within 1 s"):
        arun(go())
    assert 0 < hostile.bytes_sent < 10_000
    TALLY["hostile servers: trickling answers cut at their deadline"] += 1


def test_send_refuses_an_endless_answer_past_the_size_limit(hostile: HostileServer, arun: Arun[Any]) -> None:
    hostile.endless(chunk=64 * 1024)

    async def go() -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(5.0)) as client:
            await send(client, "GET", hostile.base_url + "/huge", host="huge.example", max_bytes=2 * 1024 * 1024)

    with pytest.raises(Transient, match=r"huge\.example sent an answer to GET /huge larger than 2 MB; it was refused"):
        arun(go())
    TALLY["hostile servers: endless answers refused past the limit"] += 1


def test_send_refuses_a_declared_oversized_answer_before_reading_it(hostile: HostileServer, arun: Arun[Any]) -> None:
    hostile.answer(200, b'"' + b"x" * 200_000 + b'"')

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(5.0)) as client:
            return await send(client, "GET", hostile.base_url + "/big", host="big.example", max_bytes=100_000)

    with pytest.raises(Transient, match="larger than 100,000 bytes"):
        arun(go())


def test_send_reads_an_answer_within_the_limit_whole(hostile: HostileServer, arun: Arun[Any]) -> None:
    body = json.dumps([{"id": str(i), "text": "ok" * 50} for i in range(500)]).encode()
    hostile.answer(200, body)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(5.0)) as client:
            return await send(client, "GET", hostile.base_url + "/page", host="ok.example", max_bytes=len(body))

    response = arun(go())
    assert response.content == body
    assert response.json()[499]["id"] == "499"


@pytest.mark.parametrize("depth", [5_000, 100_000])  # past what json.loads can take
def test_loads_bounded_cuts_only_what_is_nested_too_deeply(depth: int) -> None:
    text = json.dumps([{"id": "1"}, {"id": "2", "deep": "@@"}, {"id": "3", "note": "brackets [[[ in text"}])
    text = text.replace('"@@"', deep_json(depth).decode())

    first, second, third = loads_bounded(text)

    assert first == {"id": "1"}
    assert third == {"id": "3", "note": "brackets [[[ in text"}
    value = second["deep"]
    levels = 0
    while isinstance(value, list):
        (value,) = value
        levels += 1
    assert value == TOO_DEEP
    assert levels == MAX_JSON_DEPTH - 2  # the page and the item are two of the levels


def test_loads_bounded_still_refuses_what_is_not_json() -> None:
    with pytest.raises(ValueError, match="nested too deeply and never closes"):
        loads_bounded("[" * 100_000)
    with pytest.raises(ValueError, match="Expecting property name"):
        loads_bounded("{not json")


async def sync_twice(
    db: sqlite_utils.Database, clock: FakeClock, secrets: MemorySecretStore, urls: list[str], order: list[int]
) -> tuple[list[SyncReport], list[SyncReport]]:
    """Accounts on ``urls`` (not a first sync: forward paging), synced once and then again, on one loop."""
    accounts = AccountRepo(db)
    state = SyncStateRepo(db)
    async with contextlib.AsyncExitStack() as stack:
        connectors: dict[int, Connector] = {}
        for i, url in enumerate(urls):
            row = accounts.add(kind="mastodon", handle=f"care{i}", base_url=url, now=int(clock.now()))
            secrets.set(f"mastodon:{row.id}", "token")
            client = await stack.enter_async_context(httpx.AsyncClient(trust_env=False, timeout=SHORT))
            ref = AccountRef(row.id, "mastodon", row.handle, url)
            connectors[row.id] = MastodonConnector(client, account=ref, secrets=secrets, clock=clock)
            state.record_success(row.id, cursor={"min_id": "0"}, at=int(clock.now()), next_attempt_at=0)
        poller = Poller(MentionRepo(db), accounts, state, connectors, clock, health=HealthRepo(db))
        poller.subscribe(lambda report: order.append(report.account_id))
        first = await poller.sync_once()
        return first, await poller.sync_once()


def test_deeply_nested_item_is_quarantined_and_the_rest_of_its_page_is_stored(
    db: sqlite_utils.Database, clock: FakeClock, secrets: MemorySecretStore, arun: Arun[Any]
) -> None:
    page = [notification("3"), notification("2", content="@@"), notification("1")]
    body = json.dumps(page).replace('"@@"', deep_json(100_000).decode())
    with FakeHttpServer() as server:
        server.reply(200, body=body)
        server.reply(200, json=[])
        (report,), again = arun(sync_twice(db, clock, secrets, [server.base_url], []))

    assert report.ok, report.error
    assert (report.stored, report.quarantined) == (2, 1)
    assert sorted(r.external_id for r in MentionRepo(db).rows_by_id(report.new_items).values()) == ["s1", "s3"]
    (entry,) = HealthRepo(db).quarantined()
    assert entry.external_id == "2" and "content is not a string" in entry.error
    assert again[0].ok and again[0].fetched == 0  # the cursor moved past it: the bad item blocks nothing
    TALLY["hostile servers: 100,000-deep items quarantined"] += 1


def test_a_trickling_server_never_delays_a_healthy_account(
    db: sqlite_utils.Database, clock: FakeClock, secrets: MemorySecretStore, hostile: HostileServer, arun: Arun[Any]
) -> None:
    hostile.trickle(json.dumps([notification("9")]).encode(), every=0.05)
    with FakeHttpServer() as healthy:
        healthy.reply(200, json=[notification("2"), notification("1")])
        healthy.reply(200, json=[])
        order: list[int] = []
        urls = [hostile.base_url, healthy.base_url]
        (slow_report, healthy_report), _ = arun(sync_twice(db, clock, secrets, urls, order))

    assert healthy_report.ok and healthy_report.stored == 2
    assert not slow_report.ok and "did not finish answering" in (slow_report.error or "")
    assert order[:2] == [healthy_report.account_id, slow_report.account_id]  # the healthy one did not wait
    TALLY["hostile servers: healthy accounts unaffected by a trickling one"] += 1


def test_a_huge_post_is_stored_cut_with_its_link_and_a_page_past_the_limit_is_refused(
    db: sqlite_utils.Database, clock: FakeClock, secrets: MemorySecretStore, arun: Arun[Any]
) -> None:
    big = notification("2", content="<p>" + "refund " * 400_000 + "</p>")  # 2.8 MB of text in one post
    with FakeHttpServer() as server:
        server.reply(200, json=[notification("3"), big, notification("1")])
        server.reply(200, json=[])
        (report,), _ = arun(sync_twice(db, clock, secrets, [server.base_url], []))
    assert report.ok and report.stored == 3
    (text, raw) = db.conn.execute("SELECT text, raw FROM mentions WHERE external_id = 's2'").fetchone()
    assert len(text) < MAX_TEXT_CHARS + 200 and text.endswith("the whole post: https://other.example/@x/s2]")
    assert len(raw) < MAX_RAW_CHARS  # the text is not stored a second time inside the raw JSON

    huge = notification("5", content="<p>" + "x" * (MAX_RESPONSE_BYTES + 1) + "</p>")
    with FakeHttpServer() as server:
        server.reply(200, json=[huge])
        server.reply(200, json=[])
        (refused,), _ = arun(sync_twice(db, clock, secrets, [server.base_url], []))
    assert not refused.ok and "larger than 16 MB; it was refused unread" in (refused.error or "")
    TALLY["hostile servers: oversized posts cut or refused"] += 1


def test_the_poll_loop_keeps_polling_a_healthy_account_while_another_one_stalls(
    db: sqlite_utils.Database, clock: FakeClock, secrets: MemorySecretStore, hostile: HostileServer, arun: Arun[Any]
) -> None:
    hostile.trickle(json.dumps([notification("9")]).encode(), every=0.05)  # cut at its deadline (1 s)

    async def scenario(healthy_url: str) -> list[tuple[int, bool]]:
        accounts = AccountRepo(db)
        state = SyncStateRepo(db)
        seen: list[tuple[int, bool]] = []
        two_healthy = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            connectors: dict[int, Connector] = {}
            for i, url in enumerate([hostile.base_url, healthy_url]):
                row = accounts.add(kind="mastodon", handle=f"care{i}", base_url=url, now=int(clock.now()))
                secrets.set(f"mastodon:{row.id}", "token")
                client = await stack.enter_async_context(httpx.AsyncClient(trust_env=False, timeout=SHORT))
                ref = AccountRef(row.id, "mastodon", row.handle, url)
                connectors[row.id] = MastodonConnector(client, account=ref, secrets=secrets, clock=clock)
                state.record_success(row.id, cursor={"min_id": "0"}, at=int(clock.now()), next_attempt_at=0)
            slow_id, healthy_id = connectors
            poller = Poller(MentionRepo(db), accounts, state, connectors, clock, interval=3600)

            def listen(report: SyncReport) -> None:
                seen.append((report.account_id, report.ok))
                if report.account_id == healthy_id:
                    poller.wake()  # "Sync now" as soon as the healthy account answered
                    if sum(1 for account_id, _ in seen if account_id == healthy_id) >= 2:
                        two_healthy.set()

            poller.subscribe(listen)
            task = asyncio.create_task(poller.run())
            try:
                await asyncio.wait_for(two_healthy.wait(), timeout=5)
                await asyncio.sleep(0)
                assert slow_id not in [account_id for account_id, _ in seen]  # still stalled meanwhile
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return seen

    with FakeHttpServer() as healthy:
        healthy.reply(200, json=[notification("1")])
        healthy.reply(200, json=[notification("2")])
        healthy.reply(200, json=[])
        seen = arun(scenario(healthy.base_url))
    assert seen[:2] == [(2, True), (2, True)]
    TALLY["hostile servers: healthy accounts unaffected by a trickling one"] += 1
