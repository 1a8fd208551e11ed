"""SLA outcomes a supervisor can trust (issue 20, numbers 3 and 7): late holding replies and the due second."""

from __future__ import annotations

import pytest
import sqlite_utils

from storage.rows import DeadlineKind
from tests.console.test_sla_engine import MIN, T0, World, kinds, make_world
from tests.fakes.clock import FakeClock

FR, FU = DeadlineKind.FIRST_RESPONSE, DeadlineKind.FOLLOW_UP


@pytest.fixture
def w(db: sqlite_utils.Database) -> World:
    return make_world(db, FakeClock(T0))


# ---------------------------------------------------------------------------------------------------- numbers 3
def test_a_holding_reply_after_a_late_first_response_counts_the_promise_from_the_send(w: World) -> None:
    head, _ = w.post(T0)
    w.clock.set(T0 + 40 * MIN)
    w.engine.record_breaches()  # the first response (due 10:30) is late
    # The holding template promised "by the next deadline": 10:30, already past when the reply goes out at 10:40.
    w.engine.record_response(head, T0 + 40 * MIN, holding_until=T0 + 30 * MIN)
    follow_up = w.one(head, FU)
    # Counted from the send by the policy's follow-up window (the 60-minute next-response target), not due at once.
    assert (follow_up.started_at, follow_up.due_at) == (T0 + 40 * MIN, T0 + 100 * MIN)
    w.clock.set(T0 + 41 * MIN)
    w.engine.record_breaches()
    assert w.one(head, FU).breached_at is None
    assert [r.breached_at for r in w.rows(head)[FR]] == [T0 + 30 * MIN]  # the late first response stays a breach


def test_a_holding_reply_keeps_a_promised_time_still_ahead(w: World) -> None:
    head, _ = w.post(T0)
    w.engine.record_response(head, T0 + 5 * MIN, holding_until=T0 + 3 * 3600)
    assert w.one(head, FU).due_at == T0 + 3 * 3600


# ---------------------------------------------------------------------------------------------------- numbers 7
@pytest.mark.parametrize("sweeper_first", [True, False])
def test_a_reply_in_the_due_second_meets_whichever_runs_first(w: World, sweeper_first: bool) -> None:
    head, _ = w.post(T0)
    due = w.one(head, FR).due_at
    w.clock.set(due)
    if sweeper_first:
        w.engine.record_breaches()
    w.engine.record_response(head, due)
    w.engine.record_breaches()
    row = w.one(head, FR)
    assert (row.met_at, row.breached_at) == (due, None)
    assert kinds(w, head, "breached") == []


def test_a_breach_recorded_before_the_reply_of_the_due_second_is_withdrawn(w: World) -> None:
    head, _ = w.post(T0)
    due = w.one(head, FR).due_at
    w.clock.set(due + 1)
    assert w.engine.record_breaches() == [head]  # the sweeper ran before the reply's record reached the engine
    w.engine.record_response(head, due)  # the reply went out in the due second
    row = w.one(head, FR)
    assert (row.met_at, row.breached_at) == (due, None)
    assert kinds(w, head, "breach_withdrawn") == ["breach_withdrawn"]


def test_a_reply_one_second_late_is_a_breach(w: World) -> None:
    head, _ = w.post(T0)
    due = w.one(head, FR).due_at
    w.clock.set(due + 1)
    w.engine.record_breaches()
    w.engine.record_response(head, due + 1)
    row = w.one(head, FR)
    assert (row.met_at, row.breached_at) == (due + 1, due)
