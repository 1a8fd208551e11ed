"""The sync engine: store-then-save-cursor, dedupe across repeated pages, health and backoff on errors."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
import sqlite_utils

from console.channels.base import Batch, Cursor, Identity, InboundItem, ReplyReceipt, ReplyTarget
from console.channels.errors import AuthExpired, ChannelError, RateLimited, Transient
from console.model import SyncReport
from console.sync.inbox import MAX_BACKOFF, Poller, backoff_seconds
from storage.accounts import AccountRepo, SyncStateRepo
from storage.errors import StorageError
from storage.mentions import MentionRepo
from storage.rows import Health, MentionKind, UpsertResult
from tests.fakes.clock import FakeClock


def inbound(ext: str, posted: int, parent: str | None = None) -> InboundItem:
    return InboundItem(
        external_id=ext, author_id="c1", author_handle="cust@example.social", author_name="Cust",
        text=f"message {ext}", url=f"https://example.social/@cust/{ext}", posted_at=posted,
        kind=MentionKind.PUBLIC, visibility="public", parent_external_id=parent, raw={"id": ext},
    )  # fmt: skip


class ScriptedConnector:
    """A fake channel: each fetch_new pops the next scripted Batch or error, recording the cursor it got."""

    kind: ClassVar[str] = "mastodon"

    def __init__(self, script: list[Batch | ChannelError]) -> None:
        self.script = script
        self.cursors: list[Cursor | None] = []

    async def fetch_new(self, cursor: Cursor | None) -> Batch:
        self.cursors.append(cursor)
        step = self.script.pop(0)
        if isinstance(step, ChannelError):
            raise step
        return step

    async def verify(self) -> Identity:
        return Identity("1", "care", "Care")

    async def fetch_thread(self, external_id: str) -> list[InboundItem]:
        return []

    async def send_reply(
        self, target: ReplyTarget, text: str, *, idempotency_key: str, visibility: str | None = None
    ) -> ReplyReceipt:
        raise AssertionError("not used here")

    async def aclose(self) -> None:
        return None


class FlakyMentionRepo(MentionRepo):
    """The real repository, failing its first ``failures`` stores as a full disk would."""

    def __init__(self, db: sqlite_utils.Database, failures: int) -> None:
        super().__init__(db)
        self.failures = failures

    def store_batch(self, items: Any, **kwargs: Any) -> UpsertResult:
        if self.failures:
            self.failures -= 1
            raise StorageError("database or disk is full")
        return super().store_batch(items, **kwargs)


def make_poller(
    db: sqlite_utils.Database, clock: FakeClock, connector: ScriptedConnector, mentions: MentionRepo | None = None
) -> tuple[Poller, int]:
    accounts = AccountRepo(db)
    account = accounts.add(kind="mastodon", handle="care", base_url="http://x", now=int(clock.now()))
    poller = Poller(
        mentions or MentionRepo(db), accounts, SyncStateRepo(db), {account.id: connector}, clock,
        interval=30.0, rng=random.Random(7),
    )  # fmt: skip
    return poller, account.id


def sync(poller: Poller, account_id: int, arun: Callable[..., Any]) -> SyncReport:
    account = poller.accounts.get(account_id)
    assert account is not None
    result: SyncReport = arun(poller.sync_account(account))
    return result


def test_cursor_is_saved_only_after_the_batch_is_stored(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    t = int(clock.now())
    page = Batch([inbound("10", t - 60), inbound("11", t - 30)], {"min_id": "n11"})
    connector = ScriptedConnector([page, page])
    mentions = FlakyMentionRepo(db, failures=1)
    poller, account_id = make_poller(db, clock, connector, mentions)

    failed = sync(poller, account_id, arun)
    assert not failed.ok
    assert "disk is full" in (failed.error or "")
    assert poller.sync_state.get(account_id).cursor is None
    assert mentions.total_messages() == 0

    ok = sync(poller, account_id, arun)
    assert ok.stored == 2
    assert poller.sync_state.get(account_id).cursor == {"min_id": "n11"}
    assert connector.cursors == [None, None]  # the failed batch was fetched again from the old cursor


def test_repeated_and_overlapping_pages_are_stored_once(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    t = int(clock.now())
    a, b, c = inbound("1", t - 90), inbound("2", t - 60), inbound("3", t - 30)
    connector = ScriptedConnector([Batch([a, b], {"min_id": "2"}), Batch([b, c, c], {"min_id": "3"}), Batch([], None)])
    poller, account_id = make_poller(db, clock, connector)
    reports = [sync(poller, account_id, arun) for _ in range(3)]
    assert [r.stored for r in reports] == [2, 1, 0]
    assert [r.duplicates for r in reports] == [0, 2, 0]
    assert poller.mentions.total_messages() == 3
    assert poller.sync_state.get(account_id).cursor == {"min_id": "3"}  # an empty batch keeps the cursor
    assert connector.cursors == [None, {"min_id": "2"}, {"min_id": "3"}]


def test_rate_limit_sets_health_and_waits_until_retry_at(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    retry_at = clock.now() + 120
    poller, account_id = make_poller(db, clock, ScriptedConnector([RateLimited("slow down", retry_at=retry_at)]))
    report = sync(poller, account_id, arun)
    assert report.health is Health.RATE_LIMITED
    assert report.next_attempt_at == int(retry_at)
    account = poller.accounts.get(account_id)
    assert account is not None and account.health is Health.RATE_LIMITED
    assert poller.sync_state.get(account_id).next_attempt_at == int(retry_at)


def test_expired_token_turns_the_account_red_and_a_success_turns_it_green(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    connector = ScriptedConnector([AuthExpired("The access token was revoked"), Batch([], None)])
    poller, account_id = make_poller(db, clock, connector)
    report = sync(poller, account_id, arun)
    account = poller.accounts.get(account_id)
    assert account is not None
    assert (account.health, account.health_reason) == (Health.AUTH_EXPIRED, "The access token was revoked")
    assert report.error == "The access token was revoked"
    sync(poller, account_id, arun)
    account = poller.accounts.get(account_id)
    assert account is not None and account.health is Health.OK


def test_transient_failures_back_off_and_mark_failing_after_three(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    connector = ScriptedConnector([Transient("connection reset")] * 4)
    poller, account_id = make_poller(db, clock, connector)
    delays = []
    healths = []
    for _ in range(4):
        report = sync(poller, account_id, arun)
        assert report.next_attempt_at is not None
        delays.append(report.next_attempt_at - report.at)
        healths.append(report.health)
    assert healths[:2] == [Health.DEGRADED, Health.DEGRADED]
    assert healths[2:] == [Health.FAILING, Health.FAILING]
    assert delays[3] > delays[0]
    assert poller.sync_state.get(account_id).consecutive_failures == 4


@pytest.mark.parametrize("failures", [1, 3, 8, 30])
def test_backoff_is_jittered_and_capped(failures: int) -> None:
    rng = random.Random(1)
    values = {backoff_seconds(failures, base=30, rng=rng) for _ in range(50)}
    ceiling = min(MAX_BACKOFF, 30 * 2 ** (failures - 1))
    assert all(ceiling / 2 <= v <= ceiling for v in values)
    assert len(values) > 1


def test_listeners_get_reports_and_a_broken_listener_does_not_stop_sync(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    t = int(clock.now())
    poller, account_id = make_poller(db, clock, ScriptedConnector([Batch([inbound("1", t)], {"min_id": "1"})]))
    seen: list[SyncReport] = []

    def broken(report: SyncReport) -> None:
        raise RuntimeError("listener bug")

    poller.subscribe(broken)
    poller.subscribe(seen.append)
    sync(poller, account_id, arun)
    assert len(seen) == 1
    assert len(seen[0].new_items) == 1
