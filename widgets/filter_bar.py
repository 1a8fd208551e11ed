"""The queue's view switcher, filter menu and removable filter chips; emits the QueueQuery to show."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QTabBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from console.model import MentionKind
from console.queue import QueueQuery, QueueView
from console.triage import PRIORITY_LABELS, Priority
from widgets.search_box import SearchBox
from widgets.theme import channel_label

VIEW_LABELS: dict[QueueView, str] = {
    QueueView.OPEN: "Open",
    QueueView.BREACHED: "Breached",
    QueueView.WAITING: "Waiting on customer",
    QueueView.FOLLOW_UPS: "Follow-ups due",
    QueueView.RESOLVED_TODAY: "Resolved today",
    QueueView.ALL: "All",
}

#: What each view's order is, for the panel heading.
VIEW_ORDER_HINTS: dict[QueueView, str] = {
    QueueView.OPEN: "Nearest deadline first",
    QueueView.BREACHED: "Longest overdue first",
    QueueView.WAITING: "Longest wait first",
    QueueView.FOLLOW_UPS: "Promised time, soonest first",
    QueueView.RESOLVED_TODAY: "Latest first",
    QueueView.ALL: "Newest first",
}

KIND_LABELS: dict[MentionKind, str] = {MentionKind.PUBLIC: "Public", MentionKind.DIRECT: "Direct message"}

#: Tags offered in the filter menu (the most used); the rest through search.
MENU_TAGS = 15


class FilterKey(StrEnum):
    CHANNEL = "channel"
    ACCOUNT = "account"
    PRIORITY = "priority"
    TAG = "tag"
    KIND = "kind"
    NEWCOMER = "newcomer"


#: One chip: which filter and which of its values.
Chip = tuple[FilterKey, object]


class FilterSource(Protocol):
    """What the menus offer (QueueService)."""

    def accounts(self) -> list[tuple[int, str, str]]: ...

    def known_tags(self, prefix: str = "") -> list[str]: ...


def with_filter(query: QueueQuery, key: FilterKey, value: object) -> QueueQuery:
    """``query`` with this filter value added (newcomer: replaced)."""
    match key:
        case FilterKey.CHANNEL:
            return dataclasses.replace(query, channels=query.channels | {str(value)})
        case FilterKey.ACCOUNT:
            assert isinstance(value, int)
            return dataclasses.replace(query, account_ids=query.account_ids | {value})
        case FilterKey.PRIORITY:
            assert isinstance(value, int)
            return dataclasses.replace(query, priorities=query.priorities | {value})
        case FilterKey.TAG:
            return dataclasses.replace(query, tags=query.tags | {str(value)})
        case FilterKey.KIND:
            return dataclasses.replace(query, kinds=query.kinds | {MentionKind(str(value))})
        case FilterKey.NEWCOMER:
            return dataclasses.replace(query, newcomer=bool(value))


def without_filter(query: QueueQuery, key: FilterKey, value: object) -> QueueQuery:
    """``query`` with this filter value removed."""
    match key:
        case FilterKey.CHANNEL:
            return dataclasses.replace(query, channels=query.channels - {str(value)})
        case FilterKey.ACCOUNT:
            return dataclasses.replace(query, account_ids=query.account_ids - {value})
        case FilterKey.PRIORITY:
            return dataclasses.replace(query, priorities=query.priorities - {value})
        case FilterKey.TAG:
            return dataclasses.replace(query, tags=query.tags - {str(value)})
        case FilterKey.KIND:
            return dataclasses.replace(query, kinds=query.kinds - {MentionKind(str(value))})
        case FilterKey.NEWCOMER:
            return dataclasses.replace(query, newcomer=None)


def chips_of(query: QueueQuery) -> list[Chip]:
    """Every active filter value, in a stable order (the search text is shown in its box, not as a chip)."""
    chips: list[Chip] = []
    chips += [(FilterKey.CHANNEL, c) for c in sorted(query.channels)]
    chips += [(FilterKey.ACCOUNT, a) for a in sorted(query.account_ids)]
    chips += [(FilterKey.PRIORITY, p) for p in sorted(query.priorities)]
    chips += [(FilterKey.TAG, t) for t in sorted(query.tags)]
    chips += [(FilterKey.KIND, k.value) for k in sorted(query.kinds)]
    if query.newcomer is not None:
        chips.append((FilterKey.NEWCOMER, query.newcomer))
    return chips


class ChipWidget(QFrame):
    """A rounded "Priority: Urgent ×" label; the × removes the filter."""

    removed = Signal()

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filterChip")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 1, 2, 1)
        layout.setSpacing(2)
        self._label = QLabel(text)
        self._label.setTextFormat(Qt.TextFormat.PlainText)
        self._label.setObjectName("filterChipText")
        layout.addWidget(self._label)
        self.remove_button = QToolButton()
        self.remove_button.setObjectName("filterChipRemove")
        self.remove_button.setText("×")
        self.remove_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.remove_button.setToolTip(f"Remove the filter {text}")
        self.remove_button.setAccessibleName(f"Remove filter {text}")
        self.remove_button.clicked.connect(self.removed)
        layout.addWidget(self.remove_button)
        self.setAccessibleName(f"Filter {text}")

    def text(self) -> str:
        return self._label.text()


class FilterBar(QWidget):
    """View buttons (Ctrl+1…6), a Filter menu, the search box and a row of removable chips."""

    #: The query to show changed (view, a filter or the search text).
    query_changed = Signal(object)

    def __init__(self, source: FilterSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filterBar")
        self._source = source
        self._query = QueueQuery()
        self._accounts: dict[int, tuple[str, str]] = {}

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 6)
        layout.setSpacing(6)
        self._tabs = QTabBar()
        self._tabs.setObjectName("viewTabs")
        self._tabs.setAccessibleName("Queue views")
        self._tabs.setDrawBase(False)
        self._tabs.setExpanding(False)
        self._tabs.setUsesScrollButtons(True)
        self._tabs.setElideMode(Qt.TextElideMode.ElideNone)
        self._tabs.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout.addWidget(self._tabs)
        top = QHBoxLayout()
        top.setContentsMargins(10, 0, 10, 0)
        top.setSpacing(6)
        layout.addLayout(top)

        self._view_group = QActionGroup(self)
        self._view_group.setExclusive(True)
        self.view_actions: dict[QueueView, QAction] = {}
        for number, view in enumerate(QueueView, start=1):
            action = QAction(VIEW_LABELS[view], self)
            action.setCheckable(True)
            action.setShortcut(QKeySequence(f"Ctrl+{number}"))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.setToolTip(f"{VIEW_LABELS[view]} (Ctrl+{number})")
            action.setData(view.value)
            action.triggered.connect(self._on_view_action_triggered)
            self._view_group.addAction(action)
            self.addAction(action)
            tab = self._tabs.addTab(VIEW_LABELS[view])
            self._tabs.setTabToolTip(tab, f"{VIEW_LABELS[view]} (Ctrl+{number})")
            self._tabs.setTabData(tab, view.value)
            self.view_actions[view] = action
        self.view_actions[QueueView.OPEN].setChecked(True)
        self._tabs.currentChanged.connect(self._on_tabs_current_changed)

        self._filter_button = QToolButton()
        self._filter_button.setObjectName("filterButton")
        self._filter_button.setText("Filter")
        self._filter_button.setToolTip("Filter by channel, account, priority, tag, kind or newcomer")
        self._filter_button.setAccessibleName("Add a filter")
        self._filter_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self._filter_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self._menu = QMenu(self._filter_button)
        self._menu.aboutToShow.connect(self._on_menu_about_to_show)
        self._filter_button.setMenu(self._menu)
        self.search_box = SearchBox()
        self.search_box.search_changed.connect(self._on_search_changed)
        top.addWidget(self.search_box, 1)
        top.addWidget(self._filter_button)

        self._chip_row = QWidget()
        self._chip_row.setObjectName("chipRow")
        self._chip_layout = QHBoxLayout(self._chip_row)
        self._chip_layout.setContentsMargins(10, 0, 10, 0)
        self._chip_layout.setSpacing(6)
        layout.addWidget(self._chip_row)
        self._chip_widgets: list[ChipWidget] = []
        self._clear_button = QToolButton()
        self._clear_button.setObjectName("clearFilters")
        self._clear_button.setText("Clear filters")
        self._clear_button.setAccessibleName("Clear all filters")
        self._clear_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self._clear_button.clicked.connect(self.clear_filters)
        self._rebuild_chips()

    # ------------------------------------------------------------------ public API
    @property
    def query(self) -> QueueQuery:
        return self._query

    def set_query(self, query: QueueQuery) -> None:
        """Show ``query`` (buttons, chips, search text) and emit it when it changed."""
        if query == self._query:
            return
        self._query = query
        self.view_actions[query.view].setChecked(True)
        self._tabs.blockSignals(True)
        self._tabs.setCurrentIndex(list(QueueView).index(query.view))
        self._tabs.blockSignals(False)
        if self.search_box.applied != query.search:
            self.search_box.set_search(query.search)
        self._rebuild_chips()
        self.query_changed.emit(query)

    def set_view(self, view: QueueView) -> None:
        self.set_query(dataclasses.replace(self._query, view=view))

    def add_filter(self, key: FilterKey, value: object) -> None:
        self.set_query(with_filter(self._query, key, value))

    def remove_filter(self, key: FilterKey, value: object) -> None:
        self.set_query(without_filter(self._query, key, value))

    @Slot()
    def clear_filters(self) -> None:
        """Drop every filter chip (the view and the search stay)."""
        self.set_query(QueueQuery(view=self._query.view, search=self._query.search))

    def chip_texts(self) -> list[str]:
        return [chip.text() for chip in self._chip_widgets]

    def chip_widgets(self) -> list[ChipWidget]:
        return list(self._chip_widgets)

    def chip_text(self, key: FilterKey, value: object) -> str:
        match key:
            case FilterKey.CHANNEL:
                return f"Channel: {channel_label(str(value))}"
            case FilterKey.ACCOUNT:
                if not self._accounts:
                    self._load_accounts()
                _kind, handle = self._accounts.get(int(value), ("", str(value)))  # type: ignore[call-overload]
                return f"Account: @{handle}"
            case FilterKey.PRIORITY:
                return f"Priority: {PRIORITY_LABELS.get(Priority(int(value)), value)}"  # type: ignore[call-overload]
            case FilterKey.TAG:
                return f"Tag: {value}"
            case FilterKey.KIND:
                return KIND_LABELS[MentionKind(str(value))]
            case FilterKey.NEWCOMER:
                return "First contact" if value else "Returning customer"

    def menu(self) -> QMenu:
        """The Filter menu (rebuilt each time it opens)."""
        self._on_menu_about_to_show()
        return self._menu

    # ------------------------------------------------------------------ internals
    def _load_accounts(self) -> None:
        self._accounts = {account_id: (kind, handle) for account_id, kind, handle in self._source.accounts()}

    def _rebuild_chips(self) -> None:
        for chip in self._chip_widgets:
            self._chip_layout.removeWidget(chip)
            chip.deleteLater()
        self._chip_layout.removeWidget(self._clear_button)
        while self._chip_layout.count():
            self._chip_layout.takeAt(0)
        self._chip_widgets = []
        chips = chips_of(self._query)
        for key, value in chips:
            chip = ChipWidget(self.chip_text(key, value))
            chip.removed.connect(self._remover(key, value))
            self._chip_layout.addWidget(chip)
            self._chip_widgets.append(chip)
        if chips:
            self._chip_layout.addWidget(self._clear_button)
        self._chip_layout.addStretch(1)
        self._chip_row.setVisible(bool(chips))

    def _remover(self, key: FilterKey, value: object) -> Callable[[], None]:
        return lambda: self.remove_filter(key, value)

    def _adder(self, key: FilterKey, value: object) -> Callable[[], None]:
        return lambda: self.add_filter(key, value)

    def _add_item(self, menu: QMenu, text: str, key: FilterKey, value: object, active: bool) -> None:
        action = menu.addAction(text)
        action.setCheckable(True)
        action.setChecked(active)
        action.triggered.connect(self._remover(key, value) if active else self._adder(key, value))

    @Slot()
    def _on_menu_about_to_show(self) -> None:
        self._menu.clear()
        self._load_accounts()
        active = set(chips_of(self._query))
        channels = self._menu.addMenu("Channel")
        for kind in sorted({kind for kind, _handle in self._accounts.values()}):
            self._add_item(channels, channel_label(kind), FilterKey.CHANNEL, kind, (FilterKey.CHANNEL, kind) in active)
        accounts = self._menu.addMenu("Account")
        for account_id, (kind, handle) in sorted(self._accounts.items()):
            text = f"@{handle} ({channel_label(kind)})"
            self._add_item(accounts, text, FilterKey.ACCOUNT, account_id, (FilterKey.ACCOUNT, account_id) in active)
        priorities = self._menu.addMenu("Priority")
        for level in Priority:
            key = (FilterKey.PRIORITY, int(level))
            self._add_item(priorities, PRIORITY_LABELS[level], FilterKey.PRIORITY, int(level), key in active)
        tags = self._menu.addMenu("Tag")
        known = self._source.known_tags()[:MENU_TAGS]
        for tag in known:
            self._add_item(tags, tag, FilterKey.TAG, tag, (FilterKey.TAG, tag) in active)
        if not known:
            tags.addAction("No tags yet").setEnabled(False)
        kinds = self._menu.addMenu("Kind")
        for kind, label in KIND_LABELS.items():
            self._add_item(kinds, label, FilterKey.KIND, kind.value, (FilterKey.KIND, kind.value) in active)
        newcomer = self._menu.addMenu("Newcomer")
        for value, label in ((True, "First contact"), (False, "Returning customer")):
            self._add_item(newcomer, label, FilterKey.NEWCOMER, value, (FilterKey.NEWCOMER, value) in active)
        if active:
            self._menu.addSeparator()
            self._menu.addAction("Clear filters").triggered.connect(self.clear_filters)

    @Slot()
    def _on_view_action_triggered(self) -> None:
        action = self._view_group.checkedAction()
        view = QueueView(str(action.data()))
        if view is self._query.view:
            self.query_changed.emit(self._query)  # the current view again: re-read it
        else:
            self.set_view(view)

    @Slot(int)
    def _on_tabs_current_changed(self, index: int) -> None:
        if index >= 0:
            self.set_view(QueueView(str(self._tabs.tabData(index))))

    def tab_bar(self) -> QTabBar:
        return self._tabs

    @Slot(str)
    def _on_search_changed(self, text: str) -> None:
        self.set_query(dataclasses.replace(self._query, search=text))
