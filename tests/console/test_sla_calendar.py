"""SLA calendars: business hours, across midnight, DST in the policy's zone, holidays, pauses (pure functions)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.sla.calendar import (
    ALWAYS,
    Calendar,
    CalendarError,
    add_running,
    elapsed_running,
    is_open,
    next_open,
    parse_hhmm,
)
from console.sla.policy import ALWAYS_NAME, PolicyRule, PolicySet
from storage.rows import DeadlineKind

LONDON = "Europe/London"
NEW_YORK = "America/New_York"
NINE_TO_FIVE = ((9 * 60, 17 * 60),)
WEEKDAYS_9_17 = Calendar(LONDON, (NINE_TO_FIVE,) * 5 + ((), ()))
NIGHTS = Calendar(LONDON, (((22 * 60, 6 * 60),),) * 7)  # 22:00-06:00 every night


def ts(text: str, zone: str = LONDON) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp())


@pytest.mark.parametrize(
    ("cal", "start", "minutes", "due"),
    [
        (ALWAYS, "2026-03-02T10:00", 30, "2026-03-02T10:30"),
        # Within the day.
        (WEEKDAYS_9_17, "2026-03-02T10:00", 30, "2026-03-02T10:30"),
        # Posted before opening: the clock starts at 09:00.
        (WEEKDAYS_9_17, "2026-03-02T07:12", 30, "2026-03-02T09:30"),
        # Runs past closing: the rest is counted the next morning.
        (WEEKDAYS_9_17, "2026-03-02T16:50", 30, "2026-03-03T09:20"),
        # Friday evening: resumes Monday.
        (WEEKDAYS_9_17, "2026-03-06T16:45", 60, "2026-03-09T09:45"),
        # Business hours across midnight.
        (NIGHTS, "2026-03-02T23:30", 60, "2026-03-03T00:30"),
        (NIGHTS, "2026-03-02T05:30", 60, "2026-03-02T22:30"),
        (NIGHTS, "2026-03-02T12:00", 9 * 60, "2026-03-03T23:00"),  # 8 h that night, 1 h the next
        # DST: clocks go forward 01:00->02:00 on 2026-03-29 in London; the night has 7 real hours.
        (NIGHTS, "2026-03-28T22:00", 7 * 60, "2026-03-29T06:00"),
        # ... and back on 2026-10-25: that night has 9 real hours.
        (NIGHTS, "2026-10-24T22:00", 9 * 60, "2026-10-25T06:00"),
        # A 24/7 clock spans the DST change in real seconds: 60 min from 00:30 GMT is 02:30 BST.
        (Calendar(LONDON), "2026-03-29T00:30", 60, "2026-03-29T02:30"),
    ],
)
def test_add_running_table(cal: Calendar, start: str, minutes: int, due: str) -> None:
    assert add_running(cal, ts(start), minutes * 60) == ts(due)


def test_holidays_close_the_whole_local_day() -> None:
    cal = Calendar(LONDON, WEEKDAYS_9_17.hours, frozenset({date(2026, 12, 25)}))
    # Thursday 24 Dec 16:30 + 1 h: half an hour that day, the rest on Monday 28 (25 holiday, then weekend).
    assert add_running(cal, ts("2026-12-24T16:30"), 3600) == ts("2026-12-28T09:30")


def test_holiday_on_a_24_7_calendar_stops_the_clock_that_day() -> None:
    cal = Calendar(NEW_YORK, None, frozenset({date(2026, 7, 4)}))
    assert add_running(cal, ts("2026-07-03T23:30", NEW_YORK), 3600) == ts("2026-07-05T00:30", NEW_YORK)


def test_dst_in_the_policy_zone_not_utc() -> None:
    # US DST starts 2026-03-08; 09:00 local is 14:00 UTC before and 13:00 UTC after.
    cal = Calendar(NEW_YORK, (NINE_TO_FIVE,) * 7)
    due = add_running(cal, ts("2026-03-07T16:30", NEW_YORK), 3600)
    assert due == ts("2026-03-08T09:30", NEW_YORK)
    assert datetime.fromtimestamp(due or 0, ZoneInfo("UTC")).hour == 13


def test_pauses_push_the_due_time_by_their_running_time() -> None:
    start = ts("2026-03-02T10:00")
    pauses = [(ts("2026-03-02T10:10"), ts("2026-03-02T10:40"))]
    assert add_running(WEEKDAYS_9_17, start, 1800, pauses) == ts("2026-03-02T11:00")
    # A pause that lasts overnight only costs the business time it covered.
    overnight = [(ts("2026-03-02T16:30"), ts("2026-03-03T09:30"))]
    assert add_running(WEEKDAYS_9_17, ts("2026-03-02T16:00"), 3600, overnight) == ts("2026-03-03T10:00")


def test_an_open_pause_stops_the_clock_for_good() -> None:
    assert add_running(ALWAYS, 100, 1800, [(200, None)]) is None
    assert add_running(ALWAYS, 100, 50, [(200, None)]) == 150


def test_next_open_says_when_a_closed_clock_resumes() -> None:
    friday_night = ts("2026-03-06T19:00")
    assert not is_open(WEEKDAYS_9_17, friday_night)
    assert next_open(WEEKDAYS_9_17, friday_night) == ts("2026-03-09T09:00")
    assert is_open(WEEKDAYS_9_17, ts("2026-03-09T09:00"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_zone": "Mars/Olympus"}, "Unknown time zone"),
        ({"hours": ((),) * 7}, "closed every day"),
        ({"hours": (NINE_TO_FIVE,) * 6}, "seven weekdays"),
        ({"hours": (((600, 2000),),) * 7}, "within the day"),
    ],
)
def test_bad_calendars_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        Calendar(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "minute"), [("09:00", 540), ("17:30", 1050), ("24:00", 1440), ("0:05", 5)])
def test_parse_hhmm(text: str, minute: int) -> None:
    assert parse_hhmm(text) == minute


@pytest.mark.parametrize("text", ["9", "25:00", "12:60", "ab:cd", "24:30"])
def test_parse_hhmm_rejects(text: str) -> None:
    with pytest.raises(CalendarError):
        parse_hhmm(text)


# ---------------------------------------------------------------------- properties
T0 = ts("2026-01-01T00:00")
calendars = st.sampled_from([ALWAYS, WEEKDAYS_9_17, NIGHTS, Calendar(NEW_YORK, (NINE_TO_FIVE,) * 7)])
starts = st.integers(T0, T0 + 365 * 86_400)
pause_lists = st.lists(st.tuples(st.integers(0, 5 * 86_400), st.integers(0, 86_400)), max_size=4)


@settings(max_examples=150, deadline=None)
@given(cal=calendars, start=starts, seconds=st.integers(1, 3 * 86_400), raw=pause_lists)
def test_add_then_elapsed_round_trips(cal: Calendar, start: int, seconds: int, raw: list[tuple[int, int]]) -> None:
    pauses = sorted((start + offset, start + offset + length) for offset, length in raw)
    due = add_running(cal, start, seconds, pauses)
    assert due is not None and due >= start + seconds * 0  # never before the start
    assert elapsed_running(cal, start, due, pauses) == seconds
    # Pauses never make a clock due earlier; the total paused time is never negative.
    plain = add_running(cal, start, seconds)
    assert plain is not None and due >= plain
    assert sum(r - p for p, r in pauses) >= 0


@settings(max_examples=100, deadline=None)
@given(cal=calendars, start=starts, a=st.integers(1, 86_400), b=st.integers(1, 86_400))
def test_add_running_is_monotonic(cal: Calendar, start: int, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    first, second = add_running(cal, start, lo), add_running(cal, start, hi)
    assert first is not None and second is not None and start < first <= second


@settings(max_examples=200)
@given(
    start=st.integers(min_value=1_700_000_000, max_value=1_900_000_000),
    first=st.integers(min_value=60, max_value=7 * 86_400),
    fraction=st.sampled_from([0.0, 0.1, 0.25, 0.333, 0.9]),
    kind=st.sampled_from(list(DeadlineKind)),
    calendar=st.sampled_from([ALWAYS, Calendar(NEW_YORK), WEEKDAYS_9_17, NIGHTS]),
)
def test_the_ingest_planner_plans_like_the_policy(
    start: int, first: int, fraction: float, kind: DeadlineKind, calendar: Calendar
) -> None:
    # PolicySet.planner precomputes offsets for around-the-clock calendars; every calendar must plan the same.
    rule = PolicyRule(first_response=first, warn_fraction=fraction, calendar="cal")
    policies = PolicySet(rules=(rule,), calendars={ALWAYS_NAME: ALWAYS, "cal": calendar})
    expected = policies.policy_for("mastodon").plan(kind, start)
    assert policies.planner("mastodon")(kind, start) == expected
    if kind is DeadlineKind.FIRST_RESPONSE:
        assert expected is not None and expected[0] >= start + (first if calendar.always_open else 0)
