"""What happened upstream to stored messages: customers' edits (new text) and deletions ("deleted upstream")."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import sqlite_utils

from storage.driver import fetch_one, qmarks, repository, says
from storage.events import write_event

__all__ = ["UpstreamEdit", "UpstreamRepo"]

#: Threads in these states are re-checked (closed ones are left alone).
_CHECKED = ("new", "open", "waiting")


@dataclass(frozen=True, slots=True)
class UpstreamEdit:
    external_id: str
    text: str
    edited_at: str
    raw_json: str


@repository
class UpstreamRepo:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    def open_messages(
        self, account_id: int, *, limit: int = 40, fetched_since: int | None = None
    ) -> dict[str, str | None]:
        """Customer messages of the account's unresolved threads, newest first: ``{external id: edited_at}``.

        ``edited_at`` is read from the stored raw status (None when never edited). With ``fetched_since``, only
        messages fetched at or after it (the embedded sandbox forgets earlier sessions' posts on restart).
        """
        marks = qmarks(len(_CHECKED))
        rows = self._conn.execute(
            f"""SELECT m.external_id, json_extract(m.raw, '$.edited_at')
                FROM mentions m JOIN mentions h ON h.id = COALESCE(m.head_id, m.id)
                WHERE m.account_id = ? AND m.upstream_deleted_at IS NULL AND h.status IN ({marks})
                  AND json_valid(COALESCE(m.raw, '{{}}')) AND m.fetched_at >= ?
                ORDER BY m.posted_at DESC, m.id DESC LIMIT ?""",
            (account_id, *_CHECKED, fetched_since or 0, limit),
        ).fetchall()
        return {
            str(external_id): (str(edited_at) if edited_at is not None else None) for external_id, edited_at in rows
        }

    def deleted_upstream(self, account_id: int) -> set[str]:
        """External ids of the account's messages that were deleted upstream."""
        rows = self._conn.execute(
            "SELECT external_id FROM mentions WHERE account_id = ? AND upstream_deleted_at IS NOT NULL", (account_id,)
        )
        return {str(external_id) for (external_id,) in rows}

    @says("Could not store upstream edits and deletions")
    def apply(
        self,
        account_id: int,
        *,
        edited: Sequence[UpstreamEdit],
        deleted: Sequence[str],
        at: int,
        actor: str = "sync",
    ) -> list[int]:
        """Store edits (the new text; the event keeps the old one) and deletions, in one transaction.

        Events: ``edited_upstream`` {external_id, previous_text, edited_at} and ``deleted_upstream``
        {external_id}, on the message's row.

        Returns:
            The thread heads that changed.

        Raises:
            StorageError: Nothing was written.
        """
        heads: list[int] = []
        with self._db.atomic():
            for edit in edited:
                row = fetch_one(
                    self._conn,
                    "SELECT id, COALESCE(head_id, id) AS head_id, text FROM mentions "
                    "WHERE account_id = ? AND external_id = ?",
                    (account_id, edit.external_id),
                )
                if row is None or (row["text"] == edit.text and edit.edited_at is None):
                    continue
                self._conn.execute(
                    "UPDATE mentions SET text = ?, raw = ? WHERE id = ?", (edit.text, edit.raw_json, row["id"])
                )
                self._event(
                    at,
                    actor,
                    int(row["id"]),
                    "edited_upstream",
                    {"external_id": edit.external_id, "previous_text": row["text"], "edited_at": edit.edited_at},
                )
                heads.append(int(row["head_id"]))
            for external_id in deleted:
                row = fetch_one(
                    self._conn,
                    "SELECT id, COALESCE(head_id, id) AS head_id FROM mentions WHERE account_id = ? "
                    "AND external_id = ? AND upstream_deleted_at IS NULL",
                    (account_id, external_id),
                )
                if row is None:
                    continue
                self._conn.execute("UPDATE mentions SET upstream_deleted_at = ? WHERE id = ?", (at, row["id"]))
                self._event(at, actor, int(row["id"]), "deleted_upstream", {"external_id": external_id})
                heads.append(int(row["head_id"]))
        return list(dict.fromkeys(heads))

    def _event(self, at: int, actor: str, mention_id: int, kind: str, data: dict[str, object]) -> None:
        write_event(self._conn, at=at, actor=actor, kind=kind, mention_id=mention_id, data=data)
