"""DeadlineRepo: one-transaction writes that keep the queue's due times right, breach pass, band queries."""

from __future__ import annotations

import pytest
import sqlite_utils

from storage.accounts import AccountRepo
from storage.deadlines import Breach, DeadlineRepo, DeadlineValues, NewEvent
from storage.errors import StorageError
from storage.events import EventRepo
from storage.mentions import MentionRepo
from storage.rows import DeadlineKind, MentionKind, NewMention

T0 = 1_767_225_600


def plan(kind: DeadlineKind, start: int) -> tuple[int, int] | None:
    return {
        DeadlineKind.FIRST_RESPONSE: (start + 1800, start + 1350),
        DeadlineKind.RESOLUTION: (start + 86_400, start + 64_800),
    }.get(kind)


def setup(db: sqlite_utils.Database, n: int = 2) -> tuple[MentionRepo, DeadlineRepo, list[int]]:
    AccountRepo(db).add(kind="mastodon", handle="care", base_url="http://sandbox", now=T0)
    mentions = MentionRepo(db)
    items = [
        NewMention(1, f"e{i}", "ana", "ana", "Ana", "hi", "", T0 + i * 600, MentionKind.PUBLIC, "public", None, "{}")
        for i in range(n)
    ]
    result = mentions.store_batch(items, channel="mastodon", fetched_at=T0, plan=plan)
    return mentions, DeadlineRepo(db, mentions), list(result.new_heads)


def test_apply_writes_rows_events_and_refreshes_the_queue_due_time(db: sqlite_utils.Database) -> None:
    mentions, repo, (a, _b) = setup(db)
    (first, _res) = sorted(repo.deadlines([a])[a], key=lambda d: d.due_at)
    repo.apply(
        inserts=[DeadlineValues(a, DeadlineKind.FOLLOW_UP, T0 + 60, T0 + 900, T0 + 700)],
        updates=[
            DeadlineValues(a, first.kind, first.started_at, first.due_at, first.warn_at, met_at=T0 + 60, id=first.id)
        ],
        events=[NewEvent(T0 + 60, "sla", a, "deadline_met", {"deadline": "first_response"})],
        refresh=[a],
    )
    row = mentions.rows_by_id([a])[a]
    assert (row.due_at, row.warn_at) == (T0 + 900, T0 + 700)
    assert [e.kind for e in EventRepo(db).for_mention(a)] == ["received", "deadline_met"]


def test_apply_is_all_or_nothing(db: sqlite_utils.Database) -> None:
    _mentions, repo, (a, _b) = setup(db)
    with pytest.raises(StorageError):
        repo.apply(
            inserts=[DeadlineValues(a, DeadlineKind.FOLLOW_UP, T0, T0 + 900, T0 + 700)],
            events=[NewEvent(T0, "sla", 999_999, "deadline_met")],  # unknown item: foreign key fails
            refresh=[a],
        )
    assert len(repo.deadlines([a])[a]) == 2


def test_breach_pass_reads_only_unbreached_due_deadlines_and_marks_once(db: sqlite_utils.Database) -> None:
    _mentions, repo, (a, b) = setup(db)
    assert repo.due_unbreached(T0 + 1800) == []  # the due second itself still meets (issue 20, numbers 7)
    due = repo.due_unbreached(T0 + 1801)
    assert [(d.mention_id, d.kind) for d in due] == [(a, DeadlineKind.FIRST_RESPONSE)]
    repo.record_breaches([Breach(d.id, d.mention_id, d.kind, d.due_at, {"deadline": d.kind.value}) for d in due])
    assert repo.due_unbreached(T0 + 1801) == []
    assert [d.mention_id for d in repo.due_unbreached(T0 + 2401)] == [b]
    plan_rows = db.conn.execute("EXPLAIN QUERY PLAN SELECT id FROM deadlines INDEXED BY deadlines_unbreached "
                                "WHERE due_at <= 1 AND met_at IS NULL AND cancelled_at IS NULL AND breached_at IS NULL "
                                "AND paused_at IS NULL").fetchall()  # fmt: skip
    assert "deadlines_unbreached" in str(plan_rows)


def test_band_queries_use_the_queue_due_and_warn_times(db: sqlite_utils.Database) -> None:
    _mentions, repo, (a, b) = setup(db)
    assert repo.next_band_change(T0) == T0 + 1350
    assert repo.band_changes(T0, T0 + 1350) == [a]
    assert repo.band_changes(T0 + 1350, T0 + 2400) == [a, b]
    assert repo.next_band_change(T0 + 10**6) is None


def test_open_heads_and_status_change_lookup(db: sqlite_utils.Database) -> None:
    _mentions, repo, (a, b) = setup(db)
    assert repo.open_heads() == [a, b]
    assert repo.head_of(a) == a and repo.head_of(12345) is None
    EventRepo(db).append(
        at=T0 + 5, actor="agent", kind="status_changed", mention_id=a, **{"from": "new", "to": "waiting"}
    )
    assert repo.has_status_change(a, T0 + 5, "new", "waiting")
    assert not repo.has_status_change(a, T0 + 5, "new", "resolved")
