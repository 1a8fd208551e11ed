"""Mastodon finishing: edited and deleted statuses, and the instance's length limit with URL weighting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from console.channels.base import AccountRef, ReplyTarget
from console.channels.errors import Permanent, RateLimited
from console.channels.mastodon import MastodonConnector
from console.ports import MemorySecretStore
from tests.fakes.clock import FakeClock
from tests.fakes.http_server import FakeHttpServer

T = TypeVar("T")
Arun = Callable[[Awaitable[T]], T]


def status(sid: str, *, edited_at: str | None = None, text: str = "hello") -> dict[str, Any]:
    return {
        "id": sid,
        "created_at": "2026-01-01T00:00:00.000Z",
        "edited_at": edited_at,
        "in_reply_to_id": None,
        "visibility": "public",
        "url": f"https://other.example/@carol/{sid}",
        "content": f"<p>{text}</p>",
        "account": {"id": "9", "username": "carol", "acct": "carol@other.example", "display_name": "Carol"},
    }


@pytest.fixture
def server() -> Iterator[FakeHttpServer]:
    with FakeHttpServer() as fake:
        yield fake


def connector(client: httpx.AsyncClient, base_url: str, clock: FakeClock) -> MastodonConnector:
    secrets = MemorySecretStore()
    secrets.set("mastodon:1", "tok")
    return MastodonConnector(client, account=AccountRef(1, "mastodon", "brand", base_url), secrets=secrets, clock=clock)


def test_check_statuses_finds_edits_and_deletions(server: FakeHttpServer, clock: FakeClock, arun: Arun[Any]) -> None:
    server.reply(json=status("1"))  # unchanged
    server.reply(json=status("2", edited_at="2026-01-01T00:05:00.000Z", text="fixed typo"))  # edited since
    server.reply(404, json={"error": "Record not found"})  # deleted upstream
    server.reply(json=status("4", edited_at="2026-01-01T00:01:00.000Z"))  # the edit we already know

    async def scenario() -> Any:
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
            return await connector(client, server.base_url, clock).check_statuses(
                {"1": None, "2": None, "3": None, "4": "2026-01-01T00:01:00.000Z"}
            )

    check = arun(scenario())
    assert [item.external_id for item in check.edited] == ["2"]
    assert check.edited[0].text == "fixed typo"
    assert check.deleted == ["3"]
    assert [r.path for r in server.requests] == [f"/api/v1/statuses/{n}" for n in "1234"]


def test_check_statuses_rate_limit_concludes_nothing(server: FakeHttpServer, clock: FakeClock, arun: Arun[Any]) -> None:
    server.reply(429, json={"error": "Too many requests"}, headers={"Retry-After": "30"})

    async def scenario() -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
            with pytest.raises(RateLimited):
                await connector(client, server.base_url, clock).check_statuses({"1": None})

    arun(scenario())


def test_reply_over_the_instance_limit_is_refused_before_sending(
    server: FakeHttpServer, clock: FakeClock, arun: Arun[Any]
) -> None:
    server.reply(json={"configuration": {"statuses": {"max_characters": 60, "characters_reserved_per_url": 23}}})
    server.reply(json=status("99"))
    long_url = "https://example.com/" + "a" * 200  # counts as 23, not 220

    async def scenario() -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
            conn = connector(client, server.base_url, clock)
            limits = await conn.instance_limits()
            assert limits.max_characters == 60
            target = ReplyTarget("5", "carol@other.example", "public")
            receipt = await conn.send_reply(target, f"see {long_url}", idempotency_key="k")
            assert receipt.external_id == "99"
            with pytest.raises(Permanent, match=r"limit on .* is 60"):
                await conn.send_reply(target, "x" * 60, idempotency_key="k2")

    arun(scenario())
    assert len(server.requests) == 2  # the over-long reply never left the machine
