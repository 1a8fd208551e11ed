"""The sandbox keeps the rendering of unchanged statuses and accounts (a 100,000-mention backfill renders each
once), and never serves a stale one: a new account changes how a mention renders, a new post an author's counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from console.sandbox import SandboxServer
from tests.fakes.clock import FakeClock


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(seed=3, clock=FakeClock(1_780_000_000.0)) as server:
        yield server


def notification(server: SandboxServer, notification_id: str) -> dict[str, Any]:
    with httpx.Client(trust_env=False, headers={"Authorization": f"Bearer {server.token}"}) as client:
        response = client.get(f"{server.base_url}/api/v1/notifications/{notification_id}")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def test_sandbox_renders_a_mention_once_its_account_exists(sandbox: SandboxServer) -> None:
    first = sandbox.post_mention(author="ann", text="hi, ask @zedd about it")
    before = notification(sandbox, first)["status"]
    assert '<span class="h-card"' not in before["content"].split("ask", 1)[1]
    assert "zedd" not in [m["acct"] for m in before["mentions"]]
    assert notification(sandbox, first)["status"] == before  # nothing changed: the same answer

    sandbox.post_mention(author="zedd", text="me?")
    after = notification(sandbox, first)["status"]
    assert f'href="{sandbox.base_url}/@zedd" class="u-url mention">@<span>zedd</span>' in after["content"]
    assert "zedd" in [m["acct"] for m in after["mentions"]]


def test_sandbox_account_counts_follow_new_posts(sandbox: SandboxServer) -> None:
    first = sandbox.post_mention(author="bea", text="one")
    assert notification(sandbox, first)["account"]["statuses_count"] == 1
    sandbox.post_mention(author="bea", text="two")
    again = notification(sandbox, first)
    assert again["account"]["statuses_count"] == 2
    assert again["status"]["account"]["statuses_count"] == 2
