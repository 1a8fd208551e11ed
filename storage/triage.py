"""Triage writes: an item's status, priority and tags, each changed together with its event in one transaction."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.driver import fetch_one, repository, says
from storage.errors import StorageError
from storage.events import write_event
from storage.rows import MentionStatus


@dataclass(frozen=True, slots=True)
class TriageState:
    """The triage fields of one queue item."""

    mention_id: int
    status: MentionStatus
    priority: int
    tags: tuple[str, ...]


def split_tags(tags: str) -> tuple[str, ...]:
    """The stored form (``"billing,refund"``) as a tuple."""
    return tuple(t for t in (part.strip() for part in tags.split(",")) if t)


@repository
class TriageRepo:
    """Writes the triage fields of thread heads. Never lets a raw sqlite3 error cross the boundary."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    def state(self, mention_id: int) -> TriageState | None:
        """The current triage fields of a queue item, or None when it is not a stored thread head."""
        row = fetch_one(
            self._conn, "SELECT status, priority, tags FROM mentions WHERE id = ? AND head_id IS NULL", (mention_id,)
        )
        if row is None:
            return None
        return TriageState(mention_id, MentionStatus(row["status"]), int(row["priority"]), split_tags(str(row["tags"])))

    def set_status(self, mention_id: int, status: MentionStatus, *, at: int, actor: str, **data: Any) -> None:
        """Set the status and append a ``status_changed`` event ``{from, to, ...data}``.

        Raises:
            StorageError: the item does not exist or the write failed; nothing was written.
        """
        self._write(mention_id, "status", status.value, "status_changed", at, actor, data)

    def set_priority(self, mention_id: int, priority: int, *, at: int, actor: str, **data: Any) -> None:
        """Set the priority and append a ``priority_changed`` event ``{from, to, ...data}``.

        Raises:
            StorageError: the item does not exist or the write failed; nothing was written.
        """
        self._write(mention_id, "priority", priority, "priority_changed", at, actor, data)

    @says("Could not change the tags of item {mention_id}")
    def set_tags(self, mention_id: int, tags: tuple[str, ...], *, at: int, actor: str, **data: Any) -> None:
        """Replace the tags, keep the tag vocabulary's counts, append a ``tags_changed`` event ``{tags, ...}``.

        Raises:
            StorageError: the item does not exist or the write failed; nothing was written.
        """
        with self._db.atomic():
            old = self.state(mention_id)
            if old is None:
                raise StorageError(f"No queue item {mention_id}")
            self._conn.execute("UPDATE mentions SET tags = ? WHERE id = ?", (",".join(tags), mention_id))
            removed = set(old.tags) - set(tags)
            added = set(tags) - set(old.tags)
            self._conn.executemany(
                "UPDATE tags SET use_count = max(use_count - 1, 0) WHERE name = ?", [(t,) for t in removed]
            )
            self._conn.executemany(
                "INSERT INTO tags (name, use_count) VALUES (?, 1) "
                "ON CONFLICT (name) DO UPDATE SET use_count = use_count + 1",
                [(t,) for t in sorted(added)],
            )
            self._event(mention_id, "tags_changed", at, actor, {"tags": list(tags), "from": list(old.tags), **data})

    @says("Could not change the {column} of item {mention_id}")
    def _write(
        self, mention_id: int, column: str, value: object, kind: str, at: int, actor: str, data: dict[str, Any]
    ) -> None:
        with self._db.atomic():
            old = self.state(mention_id)
            if old is None:
                raise StorageError(f"No queue item {mention_id}")
            before = old.status.value if column == "status" else old.priority
            # column is one of two literals chosen above, never user input.
            self._conn.execute(f"UPDATE mentions SET {column} = ? WHERE id = ?", (value, mention_id))
            self._event(mention_id, kind, at, actor, {"from": before, "to": value, **data})

    def _event(self, mention_id: int, kind: str, at: int, actor: str, data: dict[str, Any]) -> None:
        write_event(self._conn, at=at, actor=actor, kind=kind, mention_id=mention_id, data=data)
