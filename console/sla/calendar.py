"""SLA calendars: when clocks run (24/7, or business hours per weekday minus holidays, in a time zone); pure."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: "Never" for interval ends: far beyond any epoch second the app will see, yet an int.
FAR = 2**62

#: A search for open time gives up after this many days (a calendar whose hours are all closed).
_MAX_DAYS = 3_660

#: Minutes since local midnight; an end not after its start means the interval crosses midnight.
Hours = tuple[tuple[int, int], ...]

#: (paused_at, resumed_at or None while the pause lasts), epoch seconds.
Pause = tuple[int, int | None]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CalendarError(ValueError):
    """A calendar definition that cannot be used (unknown zone, bad hours, never open)."""


@dataclass(frozen=True, slots=True)
class Calendar:
    """When SLA clocks run.

    ``hours`` is None for around the clock, else seven entries (Monday first) of local ``(start, end)`` minute
    pairs; ``end <= start`` crosses midnight into the next day. A holiday closes the intervals that start on
    that local date.
    """

    time_zone: str = "UTC"
    hours: tuple[Hours, ...] | None = None
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CalendarError(f"Unknown time zone {self.time_zone!r}") from exc
        if self.hours is None:
            return
        if len(self.hours) != 7:
            raise CalendarError("Business hours need seven weekdays, Monday first")
        for day in self.hours:
            for start, end in day:
                if not (0 <= start < 1440 and 0 <= end <= 1440):
                    raise CalendarError(f"Hours must be within the day (0-1440 minutes), not {start}-{end}")
        if not any(self.hours):
            raise CalendarError("Business hours are closed every day: the clock would never run")

    @property
    def always_open(self) -> bool:
        return self.hours is None and not self.holidays

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


ALWAYS = Calendar()


def _local(day: date, minute: int, zone: ZoneInfo) -> int:
    # Wall-clock arithmetic then the zone's offset for that wall time: DST days have 23 or 25 hours.
    wall = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=minute)
    return int(wall.timestamp())


def _day_hours(cal: Calendar, day: date) -> Hours:
    if day in cal.holidays:
        return ()
    if cal.hours is None:
        return ((0, 1440),)
    return tuple(sorted(cal.hours[day.weekday()]))


def open_intervals(cal: Calendar, start: int) -> Iterator[tuple[int, int]]:
    """Open intervals ``[a, b)`` of ``cal`` from ``start`` on, in order, non-overlapping, clipped to ``start``.

    Raises:
        CalendarError: no open time within ten years (only when the generator is consumed that far).
    """
    if cal.always_open:
        yield start, FAR
        return
    zone = cal.zone
    day = datetime.fromtimestamp(start, zone).date() - timedelta(days=1)
    cursor = start
    empty_days = 0
    while empty_days < _MAX_DAYS:
        produced = False
        for s, e in _day_hours(cal, day):
            a = _local(day, s, zone)
            b = _local(day + timedelta(days=1), e, zone) if e <= s else _local(day, e, zone)
            a = max(a, cursor)
            if b > a:
                produced = True
                yield a, b
                cursor = b
        empty_days = 0 if produced else empty_days + 1
        day += timedelta(days=1)
    raise CalendarError("The calendar has no open time in ten years")


def _subtract(intervals: Iterable[tuple[int, int]], pauses: Sequence[Pause]) -> Iterator[tuple[int, int]]:
    """``intervals`` minus the paused spans (pauses sorted by start; an open pause lasts forever)."""
    spans = sorted((p, FAR if r is None else r) for p, r in pauses)
    for a, b in intervals:
        cur = a
        for p, r in spans:
            if r <= cur or p >= b:
                continue
            if p > cur:
                yield cur, p
            cur = max(cur, r)
            if cur >= b:
                break
        if cur < b:
            yield cur, b
        if cur >= FAR:
            return


def running_intervals(cal: Calendar, start: int, pauses: Sequence[Pause] = ()) -> Iterator[tuple[int, int]]:
    """When a clock started at ``start`` runs: the calendar's open time minus its pauses."""
    return _subtract(open_intervals(cal, start), pauses)


def add_running(cal: Calendar, start: int, seconds: int, pauses: Sequence[Pause] = ()) -> int | None:
    """The moment a clock started at ``start`` has run ``seconds``.

    Args:
        cal: when the clock runs.
        start: epoch seconds.
        seconds: running time to add (0 gives ``start``).
        pauses: spans during which the clock does not run.

    Returns:
        Epoch seconds, or None when the clock never gets there (an open pause).
    """
    if seconds <= 0:
        return start
    remaining = seconds
    for a, b in running_intervals(cal, start, pauses):
        if b >= FAR:
            return a + remaining
        if b - a >= remaining:
            return a + remaining
        remaining -= b - a
    return None


def elapsed_running(cal: Calendar, start: int, end: int, pauses: Sequence[Pause] = ()) -> int:
    """Running time of a clock between ``start`` and ``end`` (0 when ``end <= start``)."""
    total = 0
    if end <= start:
        return 0
    for a, b in running_intervals(cal, start, pauses):
        if a >= end:
            break
        total += min(b, end) - a
        if b >= end:
            break
    return total


def next_open(cal: Calendar, at: int) -> int:
    """The first moment at or after ``at`` when ``cal`` is open (``at`` itself when open)."""
    for a, _b in open_intervals(cal, at):
        return a
    raise CalendarError("The calendar never opens")  # pragma: no cover - open_intervals raises first


def is_open(cal: Calendar, at: int) -> bool:
    return next_open(cal, at) == at


def parse_hhmm(text: str) -> int:
    """``"09:30"`` -> 570; ``"24:00"`` -> 1440.

    Raises:
        CalendarError: not a time of day.
    """
    try:
        hh, mm = text.strip().split(":")
        hours, minutes = int(hh), int(mm)
    except ValueError as exc:
        raise CalendarError(f"{text!r} is not a time like 09:00") from exc
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise CalendarError(f"{text!r} is not a time of day")
    return hours * 60 + minutes


def format_hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
