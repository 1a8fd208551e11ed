"""Shifts (start, end, notes) and the read queries a shift summary is computed from."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from storage.db import open_database
from storage.driver import chunked, fetch_all, fetch_in, fetch_one, qmarks, repository, says, scalar
from storage.errors import StorageError
from storage.events import event_row, write_event
from storage.mentions import deadline_row
from storage.rows import DeadlineRow, EventRow, MentionStatus
from storage.settings import Setting

#: Cost of one hour of an agent's handling time, for the summary's per-channel cost (currency-neutral).
HOURLY_RATE = Setting("report.hourly_rate", 30.0, float, 0.0, 10_000.0)
#: Currency label printed next to costs in reports.
CURRENCY = Setting("report.currency", "EUR", str)


@dataclass(frozen=True, slots=True)
class ShiftRow:
    id: int
    agent_name: str
    started_at: int
    ended_at: int | None
    notes: str


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """A queue item (thread head) as the summary needs it."""

    id: int
    channel: str
    customer_id: int | None
    author_handle: str
    author_name: str
    text: str
    url: str
    posted_at: int
    status: MentionStatus
    priority: int
    tags: str
    is_first_contact: bool
    last_message_at: int
    message_count: int
    #: The customer's id on the channel (customers.external_id), "" when unknown: the stable customer key's base.
    customer_external_id: str = ""


@dataclass(frozen=True, slots=True)
class SentReply:
    id: int
    head_id: int
    purpose: str
    state: str
    text: str
    created_at: int
    sent_at: int | None


@dataclass(frozen=True, slots=True)
class SurveyFacts:
    id: int
    head_id: int
    sent_at: int | None
    score: int | None
    parsed_at: int | None


@dataclass(frozen=True, slots=True)
class LastMessage:
    head_id: int
    at: int
    text: str
    from_customer: bool


def _opt(value: Any) -> int | None:
    return None if value is None else int(value)


def _shift(row: sqlite3.Row) -> ShiftRow:
    return ShiftRow(
        int(row["id"]), str(row["agent_name"]), int(row["started_at"]), _opt(row["ended_at"]), str(row["notes"])
    )


def _sent_reply(r: sqlite3.Row) -> SentReply:
    return SentReply(
        id=int(r["id"]), head_id=int(r["head_id"]), purpose=str(r["purpose"]), state=str(r["state"]),
        text=str(r["text"]), created_at=int(r["created_at"]), sent_at=_opt(r["sent_at"]),
    )  # fmt: skip


def _survey_facts(r: sqlite3.Row) -> SurveyFacts:
    return SurveyFacts(
        id=int(r["id"]), head_id=int(r["head_id"]), sent_at=_opt(r["sent_at"]), score=_opt(r["score"]),
        parsed_at=_opt(r["parsed_at"]),
    )  # fmt: skip


_SHIFT_COLUMNS = "id, agent_name, started_at, ended_at, notes"


@repository
class ShiftRepo:
    """Shift rows and the summary's read queries. Never lets a raw sqlite3 error cross the boundary."""

    def __init__(self, db: sqlite_utils.Database, *, owns_connection: bool = False) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn
        self._owns = owns_connection

    def close(self) -> None:
        """Close the connection if this repository opened it (``open_shift_repo``)."""
        if self._owns:
            self._conn.close()

    # ------------------------------------------------------------------ shift rows
    @says("Could not start the shift")
    def start(self, agent_name: str, at: int) -> ShiftRow:
        """Insert a running shift and its ``shift_started`` event in one transaction."""
        with self._db.atomic():
            cur = self._conn.execute(
                "INSERT INTO shifts (agent_name, started_at, notes) VALUES (?, ?, '')", (agent_name, at)
            )
            shift_id = int(cur.lastrowid or 0)
            self._event(at, agent_name, "shift_started", shift_id)
        return ShiftRow(shift_id, agent_name, at, None, "")

    @says("Could not end the shift")
    def end(self, shift_id: int, at: int, notes: str) -> ShiftRow:
        """Close a shift at ``at`` with the notes for the next shift, with a ``shift_ended`` event."""
        shift = self.get(shift_id)
        if shift is None:
            raise StorageError(f"There is no shift {shift_id}.")
        with self._db.atomic():
            self._conn.execute("UPDATE shifts SET ended_at = ?, notes = ? WHERE id = ?", (at, notes, shift_id))
            self._event(at, shift.agent_name, "shift_ended", shift_id)
        return ShiftRow(shift_id, shift.agent_name, shift.started_at, at, notes)

    @says("Could not save the shift notes")
    def set_notes(self, shift_id: int, notes: str) -> None:
        with self._db.atomic():
            self._conn.execute("UPDATE shifts SET notes = ? WHERE id = ?", (notes, shift_id))

    def _event(self, at: int, actor: str, kind: str, shift_id: int) -> None:
        write_event(self._conn, at=at, actor=actor, kind=kind, data={"shift_id": shift_id})

    def get(self, shift_id: int) -> ShiftRow | None:
        row = fetch_one(self._conn, f"SELECT {_SHIFT_COLUMNS} FROM shifts WHERE id = ?", (shift_id,))
        return None if row is None else _shift(row)

    def running(self) -> ShiftRow | None:
        """The newest shift that has not ended, if any."""
        row = fetch_one(
            self._conn,
            f"SELECT {_SHIFT_COLUMNS} FROM shifts WHERE ended_at IS NULL ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        return None if row is None else _shift(row)

    def last(self) -> ShiftRow | None:
        """The most recently started shift."""
        row = fetch_one(self._conn, f"SELECT {_SHIFT_COLUMNS} FROM shifts ORDER BY started_at DESC, id DESC LIMIT 1")
        return None if row is None else _shift(row)

    def last_ended(self) -> ShiftRow | None:
        row = fetch_one(
            self._conn,
            f"SELECT {_SHIFT_COLUMNS} FROM shifts WHERE ended_at IS NOT NULL ORDER BY ended_at DESC, id DESC LIMIT 1",
        )
        return None if row is None else _shift(row)

    def recent(self, *, limit: int = 100) -> list[ShiftRow]:
        rows = fetch_all(
            self._conn, f"SELECT {_SHIFT_COLUMNS} FROM shifts ORDER BY started_at DESC, id DESC LIMIT ?", (limit,)
        )
        return [_shift(r) for r in rows]

    def last_activity(self, agent_name: str, since: int) -> int | None:
        """Time of the agent's last recorded action (or of a reply the app sent for it) since ``since``."""
        return _opt(
            scalar(
                self._conn,
                "SELECT max(at) FROM events WHERE at >= ? AND (actor = ? OR kind = 'reply_sent') "
                "AND kind NOT IN ('shift_started', 'shift_ended')",
                (since, agent_name),
            )
        )

    # ------------------------------------------------------------------ summary reads
    @says("Could not read the event log")
    def events_between(self, start: int, end: int) -> list[EventRow]:
        """Every event with ``start <= at <= end``, oldest first."""
        rows = fetch_all(
            self._conn,
            "SELECT id, at, actor, mention_id, kind, data FROM events WHERE at BETWEEN ? AND ? ORDER BY at, id",
            (start, end),
        )
        return [event_row(r) for r in rows]

    def heads_received_between(self, start: int, end: int) -> list[int]:
        rows = self._conn.execute(
            "SELECT id FROM mentions WHERE head_id IS NULL AND posted_at BETWEEN ? AND ?", (start, end)
        )
        return [int(head_id) for (head_id,) in rows]

    def open_head_candidates(self, end: int) -> list[int]:
        """Heads that may have been open at ``end``: open now, or whose status changed after ``end``."""
        rows = self._conn.execute(
            "SELECT id FROM mentions WHERE head_id IS NULL AND posted_at <= ? AND status IN ('new','open','waiting') "
            "UNION SELECT mention_id FROM events WHERE at > ? AND mention_id IS NOT NULL "
            "AND kind IN ('status_changed', 'reopened')",
            (end, end),
        )
        return sorted(int(head_id) for (head_id,) in rows if head_id is not None)

    def status_events(self, ids: Sequence[int]) -> dict[int, list[tuple[int, str, str]]]:
        """Per head: its (at, kind, data) status-relevant events (survey answers too), oldest first."""
        out: dict[int, list[tuple[int, str, str]]] = {}
        for chunk in chunked(list(ids)):
            for mid, at, kind, data in self._conn.execute(
                f"SELECT mention_id, at, kind, data FROM events WHERE mention_id IN ({qmarks(len(chunk))}) "
                "AND kind IN ('received', 'status_changed', 'reopened', 'survey_answered') ORDER BY at, id",
                tuple(chunk),
            ):
                out.setdefault(int(mid), []).append((int(at), str(kind), str(data)))
        return out

    def items(self, ids: Sequence[int]) -> dict[int, ItemFacts]:
        out: dict[int, ItemFacts] = {}
        for r in fetch_in(
            self._conn,
            lambda marks: (
                "SELECT m.id, a.kind AS channel, m.customer_id, m.author_handle, m.author_name, m.text, m.url, "
                "m.posted_at, m.status, m.priority, m.tags, m.is_first_contact, m.last_message_at, m.message_count, "
                "coalesce(c.external_id, '') AS customer_external_id FROM mentions m "
                "JOIN accounts a ON a.id = m.account_id "
                f"LEFT JOIN customers c ON c.id = m.customer_id WHERE m.id IN ({marks})"
            ),
            ids,
        ):
            out[int(r["id"])] = ItemFacts(
                id=int(r["id"]), channel=str(r["channel"]), customer_id=_opt(r["customer_id"]),
                author_handle=str(r["author_handle"]), author_name=str(r["author_name"]), text=str(r["text"]),
                url=str(r["url"]), posted_at=int(r["posted_at"]), status=MentionStatus(r["status"]),
                priority=int(r["priority"]), tags=str(r["tags"]), is_first_contact=bool(r["is_first_contact"]),
                last_message_at=int(r["last_message_at"]), message_count=int(r["message_count"]),
                customer_external_id=str(r["customer_external_id"]),
            )  # fmt: skip
        return out

    def heads_of(self, mention_ids: Sequence[int]) -> dict[int, int]:
        """Map message ids (heads or follow-ups) to their thread head."""
        out: dict[int, int] = {}
        for chunk in chunked(list(dict.fromkeys(mention_ids))):
            for mid, head in self._conn.execute(
                f"SELECT id, coalesce(head_id, id) FROM mentions WHERE id IN ({qmarks(len(chunk))})", tuple(chunk)
            ):
                out[int(mid)] = int(head)
        return out

    def deadlines(self, ids: Sequence[int]) -> list[DeadlineRow]:
        return [
            deadline_row(r)
            for r in fetch_in(
                self._conn,
                lambda marks: (
                    "SELECT id, mention_id, kind, started_at, due_at, warn_at, met_at, paused_at, breached_at, "
                    f"cancelled_at FROM deadlines WHERE mention_id IN ({marks}) ORDER BY due_at, id"
                ),
                ids,
            )
        ]

    def deadlines_settled_between(self, start: int, end: int) -> list[DeadlineRow]:
        """Deadlines met or breached within ``[start, end]``, whatever item they belong to."""
        rows = fetch_all(
            self._conn,
            "SELECT id, mention_id, kind, started_at, due_at, warn_at, met_at, paused_at, breached_at, cancelled_at "
            "FROM deadlines WHERE (met_at BETWEEN ? AND ?) OR (breached_at BETWEEN ? AND ?) ORDER BY due_at, id",
            (start, end, start, end),
        )
        return [deadline_row(r) for r in rows]

    def replies(self, ids: Sequence[int]) -> list[SentReply]:
        """Every reply written to these heads (or to their follow-ups), oldest first."""
        return [
            _sent_reply(r)
            for r in fetch_in(
                self._conn,
                lambda marks: (
                    "SELECT r.id, coalesce(m.head_id, m.id) AS head_id, r.purpose, r.state, r.text, r.created_at, "
                    "r.sent_at FROM replies r JOIN mentions m ON m.id = r.mention_id "
                    f"WHERE coalesce(m.head_id, m.id) IN ({marks}) ORDER BY coalesce(r.sent_at, r.created_at), r.id"
                ),
                ids,
            )
        ]

    def replies_sent_between(self, start: int, end: int) -> list[SentReply]:
        rows = fetch_all(
            self._conn,
            "SELECT r.id, coalesce(m.head_id, m.id) AS head_id, r.purpose, r.state, r.text, r.created_at, "
            "r.sent_at FROM replies r JOIN mentions m ON m.id = r.mention_id "
            "WHERE r.state = 'sent' AND r.sent_at BETWEEN ? AND ? ORDER BY r.sent_at, r.id",
            (start, end),
        )
        return [_sent_reply(r) for r in rows]

    def surveys(self, ids: Sequence[int]) -> list[SurveyFacts]:
        return [
            _survey_facts(r)
            for r in fetch_in(
                self._conn,
                lambda marks: (
                    "SELECT s.id, coalesce(m.head_id, m.id) AS head_id, s.sent_at, s.score, s.parsed_at "
                    "FROM surveys s JOIN mentions m ON m.id = s.mention_id "
                    f"WHERE coalesce(m.head_id, m.id) IN ({marks}) ORDER BY s.id"
                ),
                ids,
            )
        ]

    def surveys_sent_between(self, start: int, end: int) -> list[SurveyFacts]:
        rows = fetch_all(
            self._conn,
            "SELECT s.id, coalesce(m.head_id, m.id) AS head_id, s.sent_at, s.score, s.parsed_at "
            "FROM surveys s JOIN mentions m ON m.id = s.mention_id WHERE s.sent_at BETWEEN ? AND ? ORDER BY s.id",
            (start, end),
        )
        return [_survey_facts(r) for r in rows]

    def last_messages(self, ids: Sequence[int], end: int) -> dict[int, LastMessage]:
        """Per head, the newest message up to ``end``: the customer's (thread) or ours (a sent reply)."""
        out: dict[int, LastMessage] = {}
        for chunk in chunked(list(ids)):
            marks = qmarks(len(chunk))
            for head, at, text in self._conn.execute(
                f"SELECT coalesce(head_id, id), posted_at, text FROM mentions WHERE (id IN ({marks}) "
                f"OR head_id IN ({marks})) AND posted_at <= ? ORDER BY posted_at, id",
                (*chunk, *chunk, end),
            ):
                out[int(head)] = LastMessage(int(head), int(at), str(text), True)
            for head, at, text in self._conn.execute(
                "SELECT coalesce(m.head_id, m.id), r.sent_at, r.text FROM replies r JOIN mentions m "
                f"ON m.id = r.mention_id WHERE coalesce(m.head_id, m.id) IN ({marks}) AND r.state = 'sent' "
                "AND r.sent_at <= ? ORDER BY r.sent_at, r.id",
                (*chunk, end),
            ):
                known = out.get(int(head))
                if known is None or int(at) >= known.at:
                    out[int(head)] = LastMessage(int(head), int(at), str(text), False)
        return out


def open_shift_repo(path: Path) -> ShiftRepo:
    """A ShiftRepo on its own connection to the database file, for a worker thread (exports).

    Raises:
        StorageError: the database cannot be opened.
    """
    return ShiftRepo(open_database(path, migrate=False), owns_connection=True)
