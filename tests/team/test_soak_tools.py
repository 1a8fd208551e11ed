"""The team soak's own tools: the restartable PostgreSQL and the proxy that cuts one agent off.

Checked on their own before the soak uses them, so a broken tool is never mistaken for a broken app.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.team.pgproxy import PgProxy
from tests.team.pgserver import EmbeddedServer, soak_folder


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    with soak_folder("care-soak-tools-") as folder:
        pg = EmbeddedServer(folder / "pg")
        pg.start()
        try:
            yield pg
        finally:
            pg.stop("immediate")


def _through(port: int, timeout: int = 2) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        f"host=127.0.0.1 port={port} dbname=postgres user=postgres connect_timeout={timeout}", autocommit=True
    )


def test_the_soak_tools_cut_restore_terminate_and_restart(server: EmbeddedServer) -> None:
    proxy = PgProxy(server.port)
    opened: list[psycopg.Connection[tuple[object, ...]]] = []
    try:
        port = proxy.route("a")
        other = proxy.route("b")
        conn = _through(port)
        opened.append(conn)
        assert conn.execute("SELECT 1").fetchone() == (1,)
        bystander = _through(other)
        opened.append(bystander)

        proxy.cut("a")  # reset: the open connection dies, a new one is refused at once
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError):
            _through(port)
        assert bystander.execute("SELECT 2").fetchone() == (2,), "a cut takes one agent off, not the others"
        proxy.restore("a")
        conn = _through(port)
        opened.append(conn)
        assert conn.execute("SELECT 3").fetchone() == (3,)

        proxy.cut("a", "silent")  # silent: a new connection gets no answer until the client gives up
        with pytest.raises(psycopg.OperationalError):
            _through(port, timeout=1)
        proxy.restore("a")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 4")  # held through the silent cut: aborted when the network comes back
        conn = _through(port)
        opened.append(conn)

        assert server.terminate("postgres") >= 2  # pg_terminate_backend: both proxied sessions end
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 5")
        server.restart("immediate")  # a crash and its recovery, on the same port
        with _through(port) as again:
            assert again.execute("SELECT 6").fetchone() == (6,)
        assert proxy.stats()["a"]["refused"] >= 2
    finally:
        for each in opened:
            each.close()
        proxy.close()
