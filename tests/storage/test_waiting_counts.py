"""Counting the replies still waiting to go out reads the partial index replies_queued, never the sent replies.

The status bar and the health strip count them before the window's first paint and after every outbox change;
with the states as bound parameters SQLite could not use the partial index and read every sent reply.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from storage.accounts import AccountRepo
from storage.health import HealthRepo
from storage.replies import ReplyRepo


def _mention(db: sqlite_utils.Database) -> int:
    account = AccountRepo(db).add(kind="mastodon", handle="care", base_url="https://social.example", now=0)
    cursor = db.conn.execute(
        "INSERT INTO mentions (account_id, external_id, thread_key, author_handle, text, posted_at, fetched_at, "
        "last_message_at) VALUES (?, '1', '1', 'ana', 'help', 0, 0, 0)",
        (account.id,),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _add_replies(db: sqlite_utils.Database, mention_id: int, state: str, n: int) -> None:
    db.conn.executemany(
        "INSERT INTO replies (mention_id, text, idempotency_key, state, created_at) VALUES (?, 'thanks', ?, ?, 0)",
        [(mention_id, f"{state}-{i}", state) for i in range(n)],
    )


def _steps(db: sqlite_utils.Database, count: Callable[[], int]) -> int:
    """How many SQLite virtual-machine steps ``count`` takes (a table scan takes a few per row)."""
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0

    db.conn.set_progress_handler(step, 1)
    try:
        count()
    finally:
        db.conn.set_progress_handler(None, 1)
    return steps


def test_waiting_counts_do_not_read_the_sent_replies(db: sqlite_utils.Database) -> None:
    mention_id = _mention(db)
    _add_replies(db, mention_id, "queued", 2)
    _add_replies(db, mention_id, "sending", 1)
    replies, health = ReplyRepo(db), HealthRepo(db)
    before = (_steps(db, replies.waiting_count), _steps(db, health.waiting_replies))

    _add_replies(db, mention_id, "sent", 2_000)
    _add_replies(db, mention_id, "draft", 50)

    assert replies.waiting_count() == health.waiting_replies() == 3
    assert (_steps(db, replies.waiting_count), _steps(db, health.waiting_replies)) == before
