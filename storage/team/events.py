"""The team's event log on PostgreSQL: append (idempotent by uid), read past a cursor, and a digest to compare.

``since`` reads through the events lock (t001): it waits for the writers holding sequence numbers to finish, so a
member that read up to ``seq`` N and asks for ``seq > N`` never misses an event that committed late. ``seq`` has gaps
(a duplicate uid skipped by ON CONFLICT still used a number): a cursor is a watermark, not a count.

Digest: ``(count, sha256 hex of the sorted uid strings joined by "\\n")``, uids in their canonical lower-case
hyphenated form, sorted as strings (the same order as PostgreSQL's uuid order). The local copy computes the same
over ``team_applied.uid`` (storage/team_local.py); equal digests mean both hold the same set of events.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg.types.json import Jsonb

from storage.team.connect import TeamDb, borrow, team_repository

#: The namespace of uids the storage layer derives itself (``reply_sending`` and ``send_anyway`` of a reply).
TEAM_EVENT_NAMESPACE = uuid.UUID("5b0f6c1e-7d55-4f0e-9a55-2f1c8f3b6a21")


def reply_event_uid(kind: str, reply_key: str) -> uuid.UUID:
    """The uid of the ``kind`` event of reply ``reply_key``: the same on every try, so a retry is harmless."""
    return uuid.uuid5(TEAM_EVENT_NAMESPACE, f"{kind}:{reply_key}")


def digest_of(uids: Iterable[uuid.UUID | str]) -> tuple[int, str]:
    """``(count, sha256 hex)`` of a set of event uids, computed exactly as :meth:`TeamEventRepo.digest` does."""
    texts = sorted(str(uuid.UUID(str(u))) for u in uids)
    return len(texts), hashlib.sha256("\n".join(texts).encode("ascii")).hexdigest()


@dataclass(frozen=True)
class TeamEvent:
    """One event of the team log. ``seq`` is None until the server has stored it."""

    uid: uuid.UUID
    author: str
    at: int
    kind: str
    item_key: str | None
    data: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None


_COLUMNS = "seq, uid, author, at, kind, item_key, data"


def _event(row: Sequence[Any]) -> TeamEvent:
    seq, uid, author, at, kind, item_key, data = row
    return TeamEvent(
        uid=uid if isinstance(uid, uuid.UUID) else uuid.UUID(str(uid)),
        author=str(author),
        at=int(at),
        kind=str(kind),
        item_key=None if item_key is None else str(item_key),
        data=dict(data) if isinstance(data, dict) else json.loads(data),
        seq=int(seq),
    )


@team_repository
class TeamEventRepo:
    """Reads and appends the ``events`` table of one team schema (the connections' search_path names it)."""

    def __init__(self, db: TeamDb, schema: str) -> None:
        self._db = db
        self._schema = schema

    async def append(self, events: Sequence[TeamEvent]) -> int:
        """Store ``events`` in one statement (one round trip), skipping uids already there; returns how many were new.

        Raises:
            TeamRefused: an event is not the member's own, or of a kind its role may not write.
            TeamUnavailable: the server cannot be reached; nothing was stored.
        """
        if not events:
            return 0
        async with borrow(self._db) as conn:
            cur = await conn.execute(
                "INSERT INTO events (uid, author, at, kind, item_key, data)"
                " SELECT * FROM unnest(%s::uuid[], %s::text[], %s::bigint[], %s::text[], %s::text[], %s::jsonb[])"
                " ON CONFLICT (uid) DO NOTHING",
                (
                    [e.uid for e in events],
                    [e.author for e in events],
                    [e.at for e in events],
                    [e.kind for e in events],
                    [e.item_key for e in events],
                    [Jsonb(e.data) for e in events],
                ),
            )
            return max(cur.rowcount, 0)

    async def since(self, seq: int, limit: int = 1000) -> list[TeamEvent]:
        """Events with ``seq`` above ``seq``, oldest first, at most ``limit``."""
        async with borrow(self._db) as conn:
            # Through the events lock (t001): every event below the highest returned has committed already.
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM team_events_since(%s, %s)", (seq, limit))
            return [_event(row) for row in await cur.fetchall()]

    async def for_item(self, item_key: str) -> list[TeamEvent]:
        """Every event about ``item_key``, oldest first (an item's history)."""
        async with borrow(self._db) as conn:
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM events WHERE item_key = %s ORDER BY seq", (item_key,))
            return [_event(row) for row in await cur.fetchall()]

    async def max_seq(self) -> int:
        """The highest stored ``seq``, 0 for an empty log."""
        async with borrow(self._db) as conn:
            cur = await conn.execute("SELECT coalesce(max(seq), 0) FROM events")
            row = await cur.fetchone()
            return int(row[0]) if row else 0

    async def digest(self) -> tuple[int, str]:
        """``(count, sha256 hex)`` over every stored uid, as :func:`digest_of` computes it (module docstring)."""
        async with borrow(self._db) as conn:
            cur = await conn.execute(
                "SELECT count(*), encode(sha256(convert_to("
                "coalesce(string_agg(uid::text, E'\\n' ORDER BY uid), ''), 'UTF8')), 'hex') FROM events"
            )
            row = await cur.fetchone()
            return (int(row[0]), str(row[1])) if row else digest_of([])
