"""MastodonConnector over real loopback sockets: the sandbox server, and a scripted fake for faults."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from console.channels.base import AccountRef, Batch, InboundItem, ReplyTarget
from console.channels.errors import AuthExpired, ChannelError, Permanent, RateLimited, Transient, Unreachable
from console.channels.mastodon import (
    InstanceLimits,
    MastodonConnector,
    html_to_text,
    id_key,
    parse_time,
    reply_length,
    with_mention,
)
from console.ports import MemorySecretStore
from storage.rows import MentionKind
from tests import shared_fixtures
from tests.fakes.clock import FakeClock
from tests.fakes.http_server import FakeHttpServer

T = TypeVar("T")
Arun = Callable[[Awaitable[T]], T]

ACCOUNT_ID = 7
TOKEN_KEY = f"mastodon:{ACCOUNT_ID}"
TOKEN = "test-token-123"


def recorded(name: str) -> dict[str, Any]:
    """A recorded interaction from ../shared/fixtures/mastodon (never copied into the project)."""
    return shared_fixtures.recorded("mastodon", name)


def account(base_url: str) -> AccountRef:
    return AccountRef(id=ACCOUNT_ID, kind="mastodon", handle="brand", base_url=base_url)


@contextlib.asynccontextmanager
async def connect(
    base_url: str,
    secrets: MemorySecretStore,
    clock: FakeClock,
    *,
    http_timeout: httpx.Timeout | None = None,
    **options: Any,
) -> AsyncIterator[MastodonConnector]:
    async with httpx.AsyncClient(trust_env=False, timeout=http_timeout or httpx.Timeout(2.0)) as client:
        connector = MastodonConnector(client, account=account(base_url), secrets=secrets, clock=clock, **options)
        try:
            yield connector
        finally:
            await connector.aclose()


@pytest.fixture
def stored(secrets: MemorySecretStore) -> MemorySecretStore:
    secrets.set(TOKEN_KEY, TOKEN)
    return secrets


@pytest.fixture
def server() -> Iterator[FakeHttpServer]:
    with FakeHttpServer() as fake:
        yield fake


def status(sid: str, *, visibility: str = "public", acct: str = "carol@other.example", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": sid,
        "created_at": "2026-01-01T00:00:00.000Z",
        "in_reply_to_id": None,
        "visibility": visibility,
        "uri": f"https://other.example/users/x/statuses/{sid}",
        "url": f"https://other.example/@x/{sid}",
        "content": f"<p>@brand message {sid}</p>",
        "account": {"id": f"acc-{acct}", "username": acct.split("@")[0], "acct": acct, "display_name": ""},
    }
    body.update(extra)
    return body


def notification(nid: str, sid: str | None = None, *, kind: str = "mention", **status_extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": nid, "type": kind, "created_at": "2026-01-01T00:00:00.000Z"}
    if kind == "mention":
        entry["status"] = status(sid or f"s{nid}", **status_extra)
    return entry


def page(*nids: str) -> list[dict[str, Any]]:
    """A notifications page, newest first as Mastodon sends it."""
    return [notification(nid) for nid in sorted(nids, key=id_key, reverse=True)]


# == request building and paging over the scripted fake ================================================


def test_first_sync_fetches_the_newest_page_only(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]
) -> None:
    server.reply(json=page("12", "11", "10"))

    async def go() -> Batch:
        async with connect(server.base_url, stored, clock, page_limit=3) as connector:
            return await connector.fetch_new(None)

    batch = arun(go())
    assert [item.external_id for item in batch.items] == ["s10", "s11", "s12"]  # oldest first
    assert batch.next_cursor == {"min_id": "12"}
    (request,) = server.requests  # a full page, but no history download on first sync
    assert request.method == "GET"
    assert request.path == "/api/v1/notifications"
    assert request.query["types[]"] == ["mention"]
    assert request.query["limit"] == ["3"]
    assert "min_id" not in request.query
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_fetch_new_pages_forward_with_min_id(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]
) -> None:
    server.reply(json=page("3", "4"))
    server.reply(json=page("5", "6"))
    server.reply(json=page("7"))  # short page: the last one

    async def go() -> Batch:
        async with connect(server.base_url, stored, clock, page_limit=2) as connector:
            return await connector.fetch_new({"min_id": "2"})

    batch = arun(go())
    assert [item.external_id for item in batch.items] == ["s3", "s4", "s5", "s6", "s7"]
    assert batch.next_cursor == {"min_id": "7"}
    assert [r.query["min_id"] for r in server.requests] == [["2"], ["4"], ["6"]]
    assert server.unscripted == []


def test_fetch_new_compares_ids_by_length_not_as_text(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]
) -> None:
    server.reply(json=page("9", "10"))
    server.reply(json=[])

    async def go() -> Batch:
        async with connect(server.base_url, stored, clock, page_limit=2) as connector:
            return await connector.fetch_new({"min_id": "8"})

    batch = arun(go())
    assert [item.external_id for item in batch.items] == ["s9", "s10"]
    assert batch.next_cursor == {"min_id": "10"}
    assert server.requests[1].query["min_id"] == ["10"]


def test_fetch_new_stops_at_max_pages(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]
) -> None:
    server.reply(json=page("2", "3"))
    server.reply(json=page("4", "5"))

    async def go() -> Batch:
        async with connect(server.base_url, stored, clock, page_limit=2, max_pages=2) as connector:
            return await connector.fetch_new({"min_id": "1"})

    batch = arun(go())
    assert len(server.requests) == 2
    assert batch.next_cursor == {"min_id": "5"}  # the rest comes on the next poll, from here


def test_fetch_new_with_nothing_new_keeps_the_cursor(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]
) -> None:
    server.reply(json=[])

    async def go() -> Batch:
        async with connect(server.base_url, stored, clock) as connector:
            return await connector.fetch_new({"min_id": "50"})

    assert arun(go()) == Batch(items=[], next_cursor=None)


def test_fetch_new_never_moves_the_cursor_backwards(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]
) -> None:
    # A server that ignores min_id answers with the newest page, all at or below the cursor.
    server.reply(json=page("48", "49", "50"))

    async def go() -> Batch:
        async with connect(server.base_url, stored, clock, page_limit=3) as connector:
            return await connector.fetch_new({"min_id": "50"})

    assert arun(go()) == Batch(items=[], next_cursor=None)
    assert len(server.requests) == 1


def test_fetch_new_dedupes_statuses_and_reports_skipped(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[tuple[Batch, Any]]
) -> None:
    broken = {"id": "23", "type": "mention", "created_at": "2026-01-01T00:00:00Z"}
    server.reply(
        json=[
            notification("24", "dup"),
            broken,
            notification("22", kind="follow"),
            notification("21", "dup"),
            notification("20", "first"),
        ]
    )

    async def go() -> tuple[Batch, Any]:
        async with connect(server.base_url, stored, clock) as connector:
            batch = await connector.fetch_new({"min_id": "19"})
            return batch, [(rejected.external_id, rejected.reason) for rejected in batch.rejected]

    batch, skipped = arun(go())
    assert [item.external_id for item in batch.items] == ["first", "dup"]
    assert batch.next_cursor == {"min_id": "24"}
    assert [nid for nid, _ in skipped] == ["23"]


def test_fetch_new_reads_direct_messages(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]
) -> None:
    server.reply(json=[notification("5", "dm", visibility="direct")])

    async def go() -> Batch:
        async with connect(server.base_url, stored, clock) as connector:
            return await connector.fetch_new(None)

    (item,) = arun(go()).items
    assert (item.kind, item.visibility, item.author_handle) == (MentionKind.DIRECT, "direct", "carol@other.example")


def test_fetch_new_parses_a_recorded_page_and_its_rate_limit(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[tuple[Batch, Any]]
) -> None:
    fixture = recorded("notifications_mentions_page1.json")
    server.reply(json=fixture["response"]["json"], headers=fixture["response"]["headers"])

    async def go() -> tuple[Batch, Any]:
        async with connect(server.base_url, stored, clock) as connector:
            return await connector.fetch_new(None), connector.rate_limit

    batch, rate_limit = arun(go())
    assert [item.external_id for item in batch.items] == ["117020577157693549"]
    assert batch.next_cursor == {"min_id": "21"}
    assert (rate_limit.limit, rate_limit.remaining) == (300, 299)
    assert rate_limit.reset_at == pytest.approx(parse_time("2026-08-01T13:55:00Z") + 0.940463)


def test_send_reply_builds_the_request(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    fixture = recorded("status_reply.json")
    server.reply(json=fixture["response"]["json"])
    target = ReplyTarget(external_id="117020583245459824", author_handle="carol@other.example", visibility="private")

    async def go() -> Any:
        async with connect(server.base_url, stored, clock) as connector:
            return await connector.send_reply(target, "we are on it", idempotency_key="key-1")

    receipt = arun(go())
    body = fixture["response"]["json"]
    assert receipt.external_id == body["id"]
    assert receipt.url == body["url"]
    assert receipt.posted_at == parse_time(body["created_at"])
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/api/v1/statuses")
    assert request.headers["idempotency-key"] == "key-1"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form == {
        "status": ["@carol@other.example we are on it"],
        "in_reply_to_id": ["117020583245459824"],
        "visibility": ["private"],
    }


@pytest.mark.parametrize(
    ("target_visibility", "override", "sent"),
    [
        ("direct", None, "direct"),
        ("direct", "public", "direct"),  # a DM is never answered in public
        ("public", None, "public"),
        ("unlisted", None, "unlisted"),
        ("public", "unlisted", "unlisted"),
    ],
)
def test_send_reply_visibility(
    server: FakeHttpServer,
    stored: MemorySecretStore,
    clock: FakeClock,
    arun: Arun[Any],
    target_visibility: str,
    override: str | None,
    sent: str,
) -> None:
    server.reply(json=status("900", visibility=sent))
    target = ReplyTarget(external_id="1", author_handle="dave", visibility=target_visibility)

    async def go() -> Any:
        async with connect(server.base_url, stored, clock) as connector:
            return await connector.send_reply(target, "@Dave thanks", idempotency_key="k", visibility=override)

    arun(go())
    assert server.requests[0].form["visibility"] == [sent]
    assert server.requests[0].form["status"] == ["@Dave thanks"]  # already mentioned: unchanged


def test_verify_and_instance_limits(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    server.reply(json={"id": "42", "username": "brand", "acct": "brand", "display_name": "Brand Support"})
    server.reply(json=recorded("instance_v2.json")["response"]["json"])

    async def go() -> Any:
        async with connect(server.base_url, stored, clock) as connector:
            identity = await connector.verify()
            first = await connector.instance_limits()
            second = await connector.instance_limits()
            return identity, first, second

    identity, first, second = arun(go())
    assert (identity.external_id, identity.handle, identity.display_name) == ("42", "brand", "Brand Support")
    assert first == second == InstanceLimits(500, 23)
    assert [r.path for r in server.requests] == ["/api/v1/accounts/verify_credentials", "/api/v2/instance"]


def test_instance_limits_fall_back_to_v1(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[InstanceLimits]
) -> None:
    server.reply(404, json={"error": "Not Found"})
    server.reply(json={"uri": "old.example", "max_toot_chars": 5000})

    async def go() -> InstanceLimits:
        async with connect(server.base_url, stored, clock) as connector:
            return await connector.instance_limits()

    assert arun(go()) == InstanceLimits(5000, 23)
    assert [r.path for r in server.requests] == ["/api/v2/instance", "/api/v1/instance"]


def test_fetch_thread_orders_ancestors_status_descendants(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[list[InboundItem]]
) -> None:
    server.reply(json=status("20", in_reply_to_id="10"))
    server.reply(
        json={
            "ancestors": [status("1"), status("10", in_reply_to_id="1")],
            "descendants": [status("30", in_reply_to_id="20"), {"id": "31"}],  # the last one is malformed
        }
    )

    async def go() -> list[InboundItem]:
        async with connect(server.base_url, stored, clock) as connector:
            return await connector.fetch_thread("20")

    thread = arun(go())
    assert [item.external_id for item in thread] == ["1", "10", "20", "30"]
    assert [r.path for r in server.requests] == ["/api/v1/statuses/20", "/api/v1/statuses/20/context"]


def test_aclose_leaves_the_injected_client_open(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[bool]
) -> None:
    async def go() -> bool:
        async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
            connector = MastodonConnector(client, account=account(server.base_url), secrets=stored, clock=clock)
            await connector.aclose()
            return client.is_closed

    assert arun(go()) is False


# == error mapping over the scripted fake ================================================================


def run_fetch(base_url: str, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Batch], **options: Any) -> Batch:
    async def go() -> Batch:
        async with connect(base_url, secrets, clock, **options) as connector:
            return await connector.fetch_new({"min_id": "1"})

    return arun(go())


def test_missing_token_is_auth_expired_without_a_request(
    server: FakeHttpServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]
) -> None:
    with pytest.raises(AuthExpired, match="No access token stored"):
        run_fetch(server.base_url, secrets, clock, arun)
    assert server.requests == []


def test_token_key_can_be_overridden(
    server: FakeHttpServer, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]
) -> None:
    secrets.set("elsewhere", "other-token")
    server.reply(json=[])
    run_fetch(server.base_url, secrets, clock, arun, token_key="elsewhere")
    assert server.requests[0].headers["authorization"] == "Bearer other-token"


@pytest.mark.parametrize("status_code", [401, 403])
def test_rejected_token_is_auth_expired(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Batch], status_code: int
) -> None:
    server.reply(status_code, json=recorded("error_401_no_token.json")["response"]["json"])
    with pytest.raises(AuthExpired, match="The access token is invalid"):
        run_fetch(server.base_url, stored, clock, arun)


def test_auth_expired_rereads_the_token_next_time(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]
) -> None:
    server.reply(401, json={"error": "The access token was revoked"})
    server.reply(json=[])

    async def go() -> Batch:
        async with connect(server.base_url, stored, clock) as connector:
            with pytest.raises(AuthExpired):
                await connector.fetch_new(None)
            stored.set(TOKEN_KEY, "fresh-token")  # the agent signed in again
            return await connector.fetch_new(None)

    arun(go())
    assert [r.headers["authorization"] for r in server.requests] == [f"Bearer {TOKEN}", "Bearer fresh-token"]


@pytest.mark.parametrize(
    ("headers", "expected_delay"),
    [
        ({"Retry-After": "30"}, 30.0),
        ({"Retry-After": "Thu, 01 Jan 2026 00:02:00 GMT"}, 120.0),  # FakeClock starts at 2026-01-01T00:00Z
        ({"Retry-After": "30", "X-RateLimit-Reset": "2026-01-01T00:05:00.000Z"}, 30.0),
        (
            {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2026-01-01T00:05:00.000Z"},
            300.0,
        ),
        ({"X-RateLimit-Reset": "2025-12-31T23:59:00.000Z"}, 60.0),  # a reset in the past: wait anyway
        ({}, 60.0),
    ],
)
def test_429_is_rate_limited_with_retry_at(
    server: FakeHttpServer,
    stored: MemorySecretStore,
    clock: FakeClock,
    arun: Arun[Batch],
    headers: dict[str, str],
    expected_delay: float,
) -> None:
    server.reply(429, json={"error": "Too many requests"}, headers=headers)
    with pytest.raises(RateLimited) as caught:
        run_fetch(server.base_url, stored, clock, arun)
    assert caught.value.retry_at == pytest.approx(clock.now() + expected_delay)


@pytest.mark.parametrize(
    ("fixture_name", "status_code", "text"),
    [
        ("error_404_status_not_found.json", 404, "Not Found"),
        ("error_422_status_empty.json", 422, "バリデーションに失敗しました"),
    ],
)
def test_recorded_client_errors_are_permanent(
    server: FakeHttpServer,
    stored: MemorySecretStore,
    clock: FakeClock,
    arun: Arun[Any],
    fixture_name: str,
    status_code: int,
    text: str,
) -> None:
    fixture = recorded(fixture_name)
    server.reply(status_code, json=fixture["response"]["json"], headers=fixture["response"]["headers"])
    target = ReplyTarget(external_id="0", author_handle="dave", visibility="public")

    async def go() -> Any:
        async with connect(server.base_url, stored, clock) as connector:
            return await connector.send_reply(target, "", idempotency_key="k")

    with pytest.raises(Permanent, match=text) as caught:
        arun(go())
    assert caught.value.status == status_code


@pytest.mark.parametrize("status_code", [400, 404, 410, 422])
def test_client_errors_are_permanent(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Any], status_code: int
) -> None:
    server.reply(status_code, json={"error": "Record not found"})

    async def go() -> Any:
        async with connect(server.base_url, stored, clock) as connector:
            return await connector.fetch_thread("404")

    with pytest.raises(Permanent, match="Record not found") as caught:
        arun(go())
    assert caught.value.status == status_code


@pytest.mark.parametrize(
    ("status_code", "body", "headers"),
    [
        (500, '{"error": "boom"}', {}),
        (502, "<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"}),
        (503, "", {}),
        (200, "{not json", {}),
        (200, "<!DOCTYPE html><html><body>Maintenance</body></html>", {"Content-Type": "text/html"}),
        (200, '{"error": "a dict where a list belongs"}', {}),
        (200, "\xff\xfe garbage", {"Content-Type": "application/json; charset=utf-8"}),
    ],
)
def test_server_trouble_and_malformed_bodies_are_transient(
    server: FakeHttpServer,
    stored: MemorySecretStore,
    clock: FakeClock,
    arun: Arun[Batch],
    status_code: int,
    body: str,
    headers: dict[str, str],
) -> None:
    server.reply(status_code, body=body.encode("latin-1"), headers=headers)
    with pytest.raises(Transient) as caught:
        run_fetch(server.base_url, stored, clock, arun)
    if status_code == 200:
        assert "malformed" in str(caught.value)


def test_429_uses_its_own_headers_not_an_older_reset(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    server.reply(
        json=[],
        headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "2026-01-01T01:00:00Z"},
    )
    server.reply(429, json={"error": "Too many requests"})

    async def go() -> Any:
        async with connect(server.base_url, stored, clock) as connector:
            await connector.fetch_new(None)
            assert connector.rate_limit is not None
            assert connector.rate_limit.should_throttle
            with pytest.raises(RateLimited) as caught:
                await connector.fetch_new(None)
            return caught.value.retry_at

    assert arun(go()) == clock.now() + 60.0


def test_malformed_thread_context_is_transient(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    server.reply(json=status("20"))
    server.reply(json=[])

    async def go() -> Any:
        async with connect(server.base_url, stored, clock) as connector:
            return await connector.fetch_thread("20")

    with pytest.raises(Transient, match="malformed"):
        arun(go())


def test_dropped_connection_is_transient(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]
) -> None:
    server.drop()
    with pytest.raises(Transient, match="Could not reach"):
        run_fetch(server.base_url, stored, clock, arun)


def test_timeout_is_transient(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]
) -> None:
    server.stall(10.0)  # stop() at teardown wakes the handler
    with pytest.raises(Transient, match="in time"):
        run_fetch(server.base_url, stored, clock, arun, http_timeout=httpx.Timeout(2.0, read=0.3))


def test_refused_connection_is_transient(stored: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]) -> None:
    with FakeHttpServer() as gone:
        base_url = gone.base_url  # the port is free again once the server stops
    with pytest.raises(Transient):
        run_fetch(base_url, stored, clock, arun)


def test_non_http_base_url_is_permanent(stored: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]) -> None:
    with pytest.raises(Permanent, match="not an http"):
        run_fetch("ftp://mastodon.example", stored, clock, arun)


def test_only_channel_errors_escape(
    server: FakeHttpServer, stored: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    server.drop()
    server.reply(500, body=b"")
    server.reply(200, body=b"nope")

    async def go() -> list[type[BaseException]]:
        seen: list[type[BaseException]] = []
        async with connect(server.base_url, stored, clock) as connector:
            for call in (connector.verify, connector.instance_limits, lambda: connector.fetch_thread("1")):
                try:
                    await call()
                except ChannelError as exc:
                    seen.append(type(exc))
        return seen

    assert arun(go()) == [Unreachable, Transient, Transient]  # Unreachable is a Transient


# == against the sandbox Mastodon-compatible server ====================================================


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[Any]:
    try:
        from console.sandbox import SandboxServer  # built by another engineer; may be absent
    except ImportError:
        pytest.skip("console.sandbox.SandboxServer is not available yet")
    server = SandboxServer(seed=1, rate_per_minute=0.0, backlog=0, clock=clock)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox_secrets(sandbox: Any, secrets: MemorySecretStore) -> MemorySecretStore:
    secrets.set(TOKEN_KEY, sandbox.token)
    return secrets


def notification_queries(sandbox: Any) -> list[dict[str, list[str]]]:
    return [query for method, path, query in sandbox.requests if (method, path) == ("GET", "/api/v1/notifications")]


def test_sandbox_first_sync_reads_the_newest_page_only(
    sandbox: Any, sandbox_secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]
) -> None:
    ids = sandbox.generate(100)

    async def go() -> Batch:
        async with connect(sandbox.base_url, sandbox_secrets, clock, page_limit=40) as connector:
            return await connector.fetch_new(None)

    batch = arun(go())
    assert len(batch.items) == 40
    assert len({item.external_id for item in batch.items}) == 40
    assert [item.posted_at for item in batch.items] == sorted(item.posted_at for item in batch.items)
    assert batch.next_cursor == {"min_id": ids[-1]}
    (query,) = notification_queries(sandbox)
    assert "min_id" not in query
    assert query["types[]"] == ["mention"]


def test_sandbox_forward_paging_neither_skips_nor_repeats(
    sandbox: Any, sandbox_secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    sandbox.generate(10)

    async def status_ids(client: httpx.AsyncClient, notification_ids: list[str]) -> list[str]:
        headers = {"Authorization": f"Bearer {sandbox.token}"}
        found = []
        for nid in notification_ids:
            response = await client.get(f"{sandbox.base_url}/api/v1/notifications/{nid}", headers=headers)
            found.append(response.json()["status"]["id"])
        return found

    async def go() -> tuple[Batch, Batch, Batch, list[str], list[str]]:
        async with connect(sandbox.base_url, sandbox_secrets, clock, page_limit=40) as connector:
            first = await connector.fetch_new(None)
            clock.advance(60)
            new_ids = sandbox.generate(95)
            second = await connector.fetch_new(first.next_cursor)
            third = await connector.fetch_new(second.next_cursor)
        async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
            expected = await status_ids(client, new_ids)
        return first, second, third, new_ids, expected

    first, second, third, new_ids, expected = arun(go())
    assert len(first.items) == 10
    assert [item.external_id for item in second.items] == expected  # every one, once, oldest first
    assert not {item.external_id for item in first.items} & set(expected)
    assert second.next_cursor == {"min_id": new_ids[-1]}
    assert third == Batch(items=[], next_cursor=None)
    mins = [query.get("min_id") for query in notification_queries(sandbox)]
    assert mins == [None, [first.next_cursor["min_id"]], [new_ids[39]], [new_ids[79]], [new_ids[-1]]]


def test_sandbox_cursor_never_moves_backwards(
    sandbox: Any, sandbox_secrets: MemorySecretStore, clock: FakeClock, arun: Arun[list[Batch]]
) -> None:
    sandbox.generate(3)

    async def go() -> list[Batch]:
        async with connect(sandbox.base_url, sandbox_secrets, clock) as connector:
            batches = [await connector.fetch_new(None)]
            cursor = batches[-1].next_cursor
            batches.append(await connector.fetch_new(cursor))  # nothing new
            clock.advance(5)
            sandbox.post_mention(author="gina", text="@care hello again")
            batches.append(await connector.fetch_new(cursor))
            return batches

    first, idle, later = arun(go())
    assert first.next_cursor is not None
    assert idle == Batch(items=[], next_cursor=None)
    assert later.next_cursor is not None
    assert id_key(later.next_cursor["min_id"]) > id_key(first.next_cursor["min_id"])
    assert [item.text for item in later.items] == ["@care hello again"]


def test_sandbox_reply_to_a_dm_is_direct_mentions_the_customer_and_is_idempotent(
    sandbox: Any, sandbox_secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    sandbox.post_mention(author="carol@other.example", text="@care I was charged twice", visibility="direct")

    async def go() -> Any:
        async with connect(sandbox.base_url, sandbox_secrets, clock) as connector:
            (item,) = (await connector.fetch_new(None)).items
            target = ReplyTarget(item.external_id, item.author_handle, item.visibility)
            first = await connector.send_reply(
                target, "Sorry! Refunding now.", idempotency_key="k1", visibility="public"
            )
            again = await connector.send_reply(
                target, "Sorry! Refunding now.", idempotency_key="k1", visibility="public"
            )
            return item, first, again

    item, first, again = arun(go())
    assert (item.kind, item.author_handle) == (MentionKind.DIRECT, "carol@other.example")
    assert again == first
    (posted,) = sandbox.statuses_posted()
    assert posted["id"] == first.external_id
    assert posted["visibility"] == "direct"
    assert posted["in_reply_to_id"] == item.external_id
    assert [m["acct"] for m in posted["mentions"]] == ["carol@other.example"]
    assert html_to_text(posted["content"]) == "@carol Sorry! Refunding now."
    assert first.url == posted["url"]
    assert first.posted_at == parse_time(posted["created_at"])


def test_sandbox_reply_copies_visibility_and_keeps_an_existing_mention(
    sandbox: Any, sandbox_secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    sandbox.post_mention(author="dave", text="@care app crashes", visibility="unlisted")

    async def go() -> Any:
        async with connect(sandbox.base_url, sandbox_secrets, clock) as connector:
            (item,) = (await connector.fetch_new(None)).items
            target = ReplyTarget(item.external_id, item.author_handle, item.visibility)
            await connector.send_reply(target, "Thanks @Dave, fixed in 2.1", idempotency_key="a")
            await connector.send_reply(target, "One more thing", idempotency_key="b")

    arun(go())
    posted = sandbox.statuses_posted()
    assert [p["visibility"] for p in posted] == ["unlisted", "unlisted"]
    assert [html_to_text(p["content"]) for p in posted] == ["Thanks @dave, fixed in 2.1", "@dave One more thing"]


def test_sandbox_verify_instance_and_thread(
    sandbox: Any, sandbox_secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    sandbox.post_mention(author="erin", text="@care first")

    async def go() -> Any:
        async with connect(sandbox.base_url, sandbox_secrets, clock) as connector:
            identity = await connector.verify()
            limits = await connector.instance_limits()
            first = await connector.fetch_new(None)
            (head,) = first.items
            target = ReplyTarget(head.external_id, head.author_handle, head.visibility)
            reply = await connector.send_reply(target, "looking", idempotency_key="t1")
            clock.advance(1)
            sandbox.post_mention(author="erin", text="@care second", in_reply_to_id=reply.external_id)
            (follow_up,) = (await connector.fetch_new(first.next_cursor)).items
            from_leaf = await connector.fetch_thread(follow_up.external_id)
            from_root = await connector.fetch_thread(head.external_id)
            return identity, limits, [head.external_id, reply.external_id, follow_up.external_id], from_leaf, from_root

    identity, limits, chain, from_leaf, from_root = arun(go())
    assert identity.handle == sandbox.brand_handle
    assert limits == InstanceLimits(500, 23)
    assert [item.external_id for item in from_leaf] == chain
    assert [item.external_id for item in from_root] == chain
    assert from_leaf[-1].parent_external_id == chain[1]


def test_sandbox_length_limit_matches_reply_length(
    sandbox: Any, sandbox_secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    sandbox.post_mention(author="fay@far.example", text="@care hi")
    base = "see https://example.com/a/rather/long/path/to/somewhere ok "

    def padded(length: int) -> str:
        text = base + "é" * 10
        full = with_mention(text, "fay@far.example")
        return text + "a" * (length - reply_length(full))

    async def go() -> Any:
        async with connect(sandbox.base_url, sandbox_secrets, clock) as connector:
            (item,) = (await connector.fetch_new(None)).items
            target = ReplyTarget(item.external_id, item.author_handle, item.visibility)
            limit = (await connector.instance_limits()).max_characters
            ok = await connector.send_reply(target, padded(limit), idempotency_key="fits")
            with pytest.raises(Permanent) as caught:
                await connector.send_reply(target, padded(limit + 1), idempotency_key="too-long")
            return ok, caught.value

    ok, error = arun(go())
    assert ok.external_id
    assert error.status == 422
    assert "limit" in str(error)


def test_sandbox_wrong_token_is_auth_expired(
    sandbox: Any, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Batch]
) -> None:
    secrets.set(TOKEN_KEY, "revoked-token")
    with pytest.raises(AuthExpired, match="access token is invalid"):
        run_fetch(sandbox.base_url, secrets, clock, arun)


def test_sandbox_deleted_status_is_permanent(
    sandbox: Any, sandbox_secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    async def go() -> Any:
        async with connect(sandbox.base_url, sandbox_secrets, clock) as connector:
            return await connector.fetch_thread("404404")

    with pytest.raises(Permanent) as caught:
        arun(go())
    assert caught.value.status == 404


def test_sandbox_rate_limit_is_reported(
    sandbox: Any, sandbox_secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    async def go() -> Any:
        async with connect(sandbox.base_url, sandbox_secrets, clock) as connector:
            for _ in range(400):
                try:
                    await connector.verify()
                except RateLimited as exc:
                    return exc.retry_at, connector.rate_limit
            raise AssertionError("the sandbox never throttled")

    retry_at, rate_limit = arun(go())
    assert retry_at == clock.now() + 300  # Retry-After: the rest of the 5-minute window
    assert rate_limit.remaining == 0
    assert rate_limit.limit == 300
