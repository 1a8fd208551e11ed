"""Facebook Page: parse functions on hand-written Graph JSON, and the connector against a fake Graph API on loopback."""

from __future__ import annotations

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
from console.channels.errors import AuthExpired, Permanent, RateLimited
from console.channels.facebook import FacebookConnector, messaging_window, parse_comments, parse_conversation
from console.ports import MemorySecretStore
from storage.rows import MentionKind
from tests.fakes.clock import FakeClock
from tests.fakes.facebook_server import PAGE, VERSION, FakeFacebookServer, graph_error

T = TypeVar("T")
Arun = Callable[[Awaitable[T]], T]
DATA = Path(__file__).resolve().parents[1] / "data" / "facebook"
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)


def test_parse_comments_and_conversation() -> None:
    comments, next_url = parse_comments(json.loads((DATA / "comments.json").read_text()), post_id="p")
    assert [c.external_id for c in comments] == ["1015840765_1015840783", "1015840765_1015840700"]
    assert comments[0].parent_external_id == "1015840765_1015840700" and comments[1].parent_external_id is None
    assert comments[0].posted_at == 1_628_621_103 and next_url and "after=QVFJ" in next_url
    messages = parse_conversation(json.loads((DATA / "conversation.json").read_text()), page_id="19292868552")
    assert [m.text for m in messages] == ["My order is late", "Thanks, and the invoice?"]
    assert messages[1].parent_external_id == "m_2"  # our reply: the conversation stays one thread
    assert messages[0].kind is MentionKind.DIRECT and messages[0].raw["psid"] == "5566"
    assert messages[1].raw["window_closes_at"] == messages[1].posted_at + 86400


def test_messaging_window() -> None:
    assert messaging_window(1000, 1000 + 3600).open
    closed = messaging_window(1000, 1000 + 86400)
    assert not closed.open and closed.seconds_left == 0 and closed.closes_at == 87400


@settings(max_examples=80, deadline=None)
@given(JUNK)
def test_parsers_never_crash_on_junk(junk: object) -> None:
    for call in (
        lambda: parse_comments(junk, post_id="p"),
        lambda: parse_comments({"data": [junk]}, post_id="p"),
        lambda: parse_conversation(junk, page_id="1"),
        lambda: parse_conversation({"id": "t", "messages": {"data": [junk]}}, page_id="1"),
    ):
        with contextlib.suppress(ValueError):
            call()


@pytest.fixture
def server() -> Any:
    with FakeFacebookServer() as fake:
        yield fake


@contextlib.asynccontextmanager
async def connect(
    server: FakeFacebookServer, secrets: MemorySecretStore, clock: FakeClock, *, page: str = PAGE
) -> AsyncIterator[FacebookConnector]:
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
        ref = AccountRef(id=6, kind="facebook", handle=page, base_url=server.base_url + VERSION)
        connector = FacebookConnector(client, account=ref, secrets=secrets, clock=clock)
        yield connector
        await connector.aclose()


def test_sync_comments_and_messenger_then_reply(
    server: FakeFacebookServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    secrets.set("facebook:6", "page-token-1")
    clock.set(server.now)
    post = server.post()
    server.comment(post, "Ann", "old comment")
    newest = server.comment(post, "Bob", "is this in stock?")
    server.message("5566", "Cust", "my order is late")

    async def scenario() -> None:
        async with connect(server, secrets, clock) as connector:
            assert (await connector.verify()).display_name == "Brand Page"
            first = await connector.fetch_new(None)
            assert [i.text for i in first.items] == ["is this in stock?", "my order is late"]
            await connector.send_reply(ReplyTarget(newest, "Bob", "public"), "Yes, it is!", idempotency_key="k")
            dm = first.items[1]
            await connector.send_reply(
                ReplyTarget(dm.external_id, "Cust", dm.visibility), "Sorry, checking now", idempotency_key="k"
            )
            for n in range(120):  # more than one page of comments
                server.comment(post, f"Fan{n}", f"comment {n}")
            reply_to_reply = server.comment(post, "Bob", "thanks!", parent=newest)
            server.message("5566", "Cust", "any news?")
            clock.set(server.now)
            second = await connector.fetch_new(first.next_cursor)
            texts = [i.text for i in second.items]
            assert texts == [f"comment {n}" for n in range(120)] + ["thanks!", "any news?"]
            assert second.items[-1].parent_external_id is not None  # follows our Messenger reply
            third = await connector.fetch_new(second.next_cursor)
            assert third.items == []
            await connector.send_reply(
                ReplyTarget(reply_to_reply, "Bob", "public"), "You're welcome", idempotency_key="k"
            )

    arun(scenario())
    assert server.sent[0] == {"comment_on": newest, "message": "Yes, it is!"}
    assert server.sent[1] == {
        "recipient": {"id": "5566"},
        "messaging_type": "RESPONSE",
        "message": {"text": "Sorry, checking now"},
    }
    assert server.sent[2]["comment_on"] == newest  # a reply to a reply goes under the top-level comment


def test_errors_are_typed(
    server: FakeFacebookServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    secrets.set("facebook:6", "page-token-1")
    clock.set(server.now)
    server.message("5566", "Cust", "hello")

    async def scenario() -> None:
        async with connect(server, secrets, clock) as connector:
            batch = await connector.fetch_new(None)
            server.window_closed = True
            with pytest.raises(Permanent, match="24-hour"):
                await connector.send_reply(
                    ReplyTarget(batch.items[0].external_id, "Cust", "messenger"), "late", idempotency_key="k"
                )
            answer = graph_error(400, 80001, "There have been too many calls to this Page account.")
            server.fail_next(
                answer.status,
                answer.json,
                path="/feed",
                headers={
                    "X-Business-Use-Case-Usage": json.dumps(
                        {PAGE: [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 7}]}
                    )
                },
            )
            with pytest.raises(RateLimited) as limited:
                await connector.fetch_new(None)
            assert limited.value.retry_at == clock.now() + 7 * 60
            server.token = "rotated"
            with pytest.raises(AuthExpired, match="Page token"):
                await connector.verify()

    arun(scenario())


# -- status posts (a post of the Page's own) ------------------------------------------------------------


def test_status_post_is_published_once_on_the_page_feed(
    server: FakeFacebookServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    secrets.set("facebook:6", "page-token-1")
    text = "We're answering new messages in about 25 minutes right now."

    async def scenario() -> None:
        async with connect(server, secrets, clock) as connector:
            receipt = await connector.post_status(text, idempotency_key="key-1")
            (published,) = server.published
            assert receipt.external_id == published["id"]
            assert receipt.url == f"https://www.facebook.com/{PAGE}/posts/{published['id'].split('_')[1]}"
            assert receipt.posted_at == int(clock.now())
            before = len(server.requests)
            with pytest.raises(Permanent, match="empty"):
                await connector.post_status("  ", idempotency_key="key-2")
            assert len(server.requests) == before
        async with connect(server, secrets, clock, page="") as unknown:
            with pytest.raises(Permanent, match="Page id"):
                await unknown.post_status(text, idempotency_key="key-3")
        assert len(server.requests) == before  # refused before the network

    arun(scenario())
    assert [p["message"] for p in server.published] == [text]
    (request,) = [r for r in server.requests if r.method == "POST"]
    assert request.path == f"{VERSION}/{PAGE}/feed" and request.json() == {"message": text}


def test_status_post_refusals_are_typed_and_an_unknown_outcome_is_not_sent_again(
    server: FakeFacebookServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    secrets.set("facebook:6", "page-token-1")
    clock.set(server.now)

    async def scenario() -> None:
        async with connect(server, secrets, clock) as connector:
            answer = graph_error(400, 32, "Page request limit reached")
            server.fail_next(answer.status, answer.json, path="/feed")
            with pytest.raises(RateLimited):
                await connector.post_status("About 5 minutes.", idempotency_key="key-1")
            server.can_publish = False
            with pytest.raises(Permanent, match="lacks a permission"):
                await connector.post_status("About 5 minutes.", idempotency_key="key-1")
            server.can_publish = True
            server.lose_published_answers = 1  # published, the answer never arrives
            with pytest.raises(Permanent, match="may have published"):
                await connector.post_status("About 5 minutes.", idempotency_key="key-1")
            answer = graph_error(500, 2, "Service temporarily unavailable")
            server.fail_next(answer.status, answer.json, path="/feed")
            with pytest.raises(Permanent, match="no idempotency key"):
                await connector.post_status("About 6 minutes.", idempotency_key="key-2")
            server.token = "rotated"
            with pytest.raises(AuthExpired, match="Page token"):
                await connector.post_status("About 7 minutes.", idempotency_key="key-3")

    arun(scenario())
    assert [p["message"] for p in server.published] == ["About 5 minutes."]
