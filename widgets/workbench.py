"""The agent's keyboard-first workbench around the queue: views and filters, search, triage, help, alerts.

MainWindow builds one and wires it in with a few lines; everything about issue 7's queue work lives here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QMenuBar, QWidget

from console.keymap import KeyMap
from console.queue import QueueQuery, SortColumn
from console.triage import Change, TriageField, close_question
from widgets.conversation_extras import CustomerPanel
from widgets.filter_bar import VIEW_LABELS, VIEW_ORDER_HINTS, FilterBar
from widgets.queue_model import Col
from widgets.shortcut_help import ShortcutHelp, reserved_key_refusal
from widgets.tag_editor import TagEditor
from widgets.tray import TrayAlerts
from widgets.triage_actions import CONFIRM_MS, TriageActions, TriageCommand

if TYPE_CHECKING:
    from console.queue import QueueService
    from console.sla.alerts import AlertMonitor
    from console.triage import Triage
    from widgets.conversation import ConversationPane
    from widgets.queue_model import QueueModel
    from widgets.queue_view import QueueView as QueueTable

#: How long a "Resolved · Ctrl+Z to undo" message stays in the status bar.
MESSAGE_MS = 6_000

#: Columns whose header sorts the queue (the Reply column does not).
SORTABLE_COLUMNS: dict[Col, SortColumn] = {
    Col.CHANNEL: SortColumn.CHANNEL,
    Col.CUSTOMER: SortColumn.CUSTOMER,
    Col.PREVIEW: SortColumn.MESSAGE,
    Col.TAGS: SortColumn.TAGS,
    Col.RECEIVED: SortColumn.RECEIVED,
    Col.SLA: SortColumn.SLA,
}
#: The heading's hint while sorted: (what, (ascending, descending)).
_SORT_WORDS: dict[SortColumn, tuple[str, tuple[str, str]]] = {
    SortColumn.CHANNEL: ("channel", ("A–Z", "Z–A")),
    SortColumn.CUSTOMER: ("customer", ("A–Z", "Z–A")),
    SortColumn.MESSAGE: ("message", ("A–Z", "Z–A")),
    SortColumn.TAGS: ("tags", ("A–Z", "Z–A")),
    SortColumn.RECEIVED: ("received", ("newest first", "oldest first")),
    SortColumn.SLA: ("deadline", ("nearest first", "furthest first")),
    SortColumn.PRIORITY: ("priority", ("most urgent first", "least urgent first")),
}


class Workbench(QObject):
    """Owns the filter bar, the triage and navigation actions, the cheat sheet, the tag editor and the tray."""

    #: The panel heading should read (title, hint), e.g. ("Breached", "Longest overdue first").
    heading_changed = Signal(str, str)

    def __init__(
        self,
        window: QMainWindow,
        *,
        queue: QueueService,
        view: QueueTable,
        model: QueueModel,
        pane: ConversationPane,
        reload: Callable[[set[int] | None], None],
        show_error: Callable[[str], None],
        triage: Triage | None = None,
        alerts: AlertMonitor | None = None,
        keymap: KeyMap | None = None,
        reply_editor: QWidget | None = None,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._queue = queue
        self._view = view
        self._model = model
        self._pane = pane
        self._reload = reload
        self._show_error = show_error
        self._help: ShortcutHelp | None = None
        self._reply_editor = reply_editor
        self._keymap = keymap if keymap is not None else KeyMap()
        self._defaults: dict[str, list[str]] = {}
        self._tag_editor: TagEditor | None = None

        self.filter_bar = FilterBar(queue)
        self.filter_bar.query_changed.connect(self._on_filter_bar_query_changed)
        self.filter_bar.search_box.finished.connect(self._focus_queue)
        self._view.search_clear_requested.connect(self._clear_search)
        for action in self.filter_bar.view_actions.values():
            window.addAction(action)

        self.customer_panel = CustomerPanel(queue)
        self.customer_panel.conversation_requested.connect(self._on_customer_conversation_requested)
        view.mention_selected.connect(self._on_view_mention_selected)
        view.horizontalHeader().setSectionsClickable(True)
        view.horizontalHeader().sectionClicked.connect(self._on_header_section_clicked)

        self.nav_actions = self._build_navigation()
        self.triage_actions: TriageActions | None = None
        if triage is not None:
            self.triage_actions = TriageActions(
                triage, view.selected_mention_id, window, close_question=self._close_question
            )
            self.triage_actions.confirmation_requested.connect(self._on_triage_confirmation_requested)
            for command, action in self.triage_actions.actions.items():
                (window if command is TriageCommand.UNDO else view).addAction(action)
            self.triage_actions.changed.connect(self._on_triage_changed)
            self.triage_actions.undone.connect(self._on_triage_undone)
            self.triage_actions.failed.connect(show_error)
            self.triage_actions.tag_requested.connect(self.open_tag_editor)
        self.tray: TrayAlerts | None = None
        if alerts is not None:
            self.tray = TrayAlerts(alerts, window)
            view.ticked.connect(self.tray.on_tick)
            self.tray.show_requested.connect(self._on_tray_show_requested)
        for name, action in self.filter_bar.view_actions.items():
            action.setObjectName(f"view_{name.value}")
        self._apply_keymap()

    # ------------------------------------------------------------------ editable shortcuts
    def keyed_actions(self) -> list[QAction]:
        """Every action whose keys the agent can change (named, so that the choice survives a restart)."""
        return [a for a in self._known_actions() if a.objectName()]

    def _apply_keymap(self) -> None:
        for action in self.keyed_actions():
            default = [k.toString() for k in action.shortcuts()]
            self._defaults[action.objectName()] = default
            keys = self._keymap.keys(action.objectName(), default)
            if any(reserved_key_refusal(k) for k in keys):
                keys = default  # saved before Escape was refused (issue 19 §2): Escape must keep cancelling
            if keys != default:
                action.setShortcuts([QKeySequence(k) for k in keys])

    def rebind(self, action: QAction, keys: str) -> str | None:
        """Give ``action`` the shortcut ``keys`` ("" clears it) and save it; returns why not, or None."""
        sequence = QKeySequence(keys)
        if keys and sequence.isEmpty():
            return f"“{keys}” is not a key combination"
        if (reserved := reserved_key_refusal(keys)) is not None:
            return reserved
        if not sequence.isEmpty():
            for other in self.keyed_actions() + [a for a in self._window.actions() if a.shortcut()]:
                if other is not action and any(s == sequence for s in other.shortcuts()):
                    return f"{sequence.toString()} is already the shortcut of “{other.text().replace('&', '')}”"
        action.setShortcuts([sequence] if not sequence.isEmpty() else [])
        self._keymap.set(action.objectName(), [sequence.toString()] if not sequence.isEmpty() else [])
        return None

    # ------------------------------------------------------------------ building
    def _action(
        self, name: str, text: str, keys: tuple[str, ...], slot: Callable[[], None], *, widget: QWidget
    ) -> QAction:
        action = QAction(text, self._window)
        action.setObjectName(f"nav_{name}")
        action.setShortcuts([QKeySequence(k) for k in keys])
        context = Qt.ShortcutContext.WidgetShortcut if widget is self._view else Qt.ShortcutContext.WindowShortcut
        action.setShortcutContext(context)
        action.triggered.connect(slot)
        widget.addAction(action)
        return action

    def _build_navigation(self) -> dict[str, QAction]:
        view, window = self._view, self._window
        table: list[tuple[str, str, str, Callable[[], None], QWidget]] = [
            ("next", "Next item", "J", self.select_next, view),
            ("previous", "Previous item", "K", self.select_previous, view),
            ("reply", "Reply", "R", self._open_current, view),
            ("search", "Search", "Ctrl+F", self.focus_search, window),
            ("search_key", "Search", "/", self.focus_search, view),
            ("queue", "Back to the queue", "Ctrl+L", self._focus_queue, window),
            ("help", "Keyboard shortcuts", "F1", self.show_help, window),
            ("help_key", "Keyboard shortcuts", "?", self.show_help, view),
        ]
        return {name: self._action(name, text, (key,), slot, widget=w) for name, text, key, slot, w in table}

    def build_menus(
        self, menu_bar: QMenuBar, *, view_menu_title: str = "&View", help_menu_title: str = "&Help"
    ) -> None:
        """Add the views to the View menu, an Item menu with every triage action, and the cheat sheet to Help."""
        menus = {m.title(): m for m in menu_bar.findChildren(QMenu) if m.parent() is menu_bar}
        view_menu = menus.get(view_menu_title) or menu_bar.addMenu(view_menu_title)
        for action in self.filter_bar.view_actions.values():
            view_menu.addAction(action)
        view_menu.addSeparator()
        view_menu.addAction(self.nav_actions["search"])
        if self.tray is not None:
            view_menu.addAction(self.tray.dnd_action)
        if self.triage_actions is not None:
            item_menu = QMenu("&Item", menu_bar)
            item_menu.addAction(self.nav_actions["next"])
            item_menu.addAction(self.nav_actions["previous"])
            item_menu.addAction(self.nav_actions["reply"])
            item_menu.addSeparator()
            for command, action in self.triage_actions.actions.items():
                if command is TriageCommand.PRIORITY_URGENT or command is TriageCommand.UNDO:
                    item_menu.addSeparator()
                item_menu.addAction(action)
            help_menu = menus.get(help_menu_title)
            if help_menu is not None:  # keep Help last
                menu_bar.insertMenu(help_menu.menuAction(), item_menu)
            else:
                menu_bar.addMenu(item_menu)
        help_menu = menus.get(help_menu_title) or menu_bar.addMenu(help_menu_title)
        first = help_menu.actions()[0] if help_menu.actions() else None
        if first is not None:
            help_menu.insertAction(first, self.nav_actions["help"])
        else:
            help_menu.addAction(self.nav_actions["help"])

    def shortcut_groups(self) -> list[tuple[str, list[QAction]]]:
        """Every action with a shortcut, for the cheat sheet."""
        nav = self.nav_actions
        groups: list[tuple[str, list[QAction]]] = [
            ("Queue", [nav["next"], nav["previous"], nav["reply"], nav["search_key"], nav["search"], nav["queue"]]),
            ("Views", list(self.filter_bar.view_actions.values())),
        ]
        if self.triage_actions is not None:
            groups.append(("Item", list(self.triage_actions.actions.values())))
        window_actions = [a for a in self._window.actions() if a.shortcut() and a not in self._known_actions()]
        groups.append(("App", [*window_actions, nav["help"], nav["help_key"]]))
        return groups

    def _known_actions(self) -> set[QAction]:
        known = set(self.nav_actions.values()) | set(self.filter_bar.view_actions.values())
        if self.triage_actions is not None:
            known |= set(self.triage_actions.actions.values())
        return known

    # ------------------------------------------------------------------ public
    @property
    def query(self) -> QueueQuery:
        return self.filter_bar.query

    def heading(self) -> tuple[str, str]:
        query = self.filter_bar.query
        title = VIEW_LABELS[query.view]
        hint = VIEW_ORDER_HINTS[query.view]
        if query.sort is not None:
            label, (up, down) = _SORT_WORDS[query.sort]
            hint = f"Sorted by {label}, {down if query.descending else up}"
        if query.search.strip():
            hint = f"Matching “{query.search.strip()}” · {hint.lower()}"
        return title, hint

    def count_text(self) -> str:
        """``"4 open"`` for the Open view, ``"12 in Breached"`` otherwise; ``+`` while more can be fetched."""
        count = self._model.rowCount()
        more = "+" if self._model.canFetchMore() else ""
        query = self.filter_bar.query
        plain = dataclasses.replace(query, sort=None, descending=False) == QueueQuery()
        if plain:
            return f"{count:,}{more} open"
        return f"{count:,}{more} in {VIEW_LABELS[query.view]}"

    @Slot()
    def select_next(self) -> None:
        self._step(1)

    @Slot()
    def select_previous(self) -> None:
        self._step(-1)

    @Slot()
    def focus_search(self) -> None:
        self.filter_bar.search_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_bar.search_box.selectAll()

    @Slot()
    def show_help(self) -> None:
        """The cheat sheet (non-modal)."""
        if self._help is not None:
            self._help.raise_()
            return
        self._help = ShortcutHelp(self.shortcut_groups(), self._window, rebind=self.rebind)
        self._help.finished.connect(self._on_help_finished)
        self._help.open()

    def help_dialog(self) -> ShortcutHelp | None:
        return self._help

    @Slot(int)
    def open_tag_editor(self, mention_id: int) -> None:
        rows = self._queue.rows_by_id([mention_id])
        if mention_id not in rows:
            return
        tags = tuple(t for t in rows[mention_id].tags.split(",") if t)
        editor = TagEditor(mention_id, tags, self._queue.known_tags, self._window)
        editor.tags_chosen.connect(self._on_tag_editor_tags_chosen)
        editor.finished.connect(self._on_tag_editor_finished)
        self._tag_editor = editor
        editor.open()

    def tag_editor(self) -> TagEditor | None:
        return self._tag_editor

    # ------------------------------------------------------------------ internals
    def _step(self, delta: int) -> None:
        current = self._view.currentIndex()
        rows = self._model.rowCount()
        if rows == 0:
            return
        row = 0 if not current.isValid() else min(max(current.row() + delta, 0), rows - 1)
        if row == rows - 1 and self._model.canFetchMore():
            self._model.fetchMore()
        mention_id = self._model.mention_id_at(row)
        if mention_id is not None:
            self._view.select_mention(mention_id)

    def _after_change(self, mention_ids: set[int], message: str) -> None:
        """Re-read the view; when the changed item left it, the item that took its place becomes current."""
        selected = self._view.selected_mention_id()
        row = self._view.currentIndex().row()
        self._reload(mention_ids)
        if selected is not None and self._model.row_of(selected) is None and self._model.rowCount() > 0:
            next_id = self._model.mention_id_at(min(max(row, 0), self._model.rowCount() - 1))
            if next_id is not None:
                self._view.select_mention(next_id)
        self._window.statusBar().showMessage(message, MESSAGE_MS)

    @Slot()
    def _focus_queue(self) -> None:
        self._view.setFocus(Qt.FocusReason.ShortcutFocusReason)

    @Slot()
    def _clear_search(self) -> None:
        """Escape in the queue clears an active search, as Escape in the search box does."""
        box = self.filter_bar.search_box
        box.clear()
        box.apply_now()

    @Slot()
    def _open_current(self) -> None:
        """R: write the reply (the composer, when there is one); else open the conversation."""
        mention_id = self._view.selected_mention_id()
        if mention_id is None:
            return
        if self._reply_editor is not None and self._reply_editor.isVisible() and self._reply_editor.isEnabled():
            self._reply_editor.setFocus(Qt.FocusReason.ShortcutFocusReason)
        else:
            self._view.mention_activated.emit(mention_id)

    def show_sort(self, query: QueueQuery) -> None:
        """The header's arrow shows the clicked column's order; none while the view keeps its own order."""
        header = self._view.horizontalHeader()
        column = next((col for col, sort in SORTABLE_COLUMNS.items() if sort is query.sort), None)
        header.setSortIndicatorShown(column is not None)
        if column is not None:
            order = Qt.SortOrder.DescendingOrder if query.descending else Qt.SortOrder.AscendingOrder
            header.setSortIndicator(column, order)

    @Slot(int)
    def _on_header_section_clicked(self, section: int) -> None:
        """A header click sorts by that column (in SQL, STYLE B5): ascending, descending, then the view's order."""
        query = self.filter_bar.query
        sort = SORTABLE_COLUMNS.get(Col(section)) if 0 <= section < len(Col) else None
        if sort is None:
            self.show_sort(query)  # the Reply column does not sort: undo Qt's own arrow flip
            return
        if query.sort is not sort:
            wanted = dataclasses.replace(query, sort=sort, descending=False)
        elif not query.descending:
            wanted = dataclasses.replace(query, descending=True)
        else:
            wanted = dataclasses.replace(query, sort=None, descending=False)
        self.filter_bar.set_query(wanted)
        self.show_sort(wanted)

    @Slot(object)
    def _on_filter_bar_query_changed(self, query: QueueQuery) -> None:
        selected = self._view.selected_mention_id()
        self._model.set_query(query)
        if selected is None or not self._view.select_mention(selected):
            first = self._model.mention_id_at(0)
            if first is not None:
                self._view.select_mention(first)
            else:
                self._view.setCurrentIndex(self._model.index(-1, -1))
                self._pane.show_mention(None)
        self._reload(None)
        self.show_sort(query)
        self.heading_changed.emit(*self.heading())

    @Slot(object)
    def _on_view_mention_selected(self, mention_id: int | None) -> None:
        if self.triage_actions is not None and mention_id != self.triage_actions.pending_mention_id:
            self.triage_actions.cancel_confirmation()
        self.customer_panel.show_mention(mention_id, now=self._queue.clock.now())

    @Slot(int)
    def _on_customer_conversation_requested(self, mention_id: int) -> None:
        if not self._view.select_mention(mention_id):
            self._pane.show_mention(mention_id)
            self.customer_panel.show_mention(mention_id, now=self._queue.clock.now())

    @Slot(object)
    def _on_triage_changed(self, change: Change) -> None:
        undo = self.triage_actions.actions[TriageCommand.UNDO] if self.triage_actions else None
        keys = undo.shortcut().toString(QKeySequence.SequenceFormat.NativeText) if undo else ""
        self._after_change({change.mention_id}, f"{change.describe()} · {keys} to undo")

    def _close_question(self, mention_id: int) -> str:
        """Resolving an item nobody answered asks for the key again (issue 19 #4)."""
        row = self._queue.rows_by_id([mention_id]).get(mention_id)
        if row is None:
            return ""
        pending = self._queue.reply_states([mention_id]).get(mention_id)
        return close_question(
            row.author_handle, self._queue.deadlines(mention_id), pending, now=self._queue.clock.now()
        )

    @Slot(str)
    def _on_triage_confirmation_requested(self, question: str) -> None:
        self._window.statusBar().showMessage(question, CONFIRM_MS)

    @Slot(object)
    def _on_triage_undone(self, change: Change) -> None:
        self._after_change({change.mention_id}, f"Undone: {change.describe()}")
        if change.field is TriageField.STATUS:
            self._view.select_mention(change.mention_id)

    @Slot(int, list)
    def _on_tag_editor_tags_chosen(self, mention_id: int, tags: list[str]) -> None:
        if self.triage_actions is not None:
            self.triage_actions.set_tags(mention_id, tags)

    @Slot(int)
    def _on_tag_editor_finished(self, _result: int) -> None:
        self._tag_editor = None
        self._focus_queue()

    @Slot(int)
    def _on_help_finished(self, _result: int) -> None:
        self._help = None

    @Slot()
    def _on_tray_show_requested(self) -> None:
        self._window.showNormal()
        self._window.raise_()
        self._window.activateWindow()
