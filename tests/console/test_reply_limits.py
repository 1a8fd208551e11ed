"""ReplyLimits: an account's real Mastodon limit, read once per account in the background, defaults until known."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from console.channels.base import AccountRef
from console.channels.mastodon import InstanceLimits, MastodonConnector
from console.ports import MemorySecretStore
from console.replies.checks import check_length
from console.replies.limits import DEFAULT_LIMITS, RETRY_SECONDS, ReplyLimits
from tests.fakes.clock import FakeClock
from tests.fakes.http_server import FakeHttpServer

ACCOUNT_ID = 7
INSTANCE = {"domain": "big.example", "configuration": {"statuses": {"max_characters": 1000,
                                                                     "characters_reserved_per_url": 30}}}  # fmt: skip


@pytest.fixture
def server() -> Iterator[FakeHttpServer]:
    with FakeHttpServer() as fake:
        yield fake


def run_with_connector(server: FakeHttpServer, clock: FakeClock, body: Any) -> Any:
    """Run ``body(limits)`` with a real MastodonConnector for account 7 against the fake server."""
    secrets = MemorySecretStore()
    secrets.set(f"mastodon:{ACCOUNT_ID}", "token")

    async def go() -> Any:
        async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
            ref = AccountRef(id=ACCOUNT_ID, kind="mastodon", handle="brand", base_url=server.base_url)
            connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock)
            try:
                return await body(ReplyLimits({ACCOUNT_ID: connector}, clock))
            finally:
                await connector.aclose()

    return asyncio.run(go())


def test_limits_are_read_once_per_account_and_remembered(server: FakeHttpServer, clock: FakeClock) -> None:
    server.reply(json=INSTANCE)
    heard: list[int] = []

    async def body(limits: ReplyLimits) -> tuple[InstanceLimits, InstanceLimits | None, bool, InstanceLimits]:
        known = asyncio.Event()
        limits.subscribe(heard.append)
        limits.subscribe(lambda _account: known.set())
        before = limits.limits(ACCOUNT_ID)
        assert limits.request(ACCOUNT_ID)  # started in the background, the caller does not wait
        assert not limits.request(ACCOUNT_ID)  # one read at a time
        await asyncio.wait_for(known.wait(), 5)
        again = limits.request(ACCOUNT_ID)
        return before, limits.known(ACCOUNT_ID), again, await limits.load(ACCOUNT_ID)

    before, known, again, loaded = run_with_connector(server, clock, body)
    assert before == DEFAULT_LIMITS == InstanceLimits(500, 23)
    assert known == loaded == InstanceLimits(1000, 30)
    assert not again
    assert heard == [ACCOUNT_ID]
    assert [r.path for r in server.requests] == ["/api/v2/instance"]


def test_a_failed_read_keeps_the_defaults_and_waits_before_asking_again(
    server: FakeHttpServer, clock: FakeClock
) -> None:
    server.reply(503, json={"error": "busy"})
    server.reply(json=INSTANCE)

    async def body(limits: ReplyLimits) -> tuple[InstanceLimits | None, InstanceLimits, bool, InstanceLimits | None]:
        first = await limits.load(ACCOUNT_ID)
        too_soon = limits.request(ACCOUNT_ID)
        clock.advance(RETRY_SECONDS)
        return first, limits.limits(ACCOUNT_ID), too_soon, await limits.load(ACCOUNT_ID)

    first, meanwhile, too_soon, second = run_with_connector(server, clock, body)
    assert first is None and meanwhile == DEFAULT_LIMITS
    assert not too_soon
    assert second == InstanceLimits(1000, 30)


def test_accounts_without_instance_limits_and_no_loop_start_nothing(clock: FakeClock) -> None:
    limits = ReplyLimits({1: object()}, clock)  # type: ignore[dict-item]
    assert not limits.request(1)  # no instance limits on this channel
    assert not limits.request(99)  # no connector
    assert limits.limits(1) == DEFAULT_LIMITS


def test_check_length_counts_links_and_limit_of_the_instance() -> None:
    text = "see https://example.com/" + "a" * 200
    default = check_length("mastodon", text, handle="ana")
    assert default.count == len("@ana see ") + 23
    big = check_length("mastodon", text + " " + "x" * 600, handle="ana", limit=1000, url_length=30)
    assert big.count == len("@ana see ") + 30 + 1 + 600 and big.limit == 1000 and not big.over
    assert check_length("mastodon", "x" * 600, handle="ana").over


@pytest.mark.parametrize(
    ("channel", "direct", "rule", "limit"),
    [
        ("facebook", True, "messenger", 2000),  # a Facebook account's Messenger conversation
        ("bluesky", True, "bluesky_dm", 1000),  # Bluesky chat: 1,000 graphemes
        ("bluesky", False, "bluesky", 300),
        ("youtube", False, "youtube", 10_000),
        ("mastodon", True, "mastodon", 500),  # a Mastodon DM is a status: same limit
    ],
)
def test_the_account_channel_and_privacy_choose_the_counting(channel: str, direct: bool, rule: str, limit: int) -> None:
    from console.replies.checks import length_rule

    assert length_rule(channel, direct=direct) == rule
    check = check_length(rule, "a" * (limit + 1))
    assert check.over and f"{limit:,}" in check.reason
    assert check.reason.startswith("Too long for ")
    assert "Bluesky_dm" not in check.reason
