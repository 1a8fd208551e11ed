"""Capacity: the figures behind the expected wait (items awaiting a reply, replies sent) and the status-post outbox."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.driver import fetch_all, fetch_one, qmarks, repository, says, scalar
from storage.errors import StorageError
from storage.events import write_event
from storage.rows import ReplyState

__all__ = ["CapacityRepo", "StatusPostRepo", "StatusPostRow"]

_COLUMNS = (
    "id, account_id, text, visibility, purpose, idempotency_key, state, attempts, external_id, url, error, "
    "wait_seconds, created_at, queued_at, sent_at, next_attempt_at, attempted_at"
)


@dataclass(frozen=True, slots=True)
class StatusPostRow:
    """A status post (not a reply): the text, its account, and where it is in the outbox life cycle."""

    id: int
    account_id: int
    text: str
    visibility: str
    purpose: str
    idempotency_key: str
    state: ReplyState
    attempts: int
    external_id: str | None
    url: str
    error: str
    wait_seconds: int | None  # the expected wait the post published
    created_at: int
    queued_at: int
    sent_at: int | None
    next_attempt_at: int | None
    attempted_at: int | None  # the start of the last network call


def _row(r: sqlite3.Row) -> StatusPostRow:
    return StatusPostRow(
        id=int(r["id"]),
        account_id=int(r["account_id"]),
        text=str(r["text"]),
        visibility=str(r["visibility"]),
        purpose=str(r["purpose"]),
        idempotency_key=str(r["idempotency_key"]),
        state=ReplyState(r["state"]),
        attempts=int(r["attempts"]),
        external_id=None if r["external_id"] is None else str(r["external_id"]),
        url=str(r["url"]),
        error=str(r["error"]),
        wait_seconds=None if r["wait_seconds"] is None else int(r["wait_seconds"]),
        created_at=int(r["created_at"]),
        queued_at=int(r["queued_at"]),
        sent_at=None if r["sent_at"] is None else int(r["sent_at"]),
        next_attempt_at=None if r["next_attempt_at"] is None else int(r["next_attempt_at"]),
        attempted_at=None if r["attempted_at"] is None else int(r["attempted_at"]),
    )


@repository
class CapacityRepo:
    """Read-only counts for the expected wait; both are index walks, whatever the size of the history."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._conn: sqlite3.Connection = db.conn

    @says("Could not count the open items")
    def awaiting_response(self, *, cap: int) -> int:
        """Open items (new or open) with a first or next response still running, counting at most ``cap``.

        Args:
            cap: Stop counting here (a wait beyond the ceiling is the same answer for 10,000 or 1,000,000 items).

        Returns:
            How many items a new one would queue behind.
        """
        value = scalar(
            self._conn,
            "SELECT count(*) FROM (SELECT 1 FROM mentions m INDEXED BY mentions_open_due "
            "WHERE m.head_id IS NULL AND m.status IN ('new', 'open') AND EXISTS ("
            "SELECT 1 FROM deadlines d WHERE d.mention_id = m.id "
            "AND d.kind IN ('first_response', 'next_response') AND d.met_at IS NULL AND d.cancelled_at IS NULL"
            ") LIMIT ?)",
            (cap,),
        )
        return int(value)

    @says("Could not count the replies sent")
    def replies_sent(self, since: int, until: int, purposes: Iterable[str]) -> int:
        """How many replies of ``purposes`` reached customers in ``(since, until]`` ("reply_sent" events)."""
        return int(self._replies_sent("count(*)", since, until, purposes) or 0)

    @says("Could not read the replies sent")
    def first_reply_sent(self, since: int, until: int, purposes: Iterable[str]) -> int | None:
        """When the first reply of ``purposes`` in ``(since, until]`` was sent (None when there was none)."""
        value = self._replies_sent("min(at)", since, until, purposes)
        return None if value is None else int(value)

    def _replies_sent(self, aggregate: str, since: int, until: int, purposes: Iterable[str]) -> Any:
        """``aggregate`` over the "reply_sent" events of ``purposes`` in ``(since, until]``; None for no purpose."""
        wanted = sorted(set(purposes))
        if not wanted:
            return None
        return scalar(
            self._conn,
            f"SELECT {aggregate} FROM events INDEXED BY events_kind_at WHERE kind = 'reply_sent' AND at > ? "
            f"AND at <= ? AND json_extract(data, '$.purpose') IN ({qmarks(len(wanted))})",
            (since, until, *wanted),
        )


@repository
class StatusPostRepo:
    """The status-post outbox; every state change and its event ("status_*", no mention) commit together."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    def _event(self, *, at: int, actor: str, kind: str, **data: Any) -> None:
        write_event(self._conn, at=at, actor=actor, kind=kind, data=data)

    def _one(self, post_id: int) -> StatusPostRow:
        row = fetch_one(self._conn, f"SELECT {_COLUMNS} FROM status_posts WHERE id = ?", (post_id,))
        if row is None:
            raise StorageError(f"There is no status post {post_id}.")
        return _row(row)

    def get(self, post_id: int) -> StatusPostRow | None:
        row = fetch_one(self._conn, f"SELECT {_COLUMNS} FROM status_posts WHERE id = ?", (post_id,))
        return None if row is None else _row(row)

    @says("Could not queue the status post")
    def enqueue(
        self,
        *,
        account_id: int,
        text: str,
        visibility: str,
        idempotency_key: str,
        now: int,
        actor: str,
        wait_seconds: int | None = None,
        purpose: str = "status",
    ) -> StatusPostRow:
        """Commit a status post as ``queued`` with its ``status_queued`` event, before any network call.

        Raises:
            StorageError: Nothing was written (e.g. the account does not exist).
        """
        with self._db.atomic():
            cur = self._conn.execute(
                "INSERT INTO status_posts (account_id, text, visibility, purpose, idempotency_key, state, "
                "wait_seconds, created_at, queued_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (account_id, text, visibility, purpose, idempotency_key, ReplyState.QUEUED.value, wait_seconds,
                 now, now),
            )  # fmt: skip
            post_id = int(cur.lastrowid or 0)
            self._event(at=now, actor=actor, kind="status_queued", status_id=post_id, account_id=account_id,
                        purpose=purpose, wait_seconds=wait_seconds)  # fmt: skip
        return self._one(post_id)

    def pending(self) -> list[StatusPostRow]:
        """Queued and sending posts, in the order they were queued."""
        rows = fetch_all(
            self._conn,
            # Literal states, so that the partial index status_posts_pending applies.
            f"SELECT {_COLUMNS} FROM status_posts WHERE state IN ('queued', 'sending') ORDER BY queued_at, id",
        )
        return [_row(r) for r in rows]

    def recent(self, limit: int = 20) -> list[StatusPostRow]:
        """The newest posts first (the dialog shows the last one)."""
        rows = fetch_all(self._conn, f"SELECT {_COLUMNS} FROM status_posts ORDER BY id DESC LIMIT ?", (limit,))
        return [_row(r) for r in rows]

    def mark_sending(self, post_id: int, *, now: int) -> StatusPostRow | None:
        """A network call is about to start (attempts + 1); None when the post is no longer pending."""
        with self._db.atomic():
            updated = self._conn.execute(
                "UPDATE status_posts SET state = ?, attempts = attempts + 1, next_attempt_at = NULL, attempted_at = ? "
                "WHERE id = ? AND state IN (?, ?)",
                (ReplyState.SENDING.value, now, post_id, ReplyState.QUEUED.value, ReplyState.SENDING.value),
            ).rowcount
        return self._one(post_id) if updated else None

    def mark_sent(self, post_id: int, *, external_id: str, url: str, at: int, actor: str = "outbox") -> StatusPostRow:
        """Record the posted status's id and URL (``status_posted`` event)."""
        with self._db.atomic():
            self._conn.execute(
                "UPDATE status_posts SET state = ?, external_id = ?, url = ?, sent_at = ?, error = '', "
                "next_attempt_at = NULL WHERE id = ?",
                (ReplyState.SENT.value, external_id, url, at, post_id),
            )
            row = self._one(post_id)
            self._event(at=at, actor=actor, kind="status_posted", status_id=post_id, account_id=row.account_id,
                        purpose=row.purpose, external_id=external_id, wait_seconds=row.wait_seconds)  # fmt: skip
        return row

    def mark_waiting(self, post_id: int, *, error: str, next_attempt_at: int | None) -> StatusPostRow:
        """Back in the queue with the reason it did not leave and when it is tried again."""
        with self._db.atomic():
            self._conn.execute(
                "UPDATE status_posts SET state = ?, error = ?, next_attempt_at = ? WHERE id = ?",
                (ReplyState.QUEUED.value, error, next_attempt_at, post_id),
            )
        return self._one(post_id)

    def mark_failed(self, post_id: int, *, error: str, at: int, actor: str = "outbox") -> StatusPostRow:
        """Stop trying (``status_failed`` event)."""
        with self._db.atomic():
            self._conn.execute(
                "UPDATE status_posts SET state = ?, error = ?, next_attempt_at = NULL WHERE id = ?",
                (ReplyState.FAILED.value, error, post_id),
            )
            self._event(at=at, actor=actor, kind="status_failed", status_id=post_id, error=error)
        return self._one(post_id)
