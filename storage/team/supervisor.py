"""Team shift reads and writes (issue 23): the supervisor's live view, and the hand-over at the end of a shift.

The supervisor view refreshes every second with 50 agents and 100,000 items, so each of its reads is one indexed
query bounded by what it shows, never a scan of the queue: the oldest waiting item per channel account is a skip
scan over ``items_waiting_by_account`` (t003_shifts.sql), the breaches of the hour a range of ``items_due``, the
figures of the shift a range of ``events_kind_at``. Times the server decides (claim ages, who is online) use the
server's clock; the others take ``now`` from the caller's injected clock.

The hand-over is one transaction: the ``handed_over`` event (its trigger sets each item's ``assigned_to``), the
member's claims on those items released with a ``released`` event each, and the shift's end. Its events' uids
derive from the shift, so a hand-over retried after a lost answer is written once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from storage.errors import TeamRefused
from storage.team.connect import TeamDb, borrow, converted, team_repository
from storage.team.reports import snapshot

#: A member is online when its heartbeat is this recent (docs/TEAM.md, members.last_seen_at).
ONLINE_SECONDS = 90
#: Items awaiting a reply are counted up to here (as console/replies/capacity.py AHEAD_CAP).
WAITING_CAP = 10_000
#: Namespace of the uids of events the hand-over writes (uuid5 over the shift and the item).
HANDOVER_NS = uuid.UUID("6f1d2a4e-23c0-4b5e-9a57-5e0c0ffee023")


@dataclass(frozen=True, slots=True)
class MemberState:
    name: str
    role: str
    on_shift_since: int | None
    online: bool
    last_seen_at: int | None


@dataclass(frozen=True, slots=True)
class ClaimState:
    item_key: str
    holder: str
    claimed_at: int
    expires_at: int
    #: Seconds since the claim began, on the server's clock.
    age_s: int
    #: Expired and not renewed: its holder's machine went away (a supervisor may release it).
    stale: bool


@dataclass(frozen=True, slots=True)
class WaitingItem:
    """An item awaiting a reply: the oldest one of a channel account."""

    account_key: str
    item_key: str
    posted_at: int
    due_at: int | None
    assigned_to: str | None


@dataclass(frozen=True, slots=True)
class BreachedItem:
    item_key: str
    due_at: int
    #: When the first reply went out (late), or None: still unanswered.
    answered_at: int | None
    assigned_to: str | None


@dataclass(frozen=True, slots=True)
class FirstReply:
    """One first reply of the period: who, on which channel, how long after the customer's message."""

    author: str
    channel: str
    seconds: int


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    """One Net Easy answer of the period, credited to the member who sent the survey."""

    agent: str
    channel: str
    score: int


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """What the supervisor view reads each refresh, in one round of queries."""

    server_now: int
    members: list[MemberState]
    claims: list[ClaimState]
    oldest_waiting: list[WaitingItem]
    waiting: int
    breaches: list[BreachedItem]
    replies_in_window: int
    first_replies: list[FirstReply]
    answers: list[SurveyAnswer]


@dataclass(frozen=True, slots=True)
class PendingItem:
    """An item a member holds at the end of a shift: claimed by them, or assigned to them and still open."""

    item_key: str
    claimed: bool
    assigned: bool
    status: str
    posted_at: int
    due_at: int | None
    answered: bool
    #: The item's notes (``note_added``), oldest first: (author, text).
    notes: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class PendingFollowUp:
    """A follow-up commitment the member made and has not kept yet."""

    item_key: str
    promised_at: int
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Handover:
    """One ``handed_over`` event as the receiver reads it."""

    seq: int
    author: str
    at: int
    to: str | None
    note: str
    shift_uid: str
    items: list[str]
    follow_ups: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ItemState:
    key: str
    status: str
    answered: bool
    posted_at: int
    due_at: int | None
    assigned_to: str | None
    customer: str


def _breach(row: Sequence[Any]) -> BreachedItem:
    key, due, first, to = row
    return BreachedItem(str(key), int(due), _opt(first), None if to is None else str(to))


def _opt(value: Any) -> int | None:
    return None if value is None else int(value)


def _data(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str | bytes):
        loaded = json.loads(value)
        return loaded if isinstance(loaded, dict) else {}
    return {}


def event_uid(*parts: str) -> str:
    """A stable uid for an event the hand-over writes: the same parts always give the same uid."""
    return str(uuid.uuid5(HANDOVER_NS, "\x00".join(parts)))


_INSERT_EVENT = (
    "INSERT INTO events (uid, author, at, kind, item_key, data) VALUES (%s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (uid) DO NOTHING"
)

_MEMBERS_SQL = f"""
SELECT name, role, extract(epoch FROM on_shift_since)::bigint,
       coalesce(last_seen_at > clock_timestamp() - interval '{ONLINE_SECONDS} seconds', false),
       extract(epoch FROM last_seen_at)::bigint
FROM members ORDER BY name
"""

_CLAIMS_SQL = """
SELECT item_key, holder, extract(epoch FROM claimed_at)::bigint, extract(epoch FROM expires_at)::bigint,
       extract(epoch FROM clock_timestamp() - claimed_at)::bigint, expires_at < clock_timestamp()
FROM claims ORDER BY claimed_at, item_key
"""

#: A skip scan: the next account with a waiting item, then its oldest one, both from items_waiting_by_account.
_OLDEST_SQL = """
WITH RECURSIVE acc(account_key) AS (
    (SELECT account_key FROM items WHERE NOT answered AND status IN ('new', 'open')
     ORDER BY account_key LIMIT 1)
    UNION ALL
    SELECT (SELECT i.account_key FROM items i WHERE NOT i.answered AND i.status IN ('new', 'open')
            AND i.account_key > acc.account_key ORDER BY i.account_key LIMIT 1)
    FROM acc WHERE acc.account_key IS NOT NULL
)
SELECT acc.account_key, o.key, o.posted_at, o.due_at, o.assigned_to FROM acc
CROSS JOIN LATERAL (
    SELECT key, posted_at, due_at, assigned_to FROM items i
    WHERE NOT i.answered AND i.status IN ('new', 'open') AND i.account_key = acc.account_key
    ORDER BY i.posted_at, i.key LIMIT 1
) o
WHERE acc.account_key IS NOT NULL
"""

_WAITING_SQL = f"""
SELECT count(*) FROM (
    SELECT 1 FROM items WHERE NOT answered AND status IN ('new', 'open') LIMIT {WAITING_CAP}
) w
"""

#: Items whose response due time fell in [since, now) and was not met in time: the reply that answered the
#: customer's latest message (items.posted_at) came after the due time, or none has yet.
_BREACHES_SQL = """
SELECT i.key, i.due_at, f.first_at, i.assigned_to FROM items i
LEFT JOIN LATERAL (
    SELECT min(coalesce((e.data->>'posted_at')::bigint, e.at)) AS first_at FROM events e
    WHERE e.item_key = i.key AND e.kind IN ('reply_sent', 'reply_seen')
      AND coalesce((e.data->>'posted_at')::bigint, e.at) >= i.posted_at
) f ON true
WHERE i.due_at >= %(since)s AND i.due_at < %(now)s AND i.status <> 'spam'
  AND (f.first_at IS NULL OR f.first_at > i.due_at)
ORDER BY i.due_at, i.key
"""

_PACE_SQL = """
SELECT count(*) FROM events
WHERE kind = 'reply_sent' AND at >= %(since)s AND at <= %(now)s
  AND coalesce(data->>'purpose', 'reply') IN ('reply', 'holding')
"""

#: The first reply of each item answered since ``since``, with the seconds since its first message.
_FIRST_REPLIES_SQL = """
SELECT r.author, split_part(r.item_key, ':', 1), coalesce((r.data->>'posted_at')::bigint, r.at) - m.posted
FROM events r
CROSS JOIN LATERAL (
    SELECT coalesce((m.data->>'posted_at')::bigint, m.at) AS posted FROM events m
    WHERE m.item_key = r.item_key AND m.kind = 'mention' ORDER BY m.seq LIMIT 1
) m
WHERE r.kind = 'reply_sent' AND r.at >= %(since)s AND r.at <= %(now)s AND r.item_key IS NOT NULL
  AND coalesce(r.data->>'purpose', 'reply') IN ('reply', 'holding')
  AND NOT EXISTS (
      SELECT 1 FROM events p WHERE p.item_key = r.item_key AND p.kind = 'reply_sent' AND p.seq < r.seq
      AND coalesce(p.data->>'purpose', 'reply') IN ('reply', 'holding')
  )
"""

#: Answers since ``since``, credited to whoever sent the item's survey (else whoever recorded the answer).
_ANSWERS_SQL = """
SELECT coalesce(s.author, a.author), split_part(a.item_key, ':', 1), (a.data->>'score')::int FROM events a
LEFT JOIN LATERAL (
    SELECT author FROM events s WHERE s.item_key = a.item_key AND s.kind = 'survey_sent' AND s.seq < a.seq
    ORDER BY s.seq DESC LIMIT 1
) s ON true
WHERE a.kind = 'survey_answered' AND a.at >= %(since)s AND a.at <= %(now)s AND a.item_key IS NOT NULL
  AND (a.data->>'score') ~ '^[1-7]$'
"""


@team_repository
class SupervisorRepo:
    """The supervisor view's reads, on the team pool or one connection."""

    def __init__(self, db: TeamDb) -> None:
        self._db = db

    async def figures(self, *, now: int, shift_since: int | None, hour_start: int, pace_since: int) -> QueueFigures:
        """Everything the view shows, read in one repeatable-read transaction (its parts agree).

        Args:
            now: the caller's clock (epoch seconds).
            shift_since: the current shift's start for per-agent figures; None: the earliest ``on_shift_since``
                of the members on shift (or the last 8 hours when nobody is).
            hour_start: breaches are counted from here (the start of this hour).
            pace_since: replies counted from here for the expected wait.
        """
        async with converted("Could not read the team's queue"), borrow(self._db) as conn, snapshot(conn):
            server_now = int(
                (await (await conn.execute("SELECT extract(epoch FROM clock_timestamp())")).fetchall())[0][0]
            )
            members = [
                MemberState(str(n), str(r), _opt(s), bool(o), _opt(seen))
                for n, r, s, o, seen in await (await conn.execute(_MEMBERS_SQL)).fetchall()
            ]
            claims = [
                ClaimState(str(k), str(h), int(c), int(e), int(a), bool(st))
                for k, h, c, e, a, st in await (await conn.execute(_CLAIMS_SQL)).fetchall()
            ]
            oldest = [
                WaitingItem(str(a), str(k), int(p), _opt(d), None if t is None else str(t))
                for a, k, p, d, t in await (await conn.execute(_OLDEST_SQL)).fetchall()
            ]
            waiting = int((await (await conn.execute(_WAITING_SQL)).fetchall())[0][0])
            breaches = [
                _breach(r)
                for r in await (await conn.execute(_BREACHES_SQL, {"since": hour_start, "now": now})).fetchall()
            ]
            pace = int((await (await conn.execute(_PACE_SQL, {"since": pace_since, "now": now})).fetchall())[0][0])
            since = shift_since
            if since is None:
                starts = [m.on_shift_since for m in members if m.on_shift_since is not None]
                since = min(starts) if starts else now - 8 * 3600
            window = {"since": since, "now": now}
            first = [
                FirstReply(str(a), str(c), max(0, int(s)))
                for a, c, s in await (await conn.execute(_FIRST_REPLIES_SQL, window)).fetchall()
                if s is not None
            ]
            answers = [
                SurveyAnswer(str(a), str(c), int(s))
                for a, c, s in await (await conn.execute(_ANSWERS_SQL, window)).fetchall()
            ]
        return QueueFigures(server_now, members, claims, oldest, waiting, breaches, pace, first, answers)


@team_repository
class HandoverRepo:
    """The hand-over's reads and its one-transaction write, as the member (row security applies)."""

    def __init__(self, db: TeamDb) -> None:
        self._db = db

    async def pending(self, member: str) -> tuple[list[PendingItem], list[PendingFollowUp]]:
        """What ``member`` holds: claimed or assigned open items (with their notes), and unkept follow-ups."""
        async with converted("Could not read what you hold"), borrow(self._db) as conn, conn.transaction():
            rows = await (
                await conn.execute(
                    "SELECT i.key, c.holder IS NOT NULL, coalesce(i.assigned_to = %(m)s, false), i.status, "
                    "i.posted_at, i.due_at, i.answered FROM items i "
                    "LEFT JOIN claims c ON c.item_key = i.key AND c.holder = %(m)s "
                    "WHERE i.key IN (SELECT item_key FROM claims WHERE holder = %(m)s "
                    "UNION SELECT key FROM items WHERE assigned_to = %(m)s AND status IN ('new', 'open', 'waiting')) "
                    "ORDER BY i.due_at NULLS LAST, i.key",
                    {"m": member},
                )
            ).fetchall()
            follow = [
                PendingFollowUp(str(k), int(at), _data(d))
                for k, at, d in await (
                    await conn.execute(
                        "SELECT p.item_key, p.at, p.data FROM events p "
                        "WHERE p.kind = 'follow_up_promised' AND p.author = %s AND p.item_key IS NOT NULL "
                        "AND NOT EXISTS (SELECT 1 FROM events k WHERE k.item_key = p.item_key "
                        "AND k.kind = 'follow_up_kept' AND k.seq > p.seq) ORDER BY p.seq",
                        (member,),
                    )
                ).fetchall()
            ]
            keys = [str(r[0]) for r in rows]
            notes: dict[str, list[tuple[str, str]]] = {}
            if keys:
                for key, author, text in await (
                    await conn.execute(
                        "SELECT item_key, author, coalesce(data->>'text', '') FROM events "
                        "WHERE item_key = ANY(%s) AND kind = 'note_added' ORDER BY seq",
                        (keys,),
                    )
                ).fetchall():
                    notes.setdefault(str(key), []).append((str(author), str(text)))
        items = [
            PendingItem(str(k), bool(c), bool(a), str(s), int(p), _opt(d), bool(ans), notes.get(str(k), []))
            for k, c, a, s, p, d, ans in rows
        ]
        return items, follow

    async def hand_over(
        self,
        member: str,
        *,
        to: str | None,
        note: str,
        shift_uid: str,
        items: Sequence[str],
        follow_ups: Sequence[dict[str, Any]],
        at: int,
        end_shift: bool,
    ) -> int | None:
        """Hand ``items`` and ``follow_ups`` to ``to`` (None: the pool) in one transaction; the event's seq.

        Writes the ``handed_over`` event, releases the member's claims on the items (a ``released`` event each,
        so the history says so) and, with ``end_shift``, the ``shift_ended`` event and ``on_shift_since = NULL``.
        Returns None when this hand-over was already written (a retry).

        Raises:
            TeamRefused: the server refused (``to`` is not a member, or the member may not do this).
            TeamUnavailable: the server cannot be reached; nothing was written.
        """
        data = {"shift_uid": shift_uid, "to": to, "note": note, "items": list(items), "follow_ups": list(follow_ups)}
        async with converted("Could not hand over"), borrow(self._db) as conn, conn.transaction():
            if to is not None:
                known = await (await conn.execute("SELECT 1 FROM members WHERE name = %s", (to,))).fetchall()
                if not known:
                    raise TeamRefused(f"Could not hand over: {to} is not a member of the team.")
            # The events lock before any claim row (docs/TEAM.md, "The events lock"): events -> items -> claims.
            await conn.execute("SELECT team_lock_events()")
            cur = await conn.execute(
                _INSERT_EVENT + " RETURNING seq",
                (event_uid("handed_over", shift_uid, member), member, at, "handed_over", None, Jsonb(data)),
            )
            written = await cur.fetchall()
            held = [
                str(k)
                for (k,) in await (
                    await conn.execute(
                        "DELETE FROM claims WHERE holder = %s AND item_key = ANY(%s) RETURNING item_key",
                        (member, list(items)),
                    )
                ).fetchall()
            ]
            for key in held:
                await conn.execute(
                    _INSERT_EVENT,
                    (
                        event_uid("released", shift_uid, member, key), member, at, "released", key,
                        Jsonb({"holder": member, "note": "handed over"}),
                    ),
                )  # fmt: skip
            if end_shift:
                await conn.execute(
                    _INSERT_EVENT,
                    (
                        event_uid("shift_ended", shift_uid, member), member, at, "shift_ended", None,
                        Jsonb({"shift_uid": shift_uid, "agent": member, "notes": note}),
                    ),
                )  # fmt: skip
                await conn.execute("UPDATE members SET on_shift_since = NULL WHERE name = %s", (member,))
        return int(written[0][0]) if written else None

    async def start_shift(self, member: str, *, shift_uid: str, at: int) -> None:
        """Record the shift's start at ``at`` (the app's clock): ``shift_started`` and ``on_shift_since``."""
        async with (
            converted("Could not start the shift on the team server"),
            borrow(self._db) as conn,
            conn.transaction(),
        ):
            await conn.execute(
                _INSERT_EVENT,
                (
                    event_uid("shift_started", shift_uid, member), member, at, "shift_started", None,
                    Jsonb({"shift_uid": shift_uid, "agent": member, "notes": ""}),
                ),
            )  # fmt: skip
            await conn.execute("UPDATE members SET on_shift_since = to_timestamp(%s) WHERE name = %s", (at, member))

    async def breaches(self, since: int, now: int) -> list[BreachedItem]:
        """Items whose response fell due in ``[since, now)`` unmet (late or still unanswered): "breached meanwhile"."""
        async with converted("Could not read the breaches"), borrow(self._db) as conn:
            cur = await conn.execute(_BREACHES_SQL, {"since": since, "now": now})
            return [_breach(r) for r in await cur.fetchall()]

    async def last_shift_end(self, member: str) -> int | None:
        """When ``member`` last ended a shift (``shift_ended``), or None."""
        async with converted("Could not read your last shift"), borrow(self._db) as conn:
            cur = await conn.execute("SELECT max(at) FROM events WHERE kind = 'shift_ended' AND author = %s", (member,))
            rows = await cur.fetchall()
        return _opt(rows[0][0]) if rows else None

    async def received(self, member: str, since: int) -> list[Handover]:
        """Hand-overs to ``member`` or to the pool since ``since`` (not the member's own), oldest first."""
        async with converted("Could not read the hand-overs"), borrow(self._db) as conn:
            cur = await conn.execute(
                "SELECT seq, author, at, data FROM events WHERE kind = 'handed_over' AND at >= %(since)s "
                "AND author <> %(m)s AND (data->>'to' = %(m)s OR data->>'to' IS NULL) ORDER BY seq",
                {"since": since, "m": member},
            )
            rows = await cur.fetchall()
        out: list[Handover] = []
        for seq, author, at, raw in rows:
            d = _data(raw)
            items = d.get("items")
            follow = d.get("follow_ups")
            out.append(
                Handover(
                    seq=int(seq), author=str(author), at=int(at), to=None if d.get("to") is None else str(d["to"]),
                    note=str(d.get("note") or ""), shift_uid=str(d.get("shift_uid") or ""),
                    items=[str(i) for i in items] if isinstance(items, list) else [],
                    follow_ups=[f for f in follow if isinstance(f, dict)] if isinstance(follow, list) else [],
                )
            )  # fmt: skip
        return out

    async def items(self, keys: Sequence[str]) -> dict[str, ItemState]:
        """The items' current state (status, answered, assignee) by key."""
        if not keys:
            return {}
        async with converted("Could not read the items"), borrow(self._db) as conn:
            cur = await conn.execute(
                "SELECT key, status, answered, posted_at, due_at, assigned_to, customer FROM items WHERE key = ANY(%s)",
                (list(keys),),
            )
            rows = await cur.fetchall()
        return {
            str(k): ItemState(str(k), str(s), bool(a), int(p), _opt(d), None if t is None else str(t), str(c))
            for k, s, a, p, d, t, c in rows
        }
