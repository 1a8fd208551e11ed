"""Joining the team database and looking at it from the command line: who this login is, its member uuid, and the
server-side facts ``team status`` shows (newest event, lease holders, members online).

``team init`` registers the owner under the agent's name (the migration registered it under its role's name);
``team join`` records the member's uuid on the row ``team invite`` created. Both act on ``session_user``'s own
row, which the row-level security of t002 allows every member.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.errors import StorageError
from storage.team.connect import TeamConnection, converted

__all__ = ["LeaseHolder", "Membership", "ServerSnapshot", "heartbeat", "register", "snapshot", "whoami"]

#: A member counts as online when its heartbeat is this recent (docs/TEAM.md: 90 s).
ONLINE_S = 90


@dataclass(frozen=True, slots=True)
class Membership:
    name: str
    role: str
    member_uuid: str | None


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    account_key: str
    holder: str
    #: Seconds until the lease expires (server clock); negative when it already has.
    expires_in: float


@dataclass(frozen=True, slots=True)
class ServerSnapshot:
    max_seq: int
    leases: tuple[LeaseHolder, ...]
    #: Members seen within ``ONLINE_S`` seconds, by name.
    online: tuple[str, ...]
    members: int


async def whoami(conn: TeamConnection) -> Membership | None:
    """The members row of the login role (``session_user``), or None when this login is not a member."""
    async with converted("Could not read the team's members"):
        cur = await conn.execute("SELECT name, role, member_uuid::text FROM members WHERE pg_role = session_user")
        row = await cur.fetchone()
    if row is None:
        return None
    return Membership(str(row[0]), str(row[1]), None if row[2] is None else str(row[2]))


async def register(conn: TeamConnection, *, member_uuid: str, name: str | None = None) -> Membership:
    """Record this copy's ``member_uuid`` on the login's row, and for the owner its agent ``name``.

    The owner is renamed only while it has written no events (a fresh team): history keeps its authors.

    Raises:
        StorageError: the login is not a member, or ``name`` is another member's.
    """
    async with converted("Could not register this member"), conn.transaction():
        cur = await conn.execute("SELECT name, role FROM members WHERE pg_role = session_user FOR UPDATE")
        row = await cur.fetchone()
        if row is None:
            raise StorageError(
                "This login is not a member of the team: ask the team's owner for an invitation (team invite)."
            )
        current, role = str(row[0]), str(row[1])
        if name and name != current and role == "owner":
            cur = await conn.execute("SELECT EXISTS (SELECT FROM members WHERE name = %s)", (name,))
            taken = await cur.fetchone()
            if taken is not None and taken[0]:
                raise StorageError(f"The team already has a member named {name}: choose another name.")
            cur = await conn.execute("SELECT EXISTS (SELECT FROM events WHERE author = %s)", (current,))
            wrote = await cur.fetchone()
            if not (wrote is not None and wrote[0]):
                await conn.execute("UPDATE members SET name = %s WHERE pg_role = session_user", (name,))
                current = name
        await conn.execute(
            "UPDATE members SET member_uuid = %s, last_seen_at = now() WHERE pg_role = session_user",
            (member_uuid,),
        )
    return Membership(current, role, member_uuid)


async def heartbeat(conn: TeamConnection) -> None:
    """``members.last_seen_at = now()`` for this login (every 30 s while the app runs: "online")."""
    async with converted("Could not update this member's heartbeat"):
        await conn.execute("UPDATE members SET last_seen_at = now() WHERE pg_role = session_user")


async def snapshot(conn: TeamConnection) -> ServerSnapshot:
    """What ``team status`` shows from the server: the newest event, who polls what, who is online."""
    async with converted("Could not read the team's status"):
        cur = await conn.execute("SELECT coalesce(max(seq), 0) FROM events")
        seq_row = await cur.fetchone()
        cur = await conn.execute(
            "SELECT account_key, holder, extract(epoch FROM expires_at - clock_timestamp())::float8"
            " FROM leases ORDER BY account_key"
        )
        leases = tuple(LeaseHolder(str(r[0]), str(r[1]), float(r[2])) for r in await cur.fetchall())
        cur = await conn.execute(
            "SELECT name FROM members WHERE last_seen_at > now() - make_interval(secs => %s) ORDER BY name",
            (ONLINE_S,),
        )
        online = tuple(str(r[0]) for r in await cur.fetchall())
        cur = await conn.execute("SELECT count(*) FROM members")
        count_row = await cur.fetchone()
    return ServerSnapshot(
        max_seq=int(seq_row[0]) if seq_row else 0,
        leases=leases,
        online=online,
        members=int(count_row[0]) if count_row else 0,
    )
