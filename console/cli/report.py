"""``care-console report --team``: the team's summary of any period, agents and channels, from the team database.

The same summary as a shift's export, in the same five formats, read straight from PostgreSQL's event log (no
files to merge): ``care-console report --team --from 2026-12-01 --to 2026-12-07 --agents alex,sam -o week.pdf``.
Dates are local days (``--to`` includes its whole day); a time (``2026-12-07T18:00``, or with ``Z`` / an offset)
is that second. The team and the login are this copy's (``team join``); the password comes from the keyring.
Reports are a supervisor's: an agent's login is told so.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TextIO

from console.cli.common import data_dir_of, make_secret_store, redacting
from console.ports import Clock, SecretStore, SystemClock
from console.reports.export.atomic import ExportError
from storage.db import DB_FILENAME, close_database, open_database
from storage.errors import StorageError
from storage.settings import SettingsRepo

EXIT_FAILED = 1
EXIT_USAGE = 2


class _Usage(Exception):
    """Bad usage: exit code 2 with the message."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report`` to the command line."""
    report = sub.add_parser(
        "report", help="the team's summary of a period from the team database (json, csv, xlsx, html or pdf)"
    )
    report.add_argument("--team", action="store_true", help="from the team database (required; one shift: export)")
    report.add_argument("--from", dest="start", required=True, help="first day (YYYY-MM-DD) or time (ISO 8601)")
    report.add_argument("--to", dest="end", required=True, help="last day, included (YYYY-MM-DD), or time")
    report.add_argument("--agents", default="", help="only these members' work, comma-separated (default: all)")
    report.add_argument("--channels", default="", help="only these channels, comma-separated (e.g. mastodon)")
    report.add_argument("--format", choices=["json", "csv", "xlsx", "html", "pdf"], help="default: from -o's extension")
    report.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    report.add_argument("--redact", action="store_true", help="leave out customer handles, names and links")


def parse_when(text: str, *, end: bool) -> int:
    """Epoch seconds of ``text``: a local day (its first second, or with ``end`` its last) or an ISO time.

    Raises:
        ValueError: neither a date nor a time.
    """
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.astimezone()  # local time, like the day form
        return int(moment.timestamp())
    first = datetime.combine(day + timedelta(days=1) if end else day, time()).astimezone()
    return int(first.timestamp()) - (1 if end else 0)


def _names(text: str) -> list[str] | None:
    names = [n.strip() for n in text.split(",") if n.strip()]
    return list(dict.fromkeys(names)) or None


def run(args: argparse.Namespace) -> int:
    """Write the team report; 0 when written, 1 when it could not be, 2 for a usage problem."""
    secrets, _warning = make_secret_store()
    return run_report(
        args, data_dir=data_dir_of(args), secrets=redacting(args, secrets), clock=SystemClock(), out=sys.stdout,
        err=sys.stderr,
    )  # fmt: skip


def run_report(
    args: argparse.Namespace, *, data_dir: Path, secrets: SecretStore, clock: Clock, out: TextIO, err: TextIO
) -> int:
    """``report`` with its dependencies injected (tests pass a secret store and a clock)."""
    from console.reports.export.service import format_for  # here: main.py imports this module at app start

    try:
        if not args.team:
            raise _Usage("report reads the team database: add --team (one shift's summary is `care-console export`).")
        start, end = parse_when(args.start, end=False), parse_when(args.end, end=True)
        if end < start:
            raise _Usage(f"--to ({args.end}) is before --from ({args.start}).")
        fmt = format_for(args.output, args.format)
    except ValueError as exc:
        print(f"--from and --to take a day (2026-12-01) or a time (2026-12-01T09:00): {exc}", file=err)
        return EXIT_USAGE
    except (_Usage, ExportError) as exc:
        print(str(exc), file=err)
        return EXIT_USAGE
    path = data_dir / DB_FILENAME
    if not path.exists():
        print(f"There is no database at {path}: join a team first (care-console team join).", file=err)
        return EXIT_USAGE
    try:
        db = open_database(path, migrate=False)
    except StorageError as exc:
        print(str(exc), file=err)
        return EXIT_FAILED
    try:
        settings = SettingsRepo(db)
        written = _write(settings, secrets, clock, args, start, end, fmt.value)
    except _Usage as exc:
        print(str(exc), file=err)
        return EXIT_USAGE
    except (ExportError, StorageError) as exc:
        print(str(exc), file=err)
        return EXIT_FAILED
    finally:
        close_database(db)
    print(f"wrote the team report ({fmt.value}) to {written}", file=out)
    return 0


def _write(
    settings: SettingsRepo, secrets: SecretStore, clock: Clock, args: argparse.Namespace, start: int, end: int, fmt: str
) -> Path:
    from console.reports.export.service import ExportService, Format, write_summary
    from console.reports.summary import business_calendar
    from console.reports.team import build_team_summary
    from console.team.config import load_config, read_password
    from storage.team.connect import connect
    from storage.team.members import MemberRepo
    from storage.team.reports import PeriodLog, TeamReportRepo

    config = load_config(settings)
    if config is None:
        raise _Usage("This copy is not in a team: join one first (care-console team join).")
    dsn = config.parsed()
    password = read_password(secrets, dsn)
    channels: Sequence[str] | None = _names(args.channels)
    agents = _names(args.agents)

    async def read() -> PeriodLog:
        conn = await connect(dsn, password)
        try:
            role = await MemberRepo(conn, dsn.schema).role_of_current_user()
            if role not in ("supervisor", "owner"):
                # Reports are a supervisor's (issue 23); an agent's login reads the log to replicate it, not this.
                raise _Usage(f"Team reports are for supervisors; {config.member} logs in as {role or 'no member'}.")
            return await TeamReportRepo(conn).period(start, end, channels=channels)
        finally:
            await conn.close()

    log = asyncio.run(read())
    export = ExportService(Path(), clock, settings)
    hourly, currency = export.rate()
    summary = build_team_summary(
        log, clock, agents=agents, channels=channels, redact=args.redact, hourly_rate=hourly, currency=currency,
        business=business_calendar(export.policies()),
    )  # fmt: skip
    return write_summary(summary, Format(fmt), args.output)
