"""The running app's pool on the team database, made before the loop runs and opened by ``TeamService.start``.

``open_runtime`` is synchronous and wires every service before the window exists, so the claims, the leases,
the send gate and the heartbeat get their pool as an object at once; it connects when started, in the background
(``open(wait=False)``), and a server that is down meanwhile makes their calls fail as ``TeamUnavailable``
(psycopg_pool's ``PoolClosed`` and ``PoolTimeout`` are ``OperationalError``s), which each of them already handles.
The replicator keeps a pool of its own (it drops and reopens it on reconnects).
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from storage.team.connect import TeamConnection, TeamDsn, TeamPool, conninfo, converted, valid_schema

__all__ = ["open_later", "start"]


def open_later(dsn: TeamDsn, password: str | None, *, max_size: int = 3, timeout: float = 10.0) -> TeamPool:
    """A pool on the team schema, not connected yet (no I/O; no running loop needed): :func:`start` opens it."""
    schema = valid_schema(dsn.schema)
    statement = f'SET search_path TO "{schema}", pg_temp'

    async def configure(conn: TeamConnection) -> None:
        # Per connection, not through ``options=``: poolers (pgbouncer) drop options.
        await conn.execute(statement.encode())

    pool: TeamPool = AsyncConnectionPool(
        conninfo(dsn, password),
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True},
        configure=configure,
        check=AsyncConnectionPool.check_connection,
        timeout=timeout,
        name="care-console-team-app",
        open=False,
    )
    return pool


async def start(pool: TeamPool) -> None:
    """Open the pool without waiting for a connection (it keeps trying in the background)."""
    async with converted("Could not start the connections to the team database"):
        await pool.open(wait=False)
