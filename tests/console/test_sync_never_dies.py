"""A sync task never dies of an unexpected error: it becomes the account's health, the cause is logged, the loop
goes on and the next poll works (issue 21)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
import sqlite_utils

from console.channels.base import AccountRef
from console.channels.mastodon import MastodonConnector
from console.model import SyncReport
from console.ports import MemorySecretStore
from console.sandbox import SandboxServer
from console.sync.inbox import Poller
from storage.accounts import AccountRepo, SyncStateRepo
from storage.health import HealthRepo
from storage.mentions import DeadlinePlan, MentionRepo
from storage.rows import Health, NewMention, UpsertResult
from tests.fakes.clock import FakeClock

Arun = Callable[..., Any]


class GremlinMentions(MentionRepo):
    """A mention repository with a bug: its first ``failures`` batches raise an error nobody expects."""

    def __init__(self, db: sqlite_utils.Database, *, failures: int = 1) -> None:
        super().__init__(db)
        self.failures = failures

    def store_batch(
        self,
        items: Sequence[NewMention],
        *,
        channel: str,
        fetched_at: int,
        plan: DeadlinePlan,
        actor: str = "sync",
    ) -> UpsertResult:
        if self.failures:
            self.failures -= 1
            raise KeyError("gremlin in the store")
        return super().store_batch(items, channel=channel, fetched_at=fetched_at, plan=plan, actor=actor)


@pytest.fixture
def server(clock: FakeClock) -> Iterator[SandboxServer]:
    with SandboxServer(seed=3, rate_per_minute=0.0, backlog=4, clock=clock) as sandbox:
        yield sandbox


def poller_for(
    db: sqlite_utils.Database, clock: FakeClock, server: SandboxServer, client: httpx.AsyncClient
) -> tuple[Poller, int]:
    accounts = AccountRepo(db)
    account = accounts.add(kind="mastodon", handle="care", base_url=server.base_url, now=int(clock.now()))
    secrets = MemorySecretStore()
    secrets.set(f"mastodon:{account.id}", server.token)
    ref = AccountRef(account.id, "mastodon", "care", server.base_url)
    connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock)
    poller = Poller(
        GremlinMentions(db), accounts, SyncStateRepo(db), {account.id: connector}, clock, health=HealthRepo(db)
    )
    return poller, account.id


def stored_count(db: sqlite_utils.Database) -> int:
    return int(db.execute("SELECT count(*) FROM mentions").fetchone()[0])


def test_sync_once_survives_an_unexpected_store_error_as_failing_health(
    db: sqlite_utils.Database, clock: FakeClock, server: SandboxServer, arun: Arun, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
            poller, account_id = poller_for(db, clock, server, client)
            with caplog.at_level(logging.ERROR, logger="console.sync.inbox"):
                (report,) = await poller.sync_once()
            assert not report.ok
            assert report.health is Health.FAILING
            assert report.error is not None and "gremlin in the store" in report.error
            account = poller.accounts.get(account_id)
            assert account is not None and account.health is Health.FAILING
            assert account.health_reason is not None and "gremlin in the store" in account.health_reason
            assert any("gremlin in the store" in (r.exc_text or "") for r in caplog.records), "the cause is logged"
            assert stored_count(db) == 0
            # The next attempt is scheduled (backoff), and once it comes the poll works.
            assert report.next_attempt_at is not None and report.next_attempt_at > report.at
            clock.set(report.next_attempt_at)
            await poller.poll_due()
            account = poller.accounts.get(account_id)
            assert account is not None and account.health is Health.OK
            assert stored_count(db) == 4

    arun(scenario())


def test_the_poll_loop_goes_on_after_an_unexpected_store_error(
    db: sqlite_utils.Database, clock: FakeClock, server: SandboxServer, arun: Arun
) -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
            poller, account_id = poller_for(db, clock, server, client)
            reports: asyncio.Queue[SyncReport] = asyncio.Queue()
            poller.subscribe(reports.put_nowait)
            loop = asyncio.create_task(poller.run())
            try:
                failed = await asyncio.wait_for(reports.get(), 5)
                assert failed.health is Health.FAILING
                assert failed.error is not None and "gremlin in the store" in failed.error
                assert not loop.done(), "the poll loop goes on"
                assert failed.next_attempt_at is not None
                clock.set(failed.next_attempt_at)
                poller.wake()
                worked = await asyncio.wait_for(reports.get(), 5)
                assert worked.ok and worked.stored == 4
                account = poller.accounts.get(account_id)
                assert account is not None and account.health is Health.OK
            finally:
                loop.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await loop

    arun(scenario())
