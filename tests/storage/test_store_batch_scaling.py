"""Storing a batch costs the same whatever is already stored: no statement walks the account's whole history
(a 100,000-mention backfill used to slow down batch by batch; issue 20). Measured in SQLite VM steps, which
do not depend on the machine or its load."""

from __future__ import annotations

import sqlite_utils

from console.sla.bands import SlaPolicy
from storage.accounts import AccountRepo
from storage.mentions import MentionRepo
from storage.rows import MentionKind, NewMention

T0 = 1_767_225_600
STEP = 100  # the progress handler runs every 100 VM instructions


def batch(start: int, size: int) -> list[NewMention]:
    """``size`` messages, each answering an earlier one (that may not be stored), from a few customers."""
    return [
        NewMention(
            account_id=1,
            external_id=str(n),
            author_external_id=f"id-{n % 7}",
            author_handle=f"c{n % 7}",
            author_name=f"C{n % 7}",
            text="hi",
            url=f"https://x.example/{n}",
            posted_at=T0 + n,
            kind=MentionKind.PUBLIC,
            visibility="public",
            parent_external_id=str(10_000_000 + n),
            raw_json="{}",
        )
        for n in range(start, start + size)
    ]


def steps_to_store(db: sqlite_utils.Database, repo: MentionRepo, items: list[NewMention]) -> int:
    count = 0

    def tick() -> int:
        nonlocal count
        count += 1
        return 0

    db.conn.set_progress_handler(tick, STEP)
    try:
        repo.store_batch(items, channel="mastodon", fetched_at=T0, plan=SlaPolicy().plan)
    finally:
        db.conn.set_progress_handler(None, STEP)
    return count


def test_store_batch_work_does_not_grow_with_the_stored_history(db: sqlite_utils.Database) -> None:
    AccountRepo(db).add(kind="mastodon", handle="care", base_url="http://sandbox", now=T0)
    repo = MentionRepo(db)
    stored = 0
    for _ in range(2):
        repo.store_batch(batch(stored, 400), channel="mastodon", fetched_at=T0, plan=SlaPolicy().plan)
        stored += 400
    early = steps_to_store(db, repo, batch(stored, 400))
    stored += 400
    while stored < 12_000:
        repo.store_batch(batch(stored, 400), channel="mastodon", fetched_at=T0, plan=SlaPolicy().plan)
        stored += 400
    late = steps_to_store(db, repo, batch(stored, 400))
    assert late < early * 1.2, (early, late)
