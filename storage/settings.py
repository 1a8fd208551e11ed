"""Typed, non-secret preferences declared once (in the spirit of Electrum's ConfigVar), stored as JSON."""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlite_utils

from storage.driver import repository, says, scalar

T = TypeVar("T", str, int, float, bool)


@dataclass(frozen=True, slots=True)
class Setting(Generic[T]):
    key: str
    default: T
    type: type[T]
    minimum: float | None = None
    maximum: float | None = None


AGENT_NAME = Setting("agent.name", "", str)
WELCOME_DONE = Setting("app.welcome_done", False, bool)
FIRST_RESPONSE_MINUTES = Setting("sla.first_response_minutes", 30, int, 1, 7 * 24 * 60)
NEXT_RESPONSE_MINUTES = Setting("sla.next_response_minutes", 60, int, 1, 7 * 24 * 60)
RESOLUTION_HOURS = Setting("sla.resolution_hours", 24, int, 1, 30 * 24)
WARN_FRACTION = Setting("sla.warn_fraction", 0.25, float, 0.0, 0.9)
#: The SLA policy set as JSON (console/sla/policy.py); empty = the defaults shipped in resources/sla_policy.json.
SLA_POLICIES = Setting("sla.policies", "", str)
POLL_SECONDS = Setting("sync.poll_seconds", 30, int, 5, 3600)
#: How far back a first sync reads the backlog, in days, where the channel's API allows it (issue 20, sync 1).
SYNC_HORIZON_DAYS = Setting("sync.horizon_days", 7, int, 1, 365)
#: Net Easy survey (console/surveys/service.py): the question keeps both anchors (customers mix up the direction).
SURVEY_QUESTION = Setting(
    "survey.question",
    "Overall, how easy was it to get the help you wanted today? "
    "Reply with a number from 1 (extremely easy) to 7 (extremely difficult).",
    str,
)
SURVEY_CUSTOMER_DAYS = Setting("survey.customer_days", 30, int, 0, 180)
SURVEY_PROMPT_AFTER_RESOLVE = Setting("survey.prompt_after_resolve", True, bool)
NET_EASY_MIN_N = Setting("survey.min_n", 30, int, 1, 10_000)


@repository
class SettingsRepo:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    @staticmethod
    def _in_range(setting: Setting[T], value: object) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return True
        if not math.isfinite(value):
            return False  # JSON "NaN"/"Infinity" in a hand-edited or damaged row: never a usable number
        return not (
            (setting.minimum is not None and value < setting.minimum)
            or (setting.maximum is not None and value > setting.maximum)
        )

    def get(self, setting: Setting[T]) -> T:
        """The stored value, or the default when absent, of the wrong type, or out of range."""
        stored = scalar(self._conn, "SELECT value FROM settings WHERE key = ?", (setting.key,))
        if stored is None:
            return setting.default
        try:
            value = json.loads(stored)
        except ValueError:
            return setting.default
        if setting.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, setting.type) or (setting.type is not bool and isinstance(value, bool)):
            return setting.default
        if not self._in_range(setting, value):
            return setting.default
        return value

    @says("Could not save the setting {setting.key}")
    def set(self, setting: Setting[T], value: T) -> None:
        if not isinstance(value, setting.type):
            raise TypeError(f"{setting.key} takes {setting.type.__name__}, not {type(value).__name__}")
        if not self._in_range(setting, value):
            raise ValueError(f"{setting.key} must be between {setting.minimum} and {setting.maximum}")
        with self._db.atomic():
            self._conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (setting.key, json.dumps(value)),
            )
