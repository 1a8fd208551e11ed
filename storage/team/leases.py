"""One poller per channel account: leases on the team database, expiring on the server's clock.

A member's machine polls an account only while it holds that account's lease; it renews it well before
``ttl_s`` runs out. When it stops (closed, offline, crashed), the lease expires and a colleague's machine takes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.team.connect import TeamDb, borrow, team_repository


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """Who polls an account; times are epoch seconds on the server's clock (``now`` read with them)."""

    account_key: str
    holder: str
    acquired_at: float
    expires_at: float
    now: float

    @property
    def expires_in(self) -> float:
        """Seconds until the lease expires (negative once it has)."""
        return self.expires_at - self.now


@team_repository
class LeaseRepo:
    """Poller leases of one team schema."""

    def __init__(self, db: TeamDb, schema: str) -> None:
        self._db = db
        self._schema = schema

    async def acquire_or_renew(self, account_key: str, holder: str, ttl_s: float) -> bool:
        """Take the lease of ``account_key`` for ``holder`` (free or expired) or renew ``holder``'s own.

        One statement on the server (``team_lease``), so two machines asking at once cannot both win.

        Returns:
            True when ``holder`` holds the lease for the next ``ttl_s`` seconds; False when a colleague does.
        """
        async with borrow(self._db) as conn:
            cur = await conn.execute("SELECT team_lease(%s, %s, %s)", (account_key, holder, float(ttl_s)))
            row = await cur.fetchone()
            return bool(row and row[0])

    async def release(self, account_key: str, holder: str) -> bool:
        """Hand ``holder``'s lease back now, so a colleague's machine need not wait for it to expire."""
        async with borrow(self._db) as conn:
            cur = await conn.execute("DELETE FROM leases WHERE account_key = %s AND holder = %s", (account_key, holder))
            return cur.rowcount > 0

    async def holders(self) -> dict[str, LeaseRow]:
        """The unexpired leases by account key."""
        async with borrow(self._db) as conn:
            cur = await conn.execute(
                "SELECT account_key, holder, extract(epoch FROM acquired_at)::float8,"
                " extract(epoch FROM expires_at)::float8, extract(epoch FROM clock_timestamp())::float8"
                " FROM leases WHERE expires_at > clock_timestamp()"
            )
            rows = await cur.fetchall()
        return {str(r[0]): LeaseRow(str(r[0]), str(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in rows}
