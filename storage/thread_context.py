"""Per-item conversation extras: channel messages cached for a thread, and upstream marks on stored messages."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import sqlite_utils

from storage.driver import fetch_all, fetch_one, repository, says, scalar

__all__ = ["ContextMessage", "MessageMarks", "ThreadContextRepo", "ThreadHead"]


@dataclass(frozen=True, slots=True)
class ContextMessage:
    """A message of the thread read from the channel that is not a stored mention (e.g. the post answered)."""

    external_id: str
    author_handle: str
    author_name: str
    text: str
    url: str
    posted_at: int
    kind: str


@dataclass(frozen=True, slots=True)
class MessageMarks:
    """What happened upstream to one stored message, and channel data worth showing."""

    mention_id: int
    deleted_at: int | None
    #: ``(edited at, text before the edit)``, oldest first.
    edits: tuple[tuple[int, str], ...]
    #: Messenger: the end of the 24-hour window this message opened (epoch seconds), else None.
    window_closes_at: int | None


@dataclass(frozen=True, slots=True)
class ThreadHead:
    id: int
    account_id: int
    channel: str
    external_id: str
    parent_external_id: str | None


@repository
class ThreadContextRepo:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    def head(self, head_id: int) -> ThreadHead | None:
        """The queue item's ids and channel, or None when it is not stored."""
        row = fetch_one(
            self._conn,
            "SELECT m.id, m.account_id, a.kind AS channel, m.external_id, m.parent_external_id "
            "FROM mentions m JOIN accounts a ON a.id = m.account_id WHERE m.id = ?",
            (head_id,),
        )
        if row is None:
            return None
        parent = row["parent_external_id"]
        return ThreadHead(
            id=int(row["id"]), account_id=int(row["account_id"]), channel=str(row["channel"]),
            external_id=str(row["external_id"]), parent_external_id=None if parent is None else str(parent),
        )  # fmt: skip

    def known_external_ids(self, head_id: int) -> set[str]:
        """External ids of the thread's stored messages and of our replies to it."""
        rows = self._conn.execute(
            "SELECT external_id FROM mentions WHERE id = ? OR head_id = ? "
            "UNION SELECT r.external_id FROM replies r JOIN mentions m ON m.id = r.mention_id "
            "WHERE (m.id = ? OR m.head_id = ?) AND r.external_id IS NOT NULL",
            (head_id, head_id, head_id, head_id),
        )
        return {str(external_id) for (external_id,) in rows}

    def last_fetch(self, head_id: int) -> int | None:
        fetched_at = scalar(self._conn, "SELECT fetched_at FROM thread_fetches WHERE head_id = ?", (head_id,))
        return None if fetched_at is None else int(fetched_at)

    @says("Could not keep the conversation fetched from the channel")
    def replace(self, head_id: int, messages: Sequence[ContextMessage], *, fetched_at: int) -> None:
        """Store what the channel returned for this item (replacing the previous copy), in one transaction.

        Raises:
            StorageError: Nothing was written.
        """
        with self._db.atomic():
            self._conn.execute("DELETE FROM thread_context WHERE head_id = ?", (head_id,))
            self._conn.executemany(
                "INSERT OR REPLACE INTO thread_context (head_id, external_id, author_handle, author_name, text, "
                "url, posted_at, kind) VALUES (?,?,?,?,?,?,?,?)",
                [
                    (head_id, m.external_id, m.author_handle, m.author_name, m.text, m.url, m.posted_at, m.kind)
                    for m in messages
                ],
            )
            self._conn.execute(
                "INSERT INTO thread_fetches (head_id, fetched_at) VALUES (?, ?) "
                "ON CONFLICT(head_id) DO UPDATE SET fetched_at = excluded.fetched_at",
                (head_id, fetched_at),
            )

    def context(self, head_id: int) -> list[ContextMessage]:
        """Cached channel messages of the item that are not (or no longer) stored as mentions, oldest first."""
        rows = fetch_all(
            self._conn,
            "SELECT c.external_id, c.author_handle, c.author_name, c.text, c.url, c.posted_at, c.kind "
            "FROM thread_context c WHERE c.head_id = ? AND NOT EXISTS (SELECT 1 FROM mentions m "
            "WHERE (m.id = c.head_id OR m.head_id = c.head_id) AND m.external_id = c.external_id) "
            "ORDER BY c.posted_at, c.external_id",
            (head_id,),
        )
        return [
            ContextMessage(
                external_id=str(r["external_id"]),
                author_handle=str(r["author_handle"]),
                author_name=str(r["author_name"]),
                text=str(r["text"]),
                url=str(r["url"]),
                posted_at=int(r["posted_at"]),
                kind=str(r["kind"]),
            )
            for r in rows
        ]

    def marks(self, head_id: int) -> dict[int, MessageMarks]:
        """Upstream deletions and edits, and Messenger windows, of the thread's messages (only those with any)."""
        rows = self._conn.execute(
            "SELECT m.id, m.upstream_deleted_at, "
            "CASE WHEN json_valid(m.raw) THEN json_extract(m.raw, '$.window_closes_at') END "
            "FROM mentions m WHERE m.id = ? OR m.head_id = ?",
            (head_id, head_id),
        ).fetchall()
        edits: dict[int, list[tuple[int, str]]] = {}
        for mention_id, at, data in self._conn.execute(
            "SELECT e.mention_id, e.at, e.data FROM events e JOIN mentions m ON m.id = e.mention_id "
            "WHERE (m.id = ? OR m.head_id = ?) AND e.kind = 'edited_upstream' ORDER BY e.at, e.id",
            (head_id, head_id),
        ):
            try:
                previous = json.loads(data).get("previous_text")
            except (ValueError, AttributeError):
                previous = None
            if isinstance(previous, str):
                edits.setdefault(int(mention_id), []).append((int(at), previous))
        marks: dict[int, MessageMarks] = {}
        for mention_id, deleted_at, window in rows:
            closes = int(window) if isinstance(window, int | float) else None
            found = edits.get(int(mention_id), [])
            if deleted_at is None and not found and closes is None:
                continue
            marks[int(mention_id)] = MessageMarks(
                int(mention_id), None if deleted_at is None else int(deleted_at), tuple(found), closes
            )
        return marks

    def link_html(self, head_id: int) -> dict[int, str]:
        """The channel's HTML of the thread's stored messages that contain links (Mastodon ``content``)."""
        rows = self._conn.execute(
            "SELECT id, json_extract(raw, '$.content') FROM mentions WHERE (id = ? OR head_id = ?) "
            "AND json_valid(raw) AND json_type(raw, '$.content') = 'text' "
            "AND instr(json_extract(raw, '$.content'), '<a ')",
            (head_id, head_id),
        )
        return {int(mention_id): str(content) for mention_id, content in rows}
