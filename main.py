"""Composition root: parse the command line, build storage, services and windows, run the loop or a command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import platformdirs

import console.lean_imports  # noqa: F401  # first: httpx and sqlite-utils without parts the app never uses
from console.cli import accounts, doctor, export, outbox, report, review, sandbox, sync, team
from console.cli.common import EXIT_DATABASE, EXIT_LOCKED, data_dir_of, open_app_runtime
from console.diagnostics import Diagnostics
from console.ports import SystemClock
from console.runtime import Runtime
from storage.db import move_aside
from storage.errors import DatabaseCorrupt, DatabaseLocked, DatabaseTooNew, StorageError

__all__ = ["EXIT_DATABASE", "EXIT_LOCKED", "build_parser", "entry_point", "main"]

log = logging.getLogger("care_console")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="care-console",
        description="A desktop console for social customer care. With no account it runs on the sandbox.",
    )
    parser.add_argument("--data-dir", type=Path, help="where the database lives (default: the platform data dir)")
    parser.add_argument("--demo", action="store_true", help="run the sandbox demo for a bounded time, then exit")
    parser.add_argument("--demo-seconds", type=float, default=20.0, help="length of the demo (default 20 s)")
    parser.add_argument("--screenshot", type=Path, help="with --demo: save a screenshot of the window at the end")
    parser.add_argument("--sandbox", action="store_true", help="use the embedded sandbox even if accounts exist")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command")
    for command in (sync, sandbox, doctor, accounts, outbox, export, review, report, team):
        command.add_parser(sub)
    return parser


def run_gui(args: argparse.Namespace) -> int:
    """Start Qt, open the runtime (asking to move an unreadable database aside), then run the window."""
    from widgets.app import ask_move_aside, is_interactive, report, run_window, start_qt

    app = start_qt()
    clock = SystemClock()
    demo = bool(args.demo)
    interactive = is_interactive(demo=demo)
    runtime: Runtime | None = None
    while runtime is None:
        try:
            runtime = open_app_runtime(args, clock, demo=demo)
        except DatabaseLocked as exc:
            report(str(exc), interactive=interactive)
            return EXIT_LOCKED
        except DatabaseCorrupt as exc:
            if not interactive:
                print(str(exc), file=sys.stderr)
                return EXIT_DATABASE
            if not ask_move_aside(str(exc)):
                return EXIT_DATABASE
            moved = move_aside(exc.path)
            log.warning("moved the unreadable database to %s", moved)
        except (DatabaseTooNew, StorageError) as exc:
            report(str(exc), interactive=interactive)
            return EXIT_DATABASE
    return run_window(
        app,
        runtime,
        clock,
        args.diagnostics,
        demo=demo,
        demo_seconds=args.demo_seconds,
        screenshot=args.screenshot,
    )


def run_command(args: argparse.Namespace) -> int:
    """A command-line command (``care-console <command> …``), or the window when none was given."""
    if args.command == "sync":
        return sync.run(args)
    if args.command == "sandbox":
        return sandbox.run(args)
    if args.command == "doctor":
        from widgets.app import qt_version  # here: only doctor (and the window) import Qt

        return doctor.run(args, qt_version=qt_version())
    if args.command == "accounts":
        return accounts.run(args)
    if args.command == "outbox":
        return outbox.run(args)
    if args.command == "export":
        return export.run(args, data_dir_of(args))
    if args.command == "review":
        return review.run(args)
    if args.command == "report":
        return report.run(args)
    if args.command == "team":
        return team.run(args)
    return run_gui(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    diagnostics = Diagnostics(
        log_dir(args),
        level=logging.DEBUG if args.verbose else logging.INFO,
        console_level=logging.INFO if args.verbose or args.command == "sync" else logging.WARNING,
    )
    diagnostics.install()
    args.diagnostics = diagnostics
    if diagnostics.file_error:
        log.warning("%s", diagnostics.file_error)
    try:
        return run_command(args)
    except DatabaseLocked as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_LOCKED
    except StorageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_DATABASE
    finally:
        diagnostics.uninstall()


def log_dir(args: argparse.Namespace) -> Path:
    """Logs go next to an explicit --data-dir (tests, portable installs), else to the platform log folder."""
    if args.data_dir is not None:
        return Path(args.data_dir) / "logs"
    return Path(platformdirs.user_log_dir("care-console", appauthor=False))


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
