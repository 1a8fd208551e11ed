"""YouTube: parse functions on recorded and hand-written JSON, and the connector against a fake API on loopback."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.channels.base import AccountRef, ReplyTarget
from console.channels.errors import AuthExpired, Permanent, RateLimited
from console.channels.youtube import (
    YouTubeConnector,
    next_quota_reset,
    parse_comment,
    parse_comments,
    parse_threads,
    quota_day,
)
from console.ports import MemorySecretStore
from tests import shared_fixtures
from tests.fakes.clock import FakeClock
from tests.fakes.youtube_server import CHANNEL, FakeYouTubeServer

T = TypeVar("T")
#: Arbitrary small JSON values, for "never crashes" properties.
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)
Arun = Callable[[Awaitable[T]], T]

DATA = Path(__file__).resolve().parents[1] / "data" / "youtube"


def recorded(name: str) -> Any:
    return shared_fixtures.recorded("youtube", name)


def test_recorded_threads_and_replies() -> None:
    page = parse_threads(recorded("comment_threads_by_video_page1.json"))
    assert len(page.threads) == 5 and page.next_page_token
    first = page.threads[0].top
    assert first.author_id == "UCxxxxxxxx0001" and first.text == "Google.com"
    assert first.url == "https://www.youtube.com/watch?v=F1UP7wRCPH8&lc=UgyZ1jqkHKYvi1-ruOZ4AaABAg"
    assert parse_threads(recorded("comment_threads_by_video_page2.json")).next_page_token is None
    channel = parse_threads(recorded("comment_threads_all_related_to_channel.json"))
    assert any(t.total_replies == 1 and not t.replies for t in channel.threads)  # replies part missing: fetch them
    replies, token = parse_comments(recorded("comments_by_parent_page1.json"))
    assert token and replies[0].parent_external_id == "Ugw5zYU6n9pmIgAZWvN4AaABAg"
    inserted = parse_comment(recorded("comment_reply_insert_response.json"))
    assert inserted.parent_external_id == "Ugy_CAftKrIUCyPr9GR4AaABAg"


def test_hand_written_page() -> None:
    page = parse_threads(json.loads((DATA / "threads_page.json").read_text()))
    (thread,) = page.threads
    assert thread.total_replies == 3 and len(thread.replies) == 1
    assert thread.top.author_handle == "kun" and thread.replies[0].parent_external_id == "UgyA"
    assert page.skipped and page.skipped[0][0] == "UgyB"
    assert quota_day(1_767_225_600) == "2025-12-31"  # 00:00 UTC is 16:00 the day before in Pacific Time


@pytest.mark.parametrize(
    ("instant", "day", "reset"),
    [
        # Summer (PDT, UTC-7): 07:30 UTC on 1 July is 00:30 on 1 July in Los Angeles; a fixed UTC-8 said 30 June.
        ("2026-07-01T07:30:00+00:00", "2026-07-01", "2026-07-02T07:00:00+00:00"),
        ("2026-07-01T06:30:00+00:00", "2026-06-30", "2026-07-01T07:00:00+00:00"),
        # Winter (PST, UTC-8).
        ("2026-01-15T07:30:00+00:00", "2026-01-14", "2026-01-15T08:00:00+00:00"),
        # The day the clocks go forward (8 March 2026) has 23 hours; the day they go back (1 November) 25.
        ("2026-03-08T09:00:00+00:00", "2026-03-08", "2026-03-09T07:00:00+00:00"),
        ("2026-11-01T08:30:00+00:00", "2026-11-01", "2026-11-02T08:00:00+00:00"),
    ],
)
def test_quota_day_follows_los_angeles_daylight_time(instant: str, day: str, reset: str) -> None:
    epoch = datetime.fromisoformat(instant).timestamp()
    assert quota_day(epoch) == day
    assert next_quota_reset(epoch) == datetime.fromisoformat(reset).timestamp()


@settings(max_examples=80, deadline=None)
@given(JUNK)
def test_parsers_never_crash_on_junk(junk: object) -> None:
    for call in (
        lambda: parse_threads(junk),
        lambda: parse_threads(
            {"items": [junk, {"snippet": {"topLevelComment": junk}, "replies": {"comments": [junk]}}]}
        ),
        lambda: parse_comments({"items": [junk]}),
        lambda: parse_comment(junk),
    ):
        with contextlib.suppress(ValueError):
            call()


@pytest.fixture
def server() -> Any:
    with FakeYouTubeServer() as fake:
        yield fake


@contextlib.asynccontextmanager
async def connect(
    server: FakeYouTubeServer, secrets: MemorySecretStore, clock: FakeClock, **options: Any
) -> AsyncIterator[YouTubeConnector]:
    tokens = {
        "access_token": "access-0",
        "refresh_token": "refresh-0",
        "expires_at": clock.now() + 3600,
        "client_id": "cid",
    }
    if secrets.get("youtube:4") is None:
        secrets.set("youtube:4", json.dumps(tokens))
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
        ref = AccountRef(id=4, kind="youtube", handle=CHANNEL, base_url=server.base_url)
        connector = YouTubeConnector(
            client, account=ref, secrets=secrets, clock=clock, token_url=server.base_url + "/token", **options
        )
        yield connector
        await connector.aclose()


def test_sync_threads_replies_and_reply(
    server: FakeYouTubeServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    old = server.comment("Ann", "old question")
    for n in range(3):
        server.comment("Bob", f"comment {n}")

    async def scenario() -> None:
        async with connect(server, secrets, clock, page_size=2) as connector:
            assert (await connector.verify()).display_name == "Brand Channel"
            first = await connector.fetch_new(None)
            assert [i.text for i in first.items] == ["comment 1", "comment 2"]  # the newest page only
            receipt = await connector.send_reply(
                ReplyTarget(first.items[0].external_id, "Bob", "public"), "Thanks Bob!", idempotency_key="k"
            )
            assert receipt.external_id.startswith(first.items[0].external_id + ".")
            # New replies on an old thread (beyond the scanned page) come through the reply counts.
            server.reply(old, "Ann", "any news?")
            for n in range(3):
                server.reply(first.items[0].external_id, "Bob", f"reply {n}")  # more than the listing's subset of 2
            server.comment("Cid", "brand new")
            second = await connector.fetch_new(first.next_cursor)
            texts = [i.text for i in second.items]
            assert sorted(texts) == sorted(["any news?", "reply 0", "reply 1", "reply 2", "brand new"])
            assert "Thanks Bob!" not in texts  # our own reply is not a customer message
            third = await connector.fetch_new(second.next_cursor)
            assert third.items == []
            assert third.next_cursor is not None and third.next_cursor["quota"]["used"] == connector.quota.used
            assert connector.quota.used >= 50

    arun(scenario())
    assert server.inserted == [{"parentId": server.threads[2]["id"], "textOriginal": "Thanks Bob!"}]


def test_refresh_quota_and_errors(
    server: FakeYouTubeServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    server.comment("Ann", "hello")

    async def scenario() -> None:
        async with connect(server, secrets, clock) as connector:
            server.access.clear()  # the access token was revoked or expired early
            assert (await connector.verify()).external_id == CHANNEL
            assert server.refresh_calls == 1
            server.quota_exceeded = True
            with pytest.raises(RateLimited, match="midnight Pacific"):
                await connector.fetch_new(None)
            server.quota_exceeded = False
            with pytest.raises(Permanent):
                await connector.send_reply(ReplyTarget("missing", "x", "public"), "hi", idempotency_key="k")
            with pytest.raises(RateLimited, match="kept for replies"):
                await connector.fetch_new({"quota": {"day": connector.quota.day, "used": 9500}})
            server.access.clear()
            secrets.set("youtube:4", json.dumps({"access_token": "gone", "refresh_token": "revoked"}))
            await connector.aclose()
            with pytest.raises(AuthExpired, match="re-authenticate"):
                await connector.verify()

    arun(scenario())
