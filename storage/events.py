"""The append-only event log: every state change with its time and actor.

This module is the one writer of the ``events`` table. Repositories that change state inside their own
transaction call :func:`write_event` / :func:`write_events` on their connection; the sync path's set-based
"received" events go through :func:`write_received_events` (one INSERT ... SELECT a batch).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

import sqlite_utils

from storage.driver import fetch_all, repository, scalar
from storage.rows import EventRow

#: One event as stored: (at, actor, mention_id, kind, data as JSON text).
EventValues = tuple[int, str, int | None, str, str]

_INSERT = "INSERT INTO events (at, actor, mention_id, kind, data) VALUES (?,?,?,?,?)"


def event_json(data: Mapping[str, Any]) -> str:
    """The ``data`` column's text: JSON with sorted keys, so equal events are equal rows."""
    return json.dumps(data, sort_keys=True)


def write_event(
    conn: sqlite3.Connection, *, at: int, actor: str, kind: str, mention_id: int | None = None,
    data: Mapping[str, Any] | None = None,
) -> int:  # fmt: skip
    """Append one event inside the caller's transaction; returns its id."""
    cur = conn.execute(_INSERT, (at, actor, mention_id, kind, event_json(data or {})))
    return int(cur.lastrowid or 0)


def write_events(conn: sqlite3.Connection, rows: Iterable[EventValues]) -> None:
    """Append many events (``data`` already JSON text) with one executemany, inside the caller's transaction."""
    conn.executemany(_INSERT, rows)


def write_received_events(conn: sqlite3.Connection, *, actor: str, first_id: int, last_id: int) -> None:
    """A "received" event for every new head among mentions ``first_id..last_id``, set-based (the ingest path).

    The event's time is the message's ``posted_at``; follow-ups (rows with a head) get their own events.
    """
    conn.execute(
        "INSERT INTO events (at, actor, mention_id, kind, data) "
        "SELECT posted_at, ?, id, 'received', '{}' FROM mentions WHERE id BETWEEN ? AND ? AND head_id IS NULL",
        (actor, first_id, last_id),
    )


def event_row(row: sqlite3.Row) -> EventRow:
    """An ``events`` row (selected as id, at, actor, mention_id, kind, data) as its record."""
    return EventRow(
        id=int(row["id"]), at=int(row["at"]), actor=str(row["actor"]),
        mention_id=None if row["mention_id"] is None else int(row["mention_id"]), kind=str(row["kind"]),
        data=str(row["data"]),
    )  # fmt: skip


@repository
class EventRepo:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    def append(self, *, at: int, actor: str, kind: str, mention_id: int | None = None, **data: Any) -> int:
        with self._db.atomic():
            return write_event(self._conn, at=at, actor=actor, kind=kind, mention_id=mention_id, data=data)

    def for_mention(self, mention_id: int) -> list[EventRow]:
        rows = fetch_all(
            self._conn,
            "SELECT id, at, actor, mention_id, kind, data FROM events WHERE mention_id = ? ORDER BY at, id",
            (mention_id,),
        )
        return [event_row(r) for r in rows]

    def count(self, kind: str) -> int:
        return int(scalar(self._conn, "SELECT count(*) FROM events WHERE kind = ?", (kind,)))
