"""Members of the team and their PostgreSQL roles: invite, join, remove, list, heartbeat, shift state.

Each member logs in as a role of its own, ``<schema>_<slug of the name>``, granted the group role of its team role
(``<schema>_agent`` or ``<schema>_supervisor``, made by t002); grants and row-level security do the rest. Only the
owner (the role that ran ``team init``) may create or remove members.

The password of a new role is sent to the server already SCRAM-hashed (libpq's PQencryptPasswordConn), so it
appears in no statement text the server might log.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from typing import NamedTuple

import psycopg
from psycopg import sql

from storage.errors import StorageError, TeamRefused
from storage.team.connect import TeamConnection, TeamDb, borrow, team_repository, valid_schema

#: A member counts as online when its heartbeat is this recent (docs/TEAM.md: 90 s).
ONLINE_S = 90

#: Team roles a member can be invited with (the owner is whoever ran ``team init``).
INVITABLE = ("agent", "supervisor")

_RESERVED_SLUGS = frozenset({"agent", "supervisor", "owner"})


@dataclass(frozen=True, slots=True)
class MemberRow:
    """A member; times are epoch seconds (server clock), ``online`` = heartbeat within :data:`ONLINE_S`."""

    name: str
    pg_role: str
    role: str
    member_uuid: uuid.UUID | None
    created_at: float
    last_seen_at: float | None
    on_shift_since: float | None
    online: bool


class Invited(NamedTuple):
    """A new member's login: its role and one-time password (shown once, then only in the member's keyring)."""

    pg_role: str
    password: str


def role_slug(name: str) -> str:
    """The role-name part made of a member's name: lower-case ASCII letters, digits and _ (at most 20)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name).strip("_")[:20].strip("_")
    return slug or "member"


_MEMBER_COLUMNS = (
    "name, pg_role, role, member_uuid, extract(epoch FROM created_at)::float8,"
    " extract(epoch FROM last_seen_at)::float8, extract(epoch FROM on_shift_since)::float8,"
    " coalesce(last_seen_at > clock_timestamp() - make_interval(secs => %s), false)"
)


def _member(row: tuple[object, ...]) -> MemberRow:
    name, pg_role, role, member_uuid, created, seen, shift, online = row
    return MemberRow(
        name=str(name),
        pg_role=str(pg_role),
        role=str(role),
        member_uuid=None if member_uuid is None else uuid.UUID(str(member_uuid)),
        created_at=float(str(created)),
        last_seen_at=None if seen is None else float(str(seen)),
        on_shift_since=None if shift is None else float(str(shift)),
        online=bool(online),
    )


@team_repository
class MemberRepo:
    """The ``members`` table of one team schema, and the login roles behind it."""

    def __init__(self, db: TeamDb, schema: str) -> None:
        self._db = db
        self._schema = valid_schema(schema)

    async def invite(self, name: str, role: str, password: str | None = None) -> Invited:
        """Create member ``name`` with a LOGIN role of its own, granted the group of ``role`` (owner only).

        Args:
            name: the agent name shown in the app (unique in the team).
            role: ``agent`` or ``supervisor``.
            password: the new role's password; generated (``secrets.token_urlsafe``) when None.

        Returns:
            The role and the password, for the one-time connection string.

        Raises:
            ValueError: an empty name or an unknown role.
            StorageError: the team already has a member of that name.
            TeamRefused: the login may not create roles (only the owner invites).
        """
        name = name.strip()
        if not name or len(name) > 80:
            raise ValueError("a member's name is 1 to 80 characters")
        if role not in INVITABLE:
            raise ValueError(f"a member is an agent or a supervisor, not {role!r}")
        password = password or secrets.token_urlsafe(24)
        async with borrow(self._db) as conn, conn.transaction():
            cur = await conn.execute("SELECT team_role()")
            mine = await cur.fetchone()
            if mine is None or mine[0] != "owner":
                raise TeamRefused("Only the team's owner (who ran team init) can invite members.")
            cur = await conn.execute("SELECT EXISTS (SELECT FROM members WHERE name = %s)", (name,))
            taken = await cur.fetchone()
            if taken is not None and taken[0]:
                raise StorageError(f"The team already has a member named {name}.")
            pg_role = await self._free_role_name(conn, role_slug(name))
            verifier = conn.pgconn.encrypt_password(password.encode(), pg_role.encode(), b"scram-sha-256")
            await conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(pg_role), sql.Literal(verifier.decode("ascii"))
                )
            )
            await conn.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(f"{self._schema}_{role}"), sql.Identifier(pg_role))
            )
            await conn.execute("INSERT INTO members (name, pg_role, role) VALUES (%s, %s, %s)", (name, pg_role, role))
        return Invited(pg_role, password)

    async def _free_role_name(self, conn: TeamConnection, slug: str) -> str:
        base = f"{self._schema}_{slug}"
        for n in range(1, 1000):
            if n == 1 and slug in _RESERVED_SLUGS:
                continue  # <schema>_agent and <schema>_supervisor are the group roles
            candidate = base if n == 1 else f"{base}_{n}"
            cur = await conn.execute("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = %s)", (candidate,))
            row = await cur.fetchone()
            if row is not None and not row[0]:
                return candidate
        raise StorageError(f"No free role name for {slug!r}.")

    async def remove(self, name: str) -> bool:
        """Remove member ``name`` and its login role (owner only); its events stay in the history.

        Returns:
            False when there is no such member.

        Raises:
            TeamRefused: the login is not the owner, or ``name`` is the owner.
        """
        async with borrow(self._db) as conn, conn.transaction():
            cur = await conn.execute("SELECT team_role()")
            mine = await cur.fetchone()
            if mine is None or mine[0] != "owner":
                raise TeamRefused("Only the team's owner can remove members.")
            cur = await conn.execute("SELECT pg_role, role FROM members WHERE name = %s", (name,))
            row = await cur.fetchone()
            if row is None:
                return False
            if row[1] == "owner":
                raise TeamRefused("The team's owner cannot be removed.")
            pg_role = str(row[0])
            await conn.execute("DELETE FROM members WHERE name = %s", (name,))
            await conn.execute("DELETE FROM claims WHERE holder = %s", (name,))
            await conn.execute("DELETE FROM leases WHERE holder = %s", (name,))
            try:
                async with conn.transaction():
                    await conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(pg_role)))
            except psycopg.Error:
                # The role still owns something elsewhere on the server: at least it can no longer log in.
                await conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(pg_role)))
            return True

    async def register_self(self, name: str, role: str, member_uuid: uuid.UUID) -> MemberRow:
        """Join: record ``member_uuid`` on the login's own member row (made by ``invite``, or by ``team init``).

        The owner's row was made by the migration under its role's name; the owner renames it to ``name`` here.
        A login with no row gets one only when it may create members (the owner's privileges), as ``role``.

        Raises:
            TeamRefused: the login is not a member and may not become one.
        """
        async with borrow(self._db) as conn, conn.transaction():
            cur = await conn.execute("SELECT name, role FROM members WHERE pg_role = session_user")
            row = await cur.fetchone()
            if row is None:
                await conn.execute(
                    "INSERT INTO members (name, pg_role, role, member_uuid) VALUES (%s, session_user, %s, %s)",
                    (name, role, member_uuid),
                )
            elif str(row[0]) != name and str(row[1]) == "owner":
                cur = await conn.execute("SELECT EXISTS (SELECT FROM members WHERE name = %s)", (name,))
                taken = await cur.fetchone()
                if taken is not None and taken[0]:
                    raise StorageError(f"The team already has a member named {name}: choose another name.")
                await conn.execute("UPDATE members SET name = %s WHERE pg_role = session_user", (name,))
            await conn.execute(
                "UPDATE members SET member_uuid = %s, last_seen_at = clock_timestamp() WHERE pg_role = session_user",
                (member_uuid,),
            )
            cur = await conn.execute(f"SELECT {_MEMBER_COLUMNS} FROM members WHERE pg_role = session_user", (ONLINE_S,))
            found = await cur.fetchone()
        if found is None:
            raise TeamRefused("This login is not a member of the team: ask the owner for an invitation.")
        return _member(found)

    async def list(self) -> list[MemberRow]:
        """Every member, by name."""
        async with borrow(self._db) as conn:
            cur = await conn.execute(f"SELECT {_MEMBER_COLUMNS} FROM members ORDER BY name", (ONLINE_S,))
            rows = await cur.fetchall()
        return [_member(r) for r in rows]

    async def heartbeat(self, name: str) -> bool:
        """Mark ``name`` as seen now (server clock); False when the row is not the login's to update."""
        async with borrow(self._db) as conn:
            cur = await conn.execute("UPDATE members SET last_seen_at = clock_timestamp() WHERE name = %s", (name,))
            return cur.rowcount > 0

    async def set_on_shift(self, name: str, since: float | None) -> bool:
        """Record that ``name`` is on shift since ``since`` (epoch seconds), or off shift (None)."""
        async with borrow(self._db) as conn:
            cur = await conn.execute(
                "UPDATE members SET on_shift_since = to_timestamp(%s::float8) WHERE name = %s", (since, name)
            )
            return cur.rowcount > 0

    async def role_of_current_user(self) -> str | None:
        """``agent``, ``supervisor`` or ``owner`` for the login, None when it is no member."""
        async with borrow(self._db) as conn:
            cur = await conn.execute("SELECT team_role()")
            row = await cur.fetchone()
        return None if row is None or row[0] is None else str(row[0])

    async def member_of_current_user(self) -> str | None:
        """The member name of the login (``team_member()``), None when it is no member."""
        async with borrow(self._db) as conn:
            cur = await conn.execute("SELECT team_member()")
            row = await cur.fetchone()
        return None if row is None or row[0] is None else str(row[0])
