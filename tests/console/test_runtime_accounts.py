"""Runtime wiring of issue 6: connectors per account kind, accounts added while running, manual intake."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from console.channels import CHANNELS, ChannelKind, build_connector
from console.channels.base import AccountRef
from console.channels.bluesky import BlueskyConnector
from console.channels.discourse import DiscourseConnector
from console.channels.facebook import FacebookConnector
from console.channels.mastodon import MastodonConnector
from console.channels.x import XConnector
from console.channels.youtube import YouTubeConnector
from console.ports import MemorySecretStore
from console.runtime import SandboxOptions, open_runtime
from storage.mentions import QueueView
from tests.fakes.clock import FakeClock

T = TypeVar("T")
Arun = Callable[[Awaitable[T]], T]


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("mastodon", MastodonConnector),
        ("bluesky", BlueskyConnector),
        ("discourse", DiscourseConnector),
        ("x", XConnector),
        ("youtube", YouTubeConnector),
        ("facebook", FacebookConnector),
    ],
)
def test_build_connector_per_kind(kind: str, cls: type, clock: FakeClock, arun: Arun[Any]) -> None:
    async def go() -> Any:
        async with httpx.AsyncClient() as client:
            return build_connector(
                kind, client, AccountRef(1, kind, "h", "https://example.org"), MemorySecretStore(), clock
            )

    assert isinstance(arun(go()), cls)
    assert ChannelKind(kind) in CHANNELS


def test_manual_and_unknown_kinds_have_no_connector(clock: FakeClock, arun: Arun[Any]) -> None:
    async def go() -> Any:
        async with httpx.AsyncClient() as client:
            ref = AccountRef(1, "manual", "manual", "manual://intake")
            return [build_connector(k, client, ref, MemorySecretStore(), clock) for k in ("manual", "myspace")]

    assert arun(go()) == [None, None]


def test_accounts_added_while_running_are_synced(tmp_path: Path, clock: FakeClock, arun: Arun[Any]) -> None:
    async def go() -> None:
        runtime = open_runtime(
            tmp_path, clock=clock, secrets=MemorySecretStore(), sandbox=SandboxOptions(rate_per_minute=0, backlog=0)
        )
        try:
            row = runtime.accounts.add(kind="discourse", handle="brand", base_url="https://forum.example", now=0)
            runtime.attach_account(row)
            assert isinstance(runtime.connectors[row.id], DiscourseConnector)
            assert runtime.poller.connectors is runtime.connectors
            runtime.attach_account(row)  # a new credential for a running account: same connector, caches dropped
            assert isinstance(runtime.connectors[row.id], DiscourseConnector)
            result = runtime.manual_intake().add(link="https://x.com/cust/status/7", text="hello?")
            assert result.mention_id in runtime.mentions.queue_ids(QueueView.OPEN)
            service = runtime.account_service()
            assert [view.kind for view in service.list()] == ["discourse", "manual"]  # the sandbox is not listed
        finally:
            await runtime.aclose()

    arun(go())


def test_a_hand_added_post_does_not_stop_the_sandbox_after_a_restart(
    tmp_path: Path, clock: FakeClock, arun: Arun[Any]
) -> None:
    """Issue 19 #3: the manual intake's account is no channel connection; the next start still runs the sandbox."""
    options = SandboxOptions(rate_per_minute=0, backlog=2)

    async def first() -> None:
        runtime = open_runtime(tmp_path, clock=clock, secrets=MemorySecretStore(), sandbox=options)
        try:
            runtime.manual_intake().add(link="https://x.com/cust/status/7", text="hello?")
        finally:
            await runtime.aclose()

    async def second() -> tuple[bool, int]:
        runtime = open_runtime(tmp_path, clock=clock, secrets=MemorySecretStore(), sandbox=options)
        try:
            reports = await runtime.poller.sync_once()
            return runtime.on_sandbox, sum(report.stored for report in reports if report.ok)
        finally:
            await runtime.aclose()

    arun(first())
    clock.advance(60)
    on_sandbox, stored = arun(second())
    assert on_sandbox
    assert stored == 2  # the sandbox's backlog was synced on the second start
