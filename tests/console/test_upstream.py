"""Upstream checks: a customer's edit replaces the stored text (the event keeps the old); a deletion is marked."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import sqlite_utils

from console.channels.base import AccountRef
from console.channels.mastodon import MastodonConnector, parse_status
from console.model import SyncReport
from console.ports import MemorySecretStore
from console.sla.bands import SlaPolicy
from console.sync.store_worker import to_new_mention
from console.sync.upstream import UpstreamChecker
from storage.accounts import AccountRepo
from storage.events import EventRepo
from storage.mentions import MentionRepo
from storage.upstream import UpstreamRepo
from tests.fakes.clock import FakeClock
from tests.fakes.http_server import FakeHttpServer

T = TypeVar("T")
Arun = Callable[[Awaitable[T]], T]


def status(sid: str, text: str, *, edited_at: str | None = None) -> dict[str, Any]:
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


def test_edits_and_deletions_are_stored(db: sqlite_utils.Database, clock: FakeClock, arun: Arun[Any]) -> None:
    account = AccountRepo(db).add(kind="mastodon", handle="brand", base_url="https://x.example", now=0)
    mentions = MentionRepo(db)
    items = [to_new_mention(account.id, parse_status(status(sid, f"message {sid}"))) for sid in ("1", "2", "3")]
    mentions.store_batch(items, channel="mastodon", fetched_at=int(clock.now()), plan=SlaPolicy().plan)
    repo = UpstreamRepo(db)
    assert set(repo.open_messages(account.id)) == {"1", "2", "3"}
    secrets = MemorySecretStore()
    secrets.set(f"mastodon:{account.id}", "tok")
    changed: list[Any] = []

    with FakeHttpServer() as server:
        # Newest first: 3 edited, 2 deleted, 1 unchanged.
        server.reply(json=status("3", "message 3 (fixed)", edited_at="2026-01-01T00:10:00.000Z"))
        server.reply(404, json={"error": "Record not found"})
        server.reply(json=status("1", "message 1"))

        async def scenario() -> Any:
            async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
                ref = AccountRef(account.id, "mastodon", "brand", server.base_url)
                connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock)
                checker = UpstreamChecker(repo, {account.id: connector}, clock, on_changed=changed.append)
                return await checker.check(account.id)

        report = arun(scenario())

    assert (report.checked, report.edited, report.deleted) == (3, 1, 1)
    rows = {row.external_id: row for row in mentions.rows_by_id(range(1, 10)).values()}
    assert rows["3"].text == "message 3 (fixed)"
    assert repo.deleted_upstream(account.id) == {"2"}
    events = EventRepo(db)
    edit = [e for e in events.for_mention(rows["3"].id) if e.kind == "edited_upstream"]
    assert json.loads(edit[0].data)["previous_text"] == "message 3"
    assert [e.kind for e in events.for_mention(rows["2"].id)].count("deleted_upstream") == 1
    assert changed and changed[0].heads
    # The deleted message is not checked again; the known edit is not reported again.
    assert set(repo.open_messages(account.id)) == {"1", "3"}
    assert repo.open_messages(account.id)["3"] == "2026-01-01T00:10:00.000Z"


def test_on_synced_schedules_at_most_every_interval(
    db: sqlite_utils.Database, clock: FakeClock, arun: Arun[Any]
) -> None:
    class Fake:
        calls = 0

        async def check_statuses(self, known: Any) -> Any:
            Fake.calls += 1
            raise AssertionError("not reached: nothing is open")

    checker = UpstreamChecker(UpstreamRepo(db), {1: Fake()}, clock, interval=600)  # type: ignore[dict-item]

    async def scenario() -> None:
        checker.on_synced(SyncReport(1, 0))
        checker.on_synced(SyncReport(1, 0))
        assert len(checker.tasks) == 1
        for task in list(checker.tasks):
            await task
        clock.advance(601)
        checker.on_synced(SyncReport(1, 0))
        assert len(checker.tasks) == 1
        for task in list(checker.tasks):
            await task
        checker.on_synced(SyncReport(2, 0))  # no connector: nothing to do
        assert not checker.tasks

    arun(scenario())
