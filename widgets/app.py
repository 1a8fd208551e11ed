"""The GUI start: the Qt application, the main window wired to the runtime's services, and the qasync loop that
runs it (sync, the outbox and the breach timer start once the queue is painted). ``main.py`` opens the runtime
between ``start_qt`` and ``run_window``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from console.cli.common import EXIT_OK, keyring_warning, secret_backend
from console.diagnostics import Diagnostics, crash_report_text
from console.heap import settle_heap
from console.keymap import KeyMap
from console.ports import Clock
from console.preferences import Preferences
from console.runtime import Runtime
from console.sla.alerts import AlertMonitor

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from console.accounts.service import AccountService
    from widgets.main_window import MainWindow

log = logging.getLogger("care_console")

#: Sync, the outbox and breach checks start after the queue's first paint, or after this many seconds.
FIRST_PAINT_WAIT = 2.0
#: How often the window records deadlines that passed (also after every sync).
BREACH_CHECK_MS = 5_000


def app_version() -> str:
    try:
        return importlib.metadata.version("care-console")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def start_qt() -> QApplication:
    """The Qt application, named, with its icon and bundled fonts; before anything shows a window or a box."""
    # qasync must bind to PySide6, not whichever Qt binding it finds first (STYLE B2).
    os.environ.setdefault("QT_API", "pyside6")
    from PySide6.QtWidgets import QApplication

    from widgets.fonts import register_bundled_fonts

    quiet_offscreen_warnings()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Care Console")
    app.setApplicationVersion(app_version())
    app.setDesktopFileName("care-console")
    _set_window_icon(app)
    register_bundled_fonts()  # the bundled emoji font, where the system has none (issue 19 §16)
    app.setOrganizationName("Care Console")
    return app


def is_interactive(*, demo: bool) -> bool:
    """Whether a person is in front of the window (not the demo, not the offscreen platform of tests)."""
    return not demo and os.environ.get("QT_QPA_PLATFORM") != "offscreen"


def ask_move_aside(message: str) -> bool:
    """The database cannot be read: ask whether to move it aside and start afresh (before the loop runs)."""
    from PySide6.QtWidgets import QMessageBox

    answer = QMessageBox.question(
        None,
        "Care Console: database cannot be read",
        f"{message}\n\nMove the unreadable file aside (it is kept, renamed) and start with a fresh database?",
    )
    return answer == QMessageBox.StandardButton.Yes


def qt_version() -> str | None:
    """The Qt the window runs on, for ``doctor``; None when PySide6 cannot be imported."""
    try:
        from PySide6.QtCore import qVersion
    except ImportError:
        return None
    return f"Qt {qVersion()}"


def run_window(
    app: QApplication,
    runtime: Runtime,
    clock: Clock,
    diagnostics: Diagnostics,
    *,
    demo: bool,
    demo_seconds: float,
    screenshot: Path | None,
) -> int:
    """Build the main window on the runtime's services, show it and run the loop until it closes (or the demo
    ends); the runtime is closed on the way out."""
    import qasync
    from PySide6.QtCore import QSettings, QTimer

    from widgets.collector import GuiThreadCollector
    from widgets.main_window import MainWindow
    from widgets.shift_dialog import ShiftActions
    from widgets.signals import SyncBridge
    from widgets.sla_settings import open_sla_settings

    interactive = is_interactive(demo=demo)
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
        team=runtime.team,
    )
    window.confirm_quit_with_waiting_replies = not demo  # quitting with replies still queued asks first
    bridge = SyncBridge()
    runtime.poller.subscribe(bridge.report.emit)
    bridge.report.connect(window.on_sync_report)
    bridge.report.connect(lambda _report: window.on_health(runtime.health.snapshot()))
    window.on_health(runtime.health.snapshot())
    window.health_strip.quarantine_requested.connect(lambda: _open_quarantine(window, runtime, clock))
    window.sync_requested.connect(runtime.poller.wake)
    sla = runtime.sla
    window.sla_settings_action.triggered.connect(lambda: open_sla_settings(window, sla, window.refresh_queue))
    connect_accounts(window, runtime)
    connect_settings(window, runtime)
    connect_team(window, runtime)
    install_excepthook(window, diagnostics)
    add_help_actions(window, runtime, diagnostics)
    if os.environ.get("CARE_CONSOLE_EXIT_AFTER_FIRST_PAINT"):
        window.first_paint.connect(lambda: _exit_after_first_paint(window))
    painted = asyncio.Event()  # amain starts sync, the outbox and breach checks once the queue is on screen
    window.first_paint.connect(painted.set)
    # A local of run_window: alive as long as the loop runs.
    shift_actions = ShiftActions(window, runtime.shifts, runtime.exports, clock, export_dir=Path.home())
    if demo:
        window.fit_to_screen(1400, 860)
    window.show_fitted()  # maximized on a small screen, so the status bar stays on it
    if not demo:
        shift_actions.ask_about_stale_shift()
    if interactive:
        welcome_if_first_run(window, runtime)

    async def amain() -> int:
        closed = asyncio.Event()
        # Quitting is ours to do: Qt's own quit would stop the loop under the running coroutine.
        app.setQuitOnLastWindowClosed(False)
        app.lastWindowClosed.connect(closed.set)
        app.aboutToQuit.connect(closed.set)
        # What the first painted queue does not need starts once it is on screen (cold start budget, DESIGN.md).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(painted.wait(), FIRST_PAINT_WAIT)  # a window shown minimized may not paint
        secret_backend(runtime.secrets)  # opens the OS keyring
        settle_heap()  # start-up objects out of the collector's view: short GC pauses during a catch-up
        collector = GuiThreadCollector()  # cycles holding Qt objects are freed here, never on a worker thread
        collector.start()
        runtime.start_polling()
        runtime.start_sending()
        breach_timer = QTimer()
        breach_timer.setInterval(BREACH_CHECK_MS)
        breach_timer.timeout.connect(lambda: record_breaches(runtime, window))
        breach_timer.start()
        runtime.poller.subscribe(lambda _report: record_breaches(runtime, window))
        try:
            if demo:
                from widgets.demo import run_demo

                await run_demo(runtime, window, clock, seconds=demo_seconds, screenshot=screenshot)
            else:
                await closed.wait()
        finally:
            breach_timer.stop()
            window.hide()  # stops the view's tick timers: no tick may read the database while it closes
            await runtime.aclose()
            collector.stop()
        return EXIT_OK

    return int(qasync.run(amain()))


def record_breaches(runtime: Runtime, window: MainWindow) -> None:
    """The breach timer's tick (and after each sync): record passed deadlines; the queue repaints if any changed."""
    if runtime.record_breaches():
        window.refresh_queue()


def _set_window_icon(app: QApplication) -> None:
    from importlib.resources import as_file, files

    from PySide6.QtGui import QIcon

    with as_file(files("resources") / "icons" / "care-console.png") as path:
        app.setWindowIcon(QIcon(str(path)))


def add_help_actions(window: MainWindow, runtime: Runtime, diagnostics: Diagnostics) -> None:
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


def welcome_if_first_run(window: MainWindow, runtime: Runtime) -> None:
    """First start: ask the agent's name and how to start (non-modal open(), never exec()), then the tour."""
    from widgets.welcome import Start, WelcomeDialog

    prefs = Preferences(runtime.settings, data_dir=runtime.data_dir)
    if prefs.welcome_done:
        return
    dialog = WelcomeDialog(agent_name=prefs.agent_name, parent=window)

    def finished(result: int) -> None:
        prefs.finish_welcome(dialog.agent_name if result else None)
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


def connect_settings(window: MainWindow, runtime: Runtime) -> None:
    """File → Settings… (issue 13); the saved theme applies from the start."""
    from console.preferences import Preferences
    from widgets.settings_dialog import apply_theme, open_settings_dialog

    prefs = Preferences(runtime.settings, data_dir=runtime.data_dir)
    apply_theme(window.theme, prefs.theme)
    window.settings_action.triggered.connect(
        lambda: open_settings_dialog(window, prefs, sla=runtime.sla, surveys=runtime.surveys)
    )


def connect_team(window: MainWindow, runtime: Runtime) -> None:
    """File → Team… (issue 22): the team's state; join, host, invite, leave (effective at the next start)."""

    def open_dialog() -> None:
        from widgets.team_dialog import AdminSetup, open_team_dialog  # here: not needed for the first paint

        prefs = Preferences(runtime.settings, data_dir=runtime.data_dir)
        setup = AdminSetup(runtime.team_admin(), lambda: runtime.team, runtime.clock)
        open_team_dialog(window, setup, runtime.clock, agent_name=prefs.agent_name)

    window.team_action.triggered.connect(open_dialog)
    team = runtime.team
    if team is None:
        return
    # What colleagues changed reaches the queue as a sync's news does: the rows refresh and passed deadlines are
    # recorded (the replicator has told the SLA engine already). Claims alone repaint through the window's bridge.
    from widgets.signals import SyncBridge

    bridge = SyncBridge(window)

    def applied(change: object) -> None:
        report = getattr(change, "report", None)  # a TeamChange: an applied page, or claims only
        if report is not None and not report.empty:
            window.refresh_queue()
            record_breaches(runtime, window)

    team.subscribe(bridge.report.emit)
    bridge.report.connect(applied)


def connect_accounts(window: MainWindow, runtime: Runtime) -> None:
    """File → Accounts… and Add a post by hand… (issue 6)."""
    intake = runtime.manual_intake()

    @functools.cache
    def service() -> AccountService:  # built when first needed: it opens the OS keyring and an HTTPS client
        return runtime.account_service(keyring_warning=keyring_warning(runtime.secrets))

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
        lambda account_id: reauthenticate(runtime, window, account_id, open_dialog=sign_in_in_dialog)
    )


def _open_quarantine(window: MainWindow, runtime: Runtime, clock: Clock) -> None:
    """Health strip → "N unreadable items…": what could not be read, why, when; try again or dismiss (issue 5)."""
    from widgets.quarantine_dialog import open_quarantine_dialog

    def changed() -> None:
        window.refresh_queue()
        window.on_health(runtime.health.snapshot())

    open_quarantine_dialog(window, runtime.health, clock.now, on_changed=changed)


def reauthenticate(
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


def quiet_offscreen_warnings() -> None:
    """Drop the offscreen plugin's harmless "does not support propagateSizeHints()" lines; keep the rest."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    qt_log = logging.getLogger("qt")
    levels = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO}

    def handler(kind: QtMsgType, _context: object, message: str) -> None:
        if "This plugin does not support" in message:
            return
        qt_log.log(levels.get(kind, logging.WARNING), "%s", message)

    qInstallMessageHandler(handler)


def report(message: str, *, interactive: bool) -> None:
    """Before the loop runs, a modal box is fine (STYLE B2 forbids it only inside coroutines)."""
    from PySide6.QtWidgets import QMessageBox

    print(message, file=sys.stderr)
    if interactive:
        QMessageBox.critical(None, "Care Console", message)


def install_excepthook(window: MainWindow, diagnostics: Diagnostics) -> None:
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
