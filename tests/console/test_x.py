"""X API v2: parse functions on hand-written JSON, and the connector against a fake X API on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.channels.base import AccountRef, ReplyTarget
from console.channels.errors import AuthExpired, Permanent, RateLimited, Unreachable
from console.channels.x import XConnector, XTokens, parse_mentions, parse_tokens, weighted_length
from console.ports import MemorySecretStore
from console.replies.checks import check_length
from tests.fakes.clock import FakeClock
from tests.fakes.x_server import FakeXServer

T = TypeVar("T")
#: Arbitrary small JSON values, for "never crashes" properties.
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)
Arun = Callable[[Awaitable[T]], T]
DATA = Path(__file__).resolve().parents[1] / "data" / "x"
#: twitter-text's published conformance cases (Apache 2.0, LICENSE beside them).
CONFORMANCE = Path(__file__).resolve().parents[1] / "data" / "twitter_text"


def test_parse_mentions_page() -> None:
    page = parse_mentions(json.loads((DATA / "mentions_page.json").read_text()))
    edited, long_post = page.items
    assert edited.external_id == "1578516295611748353"  # the first id of the edit history
    assert edited.raw["latest_id"] == "1578516295611748355"
    assert edited.url == "https://x.com/cust/status/1578516295611748355"
    assert edited.parent_external_id == "1578500000000000000"
    assert long_post.text.endswith("complete in note_tweet")
    assert long_post.author_name == "longpost"
    assert page.skipped == [("1578516295611748349", "author missing from includes.users")]
    assert page.newest_id == "1578516295611748355" and page.next_token


def test_weighted_length() -> None:
    assert weighted_length("hello") == 5
    assert weighted_length("see https://example.com/" + "a" * 100) == 4 + 23
    assert weighted_length("日本") == 4


def _conformance(section: str) -> list[Any]:
    cases = json.loads((CONFORMANCE / "validate_weighted.json").read_text(encoding="utf-8"))[section]
    return [pytest.param(case["text"], case["expected"], id=case["description"]) for case in cases]


@pytest.mark.parametrize(
    ("text", "expected"),
    _conformance("WeightedTweetsWithDiscountedEmojiCounterTest") + _conformance("UnicodeDirectionalMarkerCounterTest"),
)
def test_weighted_length_passes_twitter_text_conformance(text: str, expected: dict[str, Any]) -> None:
    assert weighted_length(text) == expected["weightedLength"]


@pytest.mark.parametrize(("text", "is_url"), _conformance("urls_without_protocol"))
def test_weighted_length_counts_a_link_without_scheme_as_23(text: str, is_url: bool) -> None:
    assert weighted_length(f"see {text}") == (4 + 23 if is_url else 4 + len(text))


def test_composer_and_connector_weigh_an_x_reply_alike() -> None:
    text = "Thanks! " + "\N{THUMBS UP SIGN}\N{EMOJI MODIFIER FITZPATRICK TYPE-4}" * 80
    assert weighted_length(text) == check_length("x", text).count == 8 + 80 * 2
    assert not check_length("x", text).over
    assert check_length("x", "Details at example.com").count == 11 + 23


@settings(max_examples=80, deadline=None)
@given(JUNK)
def test_parse_never_crashes(junk: object) -> None:
    for value in (junk, {"data": [junk], "includes": {"users": [junk]}, "meta": junk}):
        with contextlib.suppress(ValueError):
            parse_mentions(value)
    assert parse_tokens(json.dumps(junk)) is None or isinstance(parse_tokens(json.dumps(junk)), XTokens)


@pytest.fixture
def server() -> Any:
    with FakeXServer() as fake:
        yield fake


def store_tokens(server: FakeXServer, secrets: MemorySecretStore, *, expires_at: float) -> None:
    access, refresh = server.issue()
    secrets.set("x:9", XTokens(access, refresh, expires_at, "client-abc").dumps())


@contextlib.asynccontextmanager
async def connect(
    server: FakeXServer, secrets: MemorySecretStore, clock: FakeClock, **options: Any
) -> AsyncIterator[XConnector]:
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
        ref = AccountRef(id=9, kind="x", handle="brand", base_url=server.base_url)
        connector = XConnector(client, account=ref, secrets=secrets, clock=clock, **options)
        yield connector
        await connector.aclose()


def test_sync_pages_with_since_id_and_reply(
    server: FakeXServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    store_tokens(server, secrets, expires_at=clock.now() + 7200)
    first_ids = [server.mention("cust", f"@brand hi {n}") for n in range(3)]
    outsider = server.mention("other", "talking about brand without a mention", mentions_brand=False)

    async def scenario() -> None:
        async with connect(server, secrets, clock, page_size=5) as connector:
            assert (await connector.verify()).handle == "brand"
            first = await connector.fetch_new(None)
            assert [i.external_id for i in first.items] == first_ids
            for n in range(12):
                server.mention("cust", f"@brand more {n}")
            second = await connector.fetch_new(first.next_cursor)
            assert [i.text for i in second.items] == [f"@brand more {n}" for n in range(12)]  # 3 pages, no gaps
            assert (await connector.fetch_new(second.next_cursor)).next_cursor is None
            receipt = await connector.send_reply(
                ReplyTarget(first_ids[0], "cust", "public"), "On it!", idempotency_key="k"
            )
            assert receipt.url.endswith(receipt.external_id)
            with pytest.raises(Permanent, match="only reply to posts that mention"):
                await connector.send_reply(ReplyTarget(outsider, "other", "public"), "Hi!", idempotency_key="k")
            with pytest.raises(Permanent, match="280"):
                await connector.send_reply(ReplyTarget(first_ids[0], "cust", "public"), "x" * 281, idempotency_key="k")

    arun(scenario())
    assert server.posted == [{"text": "On it!", "reply": {"in_reply_to_tweet_id": first_ids[0]}}]


def test_concurrent_refresh_rotates_once(
    server: FakeXServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    store_tokens(server, secrets, expires_at=clock.now() + 10)  # inside the refresh margin

    async def scenario() -> None:
        async with connect(server, secrets, clock) as connector:
            await asyncio.gather(connector.verify(), connector.verify(), connector.fetch_new(None))

    arun(scenario())
    assert server.refresh_calls == 1
    stored = parse_tokens(secrets.get("x:9"))
    assert stored is not None and stored.refresh_token in server.refresh and stored.access_token in server.access
    assert stored.expires_at == clock.now() + 7200


def test_revoked_tokens_and_limits_are_typed(
    server: FakeXServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    store_tokens(server, secrets, expires_at=clock.now() + 7200)

    async def scenario() -> None:
        async with connect(server, secrets, clock) as connector:
            await connector.verify()
            server.fail_next(
                429,
                {"title": "Too Many Requests", "type": "about:blank", "detail": "Too Many Requests"},
                path="mentions",
                headers={"x-rate-limit-reset": str(int(clock.now()) + 300)},
            )
            with pytest.raises(RateLimited) as limited:
                await connector.fetch_new(None)
            assert limited.value.retry_at == int(clock.now()) + 300
            server.fail_next(
                429,
                {
                    "type": "https://api.x.com/2/problems/usage-capped",
                    "title": "Usage cap exceeded",
                    "detail": "Monthly product cap",
                },
                path="mentions",
            )
            with pytest.raises(RateLimited, match="credits"):
                await connector.fetch_new(None)
            server.access.clear()
            server.refresh.clear()
            with pytest.raises(AuthExpired, match="re-authenticate"):
                await connector.verify()

    arun(scenario())


def test_no_tokens_is_auth_expired(
    server: FakeXServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    async def scenario() -> None:
        async with connect(server, secrets, clock) as connector:
            with pytest.raises(AuthExpired):
                await connector.verify()

    arun(scenario())


# -- status posts (a post of the account's own) ---------------------------------------------------------


def test_status_post_is_posted_once_with_just_its_text(
    server: FakeXServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    store_tokens(server, secrets, expires_at=clock.now() + 7200)
    text = "We're answering new messages in about 25 minutes right now."

    async def scenario() -> None:
        async with connect(server, secrets, clock) as connector:
            receipt = await connector.post_status(text, idempotency_key="key-1")
            (posted,) = server.statuses
            assert receipt.external_id == posted["id"]
            assert receipt.url == f"https://x.com/brand/status/{posted['id']}"
            assert receipt.posted_at == int(clock.now())
            before = len(server.requests)
            with pytest.raises(Permanent, match="281 characters; X allows 280"):
                await connector.post_status("x" * 281, idempotency_key="key-2")
            with pytest.raises(Permanent, match="282 characters"):
                await connector.post_status("日" * 141, idempotency_key="key-3")  # CJK weighs 2
            with pytest.raises(Permanent, match="empty"):
                await connector.post_status(" ", idempotency_key="key-4")
            assert len(server.requests) == before  # refused before the network

    arun(scenario())
    assert [{k: v for k, v in s.items() if k != "id"} for s in server.statuses] == [{"text": text}]
    assert server.posted == []  # not a reply


def test_status_post_refusals_are_typed_and_leave_nothing_posted(
    server: FakeXServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    store_tokens(server, secrets, expires_at=clock.now() + 7200)

    async def scenario() -> None:
        async with connect(server, secrets, clock) as connector:
            server.fail_next(
                429,
                {"title": "Too Many Requests", "type": "about:blank", "detail": "Too Many Requests"},
                path="/2/tweets",
                headers={"x-rate-limit-reset": str(int(clock.now()) + 600)},
            )
            with pytest.raises(RateLimited) as limited:
                await connector.post_status("About 5 minutes.", idempotency_key="key-1")
            assert limited.value.retry_at == int(clock.now()) + 600
            server.fail_next(
                403,
                {"title": "Forbidden", "type": "about:blank", "detail": "duplicate content", "status": 403},
                path="/2/tweets",
            )
            with pytest.raises(Permanent, match=r"X refused the post \(duplicate content\)"):
                await connector.post_status("About 5 minutes.", idempotency_key="key-1")
            server.access.clear()
            server.refresh.clear()
            with pytest.raises(AuthExpired, match="re-authenticate"):
                await connector.post_status("About 5 minutes.", idempotency_key="key-1")

    arun(scenario())
    assert server.statuses == []


def test_status_post_with_an_unknown_outcome_is_not_sent_again(
    server: FakeXServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    store_tokens(server, secrets, expires_at=clock.now() + 7200)

    async def scenario() -> None:
        async with connect(server, secrets, clock) as connector:
            server.lose_posted_answers = 1  # X posts it, the answer never arrives
            with pytest.raises(Permanent, match="may have posted the status update"):
                await connector.post_status("About 5 minutes.", idempotency_key="key-1")
            server.fail_next(503, {"title": "Service Unavailable", "detail": "Over capacity"}, path="/2/tweets")
            with pytest.raises(Permanent, match="no idempotency key"):
                await connector.post_status("About 6 minutes.", idempotency_key="key-2")

    arun(scenario())
    assert [s["text"] for s in server.statuses] == ["About 5 minutes."]
    assert server.paths().count("/2/tweets") == 2  # each tried once, never repeated


def test_status_post_that_never_left_stays_retryable(
    secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    with FakeXServer() as gone:
        store_tokens(gone, secrets, expires_at=clock.now() + 7200)
        address = gone.base_url
    # The server is closed: no connection is made, so nothing can have been posted and a retry is safe.

    async def scenario() -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
            ref = AccountRef(id=9, kind="x", handle="brand", base_url=address)
            connector = XConnector(client, account=ref, secrets=secrets, clock=clock)
            with pytest.raises(Unreachable):
                await connector.post_status("About 5 minutes.", idempotency_key="key-1")

    arun(scenario())
