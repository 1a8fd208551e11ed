"""Triage: status, priority and tag changes are events with time and actor; undo reverts the last change."""

from __future__ import annotations

import json

import pytest
import sqlite_utils

from console.triage import (
    Change,
    Priority,
    Triage,
    TriageError,
    TriageField,
    close_question,
    normalize_tag,
    normalize_tags,
)
from storage.rows import DeadlineKind, DeadlineRow, MentionStatus, ReplyState
from storage.triage import TriageRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory

Calls = list[tuple[int, MentionStatus, MentionStatus, int]]


@pytest.fixture
def factory(db: sqlite_utils.Database, clock: FakeClock) -> Factory:
    return Factory(db, clock)


@pytest.fixture
def calls() -> Calls:
    return []


@pytest.fixture
def triage(db: sqlite_utils.Database, clock: FakeClock, calls: Calls) -> Triage:
    return Triage(TriageRepo(db), clock, actor=lambda: "Sam", on_status_change=lambda *args: calls.append(args))


def events(db: sqlite_utils.Database, mention_id: int) -> list[tuple[int, str, str, dict[str, object]]]:
    rows = db.conn.execute(
        "SELECT at, actor, kind, data FROM events WHERE mention_id = ? AND actor != 'sync' ORDER BY id", (mention_id,)
    ).fetchall()
    return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]


def test_triage_status_change_is_an_event_and_notifies(
    triage: Triage, factory: Factory, db: sqlite_utils.Database, clock: FakeClock, calls: Calls
) -> None:
    item = factory.add()
    now = int(clock.now())
    change = triage.set_status(item, MentionStatus.WAITING)
    assert change == Change(item, TriageField.STATUS, MentionStatus.NEW, MentionStatus.WAITING, now)
    assert events(db, item) == [(now, "Sam", "status_changed", {"from": "new", "to": "waiting"})]
    assert calls == [(item, MentionStatus.NEW, MentionStatus.WAITING, now)]
    assert triage.set_status(item, MentionStatus.WAITING) is None  # unchanged: no event
    assert len(events(db, item)) == 1


@pytest.mark.parametrize(
    "status", [MentionStatus.OPEN, MentionStatus.WAITING, MentionStatus.RESOLVED, MentionStatus.COMMUNITY,
               MentionStatus.SPAM],
)  # fmt: skip
def test_triage_sets_every_agent_status(triage: Triage, factory: Factory, status: MentionStatus) -> None:
    item = factory.add()
    triage.set_status(item, status)
    assert factory.mentions.rows_by_id([item])[item].status is status


def test_triage_refuses_new_and_unknown(triage: Triage, factory: Factory) -> None:
    item = factory.add()
    with pytest.raises(TriageError):
        triage.set_status(item, MentionStatus.NEW)
    with pytest.raises(TriageError):
        triage.set_status(9999, MentionStatus.RESOLVED)
    with pytest.raises(TriageError):
        triage.set_priority(item, 7)


def test_triage_undo_reverts_last_change_as_new_event(
    triage: Triage, factory: Factory, db: sqlite_utils.Database, clock: FakeClock, calls: Calls
) -> None:
    item = factory.add()
    triage.set_status(item, MentionStatus.RESOLVED)
    triage.set_priority(item, Priority.URGENT)
    clock.advance(5)
    undone = triage.undo()
    assert undone is not None and undone.field is TriageField.PRIORITY
    assert factory.mentions.rows_by_id([item])[item].priority == Priority.NORMAL
    assert triage.undo() is not None
    row = factory.mentions.rows_by_id([item])[item]
    assert row.status is MentionStatus.NEW
    assert triage.undo() is None
    kinds = [(kind, data.get("undo", False)) for _at, _actor, kind, data in events(db, item)]
    assert kinds == [("status_changed", False), ("priority_changed", False), ("priority_changed", True),
                     ("status_changed", True)]  # fmt: skip
    assert calls[-1][1:3] == (MentionStatus.RESOLVED, MentionStatus.NEW)


def test_triage_undo_refuses_when_item_changed_since(
    triage: Triage, factory: Factory, db: sqlite_utils.Database
) -> None:
    item = factory.add()
    triage.set_status(item, MentionStatus.RESOLVED)
    TriageRepo(db).set_status(item, MentionStatus.OPEN, at=1, actor="sync")  # the customer reopened it
    with pytest.raises(TriageError, match="changed since"):
        triage.undo()
    assert triage.last_change is None


def test_triage_tags_normalised_with_event(triage: Triage, factory: Factory, db: sqlite_utils.Database) -> None:
    item = factory.add()
    change = triage.set_tags(item, ["Late Delivery", "billing", "late delivery", " "])
    assert change is not None and change.new == ("late-delivery", "billing")
    assert factory.mentions.rows_by_id([item])[item].tags == "late-delivery,billing"
    assert events(db, item)[-1][2:] == ("tags_changed", {"tags": ["late-delivery", "billing"], "from": []})
    assert change.describe() == "Tags: no tags → late-delivery, billing"


@pytest.mark.parametrize(
    ("raw", "tag"), [("  Refund ", "refund"), ("a,b", "ab"), ("x_y z", "x-y-z"), ("ça va!", "ça-va"), ("-", "")]
)
def test_normalize_tag(raw: str, tag: str) -> None:
    assert normalize_tag(raw) == tag


def test_normalize_tags_drops_duplicates() -> None:
    assert normalize_tags(["A", "a", ""]) == ("a",)


def _deadline(
    kind: DeadlineKind, *, due_at: int, met_at: int | None = None, breached_at: int | None = None
) -> DeadlineRow:
    return DeadlineRow(
        id=1, mention_id=1, kind=kind, started_at=0, due_at=due_at, warn_at=due_at - 60, met_at=met_at,
        paused_at=None, cancelled_at=None, breached_at=breached_at,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("deadlines", "pending", "expected"),
    [
        ([_deadline(DeadlineKind.FIRST_RESPONSE, due_at=2000)], None, "No reply was sent to @ana yet."),
        (
            [_deadline(DeadlineKind.FIRST_RESPONSE, due_at=500, breached_at=500)],
            ReplyState.FAILED,
            "No reply was sent to @ana yet. Its first response is overdue.",
        ),
        ([_deadline(DeadlineKind.FIRST_RESPONSE, due_at=500, met_at=400)], None, ""),
        ([_deadline(DeadlineKind.FIRST_RESPONSE, due_at=500, breached_at=500)], ReplyState.QUEUED, ""),
        ([_deadline(DeadlineKind.RESOLUTION, due_at=9000)], None, ""),
    ],
)
def test_close_question_asks_only_while_nothing_reached_the_customer(
    deadlines: list[DeadlineRow], pending: ReplyState | None, expected: str
) -> None:
    assert close_question("ana", deadlines, pending, now=1000) == expected
