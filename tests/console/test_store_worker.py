"""Batches stored on the worker thread land in the same file the app reads, exactly once."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from console.channels.base import AccountRef
from console.channels.mastodon import MastodonConnector
from console.ports import MemorySecretStore
from console.sandbox import SandboxServer
from console.sync.inbox import Poller
from console.sync.store_worker import BackgroundStore
from storage.accounts import AccountRepo, SyncStateRepo
from storage.db import open_database
from storage.mentions import MentionRepo
from tests.fakes.clock import FakeClock


def test_poller_with_a_background_store(tmp_path: Path, clock: FakeClock, arun: Callable[..., Any]) -> None:
    path = tmp_path / "care.db"
    db = open_database(path)

    async def scenario() -> tuple[int, int]:
        with SandboxServer(clock=clock, backlog=30) as server:
            accounts = AccountRepo(db)
            account = accounts.add(kind="mastodon", handle="care", base_url=server.base_url, now=int(clock.now()))
            state = SyncStateRepo(db)
            state.record_success(account.id, cursor={"min_id": "0"}, at=int(clock.now()), next_attempt_at=0)
            secrets = MemorySecretStore()
            secrets.set(f"mastodon:{account.id}", server.token)
            store = BackgroundStore(path)
            async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
                ref = AccountRef(account.id, "mastodon", "care", server.base_url)
                connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock, page_limit=7)
                poller = Poller(MentionRepo(db), accounts, state, {account.id: connector}, clock,
                                rng=random.Random(1), store=store)  # fmt: skip
                first = await poller.sync_account(account)
                server.generate(4)
                second = await poller.sync_account(account)
            await store.aclose()
            return first.stored, second.stored

    try:
        assert arun(scenario()) == (30, 4)
        # Written by the worker's connection, visible to the app's own connection.
        assert MentionRepo(db).total_messages() == 34
    finally:
        db.conn.close()
