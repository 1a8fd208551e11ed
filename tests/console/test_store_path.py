"""One store path (issue 21 item 2): the Poller stores every batch through a BatchStore, the app's worker thread
(BackgroundStore) or the caller's own connection (InlineStore, what a Poller without a store uses), and both run
the same conversion, so an item that cannot be stored is quarantined alike, and the rest lands alike."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlite_utils

from console.channels.base import Batch, Cursor, Identity, InboundItem, ReplyReceipt, ReplyTarget
from console.channels.errors import Permanent
from console.sync.inbox import Poller
from console.sync.store_worker import BackgroundStore, BatchStore, InlineStore
from storage.accounts import AccountRepo, SyncStateRepo
from storage.db import open_database
from storage.health import HealthRepo
from storage.mentions import MentionRepo
from storage.rows import MentionKind
from tests.fakes.clock import FakeClock

Arun = Callable[..., Any]


def item(external_id: str, raw: dict[str, Any]) -> InboundItem:
    return InboundItem(
        external_id=external_id,
        author_id="a1",
        author_handle="cust",
        author_name="Cust",
        text=f"message {external_id}",
        url=f"https://example.test/{external_id}",
        posted_at=1_767_225_000,
        kind=MentionKind.PUBLIC,
        visibility="public",
        parent_external_id=None,
        raw=raw,
    )


class OnePage:
    """A connector that serves one page: two items that store, and one whose raw JSON cannot be written."""

    kind: ClassVar[str] = "mastodon"

    async def verify(self) -> Identity:
        return Identity("1", "care", "Care")

    async def fetch_new(self, cursor: Cursor | None) -> Batch:
        if cursor is not None:
            return Batch(items=[], next_cursor=None)
        unstorable = item("2", {"id": "2", "tags": {"a set", "is not JSON"}})
        return Batch(items=[item("1", {"id": "1"}), unstorable, item("3", {"id": "3"})], next_cursor={"min_id": "3"})

    async def fetch_thread(self, external_id: str) -> list[InboundItem]:
        return []

    async def send_reply(
        self, target: ReplyTarget, text: str, *, idempotency_key: str, visibility: str | None = None
    ) -> ReplyReceipt:
        raise Permanent("this connector only serves pages to store; it sends nothing")

    async def aclose(self) -> None:
        return None


@pytest.fixture(params=["worker", "inline"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def file_db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    db = open_database(tmp_path / "care.db")
    try:
        yield db
    finally:
        db.conn.close()


def test_both_stores_convert_and_quarantine_alike(
    file_db: sqlite_utils.Database, tmp_path: Path, clock: FakeClock, arun: Arun, store_kind: str
) -> None:
    accounts = AccountRepo(file_db)
    account = accounts.add(kind="mastodon", handle="care", base_url="https://example.test", now=int(clock.now()))
    mentions = MentionRepo(file_db)
    store: BatchStore = BackgroundStore(tmp_path / "care.db") if store_kind == "worker" else InlineStore(mentions)
    health = HealthRepo(file_db)
    poller = Poller(
        mentions, accounts, SyncStateRepo(file_db), {account.id: OnePage()}, clock,
        rng=random.Random(1), health=health, store=store,
    )  # fmt: skip

    async def scenario() -> None:
        try:
            report = await poller.sync_account(account)
            assert report.ok, report
            assert (report.fetched, report.stored, report.quarantined) == (3, 2, 1)
            again = await poller.sync_account(account)
            assert (again.stored, again.quarantined) == (0, 0)
        finally:
            await store.aclose()

    arun(scenario())
    (entry,) = health.quarantined(account.id)
    assert entry.external_id == "2" and entry.error.startswith("unusable item")
    assert "a set" in entry.raw_json  # the item as it was (repr where JSON cannot hold it)
    assert mentions.total_messages() == 2


def test_a_poller_without_a_store_stores_inline_through_the_same_path(
    db: sqlite_utils.Database, clock: FakeClock, arun: Arun
) -> None:
    accounts = AccountRepo(db)
    account = accounts.add(kind="mastodon", handle="care", base_url="https://example.test", now=int(clock.now()))
    health = HealthRepo(db)
    poller = Poller(MentionRepo(db), accounts, SyncStateRepo(db), {account.id: OnePage()}, clock, health=health)
    report = arun(poller.sync_account(account))
    assert (report.stored, report.quarantined) == (2, 1)
    assert [entry.external_id for entry in health.quarantined(account.id)] == ["2"]
