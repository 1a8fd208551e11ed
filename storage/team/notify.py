"""LISTEN/NOTIFY on the team database: the hints that something changed (docs/TEAM.md "PostgreSQL schema").

The events trigger notifies ``<schema>_events`` with the highest new seq, the claims trigger ``<schema>_claims``
with the item key. A notification is a hint, never data: the reader always reads ``events WHERE seq > cursor``.
A :class:`TeamListener` holds its own autocommit connection (outside the pool: a pooled connection goes back to
the pool and its LISTEN with it) and delivers notifications to a callback from :meth:`TeamListener.run`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from psycopg import sql

from storage.team.connect import TeamConnection, TeamDb, borrow, converted, valid_schema


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification: ``what`` is "events" or "claims" (or another suffix), ``payload`` as sent."""

    what: str
    payload: str


def channel(schema: str, what: str) -> str:
    """The notification channel of ``what`` ("events", "claims") in ``schema``."""
    return f"{valid_schema(schema)}_{what}"


async def notify(db: TeamDb, schema: str, what: str, payload: str) -> None:
    """Send one notification (the replicator's self-test at connect: does a NOTIFY come back?)."""
    async with converted("Could not send a notification on the team database"), borrow(db) as conn:
        await conn.execute("SELECT pg_notify(%s, %s)", (channel(schema, what), payload))


class TeamListener:
    """A dedicated connection LISTENing on the team schema's channels; :meth:`run` hands each notification on."""

    def __init__(self, conn: TeamConnection, schema: str, whats: tuple[str, ...] = ("events", "claims")) -> None:
        """Args:
        conn: an autocommit connection of its own (``connect.listen_connection``); the listener closes it.
        schema: the team schema.
        whats: the channels' suffixes to listen on.
        """
        self._conn = conn
        self._schema = valid_schema(schema)
        self._whats = whats

    async def start(self) -> None:
        """LISTEN on every channel.

        Raises:
            TeamUnavailable: the connection is gone.
        """
        async with converted("Could not listen for the team's changes"):
            for what in self._whats:
                await self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel(self._schema, what))))

    async def run(self, deliver: Callable[[Notice], None]) -> None:
        """Hand every notification to ``deliver`` until the connection fails or the task is cancelled.

        Raises:
            TeamUnavailable: the connection was lost (the caller reconnects).
        """
        prefix = f"{self._schema}_"
        async with converted("Lost the team's notifications"):
            async for note in self._conn.notifies():
                what = note.channel[len(prefix) :] if note.channel.startswith(prefix) else note.channel
                deliver(Notice(what, note.payload))

    async def aclose(self) -> None:
        """Close the connection (its LISTENs end with it)."""
        await self._conn.close()
