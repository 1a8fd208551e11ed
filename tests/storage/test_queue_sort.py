"""Column sorting happens in SQL (STYLE B5), in every view, with search, both ways (issue 19 §16)."""

from __future__ import annotations

import pytest
import sqlite_utils

from storage.mentions import QueueView
from storage.queue_queries import QueueQuery, QueueQueryRepo, SortColumn
from storage.rows import MentionStatus
from storage.triage import TriageRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory


@pytest.fixture
def made(db: sqlite_utils.Database, clock: FakeClock) -> dict[str, int]:
    factory = Factory(db, clock)
    now = int(clock.now())
    triage = TriageRepo(db)
    items = {
        "cy": factory.add(handle="cy", name="Cy", text="zebra parcel", posted_at=now - 300),
        "ana": factory.add(handle="ana", name="", text="apple parcel", posted_at=now - 60),
        "bo": factory.add(handle="bo", name="Bo", text="mango parcel", posted_at=now - 1200),
    }
    triage.set_priority(items["cy"], 1, at=now, actor="agent")
    triage.set_priority(items["ana"], 3, at=now, actor="agent")
    triage.set_tags(items["bo"], ("vip",), at=now, actor="agent")
    triage.set_tags(items["ana"], ("billing",), at=now, actor="agent")
    return items


def _names(db: sqlite_utils.Database, clock: FakeClock, made: dict[str, int], query: QueueQuery) -> list[str]:
    now = int(clock.now())
    by_id = {v: k for k, v in made.items()}
    return [by_id[i] for i in QueueQueryRepo(db).queue_ids(query, now=now, day_start=now - 3600)]


@pytest.mark.parametrize(
    ("sort", "ascending"),
    [
        (None, ["bo", "cy", "ana"]),  # the Open view's own order: nearest deadline first
        (SortColumn.CUSTOMER, ["ana", "bo", "cy"]),  # a missing name sorts by its handle
        (SortColumn.MESSAGE, ["ana", "bo", "cy"]),
        (SortColumn.RECEIVED, ["ana", "cy", "bo"]),  # by age: the newest first
        (SortColumn.SLA, ["bo", "cy", "ana"]),
        (SortColumn.PRIORITY, ["cy", "bo", "ana"]),  # urgent, normal, low
        (SortColumn.TAGS, ["ana", "bo", "cy"]),  # untagged last
    ],
)
def test_queue_sort_by_column(
    db: sqlite_utils.Database, clock: FakeClock, made: dict[str, int], sort: SortColumn | None, ascending: list[str]
) -> None:
    assert _names(db, clock, made, QueueQuery(sort=sort)) == ascending


@pytest.mark.parametrize("sort", [SortColumn.CUSTOMER, SortColumn.RECEIVED, SortColumn.PRIORITY])
def test_queue_sort_descending_reverses(
    db: sqlite_utils.Database, clock: FakeClock, made: dict[str, int], sort: SortColumn
) -> None:
    up = _names(db, clock, made, QueueQuery(sort=sort))
    down = _names(db, clock, made, QueueQuery(sort=sort, descending=True))
    assert down == list(reversed(up))


@pytest.mark.parametrize("view", [QueueView.OPEN, QueueView.ALL])
def test_queue_sort_applies_with_a_search(
    db: sqlite_utils.Database, clock: FakeClock, made: dict[str, int], view: QueueView
) -> None:
    query = QueueQuery(view=view, search="parcel", sort=SortColumn.CUSTOMER, descending=True)
    assert _names(db, clock, made, query) == ["cy", "bo", "ana"]


def test_queue_sort_in_resolved_today(db: sqlite_utils.Database, clock: FakeClock, made: dict[str, int]) -> None:
    triage = TriageRepo(db)
    now = int(clock.now())
    for name in made:
        triage.set_status(made[name], MentionStatus.RESOLVED, at=now, actor="agent")
    query = QueueQuery(view=QueueView.RESOLVED_TODAY, sort=SortColumn.CUSTOMER)
    assert _names(db, clock, made, query) == ["ana", "bo", "cy"]
