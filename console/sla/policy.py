"""SLA policies as data: targets per channel and priority, warning threshold and calendar; JSON in and out."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from importlib import resources
from typing import Any

from console.sla.calendar import (
    ALWAYS,
    WEEKDAYS,
    Calendar,
    CalendarError,
    Hours,
    Pause,
    add_running,
    format_hhmm,
    parse_hhmm,
)
from storage.rows import DeadlineKind, OffsetPlan

#: The calendar every policy set has: clocks run around the clock.
ALWAYS_NAME = "24/7"
#: Priorities as triage sets them (mentions.priority); 2 is what a new item gets.
PRIORITY_LABELS: dict[int, str] = {1: "High", 2: "Normal", 3: "Low"}
DEFAULT_PRIORITY = 2
FORMAT_VERSION = 1

#: (kind, started_at) -> (due_at, warn_at) or None; what MentionRepo.store_batch takes.
DeadlinePlan = Callable[[DeadlineKind, int], tuple[int, int] | None]


class PolicyError(ValueError):
    """A policy set that cannot be used; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """Targets for items of one channel (None: any) and priority (None: any). The first matching rule applies."""

    channel: str | None = None
    priority: int | None = None
    first_response: int = 30 * 60
    next_response: int = 60 * 60
    resolution: int = 24 * 60 * 60
    warn_fraction: float = 0.25
    calendar: str = ALWAYS_NAME

    def matches(self, channel: str, priority: int) -> bool:
        return (self.channel is None or self.channel == channel) and (
            self.priority is None or self.priority == priority
        )


@dataclass(frozen=True, slots=True)
class Policy:
    """The rule that applies to one item, with its calendar resolved: plans deadlines."""

    rule: PolicyRule
    calendar: Calendar

    def target(self, kind: DeadlineKind) -> int | None:
        return {
            DeadlineKind.FIRST_RESPONSE: self.rule.first_response,
            DeadlineKind.NEXT_RESPONSE: self.rule.next_response,
            DeadlineKind.RESOLUTION: self.rule.resolution,
        }.get(kind)

    def plan(self, kind: DeadlineKind, started_at: int, pauses: Sequence[Pause] = ()) -> tuple[int, int] | None:
        """Due and warning times of a clock of ``kind`` started at ``started_at``, given its pauses.

        The warning comes when ``warn_fraction`` of the target's running time remains; both times count only
        the calendar's open time minus the pauses. Returns None for follow-ups (their due time is promised)
        and while an open pause stops the clock.
        """
        target = self.target(kind)
        if target is None:
            return None
        due = add_running(self.calendar, started_at, target, pauses)
        warn = add_running(self.calendar, started_at, target - round(target * self.rule.warn_fraction), pauses)
        if due is None or warn is None:
            return None
        return due, warn


def follow_up_plan(started_at: int, due_at: int, warn_fraction: float) -> tuple[int, int]:
    """A follow-up commitment is due when promised (wall time); it warns when ``warn_fraction`` of it is left."""
    span = max(0, due_at - started_at)
    return due_at, due_at - round(span * warn_fraction)


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Named calendars plus ordered rules; the last rule should match everything (a default)."""

    rules: tuple[PolicyRule, ...] = (PolicyRule(),)
    calendars: Mapping[str, Calendar] = field(default_factory=lambda: {ALWAYS_NAME: ALWAYS})

    def __post_init__(self) -> None:
        if not self.rules:
            raise PolicyError("A policy set needs at least one rule")
        if self.rules[-1].channel is not None or self.rules[-1].priority is not None:
            raise PolicyError("The last rule must apply to any channel and any priority (the default)")
        for rule in self.rules:
            if rule.calendar not in self.calendars:
                raise PolicyError(f"Unknown calendar {rule.calendar!r}")
            for name, value in (
                ("first response", rule.first_response),
                ("next response", rule.next_response),
                ("resolution", rule.resolution),
            ):
                if not 60 <= value <= 90 * 86_400:
                    raise PolicyError(f"The {name} target must be between 1 minute and 90 days")
            if not 0.0 <= rule.warn_fraction < 1.0:
                raise PolicyError("The warning threshold must be between 0% and 99% of the target")

    def rule_for(self, channel: str, priority: int) -> PolicyRule:
        return next(rule for rule in self.rules if rule.matches(channel, priority))

    def policy_for(self, channel: str, priority: int = DEFAULT_PRIORITY) -> Policy:
        rule = self.rule_for(channel, priority)
        return Policy(rule, self.calendars[rule.calendar])

    def planner(self, channel: str) -> DeadlinePlan:
        """The planner ``store_batch`` uses for new items of ``channel`` (they start at the default priority)."""
        policy = self.policy_for(channel, DEFAULT_PRIORITY)
        if not policy.calendar.always_open:

            def plan(kind: DeadlineKind, started_at: int) -> tuple[int, int] | None:
                return policy.plan(kind, started_at)

            return plan
        # Around the clock a new item's clocks are plain offsets from its post time: the ingest path writes
        # them in bulk (storage.rows.OffsetPlan); same figures as Policy.plan (tested).
        offsets = []
        for kind in DeadlineKind:
            planned = policy.plan(kind, 0)
            if planned is not None:
                offsets.append((kind, *planned))
        return OffsetPlan(tuple(offsets))

    def with_rules(self, rules: Sequence[PolicyRule]) -> PolicySet:
        return replace(self, rules=tuple(rules))

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> str:
        return json.dumps(
            {
                "version": FORMAT_VERSION,
                "calendars": {name: _calendar_json(cal) for name, cal in self.calendars.items() if name != ALWAYS_NAME},
                "rules": [_rule_json(rule) for rule in self.rules],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> PolicySet:
        """Parse and validate a policy set.

        Raises:
            PolicyError: the text is not a valid policy set; the message names the problem.
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PolicyError(f"The SLA policy is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise PolicyError("The SLA policy must be a JSON object")
        if data.get("version") != FORMAT_VERSION:
            raise PolicyError(f"Unsupported SLA policy version {data.get('version')!r} (expected {FORMAT_VERSION})")
        try:
            calendars: dict[str, Calendar] = {ALWAYS_NAME: ALWAYS}
            for name, raw in dict(data.get("calendars") or {}).items():
                calendars[str(name)] = _calendar_from(raw)
            rules = tuple(_rule_from(raw) for raw in data["rules"])
        except CalendarError as exc:
            raise PolicyError(str(exc)) from exc
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise PolicyError(f"The SLA policy is malformed: {exc}") from exc
        return cls(rules=rules, calendars=calendars)


def shipped_policy() -> PolicySet:
    """The defaults shipped in ``resources/sla_policy.json`` (reference/metrics.md: 30 min, 60 min, 24 h, 25%)."""
    text = resources.files("resources").joinpath("sla_policy.json").read_text(encoding="utf-8")
    return PolicySet.from_json(text)


def _rule_json(rule: PolicyRule) -> dict[str, Any]:
    return {
        "channel": rule.channel,
        "priority": rule.priority,
        "first_response_minutes": rule.first_response / 60,
        "next_response_minutes": rule.next_response / 60,
        "resolution_hours": rule.resolution / 3600,
        "warn_fraction": rule.warn_fraction,
        "calendar": rule.calendar,
    }


def _finite(raw: Mapping[str, Any], key: str, default: float) -> float:
    """A number from the policy JSON; NaN and Infinity (which json accepts) are refused with the key's name."""
    value = float(raw.get(key, default))
    if not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, not {value}")
    return value


def _rule_from(raw: Mapping[str, Any]) -> PolicyRule:
    channel = raw.get("channel")
    priority = raw.get("priority")
    return PolicyRule(
        channel=None if channel in (None, "", "*") else str(channel),
        priority=None if priority in (None, "", "*") else int(priority),
        first_response=round(_finite(raw, "first_response_minutes", 30) * 60),
        next_response=round(_finite(raw, "next_response_minutes", 60) * 60),
        resolution=round(_finite(raw, "resolution_hours", 24) * 3600),
        warn_fraction=_finite(raw, "warn_fraction", 0.25),
        calendar=str(raw.get("calendar", ALWAYS_NAME)),
    )


def _calendar_json(cal: Calendar) -> dict[str, Any]:
    hours: dict[str, list[list[str]]] | None = None
    if cal.hours is not None:
        hours = {WEEKDAYS[i]: [[format_hhmm(s), format_hhmm(e)] for s, e in day] for i, day in enumerate(cal.hours)}
    return {
        "time_zone": cal.time_zone,
        "hours": hours,
        "holidays": sorted(d.isoformat() for d in cal.holidays),
    }


def _calendar_from(raw: Mapping[str, Any]) -> Calendar:
    hours_raw = raw.get("hours")
    hours: tuple[Hours, ...] | None = None
    if hours_raw is not None:
        unknown = set(hours_raw) - set(WEEKDAYS)
        if unknown:
            raise CalendarError(f"Unknown weekday(s) {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
        hours = tuple(tuple((parse_hhmm(s), parse_hhmm(e)) for s, e in hours_raw.get(day, [])) for day in WEEKDAYS)
    try:
        holidays = frozenset(date.fromisoformat(str(d)) for d in raw.get("holidays", []))
    except ValueError as exc:
        raise CalendarError(f"A holiday is not a date like 2026-12-25: {exc}") from exc
    return Calendar(time_zone=str(raw.get("time_zone", "UTC")), hours=hours, holidays=holidays)
