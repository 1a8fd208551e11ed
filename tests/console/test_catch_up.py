"""A backlog syncs batch after batch without pausing, in order, parsed off the event loop, cursor after store."""

from __future__ import annotations

import asyncio
import gc
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.channels import mastodon
from console.channels.base import AccountRef
from console.channels.mastodon import MastodonConnector, id_key
from console.heap import settle_heap
from console.ports import MemorySecretStore
from console.sandbox import SandboxServer
from console.sync.inbox import Poller
from console.sync.store_worker import BackgroundStore
from storage.accounts import AccountRepo, SyncStateRepo
from storage.db import open_database
from storage.mentions import MentionRepo
from tests.fakes.clock import FakeClock

BACKLOG = 120


def test_run_catches_up_a_backlog_batch_after_batch_without_waiting(
    tmp_path: Path, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    path = tmp_path / "care.db"
    db = open_database(path)

    async def scenario() -> tuple[list[str], int, dict[str, Any] | None, str]:
        with SandboxServer(clock=clock, seed=3) as server:
            newest = server.generate(BACKLOG)[-1]
            accounts = AccountRepo(db)
            account = accounts.add(kind="mastodon", handle="care", base_url=server.base_url, now=int(clock.now()))
            state = SyncStateRepo(db)
            state.record_success(account.id, cursor={"min_id": "0"}, at=int(clock.now()), next_attempt_at=0)
            secrets = MemorySecretStore()
            secrets.set(f"mastodon:{account.id}", server.token)
            store = BackgroundStore(path)
            batches: list[int] = []
            progress: list[tuple[bool, int]] = []
            async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
                ref = AccountRef(account.id, "mastodon", "care", server.base_url)
                # 3 pages of 10 per poll: 30 < CATCH_UP_BATCH, so only ``has_more`` says "go on at once".
                connector = MastodonConnector(
                    client, account=ref, secrets=secrets, clock=clock, page_limit=10, max_pages=3
                )
                poller = Poller(MentionRepo(db), accounts, state, {account.id: connector}, clock,
                                interval=3600, rng=random.Random(1), store=store)  # fmt: skip
                poller.subscribe(lambda report: batches.append(report.stored))
                poller.subscribe(lambda report: progress.append((report.catching_up, report.caught_up)))
                task = asyncio.create_task(poller.run())
                try:
                    # The fake clock never moves: with the hour-long interval, only the backlog rule makes progress.
                    # Until the catch-up reports itself finished (the last report comes after has_more drops).
                    while sum(batches) < BACKLOG or not progress or progress[-1][0]:
                        assert not task.done(), task
                        await asyncio.sleep(0.01)
                finally:
                    task.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await task
            await store.aclose()
            rows = db.conn.execute("SELECT external_id FROM mentions ORDER BY id").fetchall()
            # Visible progress: a running total while catching up, the whole catch-up on the last report.
            assert progress == [(True, 30), (True, 60), (True, 90), (True, 120), (False, 120)], progress
            return [r[0] for r in rows], len(batches), state.get(account.id).cursor, newest

    try:
        stored, polls, cursor, newest = arun(scenario())
        assert len(stored) == BACKLOG == len(set(stored))  # every mention exactly once
        assert stored == sorted(stored, key=id_key)  # oldest first, batch after batch
        assert polls >= BACKLOG // 30  # it took several polls, none of them waiting for the interval
        assert cursor == {"min_id": newest}
    finally:
        db.conn.close()


def test_has_more_is_set_only_when_the_page_limit_stopped_the_fetch(clock: FakeClock, arun: Callable[..., Any]) -> None:
    async def scenario() -> list[tuple[int, bool]]:
        with SandboxServer(clock=clock, seed=4, backlog=25) as server:
            secrets = MemorySecretStore()
            secrets.set("mastodon:1", server.token)
            async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
                ref = AccountRef(1, "mastodon", "care", server.base_url)
                connector = MastodonConnector(
                    client, account=ref, secrets=secrets, clock=clock, page_limit=5, max_pages=2
                )
                seen = []
                cursor: dict[str, Any] | None = {"min_id": "0"}
                for _ in range(4):
                    batch = await connector.fetch_new(cursor)
                    seen.append((len(batch.items), batch.has_more))
                    cursor = batch.next_cursor or cursor
                return seen

    assert arun(scenario()) == [(10, True), (10, True), (5, False), (0, False)]


def test_notification_pages_are_parsed_off_the_event_loop(
    clock: FakeClock, arun: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed_on: list[int] = []
    real_parse = mastodon.parse_notifications

    def recording_parse(payload: object) -> mastodon.ParsedPage:
        parsed_on.append(threading.get_ident())
        return real_parse(payload)

    monkeypatch.setattr(mastodon, "parse_notifications", recording_parse)

    async def scenario() -> int:
        with SandboxServer(clock=clock, seed=5, backlog=12) as server:
            secrets = MemorySecretStore()
            secrets.set("mastodon:1", server.token)
            async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
                ref = AccountRef(1, "mastodon", "care", server.base_url)
                connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock, page_limit=5)
                return len((await connector.fetch_new({"min_id": "0"})).items)

    assert arun(scenario()) == 12
    assert parsed_on and threading.get_ident() not in parsed_on


@pytest.fixture
def unfreeze() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_settle_heap_freezes_what_start_up_left_alive(unfreeze: None) -> None:
    kept = [object() for _ in range(10)]
    frozen = settle_heap()
    assert frozen == gc.get_freeze_count() > len(kept)
