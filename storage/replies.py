"""The outbox table: drafts, queued/sending/sent/failed replies, and their events, each change in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlite_utils

from storage.driver import chunked, fetch_all, fetch_one, named, qmarks, repository, says
from storage.errors import StorageError
from storage.events import write_event
from storage.rows import ReplyRow, ReplyState

#: The error a withdrawn reply carries (it is stored as ``failed``, but nothing failed: the agent took it back).
WITHDRAWN_ERROR = "Withdrawn by the agent"

_COLUMNS = (
    "id, mention_id, text, visibility, idempotency_key, state, attempts, external_id, error, created_at, sent_at, "
    "purpose, template_id, queued_at, next_attempt_at, url, target_id, corrects_id, hold_reason, seen_at, holding_until"
)
#: States a reply waits in before it is known to be posted.
PENDING_STATES: tuple[ReplyState, ...] = (ReplyState.QUEUED, ReplyState.SENDING)


def _reply(row: sqlite3.Row) -> ReplyRow:
    return ReplyRow(
        id=int(row["id"]),
        mention_id=int(row["mention_id"]),
        text=str(row["text"]),
        visibility=str(row["visibility"]),
        idempotency_key=str(row["idempotency_key"]),
        state=ReplyState(row["state"]),
        attempts=int(row["attempts"]),
        external_id=None if row["external_id"] is None else str(row["external_id"]),
        error=str(row["error"]),
        created_at=int(row["created_at"]),
        sent_at=None if row["sent_at"] is None else int(row["sent_at"]),
        purpose=str(row["purpose"]),
        template_id=None if row["template_id"] is None else int(row["template_id"]),
        queued_at=None if row["queued_at"] is None else int(row["queued_at"]),
        next_attempt_at=None if row["next_attempt_at"] is None else int(row["next_attempt_at"]),
        url=str(row["url"]),
        target_id=None if row["target_id"] is None else int(row["target_id"]),
        corrects_id=None if row["corrects_id"] is None else int(row["corrects_id"]),
        hold_reason=str(row["hold_reason"]),
        seen_at=None if row["seen_at"] is None else int(row["seen_at"]),
        holding_until=None if row["holding_until"] is None else int(row["holding_until"]),
    )


@repository
class ReplyRepo:
    """Reads and writes ``replies``; every state change and its event are committed together."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    def _event(self, *, at: int, actor: str, mention_id: int, kind: str, **data: Any) -> None:
        write_event(self._conn, at=at, actor=actor, kind=kind, mention_id=mention_id, data=data)

    def _one(self, reply_id: int) -> ReplyRow:
        row = fetch_one(self._conn, f"SELECT {_COLUMNS} FROM replies WHERE id = ?", (reply_id,))
        if row is None:
            raise StorageError(f"There is no reply {reply_id}.")
        return _reply(row)

    # ------------------------------------------------------------------ writes
    @says("Could not queue the reply")
    def enqueue(
        self,
        *,
        mention_id: int,
        target_id: int,
        text: str,
        visibility: str,
        purpose: str,
        idempotency_key: str,
        now: int,
        actor: str,
        template_id: int | None = None,
        corrects_id: int | None = None,
        seen_at: int | None = None,
        holding_until: int | None = None,
    ) -> ReplyRow:
        """Commit a reply as ``queued`` (with its ``reply_queued`` event) and drop the item's draft.

        Args:
            mention_id: The queue item (thread head) the reply belongs to.
            target_id: The message it answers.
            text: The reply as the agent wrote it (the channel adds the handle when missing).
            visibility: The channel's visibility word.
            purpose: "reply", "holding", "survey", "correction" or "status".
            idempotency_key: Unique per reply; reused on every retry.
            now: Epoch seconds.
            actor: The agent's name for the event log.
            template_id: The template it started from, if any.
            corrects_id: For corrections, the sent reply corrected.
            seen_at: When the agent last saw the thread (freshness check); defaults to ``now``.
            holding_until: For holding replies, when the promised follow-up is due.

        Returns:
            The stored row.

        Raises:
            StorageError: The row could not be written (nothing was committed).
        """
        with self._db.atomic():
            cur = self._conn.execute(
                "INSERT INTO replies (mention_id, target_id, text, visibility, purpose, idempotency_key, state, "
                "template_id, corrects_id, created_at, queued_at, seen_at, holding_until) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    mention_id, target_id, text, visibility, purpose, idempotency_key, ReplyState.QUEUED.value,
                    template_id, corrects_id, now, now, now if seen_at is None else seen_at, holding_until,
                ),
            )  # fmt: skip
            reply_id = int(cur.lastrowid or 0)
            self._conn.execute(
                "DELETE FROM replies WHERE mention_id = ? AND state = ?", (mention_id, ReplyState.DRAFT.value)
            )
            self._event(at=now, actor=actor, mention_id=mention_id, kind="reply_queued", reply_id=reply_id,
                        purpose=purpose)  # fmt: skip
        return self._one(reply_id)

    def save_draft(self, mention_id: int, text: str, *, key: str, now: int) -> None:
        """Keep the item's unsent text (one draft per item); empty text deletes the draft."""
        with self._db.atomic():
            updated = self._conn.execute(
                "UPDATE replies SET text = ?, created_at = ? WHERE mention_id = ? AND state = ?",
                (text, now, mention_id, ReplyState.DRAFT.value),
            ).rowcount
            if not text:
                self._conn.execute(
                    "DELETE FROM replies WHERE mention_id = ? AND state = ?", (mention_id, ReplyState.DRAFT.value)
                )
            elif not updated:
                self._conn.execute(
                    "INSERT INTO replies (mention_id, text, idempotency_key, state, created_at) VALUES (?,?,?,?,?)",
                    (mention_id, text, key, ReplyState.DRAFT.value, now),
                )

    def mark_sending(self, reply_id: int, *, now: int) -> ReplyRow | None:
        """Record that a network call is about to start (attempts + 1).

        Returns:
            The row, or None when it is no longer pending (withdrawn meanwhile): then nothing may be sent.
        """
        with self._db.atomic():
            updated = self._conn.execute(
                "UPDATE replies SET state = ?, attempts = attempts + 1, next_attempt_at = NULL "
                "WHERE id = ? AND state IN (?, ?)",
                (ReplyState.SENDING.value, reply_id, ReplyState.QUEUED.value, ReplyState.SENDING.value),
            ).rowcount
        return self._one(reply_id) if updated else None

    def mark_sent(self, reply_id: int, *, external_id: str, url: str, at: int, actor: str = "outbox") -> ReplyRow:
        """Record the posted reply's id and URL, with a ``reply_sent`` event.

        A sync that read the account's own posts while this reply was on its way may have stored the same post
        as a reply seen on the channel: that row goes, the reply is ours (its ``reply_seen`` event stays in the
        append-only log).
        """
        with self._db.atomic():
            self._conn.execute(
                "DELETE FROM replies WHERE external_id = ? AND idempotency_key LIKE 'seen:%' AND mention_id = "
                "(SELECT mention_id FROM replies WHERE id = ?)",
                (external_id, reply_id),
            )
            self._conn.execute(
                "UPDATE replies SET state = ?, external_id = ?, url = ?, sent_at = ?, error = '', "
                "next_attempt_at = NULL, hold_reason = '' WHERE id = ?",
                (ReplyState.SENT.value, external_id, url, at, reply_id),
            )
            row = self._one(reply_id)
            self._event(at=at, actor=actor, mention_id=row.mention_id, kind="reply_sent", reply_id=reply_id,
                        purpose=row.purpose, external_id=external_id)  # fmt: skip
            if row.corrects_id is not None:
                mode = "edit" if external_id == self._one(row.corrects_id).external_id else "follow_up"
                self._event(at=at, actor=actor, mention_id=row.mention_id, kind="reply_corrected",
                            reply_id=row.corrects_id, mode=mode, correction_id=reply_id)  # fmt: skip
        return row

    def mark_waiting(self, reply_id: int, *, error: str, next_attempt_at: int | None) -> ReplyRow:
        """Put a reply back in the queue with the reason it did not leave and when it is tried again."""
        with self._db.atomic():
            self._conn.execute(
                "UPDATE replies SET state = ?, error = ?, next_attempt_at = ? WHERE id = ?",
                (ReplyState.QUEUED.value, error, next_attempt_at, reply_id),
            )
        return self._one(reply_id)

    def mark_failed(self, reply_id: int, *, error: str, at: int, actor: str = "outbox") -> ReplyRow:
        """Stop trying: the channel refused the reply for good (``reply_failed`` event)."""
        with self._db.atomic():
            self._conn.execute(
                "UPDATE replies SET state = ?, error = ?, next_attempt_at = NULL WHERE id = ?",
                (ReplyState.FAILED.value, error, reply_id),
            )
            row = self._one(reply_id)
            self._event(at=at, actor=actor, mention_id=row.mention_id, kind="reply_failed", reply_id=reply_id,
                        error=error)  # fmt: skip
        return row

    def hold(self, reply_id: int, *, reason: str) -> ReplyRow:
        """Keep a queued reply from leaving until the agent confirms it (``release``)."""
        with self._db.atomic():
            self._conn.execute(
                "UPDATE replies SET state = ?, hold_reason = ? WHERE id = ? AND state IN (?, ?)",
                (ReplyState.QUEUED.value, reason, reply_id, ReplyState.QUEUED.value, ReplyState.SENDING.value),
            )
        return self._one(reply_id)

    def release(self, reply_id: int, *, now: int) -> ReplyRow:
        """The agent confirmed a held reply: it may leave now, and the thread counts as seen at ``now``."""
        with self._db.atomic():
            self._conn.execute(
                "UPDATE replies SET hold_reason = '', seen_at = ?, next_attempt_at = NULL WHERE id = ? AND state = ?",
                (now, reply_id, ReplyState.QUEUED.value),
            )
        return self._one(reply_id)

    def cancel(self, reply_id: int, *, now: int, actor: str) -> ReplyRow:
        """Withdraw a queued (not yet sending) reply; it becomes ``failed`` with the reason "withdrawn"."""
        with self._db.atomic():
            row = self._one(reply_id)
            if row.state is not ReplyState.QUEUED:
                raise StorageError("Only a reply that is still queued can be withdrawn.")
            self._conn.execute(
                "UPDATE replies SET state = ?, error = ?, next_attempt_at = NULL WHERE id = ?",
                (ReplyState.FAILED.value, WITHDRAWN_ERROR, reply_id),
            )
            self._event(at=now, actor=actor, mention_id=row.mention_id, kind="reply_failed", reply_id=reply_id,
                        error="withdrawn")  # fmt: skip
        return self._one(reply_id)

    def requeue(self, reply_id: int, *, now: int, actor: str) -> ReplyRow:
        """Send a failed reply again ("Retry"): queued anew, at the back of the queue, with a ``reply_queued``
        event marked ``retry``. Its idempotency key is kept, so it is never posted twice.

        Raises:
            StorageError: It did not fail (or was withdrawn); nothing changed.
        """
        with self._db.atomic():
            row = self._one(reply_id)
            if row.state is not ReplyState.FAILED or row.error == WITHDRAWN_ERROR:
                raise StorageError("Only a reply that failed can be sent again.")
            self._conn.execute(
                "UPDATE replies SET state = ?, error = '', next_attempt_at = NULL, hold_reason = '', queued_at = ?, "
                "seen_at = ? WHERE id = ?",
                (ReplyState.QUEUED.value, now, now, reply_id),
            )
            self._event(at=now, actor=actor, mention_id=row.mention_id, kind="reply_queued", reply_id=reply_id,
                        purpose=row.purpose, retry=True)  # fmt: skip
        return self._one(reply_id)

    def mark_override(self, reply_id: int, *, reason: str, now: int, actor: str) -> ReplyRow:
        """The agent chose to "send anyway" (team mode): over a colleague's claim, after a colleague's reply was
        recorded first, or while cut off from the team server.

        In one transaction: the reply is marked ``override`` (the outbox's send gate lets it pass) and for review
        (``review_reason``), a failed one is queued again at the back of the queue (its idempotency key kept, so
        it is never posted twice), a waiting one is made due now, and a ``send_anyway`` event (the team log's
        audit of the choice) is written.

        Raises:
            StorageError: The reply is unknown, withdrawn, already sending or sent; nothing changed.
        """
        with self._db.atomic():
            row = self._one(reply_id)
            if row.state not in (ReplyState.QUEUED, ReplyState.FAILED) or row.error == WITHDRAWN_ERROR:
                raise StorageError("Only a reply that has not left (queued, or refused) can be sent anyway.")
            if row.state is ReplyState.FAILED:
                self._conn.execute(
                    "UPDATE replies SET state = ?, error = '', next_attempt_at = NULL, hold_reason = '', "
                    "queued_at = ? WHERE id = ?",
                    (ReplyState.QUEUED.value, now, reply_id),
                )
            else:
                self._conn.execute("UPDATE replies SET next_attempt_at = NULL WHERE id = ?", (reply_id,))
            self._conn.execute("UPDATE replies SET override = 1, review_reason = ? WHERE id = ?", (reason, reply_id))
            self._event(at=now, actor=actor, mention_id=row.mention_id, kind="send_anyway", reply_id=reply_id,
                        reply_key=row.idempotency_key, reason=reason)  # fmt: skip
        return self._one(reply_id)

    def is_override(self, reply_id: int) -> bool:
        """Whether the agent chose to send this reply anyway (see :meth:`mark_override`)."""
        row = fetch_one(self._conn, "SELECT override FROM replies WHERE id = ?", (reply_id,))
        return row is not None and bool(row["override"])

    def review_marks(self, reply_ids: Sequence[int]) -> dict[int, str]:
        """The review reason of each reply marked for review among ``reply_ids`` (unmarked ones are left out)."""
        result: dict[int, str] = {}
        for chunk in chunked(list(reply_ids)):
            for reply_id, reason in self._conn.execute(
                f"SELECT id, review_reason FROM replies WHERE id IN ({qmarks(len(chunk))}) AND review_reason != ''",
                chunk,
            ):
                result[int(reply_id)] = str(reason)
        return result

    # ------------------------------------------------------------------ reads
    def get(self, reply_id: int) -> ReplyRow | None:
        row = fetch_one(self._conn, f"SELECT {_COLUMNS} FROM replies WHERE id = ?", (reply_id,))
        return None if row is None else _reply(row)

    def draft(self, mention_id: int) -> ReplyRow | None:
        row = (
            named(self._conn)
            .execute(
                f"SELECT {_COLUMNS} FROM replies WHERE mention_id = ? AND state = ? ORDER BY id DESC LIMIT 1",
                (mention_id, ReplyState.DRAFT.value),
            )
            .fetchone()
        )
        return None if row is None else _reply(row)

    def for_mention(self, mention_id: int) -> list[ReplyRow]:
        """Every non-draft reply of a queue item, oldest first."""
        rows = (
            named(self._conn)
            .execute(
                f"SELECT {_COLUMNS} FROM replies WHERE mention_id = ? AND state != ? ORDER BY id",
                (mention_id, ReplyState.DRAFT.value),
            )
            .fetchall()
        )
        return [_reply(r) for r in rows]

    def pending(self, account_id: int | None = None) -> list[ReplyRow]:
        """Queued and sending replies in the order they were queued (optionally of one account)."""
        sql = (
            f"SELECT {', '.join('r.' + c.strip() for c in _COLUMNS.split(','))} FROM replies r "
            # Literals, not parameters: only then can SQLite prove the partial index replies_state applies
            # (a bound parameter made this a full scan of every reply ever sent: 160 ms at start-up at 1M).
            "JOIN mentions m ON m.id = r.mention_id WHERE r.state IN ('queued', 'sending')"
        )
        params: list[Any] = []
        if account_id is not None:
            sql += " AND m.account_id = ?"
            params.append(account_id)
        rows = fetch_all(self._conn, sql + " ORDER BY r.queued_at, r.id", params)
        return [_reply(r) for r in rows]

    def failed(self, account_id: int | None = None, *, limit: int = 200) -> list[ReplyRow]:
        """Replies that failed for good, newest first (withdrawn ones left out; optionally of one account).

        Not on a hot path (``outbox list``, ``doctor``): failed replies are few, so no index is needed.
        """
        sql = (
            f"SELECT {', '.join('r.' + c.strip() for c in _COLUMNS.split(','))} FROM replies r "
            "JOIN mentions m ON m.id = r.mention_id WHERE r.state = 'failed' AND r.error != ?"
        )
        params: list[Any] = [WITHDRAWN_ERROR]
        if account_id is not None:
            sql += " AND m.account_id = ?"
            params.append(account_id)
        rows = fetch_all(self._conn, sql + " ORDER BY r.id DESC LIMIT ?", [*params, limit])
        return [_reply(r) for r in rows]

    def answered_elsewhere(self, mention_id: int, *, after: int, found_since: int) -> ReplyRow | None:
        """The newest reply of the item seen on the channel (posted from another app or install, see
        storage.seen_replies) that was posted at or after ``after`` (the customer's latest message) and found at
        or after ``found_since`` (when the agent last saw the thread): an answer the agent has not seen.

        Returns:
            That reply, or None.
        """
        row = fetch_one(
            self._conn,
            f"SELECT {_COLUMNS} FROM replies WHERE mention_id = ? AND state = ? AND idempotency_key LIKE 'seen:%' "
            "AND sent_at >= ? AND created_at >= ? ORDER BY sent_at DESC, id DESC LIMIT 1",
            (mention_id, ReplyState.SENT.value, after, found_since),
        )
        return None if row is None else _reply(row)

    def account_of(self, reply_id: int) -> int:
        row = (
            named(self._conn)
            .execute(
                "SELECT m.account_id FROM replies r JOIN mentions m ON m.id = r.mention_id WHERE r.id = ?", (reply_id,)
            )
            .fetchone()
        )
        if row is None:
            raise StorageError(f"There is no reply {reply_id}.")
        return int(row["account_id"])

    def waiting_count(self) -> int:
        """Replies written but not yet posted (queued or sending)."""
        # The states are literals, not parameters, so that SQLite counts on the partial index replies_queued
        # instead of scanning every sent reply (80 ms with a million replies, on each outbox change).
        row = (
            named(self._conn)
            .execute("SELECT count(*) AS n FROM replies WHERE state IN ('queued', 'sending')")
            .fetchone()
        )
        return int(row["n"])

    def latest_states(self, mention_ids: Sequence[int]) -> dict[int, ReplyState]:
        """The state of each item's newest non-draft reply (for the queue's reply-state hint)."""
        result: dict[int, ReplyState] = {}
        ids = list(mention_ids)
        for chunk in chunked(ids):
            marks = qmarks(len(chunk))
            # A withdrawn reply is no failure: the queue shows the state of the reply before it, if any.
            for mention_id, state in self._conn.execute(
                f"SELECT mention_id, state FROM replies WHERE id IN (SELECT max(id) FROM replies "
                f"WHERE mention_id IN ({marks}) AND state != ? AND NOT (state = ? AND error = ?) GROUP BY mention_id)",
                (*chunk, ReplyState.DRAFT.value, ReplyState.FAILED.value, WITHDRAWN_ERROR),
            ):
                result[int(mention_id)] = ReplyState(state)
        return result
