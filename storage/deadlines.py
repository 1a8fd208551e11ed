"""SLA deadline persistence: what the engine reads (heads, events, deadlines) and writes in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from storage.driver import fetch_in, fetch_one, named, repository, says, scalar
from storage.events import event_json, event_row, write_events
from storage.mentions import MentionRepo, deadline_row
from storage.rows import DeadlineKind, DeadlineRow, EventRow, MentionStatus

_DEADLINE_COLUMNS = "id, mention_id, kind, started_at, due_at, warn_at, met_at, paused_at, breached_at, cancelled_at"


def _opt(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class HeadInfo:
    """What the SLA engine needs to know about a queue item to pick its policy."""

    id: int
    channel: str
    priority: int
    status: MentionStatus
    posted_at: int


@dataclass(frozen=True, slots=True)
class DeadlineValues:
    """A deadline's state as the engine computed it; ``id`` None means a new row."""

    mention_id: int
    kind: DeadlineKind
    started_at: int
    due_at: int
    warn_at: int
    met_at: int | None = None
    paused_at: int | None = None
    cancelled_at: int | None = None
    id: int | None = None
    #: The stored breach is void: the deadline was met at or before its due second (the sweeper ran first).
    clear_breach: bool = False


@dataclass(frozen=True, slots=True)
class NewEvent:
    at: int
    actor: str
    mention_id: int | None
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Breach:
    deadline_id: int
    mention_id: int
    kind: DeadlineKind
    due_at: int
    data: dict[str, Any]


@repository
class DeadlineRepo:
    """Reads and writes of the deadlines table for the SLA engine; keeps ``mentions.due_at/warn_at`` in step."""

    def __init__(self, db: sqlite_utils.Database, mentions: MentionRepo) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn
        self._mentions = mentions

    # ------------------------------------------------------------------ reads
    def head_of(self, mention_id: int) -> int | None:
        """The queue item (thread head) a message belongs to, or None for an unknown id."""
        head = scalar(self._conn, "SELECT coalesce(head_id, id) FROM mentions WHERE id = ?", (mention_id,))
        return None if head is None else int(head)

    def heads(self, ids: Iterable[int]) -> dict[int, HeadInfo]:
        out: dict[int, HeadInfo] = {}
        for row in fetch_in(
            self._conn,
            lambda marks: (
                "SELECT m.id, a.kind AS channel, m.priority, m.status, m.posted_at FROM mentions m "
                f"JOIN accounts a ON a.id = m.account_id WHERE m.id IN ({marks})"
            ),
            dict.fromkeys(ids),
        ):
            out[int(row["id"])] = HeadInfo(
                int(row["id"]), str(row["channel"]), int(row["priority"]), MentionStatus(row["status"]),
                int(row["posted_at"]),
            )  # fmt: skip
        return out

    def events(self, ids: Iterable[int]) -> dict[int, list[EventRow]]:
        """Each item's events in log order (time, then insertion)."""
        out: dict[int, list[EventRow]] = {}
        for r in fetch_in(
            self._conn,
            lambda marks: (
                "SELECT id, at, actor, mention_id, kind, data FROM events "
                f"WHERE mention_id IN ({marks}) ORDER BY mention_id, at, id"
            ),
            dict.fromkeys(ids),
        ):
            out.setdefault(int(r["mention_id"]), []).append(event_row(r))
        return out

    def deadlines(self, ids: Iterable[int]) -> dict[int, list[DeadlineRow]]:
        out: dict[int, list[DeadlineRow]] = {}
        for r in fetch_in(
            self._conn,
            lambda marks: (
                f"SELECT {_DEADLINE_COLUMNS} FROM deadlines WHERE mention_id IN ({marks}) "
                "ORDER BY mention_id, started_at, id"
            ),
            dict.fromkeys(ids),
        ):
            out.setdefault(int(r["mention_id"]), []).append(deadline_row(r))
        return out

    def open_heads(self) -> list[int]:
        """Items with at least one deadline still running (not met, not cancelled)."""
        return [
            int(mention_id)
            for (mention_id,) in self._conn.execute(
                "SELECT DISTINCT mention_id FROM deadlines INDEXED BY deadlines_open_mention "
                "WHERE met_at IS NULL AND cancelled_at IS NULL ORDER BY mention_id"
            )
        ]

    def has_status_change(self, mention_id: int, at: int, old: str, new: str) -> bool:
        """Whether the log already has this status change (triage logs it before telling the engine)."""
        return (
            fetch_one(
                self._conn,
                "SELECT 1 FROM events WHERE mention_id = ? AND kind = 'status_changed' AND at = ? "
                "AND json_extract(data, '$.from') = ? AND json_extract(data, '$.to') = ? LIMIT 1",
                (mention_id, at, old, new),
            )
            is not None
        )

    def due_unbreached(self, now: int) -> list[DeadlineRow]:
        """Running, unpaused deadlines whose due second has passed and that carry no breach yet.

        A reply within the due second itself still meets the deadline, so ``due_at == now`` is not due yet.
        """
        return [
            deadline_row(r)
            for r in named(self._conn).execute(
                f"SELECT {_DEADLINE_COLUMNS} FROM deadlines INDEXED BY deadlines_unbreached "
                "WHERE due_at < ? AND met_at IS NULL AND cancelled_at IS NULL AND breached_at IS NULL "
                "AND paused_at IS NULL ORDER BY due_at, id",
                (now,),
            )
        ]

    def band_changes(self, since: int, until: int) -> list[int]:
        """Open items whose queue band changes in ``(since, until]`` (warning starts or due time passes)."""
        ids: set[int] = set()
        for column, index in (("warn_at", "mentions_open_warn"), ("due_at", "mentions_open_due")):
            ids.update(
                int(mention_id)
                for (mention_id,) in self._conn.execute(
                    f"SELECT id FROM mentions INDEXED BY {index} WHERE head_id IS NULL AND status IN ('new', 'open') "
                    f"AND {column} > ? AND {column} <= ?",
                    (since, until),
                )
            )
        return sorted(ids)

    def next_band_change(self, after: int) -> int | None:
        """The earliest warning or due time of an open item after ``after``: when the next band pass is needed."""
        soonest: int | None = None
        for column, index in (("warn_at", "mentions_open_warn"), ("due_at", "mentions_open_due")):
            first = scalar(
                self._conn,
                f"SELECT min({column}) FROM mentions INDEXED BY {index} WHERE head_id IS NULL "
                f"AND status IN ('new', 'open') AND {column} > ?",
                (after,),
            )
            if first is not None:
                soonest = int(first) if soonest is None else min(soonest, int(first))
        return soonest

    # ------------------------------------------------------------------ writes
    @says("Could not save SLA deadlines")
    def apply(
        self,
        *,
        inserts: Sequence[DeadlineValues] = (),
        updates: Sequence[DeadlineValues] = (),
        events: Sequence[NewEvent] = (),
        refresh: Iterable[int] = (),
    ) -> None:
        """Write the engine's changes and refresh the items' queue due times, all in one transaction.

        Raises:
            StorageError: nothing was written.
        """
        with self._db.atomic():
            self._conn.executemany(
                "INSERT INTO deadlines (mention_id, kind, started_at, due_at, warn_at, met_at, paused_at, "
                "cancelled_at) VALUES (?,?,?,?,?,?,?,?)",
                [
                    (v.mention_id, v.kind.value, v.started_at, v.due_at, v.warn_at, v.met_at, v.paused_at,
                     v.cancelled_at)
                    for v in inserts
                ],
            )  # fmt: skip
            self._conn.executemany(
                "UPDATE deadlines SET started_at = ?, due_at = ?, warn_at = ?, met_at = ?, paused_at = ?, "
                "cancelled_at = ? WHERE id = ?",
                [(v.started_at, v.due_at, v.warn_at, v.met_at, v.paused_at, v.cancelled_at, v.id) for v in updates],
            )
            self._conn.executemany(
                "UPDATE deadlines SET breached_at = NULL WHERE id = ?", [(v.id,) for v in updates if v.clear_breach]
            )
            self._append(events)
            self._mentions.refresh_due(list(refresh))

    @says("Could not record SLA breaches")
    def record_breaches(self, breaches: Sequence[Breach], *, actor: str = "sla") -> None:
        """Mark each deadline breached at its due time, once, with a "breached" event carrying its cause.

        Raises:
            StorageError: nothing was written.
        """
        with self._db.atomic():
            cur = self._conn.executemany(
                "UPDATE deadlines SET breached_at = ? WHERE id = ? AND breached_at IS NULL",
                [(b.due_at, b.deadline_id) for b in breaches],
            )
            del cur
            self._append([NewEvent(b.due_at, actor, b.mention_id, "breached", b.data) for b in breaches])

    @says("Could not log SLA events")
    def append_events(self, events: Sequence[NewEvent]) -> None:
        with self._db.atomic():
            self._append(events)

    def _append(self, events: Sequence[NewEvent]) -> None:
        write_events(self._conn, [(e.at, e.actor, e.mention_id, e.kind, event_json(e.data)) for e in events])
