"""SLA deadlines and bands: pure functions of (due_at, warn_at, policy, now); no I/O (STYLE B1, B5)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from storage.rows import DeadlineKind


class Band(StrEnum):
    NONE = "none"
    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Targets in seconds, calendar time, 24/7 (reference/metrics.md defaults)."""

    first_response: int = 30 * 60
    next_response: int = 60 * 60
    resolution: int = 24 * 60 * 60
    warn_fraction: float = 0.25  # warn when 25% of the target remains

    def target(self, kind: DeadlineKind) -> int | None:
        # An if-chain, not a dict built per call: this runs twice per stored mention on the ingest path.
        if kind is DeadlineKind.FIRST_RESPONSE:
            return self.first_response
        if kind is DeadlineKind.RESOLUTION:
            return self.resolution
        if kind is DeadlineKind.NEXT_RESPONSE:
            return self.next_response
        return None

    def plan(self, kind: DeadlineKind, started_at: int) -> tuple[int, int] | None:
        """Due and warning times of a clock of ``kind`` that starts at ``started_at``.

        Returns:
            ``(due_at, warn_at)``, or None for kinds whose due time is not set by policy (follow-ups).
        """
        target = self.target(kind)
        if target is None:
            return None
        due_at = started_at + target
        return due_at, due_at - round(target * self.warn_fraction)


def band(due_at: int | None, warn_at: int | None, now: float) -> Band:
    if due_at is None:
        return Band.NONE
    if now >= due_at:
        return Band.BREACHED
    if warn_at is not None and now >= warn_at:
        return Band.WARNING
    return Band.OK


def next_change(due_at: int | None, warn_at: int | None, now: float) -> int | None:
    """The next time the band of this deadline changes, or None when it will not change again."""
    if due_at is None or now >= due_at:
        return None
    if warn_at is not None and now < warn_at:
        return warn_at
    return due_at


def format_countdown(due_at: int, now: float) -> str:
    """Time left as the queue shows it: ``29:59``, ``1:05:00``, ``2d 03h``; overdue as ``+04:12``."""
    left = int(due_at - now) if now <= due_at else int(now - due_at)
    sign = "" if now < due_at else "+"
    days, rest = divmod(left, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours:02d}h"
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{seconds:02d}"
    return f"{sign}{minutes:02d}:{seconds:02d}"


def format_age(posted_at: int, now: float) -> str:
    """Relative age for the "received" column: ``now``, ``4 min``, ``3 h``, ``2 d``."""
    age = max(0, int(now - posted_at))
    if age < 60:
        return "now"
    if age < 3_600:
        return f"{age // 60} min"
    if age < 86_400:
        return f"{age // 3_600} h"
    return f"{age // 86_400} d"
