"""The whole app as an agent uses it, for the robot and the journey tests: main.py's wiring on a data folder.

``AgentApp`` opens the runtime (storage, the embedded sandbox, services) with a FakeClock and builds the main
window with the helpers ``widgets.app.run_window`` uses (accounts, settings, help, shifts, the error hook), so a
test walks the real window. It can be closed and opened again on the same folder (a restart). Nothing runs in the
background: the test syncs, drains the outbox, records breaches and ticks the countdown when it chooses, which
keeps a run reproducible. ``check_invariants`` says what an agent relies on, after any step.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import qasync
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from console.diagnostics import Diagnostics
from console.keymap import KeyMap
from console.ports import MemorySecretStore, SecretStore
from console.queue import QueueQuery, QueueView
from console.runtime import Runtime, SandboxOptions, open_runtime
from console.sla.alerts import AlertMonitor
from tests.fakes.clock import FakeClock
from widgets import app as app_start
from widgets.main_window import MainWindow
from widgets.shift_dialog import ShiftActions
from widgets.signals import SyncBridge
from widgets.sla_settings import open_sla_settings

T = TypeVar("T")

#: Statuses in which an item is still the agent's to answer (the Open view).
OPEN_STATUSES = ("new", "open")
#: Reply purposes that answer the customer (they meet response deadlines).
ANSWERS = ("reply", "holding")

#: What the robot walked, printed under "robot" after the run (tests/widgets/conftest.py).
TALLY: Counter[str] = Counter()


@dataclass
class Clocks:
    """What undo must give back: an item's status, priority, tags and every deadline as it was."""

    status: str
    priority: int
    tags: str
    due_at: int | None
    deadlines: tuple[tuple[str, int, int, int | None, int | None, int | None, int | None], ...]


@dataclass
class AgentApp:
    """The app on ``data_dir`` with a FakeClock: open, use, close, open again."""

    data_dir: Path
    clock: FakeClock
    qtbot: QtBot
    loop: qasync.QEventLoop
    sandbox: SandboxOptions = field(default_factory=lambda: SandboxOptions(rate_per_minute=0.0, backlog=12))
    runtime: Runtime | None = None
    window: MainWindow | None = None
    shift_actions: ShiftActions | None = None
    diagnostics: Diagnostics | None = None
    #: Team mode (issue 22): a team for the window instead of the runtime's (tests/widgets/team_fake.py's
    #: MemoryTeam), or None: the runtime's own (``Runtime.team``, a real team when this folder joined one).
    team: Any = None
    #: The keyring across restarts (a team's password lives there); None: a fresh one at each start.
    secrets: SecretStore | None = None
    #: Errors that reached the app's exception hook (what shows the error bar and writes a crash report).
    crashes: list[str] = field(default_factory=list)
    #: Every error bar message seen, in order.
    error_messages: list[str] = field(default_factory=list)
    _previous_hook: Callable[..., Any] | None = None

    # ------------------------------------------------------------------ lifetime
    def open(self, *, welcome: bool = False) -> MainWindow:
        """Start the app on the data folder (the first start or a restart) and show its window.

        With ``welcome``, the first run's welcome dialog opens as it does on a desktop (the app skips it offscreen).
        """
        runtime = open_runtime(
            self.data_dir, clock=self.clock, secrets=self.secrets or MemorySecretStore(), sandbox=self.sandbox,
            force_sandbox=False, poll_seconds=30.0,
        )  # fmt: skip
        self.runtime = runtime
        diagnostics = Diagnostics(self.data_dir / "logs")
        self.diagnostics = diagnostics
        settings = QSettings(str(self.data_dir / "window.ini"), QSettings.Format.IniFormat)
        window = MainWindow(
            runtime.queue,
            self.clock,
            title_suffix=" — Sandbox" if runtime.on_sandbox else "",
            settings=settings,
            replies=runtime.replies,
            triage=runtime.triage,
            alerts=AlertMonitor(runtime.queue, self.clock, settings=runtime.settings),
            keymap=KeyMap(runtime.settings),
            surveys=runtime.surveys,
            threads=runtime.threads,
            capacity=runtime.capacity,
            team=self.team if self.team is not None else runtime.team,
        )
        self.window = window
        bridge = SyncBridge(window)
        runtime.poller.subscribe(bridge.report.emit)
        bridge.report.connect(window.on_sync_report)
        bridge.report.connect(lambda _report: window.on_health(runtime.health.snapshot()))
        window.on_health(runtime.health.snapshot())
        window.sync_requested.connect(lambda: self.sync())
        if runtime.sla is not None:
            sla = runtime.sla
            window.sla_settings_action.triggered.connect(lambda: open_sla_settings(window, sla, window.refresh_queue))
        app_start.connect_accounts(window, runtime)
        app_start.connect_settings(window, runtime)
        app_start.connect_team(window, runtime)
        self._install_hook(window, diagnostics)
        app_start.add_help_actions(window, runtime, diagnostics)
        window.error_bar.dismissed.connect(lambda: None)
        assert runtime.shifts is not None and runtime.exports is not None
        self.shift_actions = ShiftActions(
            window, runtime.shifts, runtime.exports, self.clock, export_dir=self.data_dir / "exports"
        )
        window.show()
        self.qtbot.waitExposed(window)
        stale = self.shift_actions.ask_about_stale_shift()
        if stale is not None:  # a restart after a shift was left running: carry on with it
            stale.button(QMessageBox.StandardButton.No).click()
        if welcome:
            app_start.welcome_if_first_run(window, runtime)
        self.settle()
        return window

    def _install_hook(self, window: MainWindow, diagnostics: Diagnostics) -> None:
        """The app's exception hook (error bar and crash report), noting each error for the invariants."""
        self._previous_hook = sys.excepthook
        app_start.install_excepthook(window, diagnostics)
        installed = sys.excepthook

        def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
            self.crashes.append(f"{kind.__name__}: {exc}")
            installed(kind, exc, tb)

        sys.excepthook = hook

    def close(self) -> None:
        """Quit the app the way the agent does (File → Quit), answering "quit anyway" if it asks."""
        window, runtime = self.window, self.runtime
        if window is not None:
            self.note_error_bar()
            window.close()
            for box in window.findChildren(QMessageBox):
                if box.isVisible():
                    for button in box.buttons():
                        role = box.buttonRole(button)
                        if role in (QMessageBox.ButtonRole.AcceptRole, QMessageBox.ButtonRole.YesRole):
                            button.click()
                            break
            if window.isVisible():
                window.hide()
            for dialog in window.findChildren(QDialog):
                dialog.close()
            window.deleteLater()
        if self._previous_hook is not None:
            sys.excepthook = self._previous_hook
            self._previous_hook = None
        if runtime is not None:
            self.run(runtime.aclose(), timeout=20)
        if self.diagnostics is not None:
            self.diagnostics.uninstall()
        self.window = None
        self.runtime = None
        self.shift_actions = None
        QApplication.processEvents()

    def restart(self) -> MainWindow:
        self.close()
        return self.open()

    # ------------------------------------------------------------------ driving
    @property
    def rt(self) -> Runtime:
        assert self.runtime is not None, "the app is not open"
        return self.runtime

    @property
    def win(self) -> MainWindow:
        assert self.window is not None, "the app is not open"
        return self.window

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the qasync loop while Qt processes events."""
        task = self.loop.create_task(coro)
        self.qtbot.waitUntil(task.done, timeout=int(timeout * 1000))
        return task.result()

    def settle(self) -> None:
        """Let queued Qt events and ready asyncio callbacks run."""
        for _ in range(3):
            QApplication.processEvents()

    def sync(self) -> None:
        """One sync pass (what the poller does on its schedule, or Ctrl+R)."""
        self.run(self.rt.poller.sync_once())
        self.settle()

    def drain(self) -> None:
        """One pass of the outbox sender."""
        assert self.rt.replies is not None
        self.run(self.rt.replies.outbox.drain())
        self.settle()

    def tick(self) -> None:
        """What the window's timers do each second and every five: countdowns, bands, breaches."""
        app_start.record_breaches(self.rt, self.win)
        self.win.queue_view.tick()
        self.settle()

    def focus(self, widget: QWidget) -> None:
        """Give ``widget`` the keyboard focus in the active main window, as a click on it would."""
        self.win.activateWindow()
        self.qtbot.waitUntil(lambda: QApplication.activeWindow() is self.win, timeout=2000)
        widget.setFocus(Qt.FocusReason.MouseFocusReason)
        self.qtbot.waitUntil(lambda: QApplication.focusWidget() is widget, timeout=2000)

    def keys(self, widget: QWidget, text: str) -> None:
        """Type ``text`` (letters, digits, shortcuts' single keys) into ``widget`` with the focus on it."""
        self.focus(widget)
        self.qtbot.keyClicks(widget, text)
        self.settle()

    def key(self, widget: QWidget, key: Qt.Key, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        self.focus(widget)
        self.qtbot.keyClick(widget, key, modifier)
        self.settle()

    def note_error_bar(self) -> None:
        bar = self.win.error_bar
        if not bar.isHidden():
            self.error_messages.append(bar.message())

    def button(self, text: str, parent: Any = None) -> QPushButton | None:
        """A visible push button by its label, as the agent finds it."""
        for button in (parent or self.win).findChildren(QPushButton):
            if button.text().replace("&", "") == text and button.isVisible():
                return button
        return None

    # ------------------------------------------------------------------ facts from the database
    def db(self) -> sqlite3.Connection:
        """A separate read-only connection: what is really stored, not what the window believes."""
        conn = sqlite3.connect(f"file:{self.rt.db_path}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        return conn

    def clocks(self, mention_id: int) -> Clocks:
        with self.db() as conn:
            row = conn.execute(
                "SELECT status, priority, tags, due_at FROM mentions WHERE id = ?", (mention_id,)
            ).fetchone()
            deadlines = conn.execute(
                "SELECT kind, started_at, due_at, met_at, paused_at, cancelled_at, breached_at FROM deadlines "
                "WHERE mention_id = ? ORDER BY kind, started_at, id",
                (mention_id,),
            ).fetchall()
        return Clocks(
            status=row["status"], priority=int(row["priority"]), tags=row["tags"] or "", due_at=row["due_at"],
            deadlines=tuple(tuple(d) for d in deadlines),
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------------- invariants
def breaches_owed(conn: sqlite3.Connection) -> dict[int, list[str]]:
    """Open items with a recorded breach that nothing has answered since, by id: the deadlines breached."""
    owed: dict[int, list[str]] = {}
    events = conn.execute(
        "SELECT e.mention_id, e.data, e.at FROM events e JOIN mentions m ON m.id = e.mention_id "
        "WHERE e.kind = 'breached' AND m.head_id IS NULL AND m.status IN ('new', 'open')"
    ).fetchall()
    for mention_id, data, at in events:
        kind = json.loads(data).get("deadline", "")
        if kind != "resolution":
            answered = conn.execute(
                "SELECT count(*) FROM replies WHERE mention_id = ? AND state = 'sent' AND purpose IN ('reply', "
                "'holding') AND sent_at >= ?",
                (mention_id, at),
            ).fetchone()[0]
            if answered:
                continue
        owed.setdefault(int(mention_id), []).append(kind)
    return owed


def check_invariants(app: AgentApp) -> None:
    """What an agent relies on after any action; raises AssertionError with what is wrong."""
    rt, win = app.rt, app.win
    # Nothing reached the error bar or a crash report.
    app.note_error_bar()
    assert not app.crashes, f"an error reached the error hook: {app.crashes}"
    assert win.error_bar.isHidden(), f"the error bar shows: {win.error_bar.message()}"
    reports = sorted(p.name for p in (app.data_dir / "logs").glob("crash-*.txt"))
    assert not reports, f"crash reports were written: {reports}"

    with app.db() as conn:
        # Every breach ever recorded on an item still owed an answer is in Breached.
        owed = breaches_owed(conn)
        breached_view = set(rt.queue.queue_ids(QueueQuery(view=QueueView.BREACHED)))
        hidden = {mid: kinds for mid, kinds in owed.items() if mid not in breached_view}
        assert not hidden, f"recorded breaches missing from the Breached view: {hidden}"
        # ... and counted in the running shift's summary.
        shift = rt.shifts.current() if rt.shifts is not None else None
        if shift is not None and rt.exports is not None:
            recorded = {
                (int(r[0]), str(r[1]))
                for r in conn.execute(
                    "SELECT d.mention_id, d.kind FROM deadlines d WHERE d.breached_at BETWEEN ? AND ?",
                    (shift.started_at, int(app.clock.now())),
                )
            }
            summary = rt.exports.build(shift.id)
            counted = {(b.mention_id, b.kind) for b in summary.breaches}
            assert recorded <= counted, f"breaches missing from the shift summary: {sorted(recorded - counted)}"
            assert sum(k.breached for k in summary.sla) == len(summary.breaches), "summary: breach counts disagree"

        # The queue's counts match the database.
        open_in_db = conn.execute(
            "SELECT count(*) FROM mentions WHERE head_id IS NULL AND status IN ('new', 'open')"
        ).fetchone()[0]
        assert rt.queue.open_count() == open_in_db
        model = win.queue_model
        while model.canFetchMore():
            model.fetchMore(model.index(-1, -1))
        query = win.workbench.filter_bar.query
        shown = [model.mention_id_at(r) for r in range(model.rowCount())]
        expected = rt.queue.queue_ids(query)
        assert shown == expected, f"the queue shows {shown}, the database says {expected} for {query}"
        count_text = win.queue_size_text()
        assert count_text.startswith(f"{len(expected):,}"), f"status bar says {count_text!r}, view has {len(expected)}"
        if query == QueueQuery():
            assert count_text == f"{open_in_db:,} open", f"status bar says {count_text!r}, database {open_in_db} open"

        # A promised time is always in the future (issue 19 #7).
        broken = conn.execute(
            "SELECT id, created_at, holding_until FROM replies WHERE holding_until IS NOT NULL "
            "AND holding_until <= created_at"
        ).fetchall()
        assert not broken, f"holding replies promising a time already past: {[tuple(r) for r in broken]}"

        # The status bar's alerts speak of the whole queue, whatever the view, filters or search on screen.
        breached_all = rt.queue.count(QueueQuery(view=QueueView.BREACHED))
        alert = win.next_deadline_text()
        if breached_all:
            assert alert.startswith(f"{breached_all:,} breached"), f"{breached_all} breached, status bar: {alert!r}"
        else:
            assert "breached" not in alert, f"nothing is breached, status bar: {alert!r}"

        # Every sent reply exists exactly once on the sandbox.
        sandbox = rt.sandbox
        if sandbox is not None:
            posted = sandbox.statuses_posted()
            ids = [str(s["id"]) for s in posted]
            sent = conn.execute(
                "SELECT r.id, r.external_id FROM replies r JOIN mentions m ON m.id = r.mention_id "
                "JOIN accounts a ON a.id = m.account_id WHERE a.is_sandbox = 1 AND r.state = 'sent'"
            ).fetchall()
            for reply_id, external_id in sent:
                times = ids.count(str(external_id))
                assert times == 1, f"reply {reply_id} is sent; its status {external_id} is on the sandbox {times} times"
            ours = {str(r[0]) for r in conn.execute("SELECT external_id FROM replies WHERE external_id IS NOT NULL")}
            ours |= {
                str(r[0]) for r in conn.execute("SELECT external_id FROM status_posts WHERE external_id IS NOT NULL")
            }
            strays = sorted(set(ids) - ours)
            # A reply whose last try got no answer may be on the channel already: the outbox finds it in the
            # thread before it tries again. Any other status that no reply knows of was posted twice or lost.
            uncertain = conn.execute(
                "SELECT count(*) FROM replies WHERE state IN ('queued', 'sending') AND attempts > 0"
            ).fetchone()[0]
            assert len(strays) <= uncertain, (
                f"statuses on the sandbox that no reply knows of (posted twice, or sent while withdrawn): {strays}"
            )

    # The conversation pane shows the selected item.
    selected = win.queue_view.selected_mention_id()
    assert win.conversation.mention_id == selected, (
        f"the pane shows {win.conversation.mention_id}, the queue's selection is {selected}"
    )
    composer = win.composer
    if composer is not None:
        assert composer.mention_id == selected, f"the reply box writes to {composer.mention_id}, selection {selected}"
    pane = win.conversation
    if selected is None:
        assert pane.is_empty(), "nothing is selected, yet the pane shows an item"
    else:
        assert selected in shown, f"the selected item {selected} is not in the view"
        head = rt.queue.rows_by_id([selected])[selected]
        assert not pane.is_empty() and f"@{head.author_handle}" in pane.header_text(), (
            f"the pane's header {pane.header_text()!r} is not about @{head.author_handle}"
        )
        assert len(pane.deadline_texts()) == len(rt.queue.deadlines(selected)), "the pane lists other deadlines"
