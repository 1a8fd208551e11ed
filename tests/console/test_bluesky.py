"""Bluesky: parse functions on recorded and hand-written JSON, and the connector against a fake PDS on loopback."""

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
from console.channels.bluesky import (
    BlueskyConnector,
    PostBlocked,
    PostDeleted,
    build_facets,
    chat_id,
    parse_chat_log,
    parse_chat_message,
    parse_notifications,
    parse_thread,
    permalink,
    reply_refs,
    split_chat_id,
    status_rkey,
)
from console.channels.errors import AuthExpired, Permanent, RateLimited, Transient
from console.ports import MemorySecretStore
from storage.rows import MentionKind
from tests import shared_fixtures
from tests.fakes.bluesky_server import TID_RE, FakeBlueskyServer
from tests.fakes.clock import FakeClock

T = TypeVar("T")
#: Arbitrary small JSON values, for "never crashes" properties.
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)
Arun = Callable[[Awaitable[T]], T]

DATA = Path(__file__).resolve().parents[1] / "data" / "bluesky"


def recorded(name: str) -> Any:
    return shared_fixtures.recorded("bluesky", name)


# -- parsing ------------------------------------------------------------------------------------------


def test_recorded_mention_reply_notifications_parse() -> None:
    page = parse_notifications(recorded("listNotifications_reasons_mention_reply.json"))
    assert [item.raw["reason"] for item in page.items].count("mention") == 1
    assert len(page.items) == 4
    reply = page.items[0]
    assert reply.text == "indeed"
    assert reply.author_handle == "carol.test"
    assert reply.parent_external_id == "record(3)"
    assert reply.url == ""  # snapshot placeholders are not at-uris
    assert page.cursor is None and not page.skipped


def test_recorded_mixed_notifications_keep_only_posts() -> None:
    page = parse_notifications(recorded("listNotifications_notifications_array_mixed.json"))
    assert {item.raw["reason"] for item in page.items} == {"mention", "reply"}
    assert len(page.items) == 4


def test_recorded_thread_flattens_in_conversation_order() -> None:
    thread = parse_thread({"thread": recorded("getPostThread_reply_with_parent_thread_only.json")})
    assert [item.text for item in thread][:1] == ["again"]
    assert len(thread) >= 2
    real = parse_thread(recorded("getPostThread_embed_media.json"))
    assert real[0].author_handle == "test.marshal.dev"
    assert real[0].url.startswith("https://bsky.app/profile/test.marshal.dev/post/")


def test_recorded_record_gives_reply_refs() -> None:
    record = recorded("getRecord_post.json")
    root, parent = reply_refs(record["uri"], record["cid"], record["value"])
    assert root == parent and parent.cid == record["cid"]


def test_hand_written_page() -> None:
    page = parse_notifications(json.loads((DATA / "notifications_page.json").read_text()))
    assert [item.external_id for item in page.items] == [
        "at://did:plc:cust/app.bsky.feed.post/3kabc",
        "at://did:plc:quoter/app.bsky.feed.post/3kq",
    ]
    first = page.items[0]
    assert first.author_id == "did:plc:cust" and first.author_name == "Cust"
    assert first.url == "https://bsky.app/profile/cust.bsky.social/post/3kabc"
    assert first.parent_external_id == "at://did:plc:brand/app.bsky.feed.post/3kxyz"
    assert first.posted_at == 1_767_226_200
    assert page.skipped == [("at://did:plc:other/app.bsky.feed.post/3kbad", "post author has no did or handle")]
    assert page.cursor == "2026-01-01T00:05:00.000Z"
    root, parent = reply_refs(first.external_id, "bafyabc", first.raw["record"])
    assert root.uri.endswith("3kroot") and parent.uri == first.external_id


def test_facets_use_utf8_byte_offsets() -> None:
    text = "Héllo 👋 @cust.bsky.social, see https://example.com/a."
    facets = build_facets(text, {"cust.bsky.social": "did:plc:cust"})
    mention, link = facets
    raw = text.encode()
    assert raw[mention["index"]["byteStart"] : mention["index"]["byteEnd"]] == b"@cust.bsky.social"
    assert mention["features"][0]["did"] == "did:plc:cust"
    assert raw[link["index"]["byteStart"] : link["index"]["byteEnd"]] == b"https://example.com/a"
    assert build_facets("mail @cust.bsky.socialx", {"cust.bsky.social": "d"}) == []


def test_permalink() -> None:
    assert permalink("at://did:plc:a/app.bsky.feed.post/3k", "") == "https://bsky.app/profile/did:plc:a/post/3k"
    assert permalink("record(1)", "h") == ""


@settings(max_examples=80, deadline=None)
@given(JUNK)
def test_parsers_never_crash_on_junk(junk: object) -> None:
    for parse in (parse_notifications, parse_thread):
        with contextlib.suppress(ValueError):
            parse(junk)
    with contextlib.suppress(ValueError):
        parse_notifications({"notifications": [junk, {"reason": "mention", "record": junk, "indexedAt": "2026-01-01"}]})


# -- connector over loopback ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connect(
    server: FakeBlueskyServer, secrets: MemorySecretStore, clock: FakeClock, **options: Any
) -> AsyncIterator[BlueskyConnector]:
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
        ref = AccountRef(id=3, kind="bluesky", handle=server.handle, base_url=server.base_url)
        connector = BlueskyConnector(client, account=ref, secrets=secrets, clock=clock, **options)
        yield connector
        await connector.aclose()


@pytest.fixture
def server() -> Any:
    with FakeBlueskyServer() as fake:
        yield fake


@pytest.fixture
def creds(secrets: MemorySecretStore) -> MemorySecretStore:
    secrets.set("bluesky:3", "app-pass-1234")
    return secrets


def test_first_and_incremental_sync_without_gaps_or_duplicates(
    server: FakeBlueskyServer, creds: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    for n in range(3):
        server.post("alice.test", f"@brand.test help {n}")
    server.like()

    async def scenario() -> None:
        async with connect(server, creds, clock, page_limit=2) as connector:
            identity = await connector.verify()
            assert identity.external_id == "did:plc:brand"
            first = await connector.fetch_new(None)
            # First sync reads the newest page only, oldest first.
            assert [i.text for i in first.items] == ["@brand.test help 1", "@brand.test help 2"]
            assert first.next_cursor is not None
            for n in range(3, 8):
                server.post("bob.test", f"later {n}")
            # A late-indexed notification inside the overlap window (the AppView delays some).
            server.post("carol.test", "delayed", indexed_delay=-30)
            second = await connector.fetch_new(first.next_cursor)
            assert sorted(i.text for i in second.items) == ["delayed"] + [f"later {n}" for n in range(3, 8)]
            assert [i.text for i in second.items][:2] == ["later 3", "later 4"]  # oldest first
            third = await connector.fetch_new(second.next_cursor)
            assert third.items == []
            assert set(second.next_cursor["seen"]) >= {i.external_id for i in second.items}  # type: ignore[index]

    arun(scenario())
    assert creds.get("bluesky:3:session") is not None  # the session is kept for the next start
    assert server.create_session_calls == 1


def test_reply_lands_in_thread_with_refs_and_facets(
    server: FakeBlueskyServer, creds: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    root = server.post("alice.test", "@brand.test my order")
    follow = server.post("alice.test", "still waiting", reason="reply", reply_to=root)

    async def scenario() -> None:
        async with connect(server, creds, clock) as connector:
            target = ReplyTarget(external_id=follow, author_handle="alice.test", visibility="public")
            receipt = await connector.send_reply(target, "Sorry @alice.test — on it ✨", idempotency_key="k1")
            assert receipt.external_id.startswith("at://did:plc:brand/")
            assert receipt.url.startswith("https://bsky.app/profile/brand.test/post/")
            with pytest.raises(Permanent, match="300"):
                await connector.send_reply(target, "x" * 301, idempotency_key="k2")

    arun(scenario())
    record = server.created[0]["record"]
    assert record["reply"]["root"]["uri"] == root
    assert record["reply"]["parent"]["uri"] == follow
    facet = record["facets"][0]
    text = record["text"].encode()
    assert text[facet["index"]["byteStart"] : facet["index"]["byteEnd"]] == b"@alice.test"
    assert facet["features"][0]["did"] == "did:plc:alice"


def test_concurrent_refresh_rotates_once(
    server: FakeBlueskyServer, creds: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    server.post("alice.test", "hello")

    async def scenario() -> None:
        async with connect(server, creds, clock) as connector:
            await connector.verify()
            server.expire_access()
            results = await asyncio.gather(connector.verify(), connector.fetch_new(None), connector.verify())
            assert results[0].handle == "brand.test"

    arun(scenario())
    assert server.refresh_calls == 1
    assert len(server.refresh) == 1  # exactly one valid refresh token remains
    stored = json.loads(creds.get("bluesky:3:session") or "{}")
    assert stored["refreshJwt"] in server.refresh


def test_revoked_refresh_logs_in_again_and_bad_password_is_auth_expired(
    server: FakeBlueskyServer, creds: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    async def scenario() -> None:
        async with connect(server, creds, clock) as connector:
            await connector.verify()
            server.expire_access()
            server.refresh.clear()
            assert (await connector.verify()).handle == "brand.test"
            assert server.create_session_calls == 2
            creds.set("bluesky:3", "wrong")
            server.expire_access()
            server.refresh.clear()
            with pytest.raises(AuthExpired, match="app password"):
                await connector.verify()

    arun(scenario())


def test_errors_are_typed(
    server: FakeBlueskyServer, creds: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    async def scenario() -> None:
        async with connect(server, creds, clock) as connector:
            await connector.verify()
            server.fail_next(
                429,
                {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                path="listNotifications",
                headers={"RateLimit-Reset": str(int(clock.now()) + 120)},
            )
            with pytest.raises(RateLimited) as caught:
                await connector.fetch_new(None)
            assert caught.value.retry_at == int(clock.now()) + 120
            server.fail_next(502, {"error": "UpstreamFailure"}, path="listNotifications")
            with pytest.raises(Transient):
                await connector.fetch_new(None)
            server.drop_next(path="listNotifications")
            with pytest.raises(Transient):
                await connector.fetch_new(None)
            with pytest.raises(Permanent):
                await connector.send_reply(
                    ReplyTarget("at://did:plc:x/app.bsky.feed.post/gone", "x.test", "public"), "hi", idempotency_key="k"
                )

    arun(scenario())


# -- status posts (a post of the brand's own) -------------------------------------------------------------


def test_status_rkey_is_a_tid_fixed_by_the_key() -> None:
    keys = [f"8c1f2e4a-{n:04d}-4c3b-9d7e-0123456789ab" for n in range(200)]
    rkeys = [status_rkey(key) for key in keys]
    assert all(TID_RE.match(rkey) for rkey in rkeys)
    assert len(set(rkeys)) == len(keys)
    assert [status_rkey(key) for key in keys] == rkeys  # the same key names the same record


def test_status_post_is_a_plain_post_with_link_facets_under_its_own_record_key(
    server: FakeBlueskyServer, creds: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    text = "We're answering new messages in about 25 minutes right now ✨ https://status.example.com/care"

    async def scenario() -> None:
        async with connect(server, creds, clock) as connector:
            receipt = await connector.post_status(text, idempotency_key="key-1")
            rkey = status_rkey("key-1")
            assert receipt.external_id == f"at://did:plc:brand/app.bsky.feed.post/{rkey}"
            assert receipt.url == f"https://bsky.app/profile/brand.test/post/{rkey}"
            assert receipt.posted_at == int(clock.now())
            before = len(server.requests)
            with pytest.raises(Permanent, match="300"):
                await connector.post_status("é" * 301, idempotency_key="key-2")
            with pytest.raises(Permanent, match="empty"):
                await connector.post_status("  ", idempotency_key="key-3")
            assert len(server.requests) == before  # refused before the network

    arun(scenario())
    (body,) = server.created
    assert (body["repo"], body["collection"]) == ("did:plc:brand", "app.bsky.feed.post")
    assert body["rkey"] == status_rkey("key-1")
    record = body["record"]
    assert record["text"] == text and "reply" not in record
    (facet,) = record["facets"]
    link = text.encode()[facet["index"]["byteStart"] : facet["index"]["byteEnd"]]
    assert link == b"https://status.example.com/care"
    assert facet["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": "https://status.example.com/care"}]


@pytest.mark.parametrize("taken_key_status", [500, 409])
def test_status_post_retried_with_the_same_key_returns_the_same_post(
    server: FakeBlueskyServer, creds: MemorySecretStore, clock: FakeClock, arun: Arun[Any], taken_key_status: int
) -> None:
    server.taken_key_status = taken_key_status  # the reference PDS fails with 500, others answer 409

    async def scenario() -> None:
        async with connect(server, creds, clock) as connector:
            first = await connector.post_status("About 10 minutes right now.", idempotency_key="key-1")
            clock.advance(600)  # the app crashed before recording it and tries again later
            again = await connector.post_status("About 10 minutes right now.", idempotency_key="key-1")
            assert again == first  # the same post, with its own time
            other = await connector.post_status("About 10 minutes right now.", idempotency_key="key-2")
            assert other.external_id != first.external_id

    arun(scenario())
    assert [body["rkey"] for body in server.created] == [status_rkey("key-1"), status_rkey("key-2")]
    assert len(server.own_posts()) == 2
    assert server.paths().count("/xrpc/com.atproto.repo.createRecord") == 3


def test_status_post_whose_answer_was_lost_is_found_not_posted_twice(
    server: FakeBlueskyServer, creds: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    async def scenario() -> None:
        async with connect(server, creds, clock) as connector:
            await connector.verify()
            server.lose_created_answers = 1  # stored, but the connection closes before the answer
            receipt = await connector.post_status("About 5 minutes right now.", idempotency_key="key-1")
            assert receipt.external_id.endswith("/" + status_rkey("key-1"))
            assert (await connector.post_status("About 5 minutes right now.", idempotency_key="key-1")) == receipt

    arun(scenario())
    assert server.own_posts() == [f"at://did:plc:brand/app.bsky.feed.post/{status_rkey('key-1')}"]


def test_status_post_errors_are_typed(
    server: FakeBlueskyServer, creds: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    async def scenario() -> None:
        async with connect(server, creds, clock) as connector:
            await connector.verify()
            server.fail_next(
                429,
                {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                path="createRecord",
                headers={"RateLimit-Reset": str(int(clock.now()) + 900)},
            )
            with pytest.raises(RateLimited) as limited:
                await connector.post_status("About 5 minutes.", idempotency_key="key-1")
            assert limited.value.retry_at == int(clock.now()) + 900
            server.fail_next(502, {"error": "UpstreamFailure"}, path="createRecord")
            with pytest.raises(Transient, match="502"):  # nothing stored under the key: the failure stands
                await connector.post_status("About 5 minutes.", idempotency_key="key-1")
            creds.set("bluesky:3", "revoked")
            server.expire_access()
            server.refresh.clear()
            with pytest.raises(AuthExpired, match="app password"):
                await connector.post_status("About 5 minutes.", idempotency_key="key-1")

    arun(scenario())
    assert server.created == [] and server.own_posts() == []


def test_missing_password_is_auth_expired(
    server: FakeBlueskyServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    async def scenario() -> None:
        async with connect(server, secrets, clock) as connector:
            with pytest.raises(AuthExpired, match="No app password"):
                await connector.verify()

    arun(scenario())


def test_chat_log_parsing() -> None:
    log_page = parse_chat_log(
        {
            "cursor": "0003",
            "logs": [
                {"$type": "chat.bsky.convo.defs#logBeginConvo", "convoId": "c1", "rev": "0001"},
                {
                    "$type": "chat.bsky.convo.defs#logCreateMessage",
                    "convoId": "c1",
                    "rev": "0002",
                    "message": {
                        "id": "m1",
                        "text": "hi",
                        "sender": {"did": "did:plc:a"},
                        "sentAt": "2026-01-01T00:00:00Z",
                    },
                },
                {"$type": "chat.bsky.convo.defs#logCreateMessage", "convoId": "c1", "message": {"id": "m2"}},
            ],
        }
    )
    assert [m[1]["id"] for m in log_page.messages] == ["m1"] and log_page.cursor == "0003" and log_page.size == 3
    item = parse_chat_message("c1", log_page.messages[0][1], handle="a.test", name="A", parent=None)
    assert item.external_id == chat_id("c1", "m1") and split_chat_id(item.external_id) == ("c1", "m1")
    assert item.kind is MentionKind.DIRECT and item.visibility == "direct"
    assert split_chat_id("at://did:plc:a/app.bsky.feed.post/1") is None


def test_direct_messages_sync_and_reply(
    server: FakeBlueskyServer, creds: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    server.dm("alice.test", "an old DM from before the app")
    clock.set(server.now + 5)

    async def scenario() -> None:
        async with connect(server, creds, clock) as connector:
            first = await connector.fetch_new(None)
            assert first.items == []  # history stays out of the queue
            server.dm("alice.test", "hello, my order?")
            clock.set(server.now)
            second = await connector.fetch_new(first.next_cursor)
            (dm,) = second.items
            assert dm.text == "hello, my order?" and dm.author_handle == "alice.test" and dm.kind is MentionKind.DIRECT
            receipt = await connector.send_reply(
                ReplyTarget(dm.external_id, dm.author_handle, dm.visibility), "Checking now!", idempotency_key="k"
            )
            server.dm("alice.test", "thanks!")
            clock.set(server.now)
            third = await connector.fetch_new(second.next_cursor)
            (follow_up,) = third.items
            assert follow_up.parent_external_id == receipt.external_id  # answers our reply: same thread
            with pytest.raises(Permanent, match="1000"):
                await connector.send_reply(
                    ReplyTarget(dm.external_id, "alice.test", "direct"), "x" * 1001, idempotency_key="k"
                )

    arun(scenario())
    assert server.sent_dms == [{"convoId": "convo-alice", "message": {"text": "Checking now!"}}]


def test_password_without_dm_access_keeps_mentions_syncing(
    server: FakeBlueskyServer, creds: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    server.chat_allowed = False
    server.post("alice.test", "@brand.test help")

    async def scenario() -> None:
        async with connect(server, creds, clock) as connector:
            batch = await connector.fetch_new(None)
            assert [i.text for i in batch.items] == ["@brand.test help"]
            assert batch.next_cursor is not None and "chat" not in batch.next_cursor

    arun(scenario())


def test_failing_chat_service_keeps_mentions_syncing_and_dms_on(
    server: FakeBlueskyServer, creds: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    # The reference PDS answers 500 when it has no chat service to proxy to (tests/e2e/bluesky).
    server.post("alice.test", "@brand.test help")

    async def scenario() -> None:
        async with connect(server, creds, clock) as connector:
            first = await connector.fetch_new(None)
            assert first.next_cursor is not None and "chat" in first.next_cursor
            server.chat_status = 500
            server.post("bob.test", "@brand.test still there?")
            server.dm("carol.test", "lost in the outage?")
            second = await connector.fetch_new(first.next_cursor)
            assert [i.text for i in second.items] == ["@brand.test still there?"]
            assert second.next_cursor is not None
            assert second.next_cursor["chat"] == first.next_cursor["chat"]  # the chat log is read again later
            server.chat_status = None
            third = await connector.fetch_new(second.next_cursor)
            assert [i.text for i in third.items] == ["lost in the outage?"]

    arun(scenario())


def test_deleted_and_blocked_posts_are_told_apart(
    server: FakeBlueskyServer, creds: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    kept = server.post("alice.test", "@brand.test thanks")
    gone = server.post("bob.test", "@brand.test oops")
    hidden = server.post("carol.test", "@brand.test never again")
    server.delete(gone)
    server.block_brand("carol.test")

    async def scenario() -> None:
        async with connect(server, creds, clock) as connector:
            assert [i.external_id for i in await connector.fetch_thread(kept)] == [kept]
            with pytest.raises(PostDeleted, match="deleted"):
                await connector.fetch_thread(gone)
            with pytest.raises(PostBlocked, match="has blocked this account"):
                await connector.fetch_thread(hidden)
            check = await connector.check_statuses({kept: None, gone: None, hidden: None, chat_id("c", "m"): None})
            assert check.deleted == [gone]
            assert check.edited == []

    arun(scenario())
