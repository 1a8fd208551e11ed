"""The main window: queue on the left, conversation on the right, sync state and deadlines in the status bar."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from typing_extensions import override

from console.ports import Clock
from console.sla import format_age, format_countdown
from widgets.conversation import ConversationPane
from widgets.error_bar import ErrorBar
from widgets.queue_model import QueueModel
from widgets.queue_view import QueueView
from widgets.theme import health_label, load_stylesheet, local_time

if TYPE_CHECKING:
    from console.inbox import SyncReport
    from console.queue import QueueService

APP_NAME = "Care Console"
GEOMETRY_KEY = "main_window/geometry"
SPLITTER_KEY = "main_window/splitter"
DEFAULT_SIZE = (1400, 860)
#: Share of the window width that the queue gets before the user moves the splitter.
QUEUE_SHARE = 0.62
#: The status bar looks this far down the queue (one model batch) for the next deadline.
DEADLINE_SCAN_ROWS = 200


def _ago(seconds: float) -> str:
    """``12 s`` under a minute, then like the queue's ages (``4 min``, ``3 h``)."""
    whole = max(0, int(seconds))
    return f"{whole} s" if whole < 60 else format_age(posted_at=0, now=whole)


class MainWindow(QMainWindow):
    """Built by main.py with its services; owns the queue model, the queue view and the conversation pane."""

    #: File → Sync now (Ctrl+R); main.py wakes the poller.
    sync_requested = Signal()
    #: The queue view painted for the first time (start-up benchmarks).
    first_paint = Signal()

    def __init__(
        self,
        queue: QueueService,
        clock: Clock,
        *,
        title_suffix: str = "",
        settings: QSettings | None = None,
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle(APP_NAME + title_suffix)
        self.setStyleSheet(load_stylesheet())
        self._queue = queue
        self._clock = clock
        self._settings = settings
        self._reports: dict[int, SyncReport] = {}
        self._sync_override: tuple[str, bool] | None = None

        self._model = QueueModel(queue, clock, self)
        self._view = QueueView(clock)
        self._view.setModel(self._model)
        self._pane = ConversationPane(queue, clock)
        self._error_bar = ErrorBar()

        self._build_layout()
        self._build_actions()
        self._build_status_bar()

        self._view.first_painted.connect(self.first_paint)
        self._view.mention_selected.connect(self._pane.show_mention)
        self._view.mention_activated.connect(self._on_view_mention_activated)
        self._view.ticked.connect(self._on_view_ticked)
        self._view.ticked.connect(self._pane.on_tick)
        back = QShortcut(
            QKeySequence(Qt.Key.Key_Escape), self._pane, context=Qt.ShortcutContext.WidgetWithChildrenShortcut
        )
        back.activated.connect(self._on_back_shortcut_activated)

        self._model.reload()
        if self._model.rowCount() > 0:
            first = self._model.mention_id_at(0)
            if first is not None:
                self._view.select_mention(first)
        self._update_status()
        self._restore_state()

    # ------------------------------------------------------------------ building
    def _build_layout(self) -> None:
        left = QWidget()
        left.setObjectName("queuePanel")
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.setSpacing(0)
        heading = QWidget()
        heading.setObjectName("panelHeading")
        heading_layout = QHBoxLayout(heading)
        heading_layout.setContentsMargins(14, 10, 14, 10)
        title = QLabel("Open queue")
        title.setObjectName("panelTitle")
        self._heading_count = QLabel()
        self._heading_count.setObjectName("panelCount")
        heading_layout.addWidget(title)
        heading_layout.addWidget(self._heading_count)
        heading_layout.addStretch(1)
        hint = QLabel("Nearest deadline first")
        hint.setObjectName("panelHint")
        heading_layout.addWidget(hint)
        self._sync_button = QToolButton()
        self._sync_button.setObjectName("syncButton")
        self._sync_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self._sync_button.setCursor(Qt.CursorShape.PointingHandCursor)
        heading_layout.addSpacing(8)
        heading_layout.addWidget(self._sync_button)
        left_layout.addWidget(heading)
        left_layout.addWidget(self._view, 1)

        self._splitter = QSplitter(Qt.Orientation.Horizontal)
        self._splitter.setObjectName("mainSplitter")
        self._splitter.setChildrenCollapsible(False)
        self._splitter.addWidget(left)
        self._splitter.addWidget(self._pane)
        self._splitter.setStretchFactor(0, 3)
        self._splitter.setStretchFactor(1, 2)
        queue_width = round(DEFAULT_SIZE[0] * QUEUE_SHARE)
        self._splitter.setSizes([queue_width, DEFAULT_SIZE[0] - queue_width])

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._error_bar)
        layout.addWidget(self._splitter, 1)
        self.setCentralWidget(central)
        self.resize(*DEFAULT_SIZE)

    def _build_actions(self) -> None:
        self.sync_action = QAction("&Sync now", self)
        self.sync_action.setToolTip("Sync now (Ctrl+R)")
        self.sync_action.setShortcut(QKeySequence("Ctrl+R"))
        self.sync_action.setStatusTip("Fetch new mentions from every account now")
        self.sync_action.triggered.connect(self._on_sync_action_triggered)
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.quit_action.triggered.connect(self.close)
        self.open_queue_action = QAction("&Open queue", self)
        self.open_queue_action.setCheckable(True)
        self.open_queue_action.setChecked(True)
        self.open_queue_action.setShortcut(QKeySequence("Ctrl+1"))
        self.open_queue_action.triggered.connect(self._on_open_queue_action_triggered)
        self.about_action = QAction(f"&About {APP_NAME}", self)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(self._on_about_action_triggered)

        menu_bar = self.menuBar()
        file_menu = menu_bar.addMenu("&File")
        file_menu.addAction(self.sync_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        view_menu = menu_bar.addMenu("&View")
        view_menu.addAction(self.open_queue_action)
        help_menu = menu_bar.addMenu("&Help")
        help_menu.addAction(self.about_action)

        self._sync_button.setDefaultAction(self.sync_action)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        status.setObjectName("statusBar")
        status.setSizeGripEnabled(False)
        self._sync_label = QLabel("Not synced yet")
        self._sync_label.setObjectName("syncStatus")
        self._sync_label.setTextFormat(Qt.TextFormat.PlainText)
        self._count_label = QLabel()
        self._count_label.setObjectName("queueSize")
        self._deadline_label = QLabel()
        self._deadline_label.setObjectName("nextDeadline")
        self._deadline_label.setTextFormat(Qt.TextFormat.PlainText)
        status.addWidget(self._sync_label, 1)
        status.addPermanentWidget(self._deadline_label)
        status.addPermanentWidget(self._count_label)

    # ------------------------------------------------------------------ accessors (main.py, tests)
    @property
    def queue_view(self) -> QueueView:
        return self._view

    @property
    def queue_model(self) -> QueueModel:
        return self._model

    @property
    def conversation(self) -> ConversationPane:
        return self._pane

    @property
    def error_bar(self) -> ErrorBar:
        return self._error_bar

    def sync_status_text(self) -> str:
        return self._sync_label.text()

    def sync_status_ok(self) -> bool:
        return bool(self._sync_label.property("state") != "error")

    def queue_size_text(self) -> str:
        return self._count_label.text()

    def next_deadline_text(self) -> str:
        return self._deadline_label.text()

    # ------------------------------------------------------------------ public slots
    @Slot(object)
    def on_sync_report(self, report: SyncReport) -> None:
        """A poll finished: show new items and follow-ups now, keep the selection, update the status bar."""
        self._reports[report.account_id] = report
        self._sync_override = None
        self._reload(changed=(*report.new_items, *report.follow_ups))
        self._update_sync_status()

    @Slot()
    def refresh_queue(self) -> None:
        """Re-read the queue order and every cached row."""
        self._reload(changed=None)

    @Slot(str)
    def show_error(self, message: str) -> None:
        self._error_bar.show_message(message)

    @Slot(str, bool)
    def set_sync_status(self, text: str, ok: bool) -> None:
        """Show this sync state until the next report (e.g. "Syncing…")."""
        self._sync_override = (text, ok)
        self._set_sync_label(text, ok=ok)

    # ------------------------------------------------------------------ internals
    def _reload(self, *, changed: Iterable[int] | None) -> None:
        selected = self._view.selected_mention_id()
        self._model.reload()
        if changed is None:
            self._model.refresh_cached()
        else:
            changed = set(changed)
            self._model.refresh_rows(changed)
        if selected is not None and self._view.selected_mention_id() != selected:
            self._view.select_mention(selected)
        elif selected is None and self._model.rowCount() > 0:
            # The first sync of an empty queue: show the most urgent item rather than an empty pane.
            first = self._model.mention_id_at(0)
            if first is not None:
                self._view.select_mention(first)
        if self._pane.mention_id is not None and (changed is None or self._pane.mention_id in changed):
            self._pane.refresh()
        self._update_status()

    def _update_status(self) -> None:
        count = self._model.rowCount()
        self._count_label.setText(f"{count:,} open")
        self._heading_count.setText(f"{count:,}")
        self._update_next_deadline(self._clock.now())

    def _update_next_deadline(self, now: float) -> None:
        breached = 0
        upcoming = None
        for row in range(min(self._model.rowCount(), DEADLINE_SCAN_ROWS)):
            mention = self._model.mention_at(row)
            if mention is None or mention.due_at is None:
                continue
            if mention.due_at > now:
                upcoming = mention
                break
            breached += 1
        parts = []
        if breached:
            more = "+" if upcoming is None and breached >= DEADLINE_SCAN_ROWS else ""
            parts.append(f"{breached}{more} breached")
        if upcoming is not None and upcoming.due_at is not None:
            parts.append(f"Next deadline in {format_countdown(upcoming.due_at, now)} (@{upcoming.author_handle})")
        elif not breached:
            parts.append("No running deadlines")
        self._deadline_label.setText(" · ".join(parts))
        self._set_state(self._deadline_label, "breached" if breached else "ok")

    def _update_sync_status(self) -> None:
        if self._sync_override is not None:
            return
        if not self._reports:
            self._set_sync_label("Not synced yet", ok=True)
            return
        now = self._clock.now()
        failed = [r for r in self._reports.values() if not r.ok]
        if failed:
            report = max(failed, key=lambda r: r.at)
            text = f"Sync failed ({health_label(report.health)}): {report.error}"
            if report.next_attempt_at is not None:
                text += f" · retrying at {local_time(report.next_attempt_at, now=now)}"
            self._set_sync_label(text, ok=False)
            return
        report = max(self._reports.values(), key=lambda r: r.at)
        text = f"Synced {_ago(now - report.at)} ago · {len(report.new_items)} new"
        if report.follow_ups:
            text += f" · {len(report.follow_ups)} follow-up{'s' if len(report.follow_ups) > 1 else ''}"
        self._set_sync_label(text, ok=True)

    def _set_sync_label(self, text: str, *, ok: bool) -> None:
        self._sync_label.setText(text)
        self._set_state(self._sync_label, "ok" if ok else "error")

    @staticmethod
    def _set_state(widget: QWidget, state: str) -> None:
        """Set the ``state`` property the style sheet selects on; re-polish only when it changes (ticks are hot)."""
        if widget.property("state") == state:
            return
        widget.setProperty("state", state)
        style = widget.style()
        style.unpolish(widget)
        style.polish(widget)

    def _restore_state(self) -> None:
        if self._settings is None:
            return
        geometry = self._settings.value(GEOMETRY_KEY)
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        splitter = self._settings.value(SPLITTER_KEY)
        if isinstance(splitter, QByteArray) and not splitter.isEmpty():
            self._splitter.restoreState(splitter)

    def _save_state(self) -> None:
        if self._settings is None:
            return
        self._settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        self._settings.setValue(SPLITTER_KEY, self._splitter.saveState())
        self._settings.sync()

    @override
    def closeEvent(self, event: QCloseEvent) -> None:
        self._save_state()
        super().closeEvent(event)

    # ------------------------------------------------------------------ slots
    @Slot(float)
    def _on_view_ticked(self, now: float) -> None:
        self._update_next_deadline(now)
        self._update_sync_status()

    @Slot(int)
    def _on_view_mention_activated(self, mention_id: int) -> None:
        if self._pane.mention_id != mention_id:
            self._pane.show_mention(mention_id)
        self._pane.focus_thread()

    @Slot()
    def _on_back_shortcut_activated(self) -> None:
        self._view.setFocus(Qt.FocusReason.ShortcutFocusReason)

    @Slot()
    def _on_sync_action_triggered(self) -> None:
        self.sync_requested.emit()

    @Slot()
    def _on_open_queue_action_triggered(self) -> None:
        self.open_queue_action.setChecked(True)  # the only view for now; more views join this group later
        self.refresh_queue()
        self._view.setFocus(Qt.FocusReason.ShortcutFocusReason)

    @Slot()
    def _on_about_action_triggered(self) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Information,
            f"About {APP_NAME}",
            f"{APP_NAME}\n\nOne queue for social customer care, live SLA countdowns, human replies.",
            QMessageBox.StandardButton.Ok,
            self,
        )
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # never exec() (STYLE B2)
