"""Who is replying to what, live: claims on the team database, "take next", and the one check before a send.

Claims expire on the server's clock (``clock_timestamp()``), never a member's. The checks that must hold even
when members race each other run inside PostgreSQL (t002's SECURITY DEFINER functions): ``team_claim``,
``team_take_next`` (FOR UPDATE SKIP LOCKED) and ``team_record_send`` (lock the item, check the claim and the
latest recorded reply, record ours). Every change of who holds what is an event with its author (#23 item 5).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import psycopg
from psycopg.types.json import Jsonb

from storage.team.connect import TeamConnection, TeamDb, borrow, team_repository
from storage.team.events import reply_event_uid


@dataclass(frozen=True, slots=True)
class ClaimRow:
    """A live claim; times are epoch seconds on the server's clock (``now`` read with it, for "40 s")."""

    item_key: str
    holder: str
    claimed_at: float
    expires_at: float
    now: float

    @property
    def age_s(self) -> float:
        """Seconds since the claim began, by the server's clock."""
        return max(0.0, self.now - self.claimed_at)


class SendOutcome(StrEnum):
    OK = "ok"
    #: A colleague holds an unexpired claim on the item (``by``).
    CLAIMED = "claimed"
    #: Another reply was recorded after the customer's latest message, or the item is answered (``by``, ``at``).
    ANSWERED = "answered"
    #: The server does not know the item (not pushed yet).
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class SendVerdict:
    outcome: SendOutcome
    #: The colleague holding the claim, or who recorded the earlier reply.
    by: str | None = None
    #: When the earlier reply was recorded (epoch seconds), for ANSWERED.
    at: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is SendOutcome.OK


async def _event(conn: TeamConnection, author: str, kind: str, item_key: str, data: dict[str, object]) -> None:
    await conn.execute(
        "INSERT INTO events (uid, author, at, kind, item_key, data)"
        " VALUES (%s, %s, extract(epoch FROM clock_timestamp())::bigint, %s, %s, %s)",
        (uuid.uuid4(), author, kind, item_key, Jsonb(data)),
    )


async def _notify(conn: TeamConnection, item_key: str) -> None:
    """The change hints of a claim, take or release, sent after its transaction (t001: why not within it)."""
    apart = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    await conn.execute("SELECT team_notify_changes(%s, %s)", (item_key, apart))


@team_repository
class ClaimRepo:
    """Claims of one team schema, on the app's pool (or one connection)."""

    def __init__(self, db: TeamDb, schema: str) -> None:
        self._db = db
        self._schema = schema

    async def claim(self, item_key: str, holder: str, ttl_s: float) -> ClaimRow | None:
        """Claim ``item_key`` for ``holder`` for ``ttl_s`` seconds, or learn who holds it.

        Returns:
            ``holder``'s claim (new, taken over after expiry, or renewed), or the unexpired claim of a colleague;
            None when the server does not know the item. A ``claimed`` event is written only when newly taken.

        Raises:
            TeamRefused: ``holder`` is not the member logged in.
        """
        async with borrow(self._db) as conn:
            cur = await conn.execute(
                "SELECT r_holder, extract(epoch FROM r_claimed_at)::float8, extract(epoch FROM r_expires_at)::float8,"
                " extract(epoch FROM r_now)::float8 FROM team_claim(%s, %s, %s)",
                (item_key, holder, float(ttl_s)),
            )
            row = await cur.fetchone()
            await _notify(conn, item_key)
        if row is None:
            return None
        return ClaimRow(item_key, str(row[0]), float(row[1]), float(row[2]), float(row[3]))

    async def renew(self, item_key: str, holder: str, ttl_s: float) -> bool:
        """Extend ``holder``'s claim by ``ttl_s`` from now; False when it is no longer theirs (taken or broken)."""
        async with borrow(self._db) as conn:
            cur = await conn.execute(
                "UPDATE claims SET expires_at = clock_timestamp() + make_interval(secs => %s)"
                " WHERE item_key = %s AND holder = %s",
                (float(ttl_s), item_key, holder),
            )
            return cur.rowcount > 0

    async def release(self, item_key: str, holder: str) -> bool:
        """Drop ``holder``'s claim (sent, cancelled, closed) with a ``released`` event; False when it held none."""
        async with borrow(self._db) as conn:
            cur = await conn.execute("SELECT team_release(%s, %s)", (item_key, holder))
            row = await cur.fetchone()
            await _notify(conn, item_key)
            return bool(row and row[0])

    async def active(self) -> list[ClaimRow]:
        """Every unexpired claim, with the server's ``now`` (one clock for all ages)."""
        async with borrow(self._db) as conn:
            cur = await conn.execute(
                "SELECT item_key, holder, extract(epoch FROM claimed_at)::float8,"
                " extract(epoch FROM expires_at)::float8, extract(epoch FROM clock_timestamp())::float8 FROM claims"
                " WHERE expires_at > clock_timestamp() ORDER BY claimed_at"
            )
            rows = await cur.fetchall()
        return [ClaimRow(str(r[0]), str(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in rows]

    async def take_next(self, holder: str, ttl_s: float, account_keys: Sequence[str] | None = None) -> str | None:
        """Claim the most urgent waiting item for ``holder`` and return its key; None when nothing waits.

        Most urgent: earliest ``due_at``, then ``posted_at``; only unanswered items in status new/open, in the pool
        or assigned to ``holder``, that nobody (``holder`` included) holds an unexpired claim on; only of
        ``account_keys`` when given. Concurrent takers never get the same item.
        """
        async with borrow(self._db) as conn:
            cur = await conn.execute(
                "SELECT team_take_next(%s, %s, %s)",
                (holder, float(ttl_s), None if account_keys is None else list(account_keys)),
            )
            row = await cur.fetchone()
            key = None if row is None or row[0] is None else str(row[0])
            if key is not None:
                await _notify(conn, key)
            return key

    async def reassign(self, item_key: str, to: str | None, by: str, note: str = "") -> None:
        """Assign ``item_key`` to member ``to`` (None: back to the pool); a supervisor's ``reassigned`` event.

        Raises:
            TeamRefused: ``by`` is not a supervisor (or the owner) logged in as themselves.
        """
        async with borrow(self._db) as conn:
            await _event(conn, by, "reassigned", item_key, {"to": to, "note": note})

    async def break_claim(self, item_key: str, by: str) -> str | None:
        """Remove whoever's claim on ``item_key`` (a stale one) with a ``claim_broken`` event by supervisor ``by``.

        Returns:
            The member whose claim was broken, or None when there was none.

        Raises:
            TeamRefused: the login is not a supervisor (or the owner).
        """
        async with borrow(self._db) as conn:
            cur = await conn.execute("SELECT team_break_claim(%s, %s)", (item_key, by))
            row = await cur.fetchone()
        return None if row is None or row[0] is None else str(row[0])

    async def record_send(
        self, item_key: str, reply_key: str, member: str, *, text: str, purpose: str, override: bool = False
    ) -> SendVerdict:
        """Record that ``member`` is sending reply ``reply_key`` on ``item_key``, or say why it must not go.

        One transaction on the server: lock the item; CLAIMED when a colleague holds an unexpired claim; ANSWERED
        when the item is answered or another reply was recorded after the customer's latest message; else the
        ``reply_sending`` event is written (its uid derives from ``reply_key``: a retry is harmless) and the
        verdict is OK. ``override`` (send anyway) passes those checks and also writes ``send_anyway``. Of two
        members racing on one item exactly one gets OK.
        """
        async with borrow(self._db) as conn:
            cur = await conn.execute(
                "SELECT r_verdict, r_who, r_at FROM team_record_send(%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    item_key,
                    reply_key,
                    member,
                    text,
                    purpose,
                    override,
                    reply_event_uid("reply_sending", reply_key),
                    reply_event_uid("send_anyway", reply_key),
                ),
            )
            row = await cur.fetchone()
        if row is None:
            return SendVerdict(SendOutcome.UNKNOWN)
        return SendVerdict(
            SendOutcome(str(row[0])), None if row[1] is None else str(row[1]), None if row[2] is None else int(row[2])
        )
