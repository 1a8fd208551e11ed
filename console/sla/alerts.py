"""Alert rules: notify once per item when it enters the SLA warning band or breaches, unless do-not-disturb."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from console.ports import Clock
from storage.queue_queries import AlertItem
from storage.settings import Setting, SettingsRepo

DO_NOT_DISTURB = Setting("alerts.do_not_disturb", False, bool)
#: A clock jump (suspend, a long pause) never replays more than this much history as alerts.
MAX_WINDOW_SECONDS = 3_600


class AlertKind(StrEnum):
    WARNING = "warning"
    BREACHED = "breached"


@dataclass(frozen=True, slots=True)
class Alert:
    mention_id: int
    kind: AlertKind
    author_handle: str
    due_at: int


class AlertSource(Protocol):
    """Indexed range reads over the open queue (QueueService)."""

    def entered_warning(self, since: int, until: int) -> list[AlertItem]: ...

    def entered_breach(self, since: int, until: int) -> list[AlertItem]: ...

    def near_breach_count(self) -> int: ...


class AlertMonitor:
    """Finds band changes since the last check; each (item, band) is reported at most once per run."""

    def __init__(self, source: AlertSource, clock: Clock, *, settings: SettingsRepo | None = None) -> None:
        self._source = source
        self._clock = clock
        self._settings = settings
        self._dnd = settings.get(DO_NOT_DISTURB) if settings is not None else False
        self._checked_at = int(clock.now())
        self._notified: set[tuple[int, AlertKind]] = set()

    @property
    def do_not_disturb(self) -> bool:
        return self._dnd

    def set_do_not_disturb(self, on: bool) -> None:
        """Silence notifications (they are still counted and never replayed later); saved in the settings."""
        self._dnd = on
        if self._settings is not None:
            self._settings.set(DO_NOT_DISTURB, on)

    def near_breach_count(self) -> int:
        """Open items in the warning band now (the tray's number)."""
        return self._source.near_breach_count()

    def check(self) -> list[Alert]:
        """Items that entered the warning band or breached since the last check, not reported before.

        Returns:
            The alerts to show; empty under do-not-disturb (those items are marked as reported all the same).
        """
        now = int(self._clock.now())
        since = max(self._checked_at, now - MAX_WINDOW_SECONDS)
        if now <= since:
            return []
        self._checked_at = now
        found = [Alert(i.mention_id, AlertKind.WARNING, i.author_handle, i.due_at)
                 for i in self._source.entered_warning(since, now)]  # fmt: skip
        found += [Alert(i.mention_id, AlertKind.BREACHED, i.author_handle, i.due_at)
                  for i in self._source.entered_breach(since, now)]  # fmt: skip
        fresh = [a for a in found if (a.mention_id, a.kind) not in self._notified]
        self._notified.update((a.mention_id, a.kind) for a in fresh)
        return [] if self._dnd else fresh
