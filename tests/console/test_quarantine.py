"""Quarantined items: listed with account, reason and time; read again after an update; dismissed; none lost."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlite_utils

from console.model import SyncReport
from console.sandbox import SandboxServer
from console.sync.health import ChannelHealth
from console.sync.inbox import Poller
from console.sync.quarantine import reread_mastodon
from storage.accounts import AccountRepo, SyncStateRepo
from storage.health import HealthRepo, QuarantineEntry
from storage.mentions import MentionRepo
from tests.fakes.clock import FakeClock


def _sandbox_notifications(clock: FakeClock, n: int) -> list[dict[str, Any]]:
    """Real notification JSON as the sandbox serves it."""
    with SandboxServer(clock=clock, seed=8, backlog=n) as server:
        response = httpx.get(
            f"{server.base_url}/api/v1/notifications",
            params={"limit": n},
            headers={"Authorization": f"Bearer {server.token}"},
            trust_env=False,
        )
        response.raise_for_status()
        payload = response.json()
    assert isinstance(payload, list) and len(payload) == n
    return payload


def _service(db: sqlite_utils.Database, clock: FakeClock) -> tuple[ChannelHealth, HealthRepo, list[SyncReport], int]:
    accounts = AccountRepo(db)
    account = accounts.add(kind="mastodon", handle="care", base_url="https://social.example", now=int(clock.now()))
    health = HealthRepo(db)
    poller = Poller(MentionRepo(db), accounts, SyncStateRepo(db), {}, clock, health=health)
    reports: list[SyncReport] = []
    poller.subscribe(reports.append)
    return ChannelHealth(accounts, SyncStateRepo(db), health, poller, {}), health, reports, account.id


def test_reread_mastodon_reads_a_good_entry_and_explains_a_bad_one(clock: FakeClock) -> None:
    good = _sandbox_notifications(clock, 1)[0]
    item = reread_mastodon(good)
    assert item is not None and item.external_id == good["status"]["id"]
    assert reread_mastodon({**good, "type": "favourite"}) is None  # nothing to store
    with pytest.raises(ValueError, match=r"\w"):
        reread_mastodon({"id": "7", "type": "mention", "status": {"id": None}})


def test_retry_stores_what_reads_now_and_keeps_the_rest_with_the_new_reason(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    service, health, reports, account_id = _service(db, clock)
    fixed, also_fixed = _sandbox_notifications(clock, 2)
    broken = {"id": "77", "type": "mention", "status": {"id": None}}
    entries = [
        QuarantineEntry(fixed["id"], "unknown field 'quote' (old version)", json.dumps(fixed)),
        QuarantineEntry(also_fixed["id"], "unknown field 'quote' (old version)", json.dumps(also_fixed)),
        QuarantineEntry("77", "status without id", json.dumps(broken)),
    ]
    assert health.quarantine(account_id, entries, at=int(clock.now()) - 60) == 3

    items = service.quarantined_items()
    assert [(i.handle, i.kind, i.external_id) for i in items] == [
        ("care", "mastodon", e.external_id) for e in reversed(entries)
    ]  # newest first (same time: by id)
    assert items[0].error == "status without id" and items[0].at == int(clock.now()) - 60

    clock.advance(3600)
    outcome = arun(service.retry_quarantined([i.id for i in items]))
    assert (outcome.read, outcome.stored, outcome.still_unreadable) == (2, 2, 1)
    assert "1 still cannot be read" in outcome.message
    stored = {r[0] for r in db.conn.execute("SELECT external_id FROM mentions")}
    assert stored == {fixed["status"]["id"], also_fixed["status"]["id"]}
    assert reports and reports[-1].stored == 2  # the queue and SLA engine hear about them
    left = service.quarantined_items()
    assert [i.external_id for i in left] == ["77"]
    assert "tried again" in left[0].error

    # Reading them once more changes nothing: still exactly once in the store.
    assert arun(service.retry_quarantined([left[0].id])).still_unreadable == 1
    assert db.conn.execute("SELECT count(*) FROM mentions").fetchone()[0] == 2

    assert service.dismiss_quarantined([left[0].id]) == 1
    assert service.quarantined_items() == []
    assert service.snapshot().accounts[0].quarantined == 0


def test_items_of_channels_without_a_rereader_stay_kept(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    service, health, _reports, account_id = _service(db, clock)
    db.conn.execute("UPDATE accounts SET kind = 'bluesky' WHERE id = ?", (account_id,))
    health.quarantine(account_id, [QuarantineEntry("at://x", "bad record", "null")], at=int(clock.now()))
    outcome = arun(service.retry_quarantined([i.id for i in service.quarantined_items()]))
    assert (outcome.read, outcome.still_unreadable) == (0, 1)
    assert len(service.quarantined_items()) == 1
