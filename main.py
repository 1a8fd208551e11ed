"""Composition root: parse the command line, build storage, services and windows, run the loop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import platformdirs

from console.inbox import SyncReport
from console.ports import Clock, MemorySecretStore, SecretStore, SystemClock
from console.runtime import Runtime, SandboxOptions, open_runtime
from console.sla import format_countdown
from storage.db import DB_FILENAME, move_aside
from storage.errors import DatabaseCorrupt, DatabaseLocked, DatabaseTooNew, StorageError
from storage.secrets import KeyringSecretStore

if TYPE_CHECKING:
    from widgets.main_window import MainWindow

log = logging.getLogger("care_console")

EXIT_OK, EXIT_LOCKED, EXIT_DATABASE = 0, 1, 2


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("care-console", appauthor=False))


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
    sync = sub.add_parser("sync", help="sync accounts without the window")
    sync.add_argument("--once", action="store_true", required=True, help="run one pass and print what was stored")
    sandbox = sub.add_parser("sandbox", help="run the sandbox Mastodon server alone")
    sandbox.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    sandbox.add_argument("--seed", type=int, default=1)
    sandbox.add_argument("--rate", type=float, default=6.0, help="new mentions per minute")
    sandbox.add_argument("--backlog", type=int, default=12, help="mentions already waiting at start")
    sub.add_parser("doctor", help="check the keyring, the database and the accounts' health")
    return parser


def make_secret_store() -> tuple[SecretStore, str | None]:
    """The OS keyring, or a session-only store with a warning when no backend is usable."""
    store = KeyringSecretStore()
    if store.usable():
        return store, None
    return MemorySecretStore(), "No OS keyring is available: account tokens are kept for this session only."


def _open(args: argparse.Namespace, clock: Clock, *, demo: bool, sandbox: SandboxOptions | None = None) -> Runtime:
    data_dir: Path = args.data_dir or (
        Path(tempfile.mkdtemp(prefix="care-console-demo-")) if demo else default_data_dir()
    )
    secrets, warning = make_secret_store()
    if warning:
        # Said again, as a visible message, where it matters: when an account with a token is added.
        log.info(warning)
    options = sandbox or (SandboxOptions(rate_per_minute=20.0, backlog=14) if demo else SandboxOptions())
    poll = 2.0 if demo else None
    runtime = open_runtime(
        data_dir, clock=clock, secrets=secrets, sandbox=options, force_sandbox=args.sandbox or demo, poll_seconds=poll
    )
    if runtime.on_sandbox and poll is None:
        runtime.poller.interval = 5.0  # the sandbox is local: poll it often
    return runtime


# ---------------------------------------------------------------------------------------------------- commands
def cmd_sync_once(args: argparse.Namespace) -> int:
    clock = SystemClock()
    # One pass: the sandbox's backlog only, no simulated arrivals while it runs.
    runtime = _open(args, clock, demo=False, sandbox=SandboxOptions(rate_per_minute=0.0))

    async def run() -> list[SyncReport]:
        try:
            return await runtime.poller.sync_once()
        finally:
            await runtime.aclose()

    reports = asyncio.run(run())
    failed = 0
    for report in reports:
        if report.ok:
            print(
                f"account {report.account_id}: fetched {report.fetched}, stored {report.stored} "
                f"({len(report.new_items)} new items, {len(report.follow_ups)} follow-ups), "
                f"{report.duplicates} duplicates"
            )
        else:
            failed += 1
            print(f"account {report.account_id}: {report.health.value}: {report.error}", file=sys.stderr)
    if not reports:
        print("no account to sync")
    return 1 if failed else EXIT_OK


def cmd_sandbox(args: argparse.Namespace) -> int:
    from console.sandbox.server import run_standalone

    run_standalone(port=args.port, seed=args.seed, rate_per_minute=args.rate, backlog=args.backlog)
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from storage.db import open_database

    problems = 0
    store = KeyringSecretStore()
    if store.usable():
        print("keyring: ok")
    else:
        problems += 1
        print("keyring: no usable backend; tokens would be kept for one session only")
    data_dir: Path = args.data_dir or default_data_dir()
    path = data_dir / DB_FILENAME
    if not path.exists():
        print(f"database: {path} does not exist yet (it is created on first start)")
        return 1 if problems else EXIT_OK
    try:
        db = open_database(path, migrate=False)
    except StorageError as exc:
        print(f"database: {exc}")
        return EXIT_DATABASE
    from storage.accounts import AccountRepo

    try:
        print(f"database: ok ({path})")
        for account in AccountRepo(db).list():
            state = "enabled" if account.enabled else "disabled"
            reason = f" ({account.health_reason})" if account.health_reason else ""
            print(f"account {account.id}: {account.kind} @{account.handle} {state}: {account.health.value}{reason}")
            problems += account.health.value != "ok"
    finally:
        db.conn.close()
    return 1 if problems else EXIT_OK


# ---------------------------------------------------------------------------------------------------- GUI
def run_gui(args: argparse.Namespace) -> int:
    # qasync must bind to PySide6, not whichever Qt binding it finds first (STYLE B2).
    os.environ.setdefault("QT_API", "pyside6")
    import qasync
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from widgets.main_window import MainWindow
    from widgets.signals import SyncBridge

    _quiet_offscreen_warnings()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Care Console")
    app.setOrganizationName("Care Console")
    clock = SystemClock()
    demo = bool(args.demo)
    interactive = not demo and os.environ.get("QT_QPA_PLATFORM") != "offscreen"

    runtime: Runtime | None = None
    while runtime is None:
        try:
            runtime = _open(args, clock, demo=demo)
        except DatabaseLocked as exc:
            _report(str(exc), interactive=interactive)
            return EXIT_LOCKED
        except DatabaseCorrupt as exc:
            if not interactive:
                print(str(exc), file=sys.stderr)
                return EXIT_DATABASE
            answer = QMessageBox.question(
                None,
                "Care Console: database cannot be read",
                f"{exc}\n\nMove the unreadable file aside (it is kept, renamed) and start with a fresh database?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return EXIT_DATABASE
            moved = move_aside(exc.path)
            log.warning("moved the unreadable database to %s", moved)
        except (DatabaseTooNew, StorageError) as exc:
            _report(str(exc), interactive=interactive)
            return EXIT_DATABASE

    settings = QSettings(str(runtime.data_dir / "window.ini"), QSettings.Format.IniFormat)
    window = MainWindow(
        runtime.queue, clock, title_suffix=" — Sandbox" if runtime.on_sandbox else "", settings=settings
    )
    bridge = SyncBridge()
    runtime.poller.subscribe(bridge.report.emit)
    bridge.report.connect(window.on_sync_report)
    window.sync_requested.connect(runtime.poller.wake)
    _install_excepthook(window)
    if demo:
        window.resize(1400, 860)
    window.show()

    async def amain() -> int:
        assert runtime is not None
        closed = asyncio.Event()
        # Quitting is ours to do: Qt's own quit would stop the loop under the running coroutine.
        app.setQuitOnLastWindowClosed(False)
        app.lastWindowClosed.connect(closed.set)
        app.aboutToQuit.connect(closed.set)
        runtime.start_polling()
        breach_timer = QTimer()
        breach_timer.setInterval(5_000)
        breach_timer.timeout.connect(lambda: _record_breaches(runtime, window))
        breach_timer.start()
        runtime.poller.subscribe(lambda _report: _record_breaches(runtime, window))
        try:
            if demo:
                await _demo(runtime, window, args, clock)
            else:
                await closed.wait()
        finally:
            breach_timer.stop()
            await runtime.aclose()
        return EXIT_OK

    return int(qasync.run(amain()))


def _quiet_offscreen_warnings() -> None:
    """Drop the offscreen plugin's harmless "does not support propagateSizeHints()" lines; keep the rest."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    qt_log = logging.getLogger("qt")
    levels = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO}

    def handler(kind: QtMsgType, _context: object, message: str) -> None:
        if "This plugin does not support" in message:
            return
        qt_log.log(levels.get(kind, logging.WARNING), "%s", message)

    qInstallMessageHandler(handler)


def _report(message: str, *, interactive: bool) -> None:
    """Before the loop runs, a modal box is fine (STYLE B2 forbids it only inside coroutines)."""
    from PySide6.QtWidgets import QMessageBox

    print(message, file=sys.stderr)
    if interactive:
        QMessageBox.critical(None, "Care Console", message)


def _record_breaches(runtime: Runtime, window: MainWindow) -> None:
    try:
        changed = runtime.queue.record_breaches()
    except StorageError as exc:
        log.error("recording breaches failed: %s", exc)
        return
    if changed:
        window.refresh_queue()


def _install_excepthook(window: MainWindow) -> None:
    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.error("unhandled error", exc_info=(kind, exc, tb))
        try:
            window.show_error(f"Something went wrong: {exc}. The app keeps running; details are in the log.")
        except Exception:
            log.exception("could not show the error bar")

    sys.excepthook = hook


async def _demo(runtime: Runtime, window: MainWindow, args: argparse.Namespace, clock: Clock) -> None:
    """Run for ``--demo-seconds``, printing what happens; then save a screenshot."""
    start = time.monotonic()
    totals = {"stored": 0, "follow_ups": 0, "errors": 0}

    def on_report(report: SyncReport) -> None:
        totals["stored"] += report.stored
        totals["follow_ups"] += len(report.follow_ups)
        totals["errors"] += 0 if report.ok else 1

    runtime.poller.subscribe(on_report)
    sandbox = runtime.sandbox
    print(f"demo: sandbox Mastodon server on {sandbox.base_url if sandbox else '-'}; data in {runtime.data_dir}")
    ticks = max(1, round(args.demo_seconds / 2.0))
    for tick in range(1, ticks + 1):
        await asyncio.sleep(max(0.0, start + tick * args.demo_seconds / ticks - time.monotonic()))
        ids = runtime.queue.queue_ids()
        nearest = ""
        if ids:
            row = runtime.queue.rows_by_id(ids[:1])[ids[0]]
            if row.due_at is not None:
                nearest = f" · next deadline {format_countdown(row.due_at, clock.now())} (@{row.author_handle})"
        breaches = runtime.events.count("breached")
        print(
            f"[{time.monotonic() - start:5.1f}s] mentions synced {totals['stored']} · queue {len(ids)} open"
            f"{nearest} · breaches {breaches} · sync errors {totals['errors']}",
            flush=True,
        )
    if args.screenshot:
        path: Path = args.screenshot
        path.parent.mkdir(parents=True, exist_ok=True)
        pixmap = window.grab()
        if pixmap.save(str(path)):
            print(f"demo: screenshot saved to {path}")
        else:
            print(f"demo: could not save the screenshot to {path}", file=sys.stderr)
    print(f"demo: done: {totals['stored']} mentions synced, {len(runtime.queue.queue_ids())} open in the queue")


# ---------------------------------------------------------------------------------------------------- entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("qasync").setLevel(logging.WARNING)
    try:
        if args.command == "sync":
            return cmd_sync_once(args)
        if args.command == "sandbox":
            return cmd_sandbox(args)
        if args.command == "doctor":
            return cmd_doctor(args)
        return run_gui(args)
    except DatabaseLocked as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_LOCKED
    except StorageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_DATABASE


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
