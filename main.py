"""Composition root: parse the command line, build storage, services and windows, run the loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.metadata
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import platformdirs

import console.lean_imports  # noqa: F401  # first: httpx and sqlite-utils without parts the app never uses
from console.accounts_cli import add_accounts_parser, run_accounts_command
from console.alerts import AlertMonitor
from console.diagnostics import Diagnostics, RedactingSecretStore, crash_report_text
from console.export.cli import add_commands as add_export_commands
from console.export.cli import cmd_export, cmd_review
from console.health import backfill_sentence, describe
from console.heap import settle_heap
from console.inbox import SyncReport
from console.keymap import KeyMap
from console.outbox_cli import add_outbox_parser, run_outbox_command, sent_summary
from console.ports import Clock, LazySecretStore, MemorySecretStore, SecretStore, SystemClock
from console.runtime import Runtime, SandboxOptions, open_runtime
from console.sandbox.faults import FAULT_HELP
from console.sla import format_countdown
from console.wording import count
from storage.db import move_aside
from storage.errors import DatabaseCorrupt, DatabaseLocked, DatabaseTooNew, StorageError
from storage.settings import AGENT_NAME, WELCOME_DONE

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from console.accounts import AccountService
    from console.sandbox import SandboxServer
    from widgets.main_window import MainWindow

log = logging.getLogger("care_console")

EXIT_OK, EXIT_LOCKED, EXIT_DATABASE = 0, 1, 2
#: Sync, the outbox and breach checks start after the queue's first paint, or after this many seconds.
FIRST_PAINT_WAIT = 2.0


def app_version() -> str:
    try:
        return importlib.metadata.version("care-console")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


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
    sync.add_argument("--faults", default="", help=f"on the embedded sandbox, switch faults on: {FAULT_HELP}")
    sandbox = sub.add_parser("sandbox", help="run the sandbox Mastodon server alone")
    sandbox.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    sandbox.add_argument("--seed", type=int, default=1)
    sandbox.add_argument("--rate", type=float, default=6.0, help="new mentions per minute")
    sandbox.add_argument("--backlog", type=int, default=12, help="mentions already waiting at start")
    sandbox.add_argument("--faults", default="", help=f"fault switches on from the start: {FAULT_HELP}")
    sandbox.add_argument("--fault-seed", type=int, help="seed of the faults' random draws (default: --seed)")
    sub.add_parser("doctor", help="check the keyring, the database and the accounts' health")
    add_accounts_parser(sub)
    add_outbox_parser(sub)
    add_export_commands(sub)
    return parser


def make_secret_store() -> tuple[SecretStore, str | None]:
    """The OS keyring, or a session-only store with a warning when no backend is usable."""
    from storage.secrets import KeyringSecretStore  # here: the GUI opens the keyring after its first paint

    store = KeyringSecretStore()
    if store.usable():
        return store, None
    return MemorySecretStore(), "No OS keyring is available: account tokens are kept for this session only."


def _open_secret_store() -> SecretStore:
    secrets, warning = make_secret_store()
    if warning:
        # Said again, as a visible message, where it matters: when an account with a token is added.
        log.info(warning)
    return secrets


def _secret_backend(secrets: SecretStore) -> SecretStore:
    """The store behind the redacting and lazy wrappers (opened now if it was not yet)."""
    if isinstance(secrets, RedactingSecretStore):
        secrets = secrets.inner
    return secrets.store if isinstance(secrets, LazySecretStore) else secrets


def _redacting(args: argparse.Namespace, secrets: SecretStore) -> SecretStore:
    """Every token the app reads or saves is registered with the log redactor (issue 12)."""
    diagnostics = getattr(args, "diagnostics", None)
    return RedactingSecretStore(secrets, diagnostics.redactor) if isinstance(diagnostics, Diagnostics) else secrets


def _open(args: argparse.Namespace, clock: Clock, *, demo: bool, sandbox: SandboxOptions | None = None) -> Runtime:
    data_dir: Path = args.data_dir or (
        Path(tempfile.mkdtemp(prefix="care-console-demo-")) if demo else default_data_dir()
    )
    # The keyring is opened on first use, or by run_gui once the queue is painted (it takes ~100 ms).
    secrets = _redacting(args, LazySecretStore(_open_secret_store))
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
    from console.sandbox.faults import parse_fault_spec

    try:
        faults = tuple(parse_fault_spec(args.faults))
    except ValueError as exc:
        raise SystemExit(f"--faults: {exc}") from exc
    runtime = _open(args, clock, demo=False, sandbox=SandboxOptions(rate_per_minute=0.0, faults=faults))

    def progress(report: SyncReport) -> None:
        # A first sync reads its backlog batch by batch: say how far it has got (issue 20, sync 1).
        if report.ok and report.backfill is not None and not report.backfill.done:
            print(
                f"account {report.account_id}: {report.caught_up} stored so far; {backfill_sentence(report.backfill)}",
                flush=True,
            )

    runtime.poller.subscribe(progress)

    sending: list[str] = []

    async def run() -> list[SyncReport]:
        try:
            reports = await runtime.poller.sync_once()
            if runtime.replies is not None:  # then the replies that are due leave (issue 20, sync 8)
                outcomes = await runtime.replies.outbox.drain()
                sending.extend(sent_summary(outcomes, runtime.replies.outbox.reply, clock.now()))
            return reports
        finally:
            await runtime.aclose()

    reports = asyncio.run(run())
    failed = 0
    for report in reports:
        if report.ok:
            print(f"account {report.account_id}: {describe(report)}")
        else:
            failed += 1
            print(f"account {report.account_id}: {describe(report)}", file=sys.stderr)
    if not reports:
        print("no account to sync")
    for line in sending:
        print(line)
    return 1 if failed else EXIT_OK


def cmd_sandbox(args: argparse.Namespace) -> int:
    from console.sandbox.faults import parse_fault_spec
    from console.sandbox.server import run_standalone

    try:
        faults = parse_fault_spec(args.faults)
    except ValueError as exc:
        raise SystemExit(f"--faults: {exc}") from exc
    run_standalone(
        port=args.port,
        seed=args.seed,
        rate_per_minute=args.rate,
        backlog=args.backlog,
        faults=faults,
        fault_seed=args.fault_seed,
    )
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print every check with what to do; exit 0 when all is well, 1 otherwise."""
    from console.doctor import check
    from storage.secrets import KeyringSecretStore  # here, as in make_secret_store

    store = KeyringSecretStore()
    backend = store.backend_name() if store.usable() else None
    try:
        from PySide6.QtCore import qVersion

        qt: str | None = f"Qt {qVersion()}"
    except ImportError:
        qt = None
    findings = check(args.data_dir or default_data_dir(), keyring_backend=backend, qt_version=qt)
    for finding in findings:
        print(finding.line())
    return EXIT_OK if all(f.ok for f in findings) else 1


def cmd_accounts(args: argparse.Namespace) -> int:
    secrets, warning = make_secret_store()
    secrets = _redacting(args, secrets)
    data_dir: Path = args.data_dir or default_data_dir()
    return run_accounts_command(
        args,
        data_dir=data_dir,
        secrets=secrets,
        clock=SystemClock(),
        stdin=sys.stdin,
        out=sys.stdout,
        err=sys.stderr,
        keyring_warning=warning,
    )


# ---------------------------------------------------------------------------------------------------- GUI
def run_gui(args: argparse.Namespace) -> int:
    # qasync must bind to PySide6, not whichever Qt binding it finds first (STYLE B2).
    os.environ.setdefault("QT_API", "pyside6")
    import qasync
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from widgets.fonts import register_bundled_fonts
    from widgets.main_window import MainWindow
    from widgets.signals import SyncBridge
    from widgets.sla_settings import open_sla_settings

    _quiet_offscreen_warnings()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Care Console")
    app.setApplicationVersion(app_version())
    app.setDesktopFileName("care-console")
    _set_window_icon(app)
    register_bundled_fonts()  # the bundled emoji font, where the system has none (issue 19 §16)
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
        runtime.queue,
        clock,
        title_suffix=" — Sandbox" if runtime.on_sandbox else "",
        settings=settings,
        replies=runtime.replies,
        triage=runtime.triage,
        alerts=AlertMonitor(runtime.queue, clock, settings=runtime.settings),
        keymap=KeyMap(runtime.settings),
        surveys=runtime.surveys,
        threads=runtime.threads,
        capacity=runtime.capacity,
    )
    window.confirm_quit_with_waiting_replies = not demo  # quitting with replies still queued asks first
    bridge = SyncBridge()
    runtime.poller.subscribe(bridge.report.emit)
    bridge.report.connect(window.on_sync_report)
    bridge.report.connect(lambda _report: window.on_health(runtime.health.snapshot()))
    window.on_health(runtime.health.snapshot())
    window.health_strip.quarantine_requested.connect(lambda: _open_quarantine(window, runtime, clock))
    window.sync_requested.connect(runtime.poller.wake)
    if runtime.sla is not None:
        sla = runtime.sla
        window.sla_settings_action.triggered.connect(lambda: open_sla_settings(window, sla, window.refresh_queue))
    _connect_accounts(window, runtime)
    _connect_settings(window, runtime)
    _install_excepthook(window, args.diagnostics)
    _add_help_actions(window, runtime, args.diagnostics)
    if os.environ.get("CARE_CONSOLE_EXIT_AFTER_FIRST_PAINT"):
        window.first_paint.connect(lambda: _exit_after_first_paint(window))
    painted = asyncio.Event()  # amain starts sync, the outbox and breach checks once the queue is on screen
    window.first_paint.connect(painted.set)
    shift_actions = None  # a local of run_gui: alive as long as the loop runs
    if runtime.shifts is not None and runtime.exports is not None:
        from widgets.shift_dialog import ShiftActions

        shift_actions = ShiftActions(window, runtime.shifts, runtime.exports, clock, export_dir=Path.home())
    if demo:
        window.fit_to_screen(1400, 860)
    window.show()
    if shift_actions is not None and not demo:
        shift_actions.ask_about_stale_shift()
    if interactive:
        _welcome_if_first_run(window, runtime)

    async def amain() -> int:
        assert runtime is not None
        closed = asyncio.Event()
        # Quitting is ours to do: Qt's own quit would stop the loop under the running coroutine.
        app.setQuitOnLastWindowClosed(False)
        app.lastWindowClosed.connect(closed.set)
        app.aboutToQuit.connect(closed.set)
        # What the first painted queue does not need starts once it is on screen (cold start budget, DESIGN.md).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(painted.wait(), FIRST_PAINT_WAIT)  # a window shown minimized may not paint
        _secret_backend(runtime.secrets)  # opens the OS keyring
        settle_heap()  # start-up objects out of the collector's view: short GC pauses during a catch-up
        runtime.start_polling()
        runtime.start_sending()
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
            window.hide()  # stops the view's tick timers: no tick may read the database while it closes
            await runtime.aclose()
        return EXIT_OK

    return int(qasync.run(amain()))


def _set_window_icon(app: QApplication) -> None:
    from importlib.resources import as_file, files

    from PySide6.QtGui import QIcon

    with as_file(files("resources") / "icons" / "care-console.png") as path:
        app.setWindowIcon(QIcon(str(path)))


def _add_help_actions(window: MainWindow, runtime: Runtime, diagnostics: Diagnostics) -> None:
    """Help → Welcome tour…, Open logs folder (issue #13)."""
    from PySide6.QtGui import QAction

    tour_action = QAction("Welcome &tour", window)
    tour_action.triggered.connect(lambda: _start_tour(window))
    logs_action = QAction("Open &logs folder", window)
    logs_action.setEnabled(diagnostics.log_dir is not None)
    logs_action.triggered.connect(
        lambda: window.open_folder(diagnostics.log_dir or runtime.data_dir, what="logs folder")
    )
    window.help_menu.insertAction(window.help_menu.actions()[0], tour_action)
    window.help_menu.insertAction(window.help_menu.actions()[1], logs_action)


def _start_tour(window: MainWindow) -> None:
    from widgets.welcome import Tour

    tour = Tour(window)
    window.tour = tour  # type: ignore[attr-defined]  # keep a reference while it runs
    tour.start()


def _welcome_if_first_run(window: MainWindow, runtime: Runtime) -> None:
    """First start: ask the agent's name and how to start (non-modal open(), never exec()), then the tour."""
    from widgets.welcome import Start, WelcomeDialog

    if runtime.settings.get(WELCOME_DONE):
        return
    dialog = WelcomeDialog(agent_name=runtime.settings.get(AGENT_NAME), parent=window)

    def finished(result: int) -> None:
        if result and dialog.agent_name:
            runtime.settings.set(AGENT_NAME, dialog.agent_name)
        runtime.settings.set(WELCOME_DONE, True)
        accounts = getattr(window, "accounts_action", None)
        if dialog.start is Start.ACCOUNT and accounts is not None:
            accounts.trigger()
        else:
            _start_tour(window)

    dialog.finished.connect(finished)
    window.welcome = dialog  # type: ignore[attr-defined]
    dialog.open()


def _exit_after_first_paint(window: MainWindow) -> None:
    """Start-up benchmark hook (bench/figures.py cold_start): report the first paint, then quit."""
    print(f"first_paint_at={time.time():.6f}", flush=True)
    print(f"max_rss_kb={_peak_rss_kb()}", flush=True)
    window.close()


def _peak_rss_kb() -> int:
    """This program's peak resident memory. On Linux ``ru_maxrss`` also counts the parent's memory from before
    the exec that started us (a benchmark's big parent), so the peak of our own address space is read instead."""
    with contextlib.suppress(OSError, ValueError, StopIteration), open("/proc/self/status", encoding="ascii") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1])
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _connect_settings(window: MainWindow, runtime: Runtime) -> None:
    """File → Settings… (issue 13); the saved theme applies from the start."""
    from console.preferences import Preferences
    from widgets.settings_dialog import apply_theme, open_settings_dialog

    prefs = Preferences(runtime.settings, data_dir=runtime.data_dir)
    apply_theme(window.theme, prefs.theme)
    window.settings_action.triggered.connect(
        lambda: open_settings_dialog(window, prefs, sla=runtime.sla, surveys=runtime.surveys)
    )


def _connect_accounts(window: MainWindow, runtime: Runtime) -> None:
    """File → Accounts… and Add a post by hand… (issue 6)."""
    intake = runtime.manual_intake()

    @functools.cache
    def service() -> AccountService:  # built when first needed: it opens the OS keyring and an HTTPS client
        from storage.secrets import KeyringSecretStore  # here, as in make_secret_store

        warning = None
        if not isinstance(_secret_backend(runtime.secrets), KeyringSecretStore):
            warning = (
                "No OS keyring is available on this machine: credentials are kept for this session only and must "
                "be entered again after a restart. Nothing is written to disk in plain text."
            )
        return runtime.account_service(keyring_warning=warning)

    def accounts_dialog(reauth_account: int | None = None) -> None:
        from widgets.accounts_dialog import open_accounts_dialog  # here: not needed for the first paint

        open_accounts_dialog(window, service(), window.refresh_queue, reauth_account=reauth_account)

    def manual_intake() -> None:
        from widgets.manual_intake import open_manual_intake  # here: not needed for the first paint

        open_manual_intake(window, intake, lambda _mention_id: window.refresh_queue())

    window.accounts_action.triggered.connect(lambda: accounts_dialog())
    window.manual_intake_action.triggered.connect(lambda: manual_intake())

    def sign_in_in_dialog(account_id: int) -> None:
        accounts_dialog(reauth_account=account_id)

    # "Sign in again" in the health strip: the sandbox renews its token; a real account opens the dialog on it.
    window.health_strip.reauthenticate_requested.connect(
        lambda account_id: _reauthenticate(runtime, window, account_id, open_dialog=sign_in_in_dialog)
    )


def _open_quarantine(window: MainWindow, runtime: Runtime, clock: Clock) -> None:
    """Health strip → "N unreadable items…": what could not be read, why, when; try again or dismiss (issue 5)."""
    from widgets.quarantine_dialog import open_quarantine_dialog

    def changed() -> None:
        window.refresh_queue()
        window.on_health(runtime.health.snapshot())

    open_quarantine_dialog(window, runtime.health, clock.now, on_changed=changed)


def _reauthenticate(
    runtime: Runtime, window: MainWindow, account_id: int, *, open_dialog: Callable[[int], None] | None = None
) -> None:
    """The agent clicked "Sign in again": a real account opens the Accounts dialog on it (a new credential or
    the browser sign-in is needed); the sandbox renews and verifies its token, then shows the outcome."""
    account = runtime.accounts.get(account_id)
    if open_dialog is not None and account is not None and not account.is_sandbox:
        window.health_strip.show_message(f"Sign in to @{account.handle} again in the Accounts dialog.")
        open_dialog(account_id)
        return

    async def run() -> None:
        message = await runtime.health.reauthenticate(account_id)
        window.health_strip.show_message(message)
        window.on_health(runtime.health.snapshot())

    task = asyncio.get_running_loop().create_task(run(), name=f"reauthenticate-{account_id}")
    runtime.tasks.add(task)
    task.add_done_callback(runtime.tasks.discard)


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
        changed = runtime.sla.record_breaches() if runtime.sla is not None else runtime.queue.record_breaches()
    except StorageError as exc:
        log.error("recording breaches failed: %s", exc)
        return
    if changed:
        window.refresh_queue()


def _install_excepthook(window: MainWindow, diagnostics: Diagnostics) -> None:
    """Unhandled errors: log, write a local crash report, show the non-modal error bar; the app keeps running."""
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import qVersion

    versions = {"care-console": app_version(), "PySide6": pyside_version, "Qt": qVersion()}

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.error("unhandled error", exc_info=(kind, exc, tb))
        report = diagnostics.write_crash_report(kind, exc, tb, versions=versions)
        where = f" A crash report was saved to {report}." if report else ""
        details = diagnostics.redactor.redact(
            crash_report_text(kind, exc, tb, versions=versions, recent=list(diagnostics.recent.lines)[-20:])
        )
        try:
            window.show_error(f"Something went wrong: {exc}. The app keeps running.{where}", details)
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
    if runtime.shifts is not None and runtime.shifts.current() is None:
        runtime.shifts.start(runtime.shifts.remembered_agent or "Demo agent")
    sandbox = runtime.sandbox
    print(f"demo: sandbox Mastodon server on {sandbox.base_url if sandbox else '-'}; data in {runtime.data_dir}")
    agent = None
    if runtime.replies is not None:
        from console.demo_agent import DemoAgent

        agent = DemoAgent(runtime.queue, runtime.replies.outbox, runtime.triage, runtime.surveys, clock)
    ticks = max(1, round(args.demo_seconds / 2.0))
    for tick in range(1, ticks + 1):
        await asyncio.sleep(max(0.0, start + tick * args.demo_seconds / ticks - time.monotonic()))
        if tick == 1 and sandbox is not None:
            _demo_faults(sandbox)
        if agent is not None and tick > 1:
            try:
                action = await agent.step()
            except Exception as exc:  # the demo keeps going; the error is shown, not hidden
                action = f"could not act: {exc}"
            if action:
                print(f"demo agent: {action}", flush=True)
                window.refresh_queue()
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
    await _demo_shift_summary(runtime, args.screenshot)
    if args.screenshot:
        path: Path = args.screenshot
        path.parent.mkdir(parents=True, exist_ok=True)
        pixmap = window.grab()
        if pixmap.save(str(path)):
            print(f"demo: screenshot saved to {path}")
        else:
            print(f"demo: could not save the screenshot to {path}", file=sys.stderr)
    done = agent.counts if agent is not None else {"replies": 0, "resolved": 0, "surveys": 0}
    replies = f"{done['replies']} {'reply' if done['replies'] == 1 else 'replies'} written"
    print(
        f"demo: done: {totals['stored']} mentions synced, {replies},"
        f" {done['resolved']} resolved, {count(done['surveys'], 'survey')},"
        f" {count(runtime.events.count('breached'), 'breach')},"
        f" {len(runtime.queue.queue_ids())} open in the queue"
    )


def _demo_faults(sandbox: SandboxServer) -> None:
    """Issue 5 in the demo: the sandbox fails once (a 503) and sends one unreadable item; sync carries on."""
    from console.sandbox.faults import Fault, FaultRule

    sandbox.set_faults([FaultRule(Fault.UNAVAILABLE, count=1), FaultRule(Fault.MALFORMED_ITEM, count=1)])
    print("demo: sandbox faults: the next request gets a 503 and one item arrives unreadable", flush=True)


async def _demo_shift_summary(runtime: Runtime, screenshot: Path | None) -> None:
    """End the demo's shift and write its summary (JSON and PDF) next to the screenshot (DESIGN "Commands")."""
    from console.export.atomic import ExportError
    from console.export.service import Format

    if runtime.shifts is None or runtime.exports is None or runtime.shifts.current() is None:
        return
    shift = runtime.shifts.end("Demo shift: the queue was synced from the sandbox.")
    base = screenshot.with_name(screenshot.stem + "-summary") if screenshot else runtime.data_dir / "shift-summary"
    base.parent.mkdir(parents=True, exist_ok=True)
    for fmt in (Format.JSON, Format.PDF):
        try:
            out = await runtime.exports.export_async(shift.id, fmt, base.with_suffix(f".{fmt.value}"))
        except ExportError as exc:
            print(f"demo: could not write the shift summary: {exc}", file=sys.stderr)
            return
        print(f"demo: shift summary saved to {out}")


# ---------------------------------------------------------------------------------------------------- entry
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
        if args.command == "sync":
            return cmd_sync_once(args)
        if args.command == "sandbox":
            return cmd_sandbox(args)
        if args.command == "doctor":
            return cmd_doctor(args)
        if args.command == "accounts":
            return cmd_accounts(args)
        if args.command == "outbox":
            return run_outbox_command(
                args, data_dir=args.data_dir or default_data_dir(), clock=SystemClock(), out=sys.stdout, err=sys.stderr
            )
        if args.command == "export":
            return cmd_export(args, args.data_dir or default_data_dir())
        if args.command == "review":
            return cmd_review(args)
        return run_gui(args)
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
