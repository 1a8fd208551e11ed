"""Reads for team summaries (issue 23): the events of a period, straight from the team database.

A team report is the shift summary of any period, any agents and any channels, computed from the shared event
log rather than from merged files. These queries return the log's raw facts for the period; the arithmetic
(first responses, Net Easy pooled from counts, unique customers) is console/reports/team.py's, the same code
path whatever the period.

What a period's report needs is every event of every item the period touched (an item received before the
period but answered in it is the period's work, and its first message tells when the clock started), the items
still open at its end, and the events about no item (shifts) within it. Everything is read in one repeatable-read
transaction, so that an event appended while the report is read cannot make its parts disagree.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from psycopg import pq

from storage.team.connect import TeamConnection, TeamDb, borrow, converted

#: Statuses an item is still waiting in at the end of a period (the summary's "open at the end").
OPEN_STATUSES = ("new", "open", "waiting")


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One event of the team log, as a report reads it (``data`` decoded)."""

    seq: int
    uid: str
    author: str
    at: int
    kind: str
    item_key: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PeriodLog:
    """The raw facts of a report's period, read consistently."""

    start: int
    end: int
    #: Every event of every item in scope (whatever its time), oldest first (by ``seq``).
    item_events: list[LogEvent]
    #: Events about no item (``shift_started`` and the like) with ``start <= at <= end``, oldest first.
    other_events: list[LogEvent]
    #: Per customer (``channel:author_id``): the earliest first message of any of their items on the server.
    first_contact_at: dict[str, int]


@asynccontextmanager
async def snapshot(conn: TeamConnection) -> AsyncIterator[None]:
    """A read-only repeatable-read transaction, so that several reads see one state of the log.

    Inside a transaction the caller already opened, the reads join it (its isolation is the caller's choice).
    """
    outer = conn.info.transaction_status == pq.TransactionStatus.IDLE
    async with conn.transaction():
        if outer:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def channel_of(item_key: str) -> str:
    """The channel kind an item key names (``mastodon`` in ``mastodon:https://…:brand#123``)."""
    return item_key.split(":", 1)[0]


def _decode(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str | bytes):
        loaded = json.loads(value)
        return loaded if isinstance(loaded, dict) else {}
    return {}


def _event(row: Sequence[Any]) -> LogEvent:
    seq, uid, author, at, kind, item_key, data = row
    return LogEvent(
        int(seq), str(uid), str(author), int(at), str(kind), None if item_key is None else str(item_key), _decode(data)
    )


_EVENT_COLUMNS = "e.seq, e.uid::text, e.author, e.at, e.kind, e.item_key, e.data"

#: The items a period touched or left open, and the heads of the follow-ups among them; then every event of
#: those items and of their follow-ups. Follow-up messages carry their own item key and name their head in
#: ``data.head_external_id`` (docs/TEAM.md, kind ``mention``).
_SCOPE_SQL = f"""
WITH touched AS (
    SELECT DISTINCT item_key AS key FROM events
    WHERE at BETWEEN %(start)s AND %(end)s AND item_key IS NOT NULL
), open_at_end AS (
    SELECT key FROM items WHERE posted_at <= %(end)s AND status IN ('new', 'open', 'waiting')
    UNION
    SELECT DISTINCT item_key FROM events WHERE kind = 'status_changed' AND at > %(end)s AND item_key IS NOT NULL
), scope AS (
    SELECT key FROM touched UNION SELECT key FROM open_at_end
), heads AS (
    SELECT key FROM scope
    UNION
    SELECT (e.data->>'account_key') || '#' || (e.data->>'head_external_id') FROM events e
    WHERE e.kind = 'mention' AND e.item_key IN (SELECT key FROM scope) AND e.data->>'head_external_id' IS NOT NULL
), followups AS (
    SELECT e.item_key AS key FROM events e
    WHERE e.kind = 'mention' AND e.data->>'head_external_id' IS NOT NULL
    AND (e.data->>'account_key') || '#' || (e.data->>'head_external_id') IN (SELECT key FROM heads)
), wanted AS (
    SELECT key FROM heads UNION SELECT key FROM followups
)
SELECT {_EVENT_COLUMNS} FROM events e
WHERE e.item_key IN (SELECT key FROM wanted)
  AND (%(channels)s::text[] IS NULL OR split_part(e.item_key, ':', 1) = ANY(%(channels)s::text[])
       OR split_part(e.item_key, '#', 1) = ANY(%(channels)s::text[]))
ORDER BY e.seq
"""

_OTHER_SQL = f"""
SELECT {_EVENT_COLUMNS} FROM events e
WHERE e.item_key IS NULL AND e.at BETWEEN %(start)s AND %(end)s ORDER BY e.seq
"""

_FIRST_CONTACT_SQL = """
SELECT split_part(item_key, ':', 1) || ':' || (data->>'author_id') AS customer,
       min((data->>'posted_at')::bigint) AS first_at
FROM events
WHERE kind = 'mention' AND data->>'head_external_id' IS NULL AND item_key IS NOT NULL
  AND split_part(item_key, ':', 1) || ':' || (data->>'author_id') = ANY(%(customers)s::text[])
GROUP BY 1
"""


class TeamReportRepo:
    """The period reads of a team report, on the team pool or one connection (search_path on the team schema).

    Reports are for supervisors (docs/TEAM.md, roles): an agent's role may read events too, so nothing here
    checks the role; the window offers reports to supervisors.
    """

    def __init__(self, db: TeamDb) -> None:
        self._db = db

    async def period(self, start: int, end: int, *, channels: Sequence[str] | None = None) -> PeriodLog:
        """The raw facts of ``[start, end]`` (epoch seconds), optionally only for some channels.

        Args:
            start: the period's first second.
            end: its last second.
            channels: channel kinds (``mastodon``) or account keys to keep; None keeps every channel.

        Raises:
            TeamUnavailable: the server cannot be reached. TeamRefused: this member may not read the log.
        """
        params: dict[str, Any] = {"start": start, "end": end, "channels": list(channels) if channels else None}
        async with (
            converted("Could not read the team's events for the report"),
            borrow(self._db) as conn,
            snapshot(conn),
        ):
            cur = await conn.execute(_SCOPE_SQL, params)
            item_events = [_event(r) for r in await cur.fetchall()]
            cur = await conn.execute(_OTHER_SQL, params)
            other_events = [_event(r) for r in await cur.fetchall()]
            customers = sorted(
                {
                    f"{channel_of(e.item_key)}:{e.data.get('author_id')}"
                    for e in item_events
                    if e.kind == "mention" and e.item_key is not None and e.data.get("author_id") is not None
                }
            )
            first: dict[str, int] = {}
            if customers:
                cur = await conn.execute(_FIRST_CONTACT_SQL, {"customers": customers})
                first = {str(c): int(at) for c, at in await cur.fetchall() if at is not None}
        return PeriodLog(start, end, item_events, other_events, first)
