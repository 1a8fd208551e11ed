"""The live supervisor view (issue 23 item 2): the team's queue now, and the supervisor's two actions.

View → Supervisor… (supervisors and owners) opens this window over ``SupervisorView`` (console/team/supervisor.py):
tiles with the team's figures (on shift, online, waiting, expected wait, breaches this hour, first response, Net
Easy), then who is on shift with what they hold and this shift's figures, the live claims with their age, the oldest
waiting item per channel, and this hour's breaches. It refreshes when the team changes (``TeamService.subscribe``),
at most once a second, and every few seconds anyway (claim ages, who went offline); each refresh is one async
snapshot on the loop, never a wait on the GUI thread. Offline, the last figures stay with the reason above them.

Reassign… (any item shown) and Release claim… (a held one, after a confirmation) are events with the supervisor as
author; PostgreSQL refuses them to an agent's login whatever this window shows, and the refusal is shown as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QHideEvent, QKeySequence, QResizeEvent, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid
from typing_extensions import override

from console.ports import Clock
from console.wording import count
from widgets.claims import TeamStatusLike, claim_age
from widgets.dark import dark_stylesheet, is_dark
from widgets.dark import text as theme_text
from widgets.theme import channel_label, load_stylesheet, local_time

if TYPE_CHECKING:  # the team package imports psycopg: only in team mode
    from console.reports.summary import NetEasy
    from console.team.supervisor import SupervisorSnapshot

log = logging.getLogger(__name__)

#: At most one snapshot per this many seconds, however often the team changes.
MIN_REFRESH_S = 1.0
#: A snapshot at least this often while the window is shown (claim ages, heartbeats), changes or not.
STEADY_REFRESH_MS = 5000
#: Rows that need the supervisor's eye (stale claims, breaches still unanswered): amber-brown text.
WARN_TEXT = "#9A4A00"
#: Narrower than this, the four sections are tabs (at 800x600 two by two would cut every table).
COMPACT_WIDTH = 1000
#: The pool's name in the "hand to" pickers.
POOL = "Back to the pool"

Labels = Callable[[Sequence[int]], Mapping[int, str]]
"""local mention ids -> a one-line label of each ("@ana · where is my order…")."""


class SupervisorPort(Protocol):
    """What the window asks of the team (``console.team.supervisor.SupervisorView``)."""

    async def snapshot(self) -> SupervisorSnapshot: ...
    async def reassign(self, item_key: str, to: str | None, note: str = "") -> None: ...
    async def release_stale(self, item_key: str) -> str | None: ...


Subscribe = Callable[[Callable[[Any], None]], None]
"""``TeamService.subscribe``: the listener is called (on the loop) when the team's items or claims changed."""


# ---------------------------------------------------------------------------------------------------- words
def item_label(item_key: str) -> str:
    """A readable name for an item this copy does not hold: ``Mastodon · @care · #1234``."""
    account, _, external = item_key.rpartition("#")
    kind, _, rest = account.partition(":")
    handle = rest.rpartition(":")[2] if rest else ""
    tail = external.rsplit("/", 1)[-1]
    short = tail if len(tail) <= 10 else f"…{tail[-8:]}"
    parts = [channel_label(kind) if kind else "Item"]
    if handle:
        parts.append(f"@{handle.lstrip('@')}")
    parts.append(f"#{short}")
    return " · ".join(parts)


def duration_text(seconds: float | None) -> str:
    """``40 s``, ``12 min``, ``1 h 05``; ``—`` when unknown."""
    if seconds is None:
        return "—"
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60:02d}"


def net_easy_text(net: NetEasy) -> str:
    """``+33 (n 3)``; ``—`` with no answers yet (a score of nobody is not zero)."""
    if net.score is None or net.n == 0:
        return "—"
    return f"{net.score:+.0f} (n {net.n})"


def presence_text(on_shift: bool, online: bool, since: int | None, now: float) -> str:
    """``Since 09:00 · online`` (on shift), ``Off shift · offline``."""
    shift = f"Since {local_time(since, now=now)}" if on_shift and since is not None else "Off shift"
    return f"{shift} · {'online' if online else 'offline'}"


# ---------------------------------------------------------------------------------------------------- pieces
@dataclass(frozen=True, slots=True)
class _Row:
    """One shown item: its key (for the actions), local id (to open it), and who holds it, if anyone."""

    item_key: str
    mention_id: int | None
    holder: str | None = None
    stale: bool = False


_EXTRA_QSS = """
QMainWindow#supervisorWindow, QWidget#supervisorBody { background: #F4F5F7; }
QFrame#supervisorTile { background: #FFFFFF; border: 1px solid #E1E4E8; border-radius: 6px; }
QLabel#supervisorTileValue { font-size: 14pt; font-weight: 600; color: #1F2328; }
QLabel#supervisorTileValue[state="warning"] { color: #9A5B00; }
QLabel#supervisorTileValue[state="breached"] { color: #B3261E; }
QLabel#supervisorTileCaption { color: #66707D; font-size: 8pt; }
QFrame#supervisorSection { background: #FFFFFF; border: 1px solid #E1E4E8; border-radius: 6px; }
QLabel#supervisorStatus { color: #66707D; }
QLabel#supervisorStatus[state="error"] { color: #B3261E; font-weight: 600; }
QLabel#supervisorEmpty { color: #66707D; padding: 12px; }
QTableWidget#supervisorTable { border: none; background: #FFFFFF; alternate-background-color: #FAFBFC;
    gridline-color: #EEF0F3; selection-background-color: #DCE7FD; selection-color: #0F1F3D; }
"""


def supervisor_stylesheet() -> str:
    """The app's style sheet and this window's rules, in the current theme (dark converts every colour)."""
    light = load_stylesheet() + _EXTRA_QSS
    return dark_stylesheet(light) if is_dark() else light


class _Tile(QFrame):
    """A figure with its caption: ``3`` / ``on shift``."""

    def __init__(self, caption: str, name: str) -> None:
        super().__init__()
        self.setObjectName("supervisorTile")
        self.value = QLabel("—")
        self.value.setObjectName("supervisorTileValue")
        self.value.setAccessibleName(caption)
        self.caption = QLabel(caption)
        self.caption.setObjectName("supervisorTileCaption")
        self.setProperty("tile", name)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(0)
        layout.addWidget(self.value)
        layout.addWidget(self.caption)

    def set(self, text: str, state: str = "") -> None:
        self.value.setText(text)
        if self.value.property("state") != state:
            self.value.setProperty("state", state)
            style = self.value.style()
            style.unpolish(self.value)
            style.polish(self.value)


class _Section(QFrame):
    """A titled table that says what to expect when it has no rows."""

    def __init__(self, title: str, headers: Sequence[str], empty: str, name: str, *, stretch: int = 0) -> None:
        super().__init__()
        self.setObjectName("supervisorSection")
        self.title = QLabel(title)
        self.title.setObjectName("sectionTitle")
        self.table = QTableWidget(0, len(headers))
        self.table.setObjectName("supervisorTable")
        self.table.setAccessibleName(title)
        self.table.setProperty("section", name)
        self.table.setHorizontalHeaderLabels(list(headers))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.setTabKeyNavigation(False)  # Tab leaves the table: the window is walked by keyboard
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)  # the long text gives way, elided
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        header.setHighlightSections(False)
        self.empty = QLabel(empty)
        self.empty.setObjectName("supervisorEmpty")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addWidget(self.stack, 1)
        self.rows: list[_Row | None] = []

    def fill(self, cells: Sequence[Sequence[str]], rows: Sequence[_Row | None], *, warn: Sequence[bool] = ()) -> None:
        """Replace the rows, keeping the selected item selected when it is still there."""
        selected = self.selected()
        table = self.table
        table.setUpdatesEnabled(False)
        try:
            table.setRowCount(len(cells))
            for r, line in enumerate(cells):
                for c, value in enumerate(line):
                    item = table.item(r, c)
                    if item is None:
                        item = QTableWidgetItem()
                        table.setItem(r, c, item)
                    if item.text() != value:
                        item.setText(value)
                        item.setToolTip(value)
                    warned = r < len(warn) and warn[r]
                    if item.data(Qt.ItemDataRole.UserRole) != warned:
                        item.setData(Qt.ItemDataRole.UserRole, warned)
                        if warned:  # a stale claim, an item still unanswered past its due time
                            item.setForeground(theme_text(WARN_TEXT))
                        else:
                            item.setData(Qt.ItemDataRole.ForegroundRole, None)
            self.rows = list(rows)
            again = next((i for i, row in enumerate(self.rows) if selected and row and row.item_key == selected), None)
            if again is not None:
                table.selectRow(again)
            elif selected is not None:
                table.clearSelection()
        finally:
            table.setUpdatesEnabled(True)
        self.stack.setCurrentWidget(self.table if cells else self.empty)

    def selected(self) -> str | None:
        row = self.selected_row()
        return row.item_key if row is not None else None

    def selected_row(self) -> _Row | None:
        indexes = self.table.selectionModel().selectedRows()
        if not indexes:
            return None
        index = indexes[0].row()
        return self.rows[index] if 0 <= index < len(self.rows) else None

    def texts(self) -> list[list[str]]:
        """The cells as shown (tests, and the robot's checks)."""
        table = self.table

        def cell(r: int, c: int) -> str:
            item = table.item(r, c)
            return item.text() if item is not None else ""

        return [[cell(r, c) for c in range(table.columnCount())] for r in range(table.rowCount())]


class ReassignDialog(QDialog):
    """Reassign one item: to a member or back to the pool, with a note for the receiver."""

    def __init__(self, item: str, members: Sequence[str], holder: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reassignDialog")
        self.setWindowTitle("Reassign item")
        self.to_combo = QComboBox()
        self.to_combo.setAccessibleName("Reassign to")
        for name in members:
            self.to_combo.addItem(name, name)
        self.to_combo.addItem(POOL, None)
        if holder is not None and holder in members and len(members) > 1:
            self.to_combo.setCurrentIndex(next(i for i, m in enumerate(members) if m != holder))
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText("What they should know (optional)")
        self.note_edit.setAccessibleName("Note")
        intro = QLabel(
            f"{item}\n"
            + (
                f"{holder} holds it now: reassigning leaves their claim (Release claim… ends it)."
                if holder
                else "Nobody holds it now."
            )
        )
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.PlainText)
        form = QFormLayout()
        form.addRow("&To", self.to_combo)
        form.addRow("&Note", self.note_edit)
        buttons = QDialogButtonBox()
        self.reassign_button = buttons.addButton("&Reassign", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.reassign_button.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.resize(440, 180)

    def target(self) -> str | None:
        data = self.to_combo.currentData()
        return str(data) if data is not None else None

    def note(self) -> str:
        return self.note_edit.text().strip()


class _Relay(QObject):
    """Carries a team change to the GUI thread (the listener may run wherever the team calls it)."""

    arrived = Signal()


# ---------------------------------------------------------------------------------------------------- window
class SupervisorWindow(QMainWindow):
    """The team's queue now, refreshing live; Reassign… and Release claim… as the supervisor."""

    #: A snapshot was shown (tests wait for it).
    refreshed = Signal()
    #: An action finished: (message, ok).
    acted = Signal(str, bool)
    #: Open this local item in the main window.
    open_requested = Signal(int)

    def __init__(
        self,
        view: SupervisorPort,
        clock: Clock,
        *,
        subscribe: Subscribe | None = None,
        labels: Labels | None = None,
        member: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("supervisorWindow")
        self.setWindowTitle("Supervisor — Care Console")
        self._view = view
        self._clock = clock
        self._labels = labels
        self._member = member
        self._snapshot: SupervisorSnapshot | None = None
        self._task: asyncio.Task[SupervisorSnapshot] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dirty = False
        self._last_start = -MIN_REFRESH_S
        self._error = ""
        #: The dialog or question the window has open (Reassign…, Release…), for the keyboard and tests.
        self.pending_dialog: QDialog | None = None

        self._throttle = QTimer(self)
        self._throttle.setSingleShot(True)
        self._throttle.timeout.connect(self._start_refresh)
        self._steady = QTimer(self)
        self._steady.setInterval(STEADY_REFRESH_MS)
        self._steady.timeout.connect(self.request_refresh)
        self._relay = _Relay(self)
        self._relay.arrived.connect(self.request_refresh)
        if subscribe is not None:
            subscribe(self._on_team_change)

        self.tiles = {
            "on_shift": _Tile("on shift", "on_shift"),
            "online": _Tile("online", "online"),
            "waiting": _Tile("waiting", "waiting"),
            "wait": _Tile("expected wait", "wait"),
            "breaches": _Tile("breaches this hour", "breaches"),
            "first_response": _Tile("first response (median)", "first_response"),
            "net_easy": _Tile("Net Easy this shift", "net_easy"),
        }
        tiles = QHBoxLayout()
        tiles.setSpacing(6)
        for tile in self.tiles.values():
            tiles.addWidget(tile, 1)
        self.status_label = QLabel("Reading the team's queue…")
        self.status_label.setObjectName("supervisorStatus")
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)

        self.people = _Section(
            "Who is on shift",
            ["Member", "On shift", "Holds", "Replies", "First response", "Net Easy"],
            "Nobody has started a shift yet. Agents appear here when they start one (File → Start shift), with "
            "what they hold and this shift's first-response time and Net Easy.",
            "people",
            stretch=1,
        )
        self.held = _Section(
            "Who holds what",
            ["Item", "Held by", "For"],
            "Nobody holds an item now. A claim appears here the moment an agent opens the reply box; a claim whose "
            "machine stopped renewing it is marked stale and can be released.",
            "held",
        )
        self.channels = _Section(
            "Channels",
            ["Channel", "Oldest waiting", "Waited", "Replies", "First response", "Net Easy"],
            "No channel has items waiting or replies this shift yet. Each channel's oldest waiting item shows here.",
            "channels",
            stretch=1,
        )
        self.breaches = _Section(
            "Breaches this hour",
            ["Item", "Was due", "Replied", "Assigned"],
            "No breach this hour: every item due since the hour began was answered in time.",
            "breaches",
        )
        for section in (self.held, self.channels, self.breaches):
            section.table.itemSelectionChanged.connect(self._update_actions)
            section.table.doubleClicked.connect(lambda _index, s=section: self._open(s))

        self.reassign_action = QAction("&Reassign…", self)
        self.reassign_action.setShortcut(QKeySequence("Ctrl+R"))
        self.reassign_action.setStatusTip("Give the selected item to a colleague or back to the pool")
        self.reassign_action.triggered.connect(self.reassign_selected)
        self.release_action = QAction("Re&lease claim…", self)
        self.release_action.setShortcut(QKeySequence("Ctrl+L"))
        self.release_action.setStatusTip("End the selected claim (a machine that went away): the item is free again")
        self.release_action.triggered.connect(self.release_selected)
        self.refresh_action = QAction("Re&fresh", self)
        self.refresh_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Refresh))
        self.refresh_action.triggered.connect(self.request_refresh)
        close_action = QAction("&Close", self)
        close_action.setShortcuts([QKeySequence(QKeySequence.StandardKey.Close), QKeySequence("Esc")])
        close_action.triggered.connect(self.close)
        for action in (self.reassign_action, self.release_action, self.refresh_action, close_action):
            self.addAction(action)
        menu = self.menuBar().addMenu("&Team")
        menu.addActions([self.reassign_action, self.release_action, self.refresh_action])
        menu.addSeparator()
        menu.addAction(close_action)

        self.reassign_button = QPushButton("&Reassign…")
        self.reassign_button.clicked.connect(self.reassign_action.trigger)
        self.reassign_button.setToolTip("Reassign the selected item (Ctrl+R)")
        self.release_button = QPushButton("Re&lease claim…")
        self.release_button.clicked.connect(self.release_action.trigger)
        self.release_button.setToolTip("Release the selected claim (Ctrl+L)")
        actions = QHBoxLayout()
        actions.addWidget(self.status_label, 1)
        actions.addWidget(self.reassign_button)
        actions.addWidget(self.release_button)

        # Wide: the four sections at a glance, two by two. Narrow (an 800x600 screen): one tab each, full width.
        self._top = QSplitter(Qt.Orientation.Horizontal)
        self._bottom = QSplitter(Qt.Orientation.Horizontal)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self._top)
        split.addWidget(self._bottom)
        for s in (self._top, self._bottom, split):
            s.setChildrenCollapsible(False)
            s.setHandleWidth(6)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("supervisorTabs")
        self.tabs.setDocumentMode(True)
        self._layouts = QStackedWidget()
        self._layouts.addWidget(split)
        self._layouts.addWidget(self.tabs)
        self._compact: bool | None = None
        self._place(compact=False)
        for n, section in enumerate(self.sections, start=1):  # Ctrl+1…4: straight to a section, tabs or not
            shortcut = QShortcut(QKeySequence(f"Ctrl+{n}"), self)
            shortcut.activated.connect(lambda s=section: self.focus_section(s))

        body = QWidget()
        body.setObjectName("supervisorBody")
        layout = QVBoxLayout(body)
        layout.setContentsMargins(10, 8, 10, 10)
        layout.setSpacing(8)
        layout.addLayout(tiles)
        layout.addLayout(actions)
        layout.addWidget(self._layouts, 1)
        self.setCentralWidget(body)
        self.setMinimumSize(640, 440)
        self.resize(1100, 720)
        self.restyle()
        self._update_actions()

    # -- layout ------------------------------------------------------------------------------------------------
    @property
    def sections(self) -> tuple[_Section, _Section, _Section, _Section]:
        return (self.people, self.held, self.channels, self.breaches)

    @property
    def compact(self) -> bool:
        """One tab per section (narrow windows) rather than two by two."""
        return bool(self._compact)

    def _place(self, *, compact: bool) -> None:
        """Put the sections two by two (wide) or one tab each (narrow); moving a widget keeps its state."""
        if compact == self._compact:
            return
        self._compact = compact
        if compact:
            for section in self.sections:
                self.tabs.addTab(section, section.title.text())
                section.title.hide()  # the tab says it
            self._layouts.setCurrentWidget(self.tabs)
        else:
            for splitter, pair in (
                (self._top, (self.people, self.held)),
                (self._bottom, (self.channels, self.breaches)),
            ):
                for section in pair:
                    splitter.addWidget(section)
                    section.title.show()
                    section.show()  # a tab that was not the current one comes back hidden
                splitter.setStretchFactor(0, 3)
                splitter.setStretchFactor(1, 2)
            self._layouts.setCurrentIndex(0)
        self._name_tabs()

    def _name_tabs(self) -> None:
        if not self._compact:
            return
        for section in self.sections:
            index = self.tabs.indexOf(section)
            rows = section.table.rowCount() if section.stack.currentWidget() is section.table else 0
            self.tabs.setTabText(index, f"{section.title.text()} ({rows})" if rows else section.title.text())

    def focus_section(self, section: _Section) -> None:
        """Bring a section forward (its tab when narrow) and put the keyboard in its table."""
        if self._compact:
            self.tabs.setCurrentWidget(section)
        if section.stack.currentWidget() is not section.table:
            return  # nothing to walk: the section says what to expect
        section.table.setFocus(Qt.FocusReason.ShortcutFocusReason)
        if section.table.currentRow() < 0 and section.table.rowCount():
            section.table.selectRow(0)

    @override
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place(compact=event.size().width() < COMPACT_WIDTH)

    # -- theme -------------------------------------------------------------------------------------------------
    @Slot()
    def restyle(self) -> None:
        """Follow the app's light or dark theme (the main window tells us when it switches)."""
        self.setStyleSheet(supervisor_stylesheet())
        if self._snapshot is not None:  # colours painted in code (stale, unanswered) follow the theme too
            for section in (self.people, self.held, self.channels, self.breaches):
                section.table.setRowCount(0)
            self.show_snapshot(self._snapshot)

    # -- refreshing --------------------------------------------------------------------------------------------
    def _on_team_change(self, _change: object) -> None:
        with contextlib.suppress(RuntimeError):  # the window was deleted meanwhile
            self._relay.arrived.emit()

    @Slot()
    def request_refresh(self) -> None:
        """Refresh soon: now if the last one started a second ago or more, else when that second is over."""
        if not self.isVisible():
            return
        self._dirty = True
        if self._task is not None or self._throttle.isActive():
            return
        wait = MIN_REFRESH_S - (time.monotonic() - self._last_start)
        if wait <= 0:
            self._start_refresh()
        else:
            self._throttle.start(max(1, int(wait * 1000)))

    @Slot()
    def _start_refresh(self) -> None:
        if self._task is not None or not self._dirty:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop runs (a test without one): nothing can be asked of the server
            return
        self._dirty = False
        self._last_start = time.monotonic()
        self._task = loop.create_task(self._view.snapshot(), name="supervisor-snapshot")
        self._task.add_done_callback(self._on_snapshot_done)

    def _on_snapshot_done(self, task: asyncio.Task[SupervisorSnapshot]) -> None:
        if not isValid(self):  # the window was deleted while the server answered
            return
        self._task = None
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.info("supervisor view: %s", error)
            self._error = str(error)
            self._show_status()
        else:
            self._error = ""
            self.show_snapshot(task.result())
        if self._dirty:
            self.request_refresh()

    def show_snapshot(self, snap: SupervisorSnapshot) -> None:
        """Show one snapshot (everything on the window comes from it)."""
        self._snapshot = snap
        now = snap.at
        ids = [h.mention_id for h in snap.held if h.mention_id is not None]
        ids += [c.oldest_mention_id for c in snap.channels if c.oldest_mention_id is not None]
        labels = dict(self._labels(ids)) if self._labels is not None and ids else {}
        known = {h.item_key: h.mention_id for h in snap.held} | {
            c.oldest_item: c.oldest_mention_id for c in snap.channels if c.oldest_item is not None
        }

        def name(key: str, mention_id: int | None) -> str:
            return labels.get(mention_id, item_label(key)) if mention_id is not None else item_label(key)

        on_shift, online = len(snap.on_shift), len(snap.online)
        self.tiles["on_shift"].set(str(on_shift))
        self.tiles["online"].set(str(online))
        self.tiles["waiting"].set(f"{snap.waiting:,}")
        wait = snap.expected_wait
        self.tiles["wait"].set(wait.short() if wait.known else "—")
        self.tiles["breaches"].set(str(len(snap.breaches)), "breached" if snap.breaches else "")
        self.tiles["first_response"].set(duration_text(snap.first_response_s))
        self.tiles["net_easy"].set(net_easy_text(snap.net_easy))

        agents = sorted(snap.agents, key=lambda a: (not a.on_shift, not a.online, a.name.lower()))
        shown = [a for a in agents if a.on_shift or a.online or a.holding or a.replies]
        self.people.fill(
            [
                [
                    a.name + ("" if a.role == "agent" else f" ({a.role})"),
                    presence_text(a.on_shift, a.online, a.on_shift_since, now),
                    str(a.holding) if a.holding else "—",
                    str(a.replies) if a.replies else "—",
                    duration_text(a.first_response_s),
                    net_easy_text(a.net_easy),
                ]
                for a in shown
            ],
            [None] * len(shown),
        )
        held = sorted(snap.held, key=lambda h: (not h.stale, -h.age_s))
        self.held.fill(
            [
                [
                    name(h.item_key, h.mention_id),
                    h.holder,
                    claim_age(0, h.age_s) + (" · stale" if h.stale else ""),
                ]
                for h in held
            ],
            [_Row(h.item_key, h.mention_id, h.holder, h.stale) for h in held],
            warn=[h.stale for h in held],
        )
        waiting = list(snap.channels)
        self.channels.fill(
            [
                [
                    channel_label(c.channel),
                    name(c.oldest_item, c.oldest_mention_id) if c.oldest_item else "Nothing waiting",
                    duration_text(c.oldest_wait_s) if c.oldest_wait_s is not None else "—",
                    str(c.replies) if c.replies else "—",
                    duration_text(c.first_response_s),
                    net_easy_text(c.net_easy),
                ]
                for c in waiting
            ],
            [_Row(c.oldest_item, c.oldest_mention_id) if c.oldest_item else None for c in waiting],
        )
        breaches = sorted(snap.breaches, key=lambda b: b.due_at)
        self.breaches.fill(
            [
                [
                    name(b.item_key, known.get(b.item_key)),
                    local_time(b.due_at, now=now),
                    local_time(b.answered_at, now=now) if b.answered_at is not None else "Not yet",
                    b.assigned_to or "The pool",
                ]
                for b in breaches
            ],
            [_Row(b.item_key, known.get(b.item_key)) for b in breaches],
            warn=[b.answered_at is None for b in breaches],
        )
        self._show_status()
        self._name_tabs()
        self._update_actions()
        self.refreshed.emit()

    def _show_status(self) -> None:
        snap = self._snapshot
        if self._error:
            kept = f" Showing the figures of {local_time(snap.at, now=self._clock.now())}." if snap else ""
            error = self._error.rstrip(".")
            self.status_label.setText(f"{error}.{kept}")  # the team's errors say what and why in plain words
            state = "error"
        elif snap is None:
            self.status_label.setText("Reading the team's queue…")
            state = ""
        elif not snap.on_shift and not snap.held and not snap.waiting:
            self.status_label.setText(
                "Quiet: nobody is on shift and nothing waits. Figures fill in as agents start shifts and answer."
            )
            state = ""
        else:
            since = local_time(snap.shift_since, now=snap.at)
            self.status_label.setText(
                f"Updated {time.strftime('%H:%M:%S', time.localtime(snap.at))} · shift figures since {since}"
                f" · {count(len(snap.held), 'claim')} live"
            )
            state = ""
        if self.status_label.property("state") != state:
            self.status_label.setProperty("state", state)
            self.status_label.style().unpolish(self.status_label)
            self.status_label.style().polish(self.status_label)

    @property
    def snapshot(self) -> SupervisorSnapshot | None:
        """The snapshot on screen, or None before the first one arrived."""
        return self._snapshot

    def status_text(self) -> str:
        return self.status_label.text()

    # -- actions -----------------------------------------------------------------------------------------------
    def _current(self) -> _Row | None:
        focused = self.focusWidget()
        sections = (self.held, self.channels, self.breaches)
        for section in sections:
            if focused is section.table and section.selected_row() is not None:
                return section.selected_row()
        for section in sections:
            row = section.selected_row()
            if row is not None:
                return row
        return None

    @Slot()
    def _update_actions(self) -> None:
        row = self._current()
        self.reassign_action.setEnabled(row is not None)
        self.release_action.setEnabled(row is not None and row.holder is not None)
        self.reassign_button.setEnabled(self.reassign_action.isEnabled())
        self.release_button.setEnabled(self.release_action.isEnabled())

    def _open(self, section: _Section) -> None:
        row = section.selected_row()
        if row is not None and row.mention_id is not None:
            self.open_requested.emit(row.mention_id)

    def _members(self) -> list[str]:
        snap = self._snapshot
        if snap is None:
            return []
        agents = sorted(snap.agents, key=lambda a: (not a.on_shift, not a.online, a.name.lower()))
        return [a.name for a in agents]

    def _label(self, row: _Row) -> str:
        if row.mention_id is not None and self._labels is not None:
            found = self._labels([row.mention_id]).get(row.mention_id)
            if found:
                return found
        return item_label(row.item_key)

    @Slot()
    def reassign_selected(self) -> ReassignDialog | None:
        """Ask to whom the selected item goes, then write the ``reassigned`` event as this supervisor."""
        row = self._current()
        if row is None or self.pending_dialog is not None:
            return None
        dialog = ReassignDialog(self._label(row), self._members(), row.holder, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def done(result: int) -> None:
            self.pending_dialog = None
            if result == QDialog.DialogCode.Accepted:
                to, note = dialog.target(), dialog.note()
                where = to if to is not None else "the pool"
                self._run(self._view.reassign(row.item_key, to, note), f"Reassigned {self._label(row)} to {where}.")

        dialog.finished.connect(done)
        self.pending_dialog = dialog
        dialog.open()  # never exec() (STYLE B2)
        return dialog

    @Slot()
    def release_selected(self) -> QMessageBox | None:
        """Ask first, then release the selected claim as this supervisor (a ``claim_broken`` event)."""
        row = self._current()
        if row is None or row.holder is None or self.pending_dialog is not None:
            return None
        label = self._label(row)
        why = (
            f"{row.holder}'s machine stopped renewing it."
            if row.stale
            else f"{row.holder} may still be writing a reply: they will be told their claim was released."
        )
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Release claim",
            f"Release {row.holder}'s claim on {label}?",
            QMessageBox.StandardButton.NoButton,
            self,
        )
        box.setObjectName("releaseQuestion")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setInformativeText(f"{why} The item goes back to the queue, and its history names you.")
        release = box.addButton("Release", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(release)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def done(_result: int) -> None:
            self.pending_dialog = None
            if box.clickedButton() is release:
                self._run(self._release(row.item_key, label), "")

        box.finished.connect(done)
        self.pending_dialog = box
        box.open()
        return box

    async def _release(self, item_key: str, label: str) -> str:
        holder = await self._view.release_stale(item_key)
        return f"Released {holder}'s claim on {label}." if holder else f"Nobody held {label} any more."

    def _run(self, work: Coroutine[Any, Any, object], message: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            work.close()
            return
        task = loop.create_task(self._act(work, message), name="supervisor-action")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _act(self, work: Coroutine[Any, Any, object], message: str) -> None:
        self.status_label.setText("Writing to the team…")
        try:
            result = await work
        except Exception as exc:  # the team's errors are in plain words (TeamRefused, TeamUnavailable)
            log.info("supervisor action failed: %s", exc)
            if not isValid(self):
                return
            self.status_label.setText(str(exc))
            self.status_label.setProperty("state", "error")
            self.status_label.style().unpolish(self.status_label)
            self.status_label.style().polish(self.status_label)
            self.acted.emit(str(exc), False)
            return
        if not isValid(self):
            return
        text = result if isinstance(result, str) and result else message
        self.statusBar().showMessage(text, 8000)
        self.acted.emit(text, True)
        self._dirty = True
        self._last_start = -MIN_REFRESH_S  # the supervisor's own action shows at once
        self.request_refresh()

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @override
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._steady.start()
        self.request_refresh()

    @override
    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._steady.stop()
        self._throttle.stop()

    @override
    def closeEvent(self, event: QCloseEvent) -> None:
        self._steady.stop()
        self._throttle.stop()
        if self._task is not None:
            self._task.cancel()
        super().closeEvent(event)


def supervisor_role(role: str) -> bool:
    """Whether View → Supervisor… is offered: supervisors and owners (PostgreSQL enforces it either way)."""
    return role in ("supervisor", "owner")


@runtime_checkable
class SupervisedTeam(Protocol):
    """The running team as View → Supervisor… needs it (``TeamService``; the window's test teams lack it)."""

    @property
    def member(self) -> str: ...
    def status(self) -> TeamStatusLike: ...
    def subscribe(self, listener: Callable[[Any], None]) -> None: ...
    def supervisor(self) -> SupervisorPort: ...


class SupervisorLauncher(QObject):
    """View → Supervisor… (Ctrl+Shift+U) in a team's main window, shown to supervisors and owners only; one window
    for the session, made on first use, following the main window's theme."""

    def __init__(
        self,
        window: QMainWindow,
        team: SupervisedTeam,
        clock: Clock,
        *,
        labels: Labels | None = None,
        open_item: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(window)
        self._main = window
        self._team = team
        self._clock = clock
        self._labels = labels
        self._open_item = open_item
        self.window: SupervisorWindow | None = None
        self.action = QAction("S&upervisor…", window)
        self.action.setObjectName("team_supervisor")
        self.action.setShortcut(QKeySequence("Ctrl+Shift+U"))
        self.action.setStatusTip("The team's queue now: who is on shift, who holds what, waits, breaches, figures")
        self.action.triggered.connect(self.open)
        window.addAction(self.action)
        menus = [m for m in window.menuBar().findChildren(QMenu) if m.title() == "&View"]
        menu = menus[0] if menus else window.menuBar().addMenu("&View")
        menu.addSeparator()
        menu.addAction(self.action)
        self._relay = _Relay(self)
        self._relay.arrived.connect(self.update_role)
        team.subscribe(self._on_team_change)
        self.update_role()

    def _on_team_change(self, _change: object) -> None:
        with contextlib.suppress(RuntimeError):  # the main window was deleted meanwhile
            self._relay.arrived.emit()

    @Slot()
    def update_role(self) -> None:
        """Offer the window to supervisors and owners only (the role the team server gave this login)."""
        allowed = supervisor_role(self._team.status().role)
        self.action.setVisible(allowed)
        self.action.setEnabled(allowed)

    @Slot()
    def open(self) -> SupervisorWindow | None:
        if not self.action.isEnabled():
            return None
        if self.window is None:
            self.window = SupervisorWindow(
                self._team.supervisor(), self._clock, subscribe=self._team.subscribe, labels=self._labels,
                member=self._team.member, parent=self._main,
            )  # fmt: skip
            if self._open_item is not None:
                self.window.open_requested.connect(self._open_item)
        self.window.restyle()
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()
        return self.window
