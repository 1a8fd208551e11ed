"""The few calls the soak makes into the app's team mode, in one place: set up the team (as ``team init`` and
``team invite`` do), join a member's data folder (as ``team join`` does), and read the figures the checks compare.

Server-side figures are read with plain SQL on the contract's tables (docs/TEAM.md), and the digest both with the
app's own ``TeamEventRepo.digest()`` and from the uids directly, so a wrong digest in the app cannot pass the soak.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from storage.db import DB_FILENAME
from storage.team.events import digest_of


@dataclass(frozen=True)
class Member:
    name: str
    role: str  # the PostgreSQL login role
    password: str


def _schema_conn(conninfo: str, schema: str) -> psycopg.Connection[tuple[Any, ...]]:
    conn = psycopg.connect(conninfo, autocommit=True)
    conn.execute(f'SET search_path TO "{schema}"')
    return conn


def owner_dsn(port: int, schema: str) -> str:
    """The owner's DSN: the server's superuser (trust on the soak's own server: any password passes)."""
    return f"postgresql://postgres@127.0.0.1:{port}/postgres?schema={schema}&sslmode=disable"


def init_team(folder: Path, port: int, schema: str, names: list[str]) -> list[Member]:
    """``team init`` on an owner's data folder, then ``team invite NAME --role agent`` for each name."""
    folder.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_init_team(folder, port, schema, names))


async def _init_team(folder: Path, port: int, schema: str, names: list[str]) -> list[Member]:
    from console.ports import MemorySecretStore, SystemClock
    from console.team.service import TeamAdmin
    from storage.db import close_database, open_database
    from storage.settings import SettingsRepo
    from storage.team.connect import TeamDsn, password_in
    from storage.team_local import TeamLocalRepo

    db = open_database(folder / DB_FILENAME)
    try:
        admin = TeamAdmin(folder, SettingsRepo(db), MemorySecretStore(), TeamLocalRepo(db), SystemClock())
        await admin.init(owner_dsn(port, schema), "owner-password", "owner")
        members = []
        for name in names:
            invitation = await admin.invite(name, "agent")
            password = password_in(invitation.connection_string)
            assert password, "an invitation carries the new member's password"
            members.append(Member(name, TeamDsn.parse(invitation.connection_string).user, password))
        return members
    finally:
        close_database(db)


def member_dsn(port: int, member: Member, schema: str) -> str:
    """The DSN an agent joins with (no password: that goes to the secret store), through its proxy route."""
    return f"postgresql://{member.role}@127.0.0.1:{port}/postgres?schema={schema}&sslmode=disable"


def role_pattern(member: Member | None, schema: str = "") -> str:
    """A ``LIKE`` pattern for ``pg_stat_activity.usename``: one member's role, or every member's."""
    return member.role if member is not None else f"{schema}\\_%"


async def join(data: Path, *, dsn: str, member: str, password: str, secrets: Any) -> None:
    """``care-console team join DSN`` on this data folder: settings keep the DSN, the password goes to ``secrets``."""
    from console.ports import SystemClock
    from console.team.service import TeamAdmin
    from storage.db import close_database, open_database
    from storage.settings import SettingsRepo
    from storage.team_local import TeamLocalRepo

    db = open_database(data / DB_FILENAME)
    try:
        admin = TeamAdmin(data, SettingsRepo(db), secrets, TeamLocalRepo(db), SystemClock())
        await admin.join(dsn, password, member)
    finally:
        close_database(db)


def remember_password(dsn: str, password: str, secrets: Any) -> None:
    """Put the member's password in a fresh secret store again (a restart after SIGKILL: the store was in memory,
    where a keyring would have kept it)."""
    from console.team.config import store_password
    from storage.team.connect import TeamDsn

    store_password(secrets, TeamDsn.parse(dsn), password)


def answered_items(conninfo: str, schema: str) -> int:
    with _schema_conn(conninfo, schema) as conn:
        row = conn.execute("SELECT count(*) FROM items WHERE answered").fetchone()
    return int(row[0]) if row else 0


def max_seq(conninfo: str, schema: str) -> int:
    with _schema_conn(conninfo, schema) as conn:
        row = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    return int(row[0]) if row else 0


def server_figures(conninfo: str, schema: str) -> dict[str, Any]:
    """Counts on the team server and the digest of its event log (computed here and by the app; both must agree)."""
    with _schema_conn(conninfo, schema) as conn:
        uids = [str(r[0]) for r in conn.execute("SELECT uid FROM events")]
        kinds = dict(conn.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
        items, answered = conn.execute("SELECT count(*), count(*) FILTER (WHERE answered) FROM items").fetchone() or (
            0,
            0,
        )
        claims = conn.execute("SELECT count(*) FROM claims").fetchone()
    digest = digest_of(uids)
    app_digest = asyncio.run(_app_digest(conninfo, schema))
    assert app_digest == digest, f"TeamEventRepo.digest() {app_digest} differs from the uids' own digest {digest}"
    return {
        "events": len(uids),
        "digest": digest,
        "kinds": kinds,
        "items": int(items),
        "answered": int(answered),
        "mention_events": int(kinds.get("mention", 0)),
        "reply_sent_events": int(kinds.get("reply_sent", 0)),
        "claims": int(claims[0]) if claims else 0,
    }


async def _app_digest(conninfo: str, schema: str) -> tuple[int, str]:
    from storage.team.events import TeamEventRepo

    conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    try:
        await conn.execute(f'SET search_path TO "{schema}"')
        return await TeamEventRepo(conn, schema).digest()
    finally:
        await conn.close()


def local_figures(data: Path) -> dict[str, Any]:
    """A member's copy, read from its SQLite file after the agent exited: the app's digest, the uids' own digest,
    and the customer mentions it holds."""
    from storage.db import close_database, open_database
    from storage.team_local import TeamLocalRepo

    db = open_database(data / DB_FILENAME)
    try:
        app_digest = TeamLocalRepo(db).digest()
    finally:
        close_database(db)
    conn = sqlite3.connect(data / DB_FILENAME)
    try:
        uids = [str(r[0]) for r in conn.execute("SELECT uid FROM team_applied")]
        mentions = conn.execute("SELECT count(*) FROM mentions").fetchone()[0]
        # One brand post is one sent reply in every copy, whoever sent it and however this copy learnt of it.
        doubled = conn.execute(
            "SELECT external_id, count(*) FROM replies WHERE state = 'sent' AND external_id IS NOT NULL"
            " GROUP BY external_id HAVING count(*) > 1"
        ).fetchall()
        sent = conn.execute("SELECT count(DISTINCT external_id) FROM replies WHERE state = 'sent'").fetchone()[0]
    finally:
        conn.close()
    return {
        "digest": app_digest,
        "uid_digest": digest_of(uids),
        "mentions": int(mentions),
        "sent_posts": int(sent),
        "doubled_replies": [(str(e), int(n)) for e, n in doubled],
    }
