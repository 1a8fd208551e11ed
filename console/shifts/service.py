"""Shifts: start and end with the agent's name remembered, notes for the next shift, shifts left open at a crash."""

from __future__ import annotations

from dataclasses import dataclass

from console.ports import Clock
from storage.settings import AGENT_NAME, SettingsRepo
from storage.shifts import ShiftRepo, ShiftRow

__all__ = ["ShiftError", "ShiftRow", "ShiftService", "StaleShift"]


class ShiftError(Exception):
    """A shift action that cannot be done now; the message is meant for the agent."""


@dataclass(frozen=True, slots=True)
class StaleShift:
    """A shift found still open at start-up (the app stopped without ending it)."""

    shift: ShiftRow
    #: When it would be closed: the last recorded activity, or its start when nothing happened.
    close_at: int


class ShiftService:
    """Starts and ends shifts; work is attributed to a shift from the event log (actor and time), not columns."""

    def __init__(self, repo: ShiftRepo, settings: SettingsRepo, clock: Clock) -> None:
        self._repo = repo
        self._settings = settings
        self._clock = clock

    @property
    def remembered_agent(self) -> str:
        """The name the last shift was started with (pre-filled in the start dialog)."""
        return self._settings.get(AGENT_NAME)

    def current(self) -> ShiftRow | None:
        return self._repo.running()

    def get(self, shift_id: int) -> ShiftRow | None:
        return self._repo.get(shift_id)

    def last(self) -> ShiftRow | None:
        return self._repo.last()

    def recent(self, limit: int = 50) -> list[ShiftRow]:
        return self._repo.recent(limit=limit)

    def notes_from_last_shift(self) -> str:
        """The hand-over notes the previous shift left for this one ("" when none)."""
        last = self._repo.last_ended()
        return last.notes if last is not None else ""

    def start(self, agent_name: str) -> ShiftRow:
        """Start a shift now and remember the agent's name.

        Raises:
            ShiftError: the name is empty, or a shift is already running.
        """
        name = " ".join(agent_name.split())
        if not name:
            raise ShiftError("Enter your name to start a shift: it is how your work is attributed.")
        running = self._repo.running()
        if running is not None:
            raise ShiftError(f"A shift by {running.agent_name} is already running; end it first.")
        self._settings.set(AGENT_NAME, name)
        return self._repo.start(name, int(self._clock.now()))

    def end(self, notes: str = "") -> ShiftRow:
        """End the running shift now with the notes for the next shift.

        Raises:
            ShiftError: no shift is running.
        """
        running = self._repo.running()
        if running is None:
            raise ShiftError("No shift is running.")
        return self._repo.end(running.id, max(running.started_at, int(self._clock.now())), notes.strip())

    def save_notes(self, notes: str) -> None:
        """Keep draft notes on the running shift (so a crash does not lose them)."""
        running = self._repo.running()
        if running is not None:
            self._repo.set_notes(running.id, notes)

    def stale(self) -> StaleShift | None:
        """At start-up: a shift left open (by a crash), with the time it would be closed at, or None."""
        running = self._repo.running()
        if running is None:
            return None
        last = self._repo.last_activity(running.agent_name, running.started_at)
        return StaleShift(running, max(running.started_at, last if last is not None else running.started_at))

    def close_stale(self, stale: StaleShift) -> ShiftRow:
        """Close a shift left open at its last recorded activity (after the agent agreed)."""
        return self._repo.end(stale.shift.id, stale.close_at, stale.shift.notes)
