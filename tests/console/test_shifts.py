"""Shifts: the agent's name is remembered, notes pass to the next shift, a crashed shift closes at its last activity."""

from __future__ import annotations

import json

import pytest
import sqlite_utils

from console.shifts.service import ShiftError, ShiftService
from storage.events import EventRepo
from storage.settings import AGENT_NAME, SettingsRepo
from storage.shifts import ShiftRepo
from tests.console.shift_script import at
from tests.fakes.clock import FakeClock


@pytest.fixture
def service(db: sqlite_utils.Database, clock: FakeClock) -> ShiftService:
    clock.set(at(8))
    return ShiftService(ShiftRepo(db), SettingsRepo(db), clock)


def test_start_remembers_the_agent_and_logs_an_event(
    service: ShiftService, db: sqlite_utils.Database, clock: FakeClock
) -> None:
    shift = service.start("  Ana   Lima ")
    assert (shift.agent_name, shift.started_at, shift.ended_at) == ("Ana Lima", at(8), None)
    assert service.remembered_agent == "Ana Lima" and SettingsRepo(db).get(AGENT_NAME) == "Ana Lima"
    assert service.current() == shift
    kinds = [(r[0], json.loads(r[1])) for r in db.conn.execute("SELECT kind, data FROM events")]
    assert kinds == [("shift_started", {"shift_id": shift.id})]


def test_one_shift_at_a_time_and_a_name_is_needed(service: ShiftService) -> None:
    with pytest.raises(ShiftError, match="Enter your name"):
        service.start("   ")
    service.start("Ana")
    with pytest.raises(ShiftError, match="already running"):
        service.start("Bo")


def test_end_keeps_notes_for_the_next_shift(service: ShiftService, clock: FakeClock) -> None:
    with pytest.raises(ShiftError, match="No shift is running"):
        service.end()
    service.start("Ana")
    service.save_notes("draft")
    clock.set(at(16))
    ended = service.end("  Call @eve back about the courier  ")
    assert (ended.ended_at, ended.notes) == (at(16), "Call @eve back about the courier")
    assert service.current() is None
    assert service.notes_from_last_shift() == "Call @eve back about the courier"
    clock.set(at(17))
    service.start("Bo")
    assert service.last() is not None and service.last().agent_name == "Bo"  # type: ignore[union-attr]
    assert [s.agent_name for s in service.recent()] == ["Bo", "Ana"]


def test_a_shift_left_open_closes_at_its_last_activity(
    service: ShiftService, db: sqlite_utils.Database, clock: FakeClock
) -> None:
    shift = service.start("Ana")
    service.save_notes("half-written notes")
    events = EventRepo(db)
    events.append(at=at(9, 12), actor="Ana", kind="tags_changed", tags=["x"])
    events.append(at=at(10, 40), actor="Ana", kind="status_changed", **{"from": "new", "to": "resolved"})
    events.append(at=at(11), actor="sync", kind="sync_note")  # the app's own events are not the agent's activity
    clock.set(at(20))  # the app restarts hours later
    stale = service.stale()
    assert stale is not None and stale.shift.id == shift.id and stale.close_at == at(10, 40)
    closed = service.close_stale(stale)
    assert (closed.ended_at, closed.notes) == (at(10, 40), "half-written notes")
    assert service.stale() is None


def test_a_shift_with_no_activity_closes_at_its_start(service: ShiftService, clock: FakeClock) -> None:
    service.start("Ana")
    clock.set(at(20))
    stale = service.stale()
    assert stale is not None and stale.close_at == at(8)
