"""Discourse: parse functions on recorded and hand-written JSON, the connector against a fake forum on loopback,
and the User API key sign-in in the browser."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from console.accounts.discourse_auth import DiscourseAuthError, decrypt_payload, redirect_uri, request_user_api_key
from console.channels.base import AccountRef, ReplyTarget
from console.channels.discourse import (
    DiscourseConnector,
    parse_notifications,
    parse_post,
    parse_topic_posts,
    post_key,
    split_post_key,
)
from console.channels.errors import AuthExpired, Permanent, RateLimited, Transient
from console.ports import MemorySecretStore
from storage.rows import MentionKind
from tests import shared_fixtures
from tests.fakes.clock import FakeClock
from tests.fakes.discourse_server import FakeDiscourseServer

T = TypeVar("T")
#: Arbitrary small JSON values, for "never crashes" properties.
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)
Arun = Callable[[Awaitable[T]], T]

DATA = Path(__file__).resolve().parents[1] / "data" / "discourse"
BASE = "https://forum.example"


def recorded(name: str) -> Any:
    return shared_fixtures.recorded("discourse", name)


def test_recorded_notifications_keep_the_private_message() -> None:
    page = parse_notifications(recorded("notifications_list.json"))
    assert page.ids == [3, 2]
    (ref,) = page.refs  # the badge (type 12) is not a message
    assert (ref.topic_id, ref.post_number, ref.post_id, ref.private) == (10, 1, 14, True)


def test_recorded_posts_parse() -> None:
    item = parse_post(recorded("post_get.json"), base_url=BASE)
    assert item.external_id == "8#4"
    assert item.parent_external_id == "8#1"
    assert item.author_handle == "blake"
    assert item.url.startswith(BASE + "/t/")
    assert item.text.startswith("b15bd65a")
    created = parse_post(recorded("create_post_response.json"), base_url=BASE)
    assert created.external_id == "17#1" and created.parent_external_id is None
    assert parse_topic_posts(recorded("topic_with_posts.json"), base_url=BASE)
    updated = recorded("update_post_response.json")["post"]
    assert parse_post(updated, base_url=BASE).raw["version"] == updated["version"]


def test_hand_written() -> None:
    page = parse_notifications(json.loads((DATA / "notifications_mixed.json").read_text()))
    assert [r.id for r in page.refs] == [912, 910, 909]
    assert page.refs[1].private and not page.refs[0].private
    item = parse_post(json.loads((DATA / "post_reply.json").read_text()), base_url=BASE, private=True)
    assert item.text == "Still late"  # raw empty: cooked HTML becomes text
    assert item.parent_external_id == "10#2"
    assert item.kind is MentionKind.DIRECT and item.visibility == "private_message"
    assert item.url == BASE + "/t/order-late/10/4"
    assert split_post_key(post_key(10, 4)) == (10, 4)
    with pytest.raises(ValueError, match="post key"):
        split_post_key("at://x")


@settings(max_examples=80, deadline=None)
@given(JUNK)
def test_parsers_never_crash_on_junk(junk: object) -> None:
    for call in (
        lambda: parse_notifications(junk),
        lambda: parse_notifications({"notifications": [junk]}),
        lambda: parse_post(junk, base_url=BASE),
        lambda: parse_topic_posts(junk, base_url=BASE),
        lambda: parse_topic_posts({"post_stream": {"posts": [junk]}}, base_url=BASE),
    ):
        with contextlib.suppress(ValueError):
            call()


@contextlib.asynccontextmanager
async def connect(
    server: FakeDiscourseServer, secrets: MemorySecretStore, clock: FakeClock, **options: Any
) -> AsyncIterator[DiscourseConnector]:
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
        ref = AccountRef(id=5, kind="discourse", handle="brand", base_url=server.base_url)
        connector = DiscourseConnector(client, account=ref, secrets=secrets, clock=clock, **options)
        yield connector
        await connector.aclose()


@pytest.fixture
def server() -> Any:
    with FakeDiscourseServer() as fake:
        yield fake


def test_sync_pages_and_replies_in_thread(
    server: FakeDiscourseServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    secrets.set("discourse:5", "admin-key-1")
    help_topic = server.topic("alice", "@brand my order never arrived, please help")
    server.topic("bob", "Unrelated chatter in a category we do not watch")
    server.other_notification()

    async def scenario() -> None:
        async with connect(server, secrets, clock, page_limit=2) as connector:
            assert (await connector.verify()).handle == "brand"
            first = await connector.fetch_new(None)
            assert [i.external_id for i in first.items] == [f"{help_topic}#1"]
            target = ReplyTarget(first.items[0].external_id, "alice", "public")
            receipt = await connector.send_reply(
                target, "Sorry Alice, we are looking into it now.", idempotency_key="k"
            )
            assert receipt.external_id == f"{help_topic}#2"
            server.reply(help_topic, "alice", "Thanks, any news?", reply_to=2)
            watched = server.topic("carol", "Question in the watched category", category=2)
            server.whisper(help_topic, "staffer", "internal note")
            pm = server.topic("dave", "Private: refund for order 42", private=True)
            server.reply(pm, "dave", "Also the invoice please")
            for _ in range(3):
                server.other_notification()
            second = await connector.fetch_new(first.next_cursor)
            keys = [i.external_id for i in second.items]
            assert keys == [f"{help_topic}#3", f"{watched}#1", f"{pm}#1", f"{pm}#2"]
            follow_up = second.items[0]
            assert follow_up.parent_external_id == receipt.external_id  # joins our reply's thread
            assert second.items[2].kind is MentionKind.DIRECT
            third = await connector.fetch_new(second.next_cursor)
            assert third.items == [] and third.next_cursor is None
            await connector.send_reply(
                ReplyTarget(f"{pm}#2", "dave", "private_message"), "Invoice is on its way, Dave.", idempotency_key="k2"
            )

    arun(scenario())
    assert server.created[0] == {
        "topic_id": help_topic,
        "raw": "Sorry Alice, we are looking into it now.",
        "reply_to_post_number": 1,
    }
    assert server.created[1]["reply_to_post_number"] == 2
    assert server.topics[server.created[1]["topic_id"]]["archetype"] == "private_message"


def test_user_api_key_pending_approval_and_errors(
    server: FakeDiscourseServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    secrets.set("discourse:5", json.dumps({"user_api_key": "user-key-1", "client_id": "care-console"}))
    topic = server.topic("alice", "@brand hello there, a question")

    async def scenario() -> None:
        async with connect(server, secrets, clock) as connector:
            await connector.verify()
            target = ReplyTarget(f"{topic}#1", "alice", "public")
            with pytest.raises(Permanent, match="too short") as short:
                await connector.send_reply(target, "ok", idempotency_key="k")
            assert short.value.status == 422
            server.require_approval = True
            receipt = await connector.send_reply(target, "This one needs a moderator's approval.", idempotency_key="k")
            assert receipt.external_id == "pending:9001" and receipt.url == ""
            server.fail_next(
                429,
                {"errors": ["slow down"], "error_type": "rate_limit", "extras": {"wait_seconds": 42}},
                path="notifications",
            )
            with pytest.raises(RateLimited) as limited:
                await connector.fetch_new(None)
            assert limited.value.retry_at == clock.now() + 42
            server.fail_next(429, {"errors": ["slow"]}, path="notifications", headers={"Retry-After": "7"})
            with pytest.raises(RateLimited) as limited:
                await connector.fetch_new(None)
            assert limited.value.retry_at == clock.now() + 7
            server.fail_next(503, None, path="notifications")
            with pytest.raises(Transient):
                await connector.fetch_new(None)
            server.user_api_key = "revoked"
            with pytest.raises(AuthExpired):
                await connector.fetch_new(None)

    arun(scenario())


def test_deleted_post_is_skipped(
    server: FakeDiscourseServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    secrets.set("discourse:5", "admin-key-1")
    topic = server.topic("alice", "@brand first")
    server.delete(topic, 1)

    async def scenario() -> None:
        async with connect(server, secrets, clock) as connector:
            batch = await connector.fetch_new(None)
            assert batch.items == [] and batch.next_cursor == {"max_id": 1}

    arun(scenario())


def test_post_fetches_per_poll_are_capped(
    server: FakeDiscourseServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    secrets.set("discourse:5", "admin-key-1")
    server.topic("alice", "@brand first one")

    async def scenario() -> None:
        async with connect(server, secrets, clock, max_posts=3) as connector:
            first = await connector.fetch_new(None)
            for n in range(7):
                server.topic("bob", f"@brand question number {n}")
            second = await connector.fetch_new(first.next_cursor)
            third = await connector.fetch_new(second.next_cursor)
            fourth = await connector.fetch_new(third.next_cursor)
            texts = [i.text for batch in (second, third, fourth) for i in batch.items]
            assert [len(b.items) for b in (second, third, fourth)] == [3, 3, 1]
            assert texts == [f"@brand question number {n}" for n in range(7)]

    arun(scenario())


# --------------------------------------------------------------------------------------------------------
# User API key sign-in in the browser (console.accounts.discourse_auth) against the fake forum, over loopback
# --------------------------------------------------------------------------------------------------------


def forum_browser(visited: list[str]) -> Callable[[str], bool]:
    """Plays the user's browser: opens the approval page and follows the forum's redirect to the app's listener."""

    def open_url(url: str) -> bool:
        visited.append(url)
        with httpx.Client(trust_env=False, follow_redirects=True, timeout=5.0) as browser:
            browser.get(url)
        return True

    return open_url


def sign_in(server: FakeDiscourseServer, opener: Callable[[str], object], *, wait: float = 5.0) -> Any:
    return request_user_api_key(server.base_url, open_browser=opener, redirect_port=0, wait_seconds=wait)


def test_browser_sign_in_issues_a_key_the_connector_uses(
    server: FakeDiscourseServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    visited: list[str] = []
    key = arun(sign_in(server, forum_browser(visited)))
    assert server.issued == {key.key: key.client_id} and key.client_id.startswith("care-console-")
    (query,) = server.key_requests
    assert query["scopes"] == "read,write" and query["padding"] == "oaep"
    assert query["application_name"] == "Care Console" and query["client_id"] == key.client_id
    assert query["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert query["auth_redirect"].startswith("http://127.0.0.1:")
    assert query["auth_redirect"].endswith("/discourse/callback")
    assert len(query["nonce"]) >= 32
    assert visited[0].startswith(server.base_url + "/user-api-key/new?")

    secrets.set("discourse:5", key.secret())

    async def use() -> None:
        async with connect(server, secrets, clock) as connector:
            assert (await connector.verify()).handle == "brand"

    arun(use())
    used = server.requests[-1]
    assert used.path == "/session/current.json"
    assert used.headers["user-api-key"] == key.key and used.headers["user-api-client-id"] == key.client_id
    assert "api-key" not in used.headers and "api-username" not in used.headers


def test_browser_sign_in_on_a_forum_without_oaep(server: FakeDiscourseServer, arun: Arun[Any]) -> None:
    server.ignore_padding = True  # older forums answer with PKCS#1 v1.5 whatever is asked
    key = arun(sign_in(server, forum_browser([])))
    assert key.key in server.issued


def test_browser_sign_in_refuses_another_nonce(server: FakeDiscourseServer, arun: Arun[Any]) -> None:
    server.tamper_nonce = True
    with pytest.raises(DiscourseAuthError, match="did not match this sign-in"):
        arun(sign_in(server, forum_browser([])))


def test_browser_sign_in_without_approval(server: FakeDiscourseServer, arun: Arun[Any]) -> None:
    server.approve = False
    with pytest.raises(DiscourseAuthError, match="sent no key back"):
        arun(sign_in(server, forum_browser([])))


def test_browser_sign_in_with_an_undecryptable_payload(server: FakeDiscourseServer, arun: Arun[Any]) -> None:
    server.garble_payload = True
    with pytest.raises(DiscourseAuthError, match="could not be decrypted"):
        arun(sign_in(server, forum_browser([])))


def test_browser_sign_in_times_out_and_names_the_redirect_to_allow(
    server: FakeDiscourseServer, arun: Arun[Any]
) -> None:
    server.refuse_redirect = True  # the forum shows an error page: the browser never comes back
    with pytest.raises(DiscourseAuthError, match="not completed") as late:
        arun(sign_in(server, forum_browser([]), wait=0.3))
    assert "allowed_user_api_auth_redirects" in str(late.value)
    assert redirect_uri(0) in str(late.value)
    assert server.issued == {}


def test_browser_sign_in_without_a_browser(server: FakeDiscourseServer, arun: Arun[Any]) -> None:
    with pytest.raises(DiscourseAuthError, match="open this address"):
        arun(sign_in(server, lambda url: False))


def test_payload_decryption_rejects_junk() -> None:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for junk in ("", "not base64 !!", "AAAA"):
        with pytest.raises(DiscourseAuthError):
            decrypt_payload(private_key, junk)
