"""The main window: queue on the left, conversation on the right, sync state and deadlines in the status bar."""

from __future__ import annotations

import asyncio
import logging
import platform
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import (
    QByteArray,
    QCoreApplication,
    QEvent,
    QObject,
    QSettings,
    QSize,
    Qt,
    QTimer,
    QUrl,
    Signal,
    Slot,
    qVersion,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QGuiApplication,
    QKeySequence,
    QResizeEvent,
    QShortcut,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from typing_extensions import override

from console.ports import Clock
from console.queue import QueueQuery
from console.queue import QueueView as QueueViewName
from console.sla.bands import format_age, format_countdown
from console.sync.health import backfill_sentence
from console.wording import count
from widgets.capacity import CapacityIndicator, CapacitySource
from widgets.claims import ClaimBanner, TeamBridge, TeamPort
from widgets.composer import Composer
from widgets.conversation import ConversationPane
from widgets.dark import ThemeFollower
from widgets.elided_label import ElidedLabel
from widgets.error_bar import ErrorBar
from widgets.health import HealthStrip, offline_text
from widgets.net_easy_panel import NetEasyPanel
from widgets.queue_model import QueueModel
from widgets.queue_view import QueueView
from widgets.screens import screen_of
from widgets.supervisor_window import SupervisedTeam, SupervisorLauncher
from widgets.survey_button import SurveyPanel, SurveySource
from widgets.theme import health_label, load_stylesheet, local_time
from widgets.thread_extras import ThreadExtrasSource
from widgets.workbench import Workbench

if TYPE_CHECKING:
    from console.keymap import KeyMap
    from console.model import SyncReport
    from console.queue import QueueService
    from console.replies.desk import ReplyDesk
    from console.sla.alerts import AlertMonitor
    from console.sync.health import HealthSnapshot
    from console.triage import Triage

log = logging.getLogger(__name__)

APP_NAME = "Care Console"
#: How long a passing note ("Opened the logs folder…") stays in the status bar.
MESSAGE_MS = 6_000
GEOMETRY_KEY = "main_window/geometry"
SPLITTER_KEY = "main_window/splitter"
HEADER_KEY = "main_window/queue_header"
DEFAULT_SIZE = (1400, 860)
#: Share of the window width that the queue gets before the user moves the splitter.
QUEUE_SHARE = 0.62
#: The queue's share in a window much narrower than the default (an 800×600 screen).
NARROW_QUEUE_SHARE = 0.5
#: The breach alert in the status bar is cut only beyond this width; the other labels give way first.
ALERT_MIN_WIDTH = 280
#: When a window is made narrow by hand, the queue keeps at least this width (or its own minimum).
QUEUE_MIN_WIDTH = 300
#: Team mode: "Take next" (the most urgent unclaimed item, claimed for us); its name in the agent's key map.
TAKE_NEXT_ACTION = "team_take_next"
TAKE_NEXT_KEYS = ("Ctrl+N",)


class FitScrollArea(QScrollArea):
    """A frameless scroll area that gives its widget all the room there is, and scrolls only below the
    widget's *minimum* size.

    WORKAROUND: ``setWidgetResizable(True)`` keeps a widget whose layout has height-for-width (word-wrapped
    labels) at its preferred height, so the pane scrolled even in a 1400×860 window.
    """

    def __init__(self, widget: QWidget, name: str, *, measure: QWidget | None = None) -> None:
        super().__init__()
        self._measure = measure if measure is not None else widget
        self.setObjectName(name)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidgetResizable(False)
        self.setWidget(widget)
        widget.installEventFilter(self)

    def _fit(self) -> None:
        widget = self.widget()
        if widget is None:
            return
        room = self.viewport().size()
        least = widget.minimumSizeHint().expandedTo(widget.minimumSize())
        width = max(room.width(), least.width())
        height = least.height()
        layout = self._measure.layout()
        if layout is not None and layout.hasHeightForWidth() and self._measure.isVisible():
            # Word-wrapped labels (the correction bar, a long customer name) need more lines when narrow. The
            # pane is measured by its page: a QStackedLayout answers its *preferred* height here instead.
            height = max(height, layout.minimumHeightForWidth(width))
        size = QSize(width, max(room.height(), height))
        if widget.size() != size:
            widget.resize(size)

    @override
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    @override
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            QTimer.singleShot(0, self, self._fit)  # after the widget's own layout took it; dropped if we go first
        return super().eventFilter(watched, event)


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
        replies: ReplyDesk | None = None,
        triage: Triage | None = None,
        alerts: AlertMonitor | None = None,
        surveys: SurveySource | None = None,
        keymap: KeyMap | None = None,
        threads: ThreadExtrasSource | None = None,
        capacity: CapacitySource | None = None,
        team: TeamPort | None = None,
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle(APP_NAME + title_suffix)
        self.setStyleSheet(load_stylesheet())
        self._theme = ThemeFollower(self)  # the dark variant when the system prefers dark (widgets/dark.py)
        self._queue = queue
        self._clock = clock
        self._settings = settings
        self._reports: dict[int, SyncReport] = {}
        self._sync_override: tuple[str, bool] | None = None
        self._offline: str | None = None  # "Offline since 14:02 · 3 replies waiting" while no channel answers

        self._model = QueueModel(queue, clock, self)
        self._view = QueueView(clock)
        self._view.setModel(self._model)
        self._pane = ConversationPane(
            queue, clock, extras=threads, replies=replies.outbox.replies if replies is not None else None
        )  # threads: the whole thread from the channel; replies: ours, inline
        self._desk = replies
        #: Ask before closing while replies wait to send (the app's window; main.py turns it on).
        self.confirm_quit_with_waiting_replies = False
        #: The agent chose "Quit anyway" with replies still waiting to send.
        self._quit_anyway = False
        self._composer = Composer(replies) if replies is not None else None
        #: Team mode (issue 22): None when solo, and then only File → Team… shows anything of it.
        self._team = team
        self._keymap = keymap
        self._team_tasks: set[asyncio.Future[None]] = set()
        self._taking_next = False
        self._error_bar = ErrorBar()
        self._health_strip = HealthStrip()
        self._workbench = Workbench(
            self, queue=queue, view=self._view, model=self._model, pane=self._pane, triage=triage, alerts=alerts,
            keymap=keymap, reply_editor=self._composer.editor if self._composer is not None else None,
            reload=lambda changed: self._reload(changed=changed), show_error=self.show_error,
        )  # fmt: skip

        self._build_layout()
        self._build_actions()
        self._build_status_bar()
        #: "Expected wait ~25 min · Post status…" in the status bar (issue 14, honest capacity).
        self._capacity = CapacityIndicator(capacity, clock, self) if capacity is not None else None
        if self._capacity is not None:
            self.statusBar().addPermanentWidget(self._capacity)
        self._workbench.build_menus(self.menuBar())
        self._workbench.heading_changed.connect(self._on_workbench_heading_changed)
        self._pane.add_section(self._workbench.customer_panel)
        self._net_easy: NetEasyPanel | None = None
        self._survey_panel = self._wire_surveys(surveys)

        self._claim_banner = self._wire_team(team)
        #: View → Supervisor… (issue 23): supervisors and owners of a team; None when solo.
        self.supervisor_launcher = self._wire_supervisor(team)

        self._view.first_painted.connect(self.first_paint)
        self._view.mention_selected.connect(self._pane.show_mention)
        self._view.mention_activated.connect(self._on_view_mention_activated)
        self._view.ticked.connect(self._on_view_ticked)
        self._view.ticked.connect(self._pane.on_tick)
        self._theme.changed.connect(self._pane.refresh)
        self._theme.changed.connect(self._on_theme_changed)
        if self._composer is not None and self._desk is not None:
            self._view.mention_selected.connect(self._composer.set_mention)
            self._composer.reply_queued.connect(self._on_composer_reply_queued)
            self._composer.draft_saved.connect(self._on_composer_draft_saved)
            self._desk.outbox.subscribe(self._on_outbox_changed)
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
        self._workbench.show_sort(self._workbench.query)  # a restored header must not show an old sort arrow

    # ------------------------------------------------------------------ building
    def _build_layout(self) -> None:
        left = QWidget()
        left.setObjectName("queuePanel")
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.setSpacing(0)
        heading = QWidget()
        heading.setObjectName("panelHeading")
        heading_layout = self._heading_layout = QHBoxLayout(heading)
        heading_layout.setContentsMargins(14, 10, 14, 10)
        title = self._panel_title = QLabel("Open")
        title.setObjectName("panelTitle")
        self._heading_count = QLabel()
        self._heading_count.setObjectName("panelCount")
        heading_layout.addWidget(title)
        heading_layout.addWidget(self._heading_count)
        heading_layout.addStretch(1)
        hint = self._panel_hint = ElidedLabel("Nearest deadline first")  # cut when narrow, never widening (§10)
        hint.setObjectName("panelHint")
        heading_layout.addWidget(hint)
        self._sync_button = QToolButton()
        self._sync_button.setObjectName("syncButton")
        self._sync_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self._sync_button.setCursor(Qt.CursorShape.PointingHandCursor)
        heading_layout.addSpacing(8)
        heading_layout.addWidget(self._sync_button)
        left_layout.addWidget(heading)
        left_layout.addWidget(self._workbench.filter_bar)
        left_layout.addWidget(self._view, 1)

        self._splitter = QSplitter(Qt.Orientation.Horizontal)
        self._splitter.setObjectName("mainSplitter")
        self._splitter.setChildrenCollapsible(False)
        self._splitter.addWidget(left)
        self._splitter.addWidget(self._conversation_panel())
        self._splitter.setStretchFactor(0, 3)
        self._splitter.setStretchFactor(1, 2)
        queue_width = round(DEFAULT_SIZE[0] * QUEUE_SHARE)
        self._splitter.setSizes([queue_width, DEFAULT_SIZE[0] - queue_width])

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._error_bar)
        layout.addWidget(self._health_strip)
        layout.addWidget(self._splitter, 1)
        self.setCentralWidget(central)
        self.fit_to_screen(*DEFAULT_SIZE)

    def _wire_surveys(self, surveys: SurveySource | None) -> SurveyPanel | None:
        """The Net Easy section under the thread (widgets/survey_button.py), when surveys are wired."""
        if surveys is None:
            return None
        panel = SurveyPanel(surveys, self._clock)
        self._pane.add_section(panel)
        self.addAction(panel.send_action)
        self._view.mention_selected.connect(panel.set_mention)
        panel.failed.connect(self.show_error)
        panel.survey_sent.connect(self._pane.refresh)
        panel.survey_scored.connect(self._pane.refresh)
        if self._workbench.triage_actions is not None:
            self._workbench.triage_actions.changed.connect(panel.on_triage_changed)
        self.net_easy_action = QAction("&Net Easy report…", self)
        self.net_easy_action.setStatusTip("Net Easy with n, interval and response rate, per channel, agent, shift")
        self.net_easy_action.triggered.connect(lambda: self._show_net_easy(surveys))
        menus = [m for m in self.menuBar().findChildren(QMenu) if m.title() == "&View"]
        if menus:
            menus[0].addAction(self.net_easy_action)
        return panel

    def _wire_team(self, team: TeamPort | None) -> ClaimBanner | None:
        """Team mode: claims in the list and the conversation, the composer's claims, Take next, the team line."""
        if team is None:
            return None
        banner = ClaimBanner(team.claims, self._clock)
        self._pane.add_banner(banner)
        self._view.mention_selected.connect(banner.set_mention)
        self._view.ticked.connect(banner.on_tick)
        self._view.ticked.connect(self._on_team_ticked)
        self._theme.changed.connect(lambda _dark: banner.restyle())
        self._model.set_claims(team.claims)
        if self._composer is not None:
            self._composer.set_team(team)
            self._composer.claim_changed.connect(self._on_team_changed)
        self._team_bridge = TeamBridge(team, self)
        self._team_bridge.changed.connect(self._on_team_bridge_changed)
        self.take_next_action = QAction("Take &next", self)
        self.take_next_action.setObjectName(TAKE_NEXT_ACTION)
        keys = self._keymap.keys(TAKE_NEXT_ACTION, TAKE_NEXT_KEYS) if self._keymap is not None else TAKE_NEXT_KEYS
        self.take_next_action.setShortcuts([QKeySequence(k) for k in keys])
        self.take_next_action.setStatusTip("Open the most urgent item nobody is answering, and hold it for you")
        self.take_next_action.triggered.connect(self._on_take_next_triggered)
        self.addAction(self.take_next_action)
        self._file_menu.insertAction(self.sla_settings_action, self.take_next_action)
        self._take_next_button = QToolButton()
        self._take_next_button.setObjectName("takeNextButton")
        self._take_next_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self._take_next_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self._take_next_button.setDefaultAction(self.take_next_action)
        shortcut = self.take_next_action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        self._take_next_button.setToolTip(f"Take next ({shortcut})" if shortcut else "Take next")
        self._heading_layout.insertWidget(self._heading_layout.indexOf(self._sync_button), self._take_next_button)
        self._health_strip.set_team(team.status(), self._clock.now())
        return banner

    @property
    def claim_banner(self) -> ClaimBanner | None:
        """Team mode: "Sam is replying · 40 s" above the conversation."""
        return self._claim_banner

    @property
    def team(self) -> TeamPort | None:
        """The running team (``Runtime.team``), or None when solo; the shift actions hand over through it."""
        return self._team

    def _wire_supervisor(self, team: TeamPort | None) -> SupervisorLauncher | None:
        """View → Supervisor… when the team can give the supervisor view (widgets/supervisor_window.py)."""
        running: object = team  # a TeamService also gives supervisor(); the test teams do not
        if not isinstance(running, SupervisedTeam):
            return None
        launcher = SupervisorLauncher(self, running, self._clock, labels=self.item_labels, open_item=self.show_item)
        self._theme.changed.connect(lambda _dark: launcher.window.restyle() if launcher.window else None)
        return launcher

    def item_labels(self, mention_ids: Sequence[int]) -> dict[int, str]:
        """``@ana · where is my order…`` for items this copy holds (the team windows name items with it)."""
        rows = self._queue.rows_by_id(mention_ids)
        return {mid: f"@{row.author_handle} · {' '.join(row.text.split())[:60]}" for mid, row in rows.items()}

    def show_item(self, mention_id: int) -> None:
        """Bring the window up on an item (from the supervisor or shift windows), in the Open view if hidden."""
        self._reload(changed=[mention_id])
        if self._model.row_of(mention_id) is None:
            self._workbench.filter_bar.set_query(QueueQuery())
        if not self._view.select_mention(mention_id):
            self.statusBar().showMessage("That item is not in this copy's queue yet; it shows after the next sync.")
            return
        self.raise_()
        self.activateWindow()

    @Slot(object)
    def _on_team_bridge_changed(self, items: frozenset[int]) -> None:
        """The team changed items (a colleague's status change, reply, new mention) or claims: show it."""
        if items:
            self._reload(changed=items)
        self._on_team_changed()

    @Slot()
    def _on_team_changed(self) -> None:
        """Claims or the team's state changed: repaint only the rows whose claim changed, the banner, the line."""
        if self._team is None:
            return
        self._model.refresh_claims()
        if self._claim_banner is not None:
            self._claim_banner.refresh()
        self._health_strip.set_team(self._team.status(), self._clock.now())

    @Slot(float)
    def _on_team_ticked(self, now: float) -> None:
        if self._team is not None:
            self._health_strip.set_team(self._team.status(), now)

    @Slot()
    def _on_take_next_triggered(self) -> None:
        if self._team is None or self._taking_next:
            return
        self._taking_next = True
        self.statusBar().showMessage("Taking the next item…", MESSAGE_MS)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop runs (a test without one): nothing can be asked of the server
            self._taking_next = False
            return
        task = loop.create_task(self._take_next(self._team), name="take-next")
        self._team_tasks.add(task)
        task.add_done_callback(self._team_tasks.discard)

    async def _take_next(self, team: TeamPort) -> None:
        try:
            mention_id = await team.claims.take_next()
        except Exception as exc:  # the service says why in plain words
            log.warning("take next failed", exc_info=True)
            self._taking_next = False
            self.statusBar().showMessage(f"Could not take the next item: {exc}", MESSAGE_MS)
            return
        self._taking_next = False
        if mention_id is None:
            self.statusBar().showMessage(
                "Nothing left to take: every open item is answered or a colleague is on it.", MESSAGE_MS
            )
            return
        self.open_taken(mention_id)

    def open_taken(self, mention_id: int) -> None:
        """Show the item Take next claimed for us, in the Open view when the current view hides it, and put the
        cursor in the reply box."""
        self._reload(changed=[mention_id])
        if self._model.row_of(mention_id) is None:
            self._workbench.filter_bar.set_query(QueueQuery())
        if not self._view.select_mention(mention_id):
            self.statusBar().showMessage("The item taken is not in the queue yet; it shows after the next sync.")
            return
        if self._composer is not None:
            self._composer.adopt_claim(mention_id)
            self._composer.editor.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self._on_team_changed()
        self.statusBar().showMessage("Yours: nobody else was answering this one.", MESSAGE_MS)

    def _show_net_easy(self, surveys: SurveySource) -> None:
        """Open (or raise) the non-modal Net Easy report."""
        if self._net_easy is None:
            self._net_easy = NetEasyPanel(surveys, self._clock, self)
        else:
            self._net_easy.reload()
        self._net_easy.show()
        self._net_easy.raise_()

    @property
    def survey_panel(self) -> SurveyPanel | None:
        return self._survey_panel

    def _conversation_panel(self) -> QWidget:
        """The conversation pane, with the reply composer under it when replies are wired.

        Each sits in a scroll area: in a small window, or when the composer opens its template list, privacy
        warning or correction bar, a part scrolls instead of squeezing the customer's message to a line, letting
        widgets overlap, or growing the window past the screen (issue 19 §10).
        """
        pane = FitScrollArea(self._pane, "conversationScroll", measure=self._pane.page())
        if self._composer is None:
            return pane
        panel = QSplitter(Qt.Orientation.Vertical)
        panel.setObjectName("conversationSplitter")
        panel.setChildrenCollapsible(False)
        panel.addWidget(pane)
        panel.addWidget(FitScrollArea(self._composer, "composerScroll"))
        panel.setStretchFactor(0, 3)
        panel.setStretchFactor(1, 2)
        return panel

    def fit_to_screen(self, width: int, height: int) -> None:
        """Resize to ``width``×``height``, or to the screen's free area when that is smaller (800×600 laptops)."""
        screen = screen_of(self)  # never self.screen(): the GC could then delete the QScreen (widgets/screens.py)
        if screen is not None:
            free = screen.availableGeometry()
            width, height = min(width, free.width()), min(height, free.height())
        self.resize(width, height)
        # A narrow window shares its width more evenly: the conversation and composer need room too.
        share = QUEUE_SHARE if width >= DEFAULT_SIZE[0] * 0.85 else NARROW_QUEUE_SHARE
        self._splitter.setSizes([round(width * share), width - round(width * share)])

    @override
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().width() < event.oldSize().width():
            # After the splitter has taken its new width (it shrinks both sides by their stretch factors).
            QTimer.singleShot(0, self, self._keep_conversation_usable)

    def _keep_conversation_usable(self) -> None:
        """In a window made narrow by hand, give the conversation and composer side the width they need.

        A 1400-wide window shrunk to 800x600 kept the splitter at about 500/300: the composer scrolled sideways
        and Send was off to the right (found walking the shift). The queue keeps QUEUE_MIN_WIDTH or its minimum.
        """
        sizes = self._splitter.sizes()
        queue = self._splitter.widget(0)
        if len(sizes) != 2 or sum(sizes) <= 0 or queue is None:
            return
        total = sum(sizes)
        need = min(self._conversation_min_width(), total - max(QUEUE_MIN_WIDTH, queue.minimumSizeHint().width()))
        if sizes[1] < need:
            self._splitter.setSizes([total - need, need])

    def _conversation_min_width(self) -> int:
        """The width the right side needs to show the composer (or the pane) without scrolling sideways."""
        content: QWidget = self._composer if self._composer is not None else self._pane
        scroll_bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        return content.minimumSizeHint().width() + scroll_bar + 2

    def show_fitted(self) -> None:
        """Show the window; maximized when it fills the screen's free area (an 800x600 screen).

        Maximized, the window manager fits the window *with its title bar* to the free area. Shown at the free
        area's size, the frame pushed the status bar (the breach alerts) below the screen's edge (found walking
        the shift under Xvfb at 800x600).
        """
        screen = screen_of(self)
        free = screen.availableGeometry() if screen is not None else None
        if free is not None and (self.width() >= free.width() or self.height() >= free.height()):
            self.showMaximized()
        else:
            self.show()

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
        #: The Open view (Ctrl+1); the other views (Ctrl+2…6) are in the View menu (widgets/workbench.py).
        self.open_queue_action = self._workbench.filter_bar.view_actions[QueueViewName.OPEN]
        #: Opens the SLA policy dialog (connected by main.py to widgets/sla_settings.open_sla_settings).
        self.sla_settings_action = QAction("SLA &policy…", self)
        #: Open the Accounts dialog and the manual intake (connected by main.py; issue 6).
        self.accounts_action = QAction("&Accounts…", self)
        self.manual_intake_action = QAction("Add a post by &hand…", self)
        self.manual_intake_action.setShortcut(QKeySequence("Ctrl+Shift+N"))
        #: File → Team… (issue 22): join, host, invite, leave, and where the team stands; connected by main.py.
        self.team_action = QAction("&Team…", self)
        self.team_action.setObjectName("app_team")
        self.team_action.setStatusTip("Share one queue with colleagues: join or host a team, see its state")
        #: File → Settings… (Ctrl+,); connected by main.py to widgets/settings_dialog.open_settings_dialog.
        self.settings_action = QAction("Se&ttings…", self)
        self.settings_action.setObjectName("app_settings")
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.settings_action.setStatusTip("SLA, surveys, report cost, notifications, shortcuts, theme, data folder")
        self.about_action = QAction(f"&About {APP_NAME}", self)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(self._on_about_action_triggered)

        menu_bar = self.menuBar()
        file_menu = self._file_menu = menu_bar.addMenu("&File")
        file_menu.addAction(self.sync_action)
        file_menu.addAction(self.sla_settings_action)
        file_menu.addAction(self.accounts_action)
        file_menu.addAction(self.manual_intake_action)
        file_menu.addAction(self.team_action)
        file_menu.addSeparator()
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        menu_bar.addMenu("&View")  # filled by the workbench
        help_menu = menu_bar.addMenu("&Help")
        self.help_menu = help_menu
        help_menu.addAction(self.about_action)

        self._sync_button.setDefaultAction(self.sync_action)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        status.setObjectName("statusBar")
        status.setSizeGripEnabled(False)
        # Long texts (a sync error, the next deadline) are cut with "…" and shown whole in the tooltip: on a
        # small screen they must neither push the window wider nor cut a word in half (issue 19 §10).
        self._sync_label = ElidedLabel("Not synced yet", min_width=60)
        self._sync_label.setObjectName("syncStatus")
        self._count_label = QLabel()
        self._count_label.setObjectName("queueSize")
        # The breach alert keeps its whole text (up to ALERT_MIN_WIDTH) in a narrow window: the sync, capacity
        # and shift labels are cut first (found walking the shift at 800x600: "4 breached · Nex…").
        self._deadline_label = ElidedLabel(min_width=ALERT_MIN_WIDTH)
        self._deadline_label.setObjectName("nextDeadline")
        status.addWidget(self._sync_label, 1)
        # No stretch on the alert: while a message (the "press E again" question, "Opened the logs folder")
        # hides the sync label, a stretching alert took the whole bar and left the message no room at all.
        status.addPermanentWidget(self._deadline_label)
        status.addPermanentWidget(self._count_label)
        self._outbox_label = ElidedLabel(min_width=90)  # "1 reply waiting…": the number stays when cut
        self._outbox_label.setObjectName("outboxStatus")
        status.addPermanentWidget(self._outbox_label)
        self._outbox_label.hide()

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
    def theme(self) -> ThemeFollower:
        return self._theme

    @property
    def workbench(self) -> Workbench:
        return self._workbench

    @property
    def capacity(self) -> CapacityIndicator | None:
        return self._capacity

    @property
    def health_strip(self) -> HealthStrip:
        return self._health_strip

    @Slot(object)
    def on_health(self, snapshot: HealthSnapshot) -> None:
        """Channel health changed: update the strip, and the status bar while offline."""
        now = self._clock.now()
        self._health_strip.set_snapshot(snapshot, now)
        self._offline = offline_text(snapshot, now=now)
        self._update_sync_status()

    @property
    def error_bar(self) -> ErrorBar:
        return self._error_bar

    @property
    def composer(self) -> Composer | None:
        return self._composer

    def outbox_status_text(self) -> str:
        return self._outbox_label.text() if not self._outbox_label.isHidden() else ""

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
        if self._survey_panel is not None:
            self._survey_panel.refresh()  # an answer may have arrived

    @Slot()
    def refresh_queue(self) -> None:
        """Re-read the queue order and every cached row."""
        self._reload(changed=None)

    @Slot(str)
    def show_error(self, message: str, details: str = "") -> None:
        self._error_bar.show_message(message, details)

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

    def _update_outbox_status(self) -> None:
        waiting = self._desk.outbox.waiting_count() if self._desk is not None else 0
        self._outbox_label.setText(f"{waiting} {'reply' if waiting == 1 else 'replies'} waiting to send")
        self._outbox_label.setVisible(waiting > 0)

    def _update_status(self) -> None:
        self._update_outbox_status()
        if self._capacity is not None:
            self._capacity.refresh()
        count = self._model.rowCount()
        self._count_label.setText(self._workbench.count_text())
        self._heading_count.setText(f"{count:,}{'+' if self._model.canFetchMore() else ''}")
        self._update_next_deadline(self._clock.now())

    def _update_next_deadline(self, now: float) -> None:
        # The whole open queue, never the view or search on screen (issue 19 §12: a search hid an amber item).
        breached, upcoming = self._queue.deadline_overview(now)
        parts = []
        if breached:
            parts.append(f"{breached:,} breached")
        if upcoming is not None:
            parts.append(f"Next deadline in {format_countdown(upcoming.due_at, now)} (@{upcoming.author_handle})")
        elif not breached:
            parts.append("No running deadlines")
        self._deadline_label.setText(" · ".join(parts))
        self._set_state(self._deadline_label, "breached" if breached else "ok")

    def _update_sync_status(self) -> None:
        if self._sync_override is not None:
            return
        if self._offline is not None:
            self._set_sync_label(self._offline, ok=False)
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
        if report.catching_up:  # a backlog arrives batch by batch (issue 5: visible progress)
            text = f"Catching up · {count(report.caught_up, 'message')} so far…"
        if report.backfill is not None:  # a first sync reads back to its horizon (issue 20, sync 1)
            sentence = backfill_sentence(report.backfill, day=lambda epoch: local_time(epoch, now=now))
            text += f" · {sentence[0].upper()}{sentence[1:]}"
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
        header = self._settings.value(HEADER_KEY)
        if isinstance(header, QByteArray) and not header.isEmpty():
            self._view.horizontalHeader().restoreState(header)

    def _save_state(self) -> None:
        if self._settings is None:
            return
        self._settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        self._settings.setValue(SPLITTER_KEY, self._splitter.saveState())
        self._settings.setValue(HEADER_KEY, self._view.horizontalHeader().saveState())
        self._settings.sync()

    @override
    def closeEvent(self, event: QCloseEvent) -> None:
        if self._ask_before_quitting():
            event.ignore()
            return
        # Work started from the window stops before main.py closes the database and the HTTP clients (STYLE B2);
        # a thread fetch finishing after that wrote to a closed database (found by the robot, issue 19).
        self._pane.cancel_fetches()
        if self._composer is not None:
            self._composer.release_claim()  # colleagues need not wait for the claim to expire
        for task in list(self._team_tasks):
            task.cancel()
        if self._survey_panel is not None:
            self._survey_panel.cancel_pending()
        self._save_state()
        super().closeEvent(event)

    def _ask_before_quitting(self) -> bool:
        """Replies still waiting to leave: say so before quitting (non-modal, never exec()); True while asking.

        "Quit anyway" closes the window again; the replies stay queued and leave at the next start (issue 19 #6).
        """
        if not self.confirm_quit_with_waiting_replies or self._quit_anyway or self._desk is None:
            return False
        waiting = self._desk.outbox.waiting_count()
        if waiting == 0:
            return False
        box = QMessageBox(self)
        box.setObjectName("quitWithWaitingReplies")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Replies not sent yet")
        replies = "1 reply has" if waiting == 1 else f"{waiting} replies have"
        box.setText(f"{replies} not been sent yet.")
        box.setInformativeText(
            "They are kept and leave the next time Care Console runs and the channel can be reached. "
            "Replies to posts added by hand wait for you to post them."
        )
        quit_button = box.addButton("Quit anyway", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Keep working", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(quit_button)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(_result: int) -> None:
            if box.clickedButton() is quit_button:
                self._quit_anyway = True
                self.close()

        box.finished.connect(answered)
        box.open()
        return True

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

    def _on_outbox_changed(self, mention_id: int) -> None:
        self._update_outbox_status()
        if self._capacity is not None:
            self._capacity.refresh()  # a sent reply moves the pace
        # A sent reply meets a deadline, which moves the item in the queue (it is sorted by the nearest one):
        # reload the order as well as the row (a paged query, well under a millisecond), keeping the selection.
        # _reload also refreshes the pane when it shows this item (deadlines, the reply events in the history).
        self._reload(changed=[mention_id])
        if self._composer is not None and self._composer.mention_id == mention_id:
            self._composer.refresh_replies()
        if self._survey_panel is not None and self._pane.mention_id == mention_id:
            # A reply marked as sent by hand makes the item surveyable now, not after the next sync.
            self._survey_panel.refresh()

    @Slot(int)
    def _on_composer_draft_saved(self, mention_id: int) -> None:
        self._model.refresh_rows({mention_id})

    @Slot(int)
    def _on_composer_reply_queued(self, _reply_id: int) -> None:
        self._update_outbox_status()
        if self._composer is not None and self._composer.mention_id is not None:
            self._model.refresh_rows({self._composer.mention_id})

    @Slot()
    def _on_back_shortcut_activated(self) -> None:
        self._view.setFocus(Qt.FocusReason.ShortcutFocusReason)

    @Slot()
    def _on_sync_action_triggered(self) -> None:
        self.sync_requested.emit()

    @Slot(bool)
    def _on_theme_changed(self, _dark: bool) -> None:
        self._health_strip.restyle()  # its colours are set in code, not by the window's style sheet

    @Slot(str, str)
    def _on_workbench_heading_changed(self, title: str, hint: str) -> None:
        self._panel_title.setText(title)
        self._panel_hint.setText(hint)

    def about_text(self) -> str:
        """What Help → About says: the app's version (set by main.py on the application), Qt's and Python's."""
        version = QCoreApplication.applicationVersion() or "unknown"
        return (
            f"{APP_NAME} {version}\n\nOne queue for social customer care, live SLA countdowns, human replies.\n\n"
            f"Version {version} · Qt {qVersion()} · PySide6 {pyside_version} · Python {platform.python_version()}"
        )

    def open_folder(self, path: Path, *, what: str, opener: Callable[[QUrl], bool] | None = None) -> bool:
        """Show ``path`` in the file manager; when none opens, say where it is and put the path on the clipboard.

        Issue 19 §16: "Open logs folder" used to do nothing at all when no file manager answered.
        """
        opened = (opener or QDesktopServices.openUrl)(QUrl.fromLocalFile(str(path)))
        if opened:
            self.statusBar().showMessage(f"Opened the {what} in the file manager", MESSAGE_MS)
            return True
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(str(path))
        box = QMessageBox(
            QMessageBox.Icon.Information,
            f"Open the {what}",
            f"No file manager opened. The {what} is:\n\n{path}\n\nThe path is on the clipboard.",
            QMessageBox.StandardButton.Ok,
            self,
        )
        box.setObjectName("folderMessage")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # never exec() (STYLE B2)
        return False

    @Slot()
    def _on_about_action_triggered(self) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Information, f"About {APP_NAME}", self.about_text(), QMessageBox.StandardButton.Ok, self
        )
        box.setObjectName("aboutBox")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # never exec() (STYLE B2)
