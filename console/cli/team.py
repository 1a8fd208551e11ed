"""``care-console team …``: init, join, status, leave, host, backup and invite (issues 22 and 23).

The password is taken once, from the address (``postgresql://user:secret@…``), standard input
(``--password-stdin``) or a prompt, and goes to the keyring; it is never printed, logged or stored in the settings.
An invitation's connection string is printed once, because it is the thing to hand over.

Exit codes as elsewhere: 0 done, 1 the operation failed (the reason on standard error), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from console.cli.common import data_dir_of, make_secret_store, redacting
from console.ports import Clock, SecretStore, SystemClock
from console.wording import count
from storage.db import DB_FILENAME, close_database, open_database
from storage.errors import DatabaseLocked, StorageError
from storage.lock import InstanceLock
from storage.settings import SettingsRepo

if TYPE_CHECKING:
    from console.team.host import HostInfo
    from console.team.service import TeamAdmin, TeamReport

__all__ = ["add_parser", "run", "run_team_command"]

EXIT_FAILED, EXIT_USAGE = 1, 2
Ask = Callable[[str], str]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare the ``team`` subcommand and its actions."""
    team = sub.add_parser("team", help="share one queue with colleagues on PostgreSQL (join, host, invite, status)")
    shown = "{init,join,status,leave,host,backup,invite}"  # tls-front is the hosted server's own, not listed
    actions = team.add_subparsers(dest="team_command", required=True, metavar=shown)
    for name, text in (
        ("init", "set up (or update) the team database at DSN and join it as its owner"),
        ("join", "join the team at DSN (the connection string from team invite)"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("dsn", help="postgresql://user@host:port/db?schema=… or host=… user=… key=value pairs")
        action.add_argument("--member", default="", help="your name in the team (default: the agent name)")
        action.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    actions.add_parser("status", help="mode, member, server, lag, changes to push, conflicts, pollers, who is online")
    actions.add_parser("leave", help="leave the team: this copy keeps its queue and works solo")
    host = actions.add_parser("host", help="run the team server on this computer (PostgreSQL, TLS) and own it")
    host.add_argument("--port", type=int, help="network port (default 5432, or the next free one)")
    host.add_argument("--member", default="", help="your name in the team (default: the agent name)")
    host.add_argument("--stop", action="store_true", help="stop the team server running on this computer")
    backup = actions.add_parser("backup", help="back up the team database (pg_dump custom format)")
    backup.add_argument("file", nargs="?", type=Path, help="where (default: care-console-team-DATE.dump here)")
    invite = actions.add_parser("invite", help="add a member and print their one-time connection string")
    invite.add_argument("name", help="the colleague's name, as the team will show it")
    invite.add_argument("--role", choices=("agent", "supervisor"), default="agent")
    front = actions.add_parser("tls-front")  # the hosted server's TLS side, run by team host (bundle only)
    for option in ("--port", "--upstream", "--cert", "--key", "--pid-file"):
        front.add_argument(option, required=True)
    front.add_argument("--detach", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run one ``team`` action with the OS keyring (or a session-only store, said in a warning)."""
    if args.team_command == "tls-front":
        from console.team.tls_front import main as front_main

        argv = ["--port", args.port, "--upstream", args.upstream, "--cert", args.cert, "--key", args.key,
                "--pid-file", args.pid_file, *(["--detach"] if args.detach else [])]  # fmt: skip
        return front_main(argv)
    secrets, warning = make_secret_store()
    if warning and args.team_command in ("init", "join", "host"):
        print(f"{warning} The team password would be lost when this command ends.", file=sys.stderr)
    return run_team_command(
        args,
        data_dir=data_dir_of(args),
        secrets=redacting(args, secrets),
        clock=SystemClock(),
        stdin=sys.stdin,
        out=sys.stdout,
        err=sys.stderr,
        ask=_ask_terminal,
    )


def _ask_terminal(prompt: str) -> str:
    if not sys.stdin.isatty():
        raise _Usage("No terminal to ask for the password on: pipe it in with --password-stdin.")
    return getpass.getpass(prompt)


class _Usage(Exception):
    """Bad usage: exit code 2 with the message."""


def run_team_command(
    args: argparse.Namespace,
    *,
    data_dir: Path,
    secrets: SecretStore,
    clock: Clock,
    stdin: TextIO,
    out: TextIO,
    err: TextIO,
    ask: Ask,
) -> int:
    """Run one ``team`` action against the data folder (takes the instance lock, except ``host --stop``).

    Returns:
        The exit code: 0 done, 1 failed (message on ``err``), 2 bad usage.
    """
    from console.team.host import HostError
    from console.team.service import TeamError

    command = args.team_command
    if command == "host" and args.stop:
        from console.team.host import stop_host

        try:
            stopped = stop_host(data_dir)
        except StorageError as exc:
            print(str(exc), file=err)
            return EXIT_FAILED
        print("team server stopped" if stopped else "no team server runs on this computer", file=out)
        return 0
    lock = InstanceLock(data_dir)
    try:
        lock.acquire()
    except DatabaseLocked as exc:
        print(f"{exc} (close the app to run team {command}, or use File → Team… in it)", file=err)
        return EXIT_FAILED
    try:
        db = open_database(data_dir / DB_FILENAME)
        try:
            admin = _admin(data_dir, db, secrets, clock)
            return _run(_action(args, admin, stdin, out, ask))
        except _Usage as exc:
            print(str(exc), file=err)
            return EXIT_USAGE
        except (TeamError, HostError, StorageError) as exc:
            print(str(exc), file=err)
            return EXIT_FAILED
        finally:
            close_database(db)
    finally:
        lock.release()


def _admin(data_dir: Path, db: Any, secrets: SecretStore, clock: Clock) -> TeamAdmin:
    from console.team.service import TeamAdmin
    from storage.team_local import TeamLocalRepo

    return TeamAdmin(data_dir, SettingsRepo(db), secrets, TeamLocalRepo(db), clock)


def _run(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)


async def _action(args: argparse.Namespace, admin: TeamAdmin, stdin: TextIO, out: TextIO, ask: Ask) -> int:
    command = args.team_command
    if command in ("init", "join"):
        password = _password(args, stdin, ask)
        enter = admin.init if command == "init" else admin.join
        config = await enter(args.dsn, password, args.member)
        did = "set up the team database on" if command == "init" else "joined the team on"
        print(f"{did} {config.server} as {config.member} ({config.role}); the password is in the keyring", file=out)
        print("start the app (or restart it) to work on the shared queue", file=out)
        return 0
    if command == "status":
        if admin.config is None:
            print("solo: this copy is in no team (care-console team join DSN, or team host)", file=out)
            return 0
        _print_report(await admin.report(), out)
        here = await admin.hosted()
        if here is not None:
            print(f"hosting: the team server runs on this computer, {here.address}:{here.port}", file=out)
        return 0
    if command == "leave":
        left = admin.leave()
        if left is None:
            print("this copy is in no team", file=out)
        else:
            print(f"left the team on {left.server}; this copy keeps its queue and works solo from now on", file=out)
        return 0
    if command == "host":
        info = await admin.host(args.member, port=args.port)
        _print_host(info, admin, out)
        return 0
    if command == "backup":
        target = await admin.backup(args.file)
        print(f"backup written to {target} ({target.stat().st_size:,} bytes; pg_restore reads it)", file=out)
        return 0
    if command == "invite":
        invitation = await admin.invite(args.name, args.role)
        print(
            f"invited {invitation.name} as {invitation.role}; give them this connection string, once, privately",
            file=out,
        )
        print("(it holds their password, which is shown only now):", file=out)
        print(invitation.connection_string, file=out)
        print("they run: care-console team join '<the string>'", file=out)
        return 0
    raise AssertionError(command)  # pragma: no cover - argparse restricts the choices


def _password(args: argparse.Namespace, stdin: TextIO, ask: Ask) -> str | None:
    """The password from the address (None here: the service reads it there), standard input, or a prompt."""
    from storage.team.connect import TeamDsn, password_in

    if password_in(args.dsn):
        return None
    if args.password_stdin:
        password = stdin.readline().rstrip("\r\n")
        if not password:
            raise _Usage("--password-stdin: standard input held no password.")
        return password
    try:
        dsn = TeamDsn.parse(args.dsn)
    except ValueError as exc:
        raise _Usage(f"Not a team database address: {exc}") from None
    return ask(f"Password for {dsn.user} on {dsn.server}: ")


def _print_report(report: TeamReport, out: TextIO) -> None:
    config = report.config
    mode = report.mode if not report.reason else f"{report.mode} ({report.reason})"
    print(f"mode: {mode}", file=out)
    print(f"member: {config.member} ({config.role})", file=out)
    print(f"server: {report.server}", file=out)
    lag = "unknown (offline)" if report.lag is None else count(report.lag, "event")
    print(f"lag: {lag} not pulled yet", file=out)
    print(f"to push: {count(report.to_push, 'change')}", file=out)
    print(f"conflicts: {report.conflicts}", file=out)
    if report.lag is not None:
        if report.leases:
            for lease in report.leases:
                state = f"for {lease.expires_in:.0f} s" if lease.expires_in > 0 else "expired"
                print(f"polls {lease.account_key}: {lease.holder} ({state})", file=out)
        else:
            print("polls: nobody holds a channel account's lease", file=out)
        print(f"online: {', '.join(report.online) or 'nobody'}", file=out)


def _print_host(info: HostInfo, admin: TeamAdmin, out: TextIO) -> None:
    state = "started" if info.started else "already running"
    print(f"team server {state} on {info.address}:{info.port} (its data: {info.folder})", file=out)
    pairs = [info.fingerprint[i : i + 2] for i in range(0, len(info.fingerprint), 2)]
    print(f"certificate fingerprint (sha256): {':'.join(pairs)}", file=out)
    config = admin.config
    if config is not None:
        print(f"you are its owner, as {config.member}", file=out)
    print("invite each colleague: care-console team invite NAME --role agent|supervisor", file=out)
    print(f"server address: {info.connection_string}", file=out)
    print("stop it with: care-console team host --stop", file=out)
