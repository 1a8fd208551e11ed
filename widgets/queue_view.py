"""The queue table: fixed-height rows, pill delegates, and the one SLA timer that repaints visible rows only."""

from __future__ import annotations

import math

from PySide6.QtCore import (
    QAbstractItemModel,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QCursor, QHideEvent, QKeyEvent, QPainter, QPaintEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget
from typing_extensions import override

from console.ports import Clock
from console.queue import QueueQuery
from console.queue import QueueView as QueueViewKind
from widgets.dark import text as theme_text
from widgets.delegates import ChannelDelegate, CustomerDelegate, PlainTextDelegate, SlaDelegate
from widgets.queue_delegates import HighlightDelegate, ReplyStateDelegate, TagsDelegate
from widgets.queue_model import Col, QueueModel, Role
from widgets.theme import SECONDARY_TEXT

ROW_HEIGHT = 32
TICK_MS = 1_000
#: Preferred widths; the preview column takes whatever is left.
COLUMN_WIDTHS: dict[Col, int] = {
    Col.CHANNEL: 84,  # the channel's dot and the DM badge; wider columns add the channel's name
    Col.CUSTOMER: 170,
    Col.TAGS: 96,
    Col.RECEIVED: 84,
    Col.SLA: 104,
    Col.REPLY: 70,
}
#: Columns that give way, least important last, when the queue is too narrow for all (the SLA never does).
OPTIONAL_COLUMNS = (Col.REPLY, Col.TAGS, Col.RECEIVED)
#: The message column keeps at least this much room before optional columns show.
MIN_PREVIEW = 140
#: The customer column shrinks to this at most (the name elides) when even the core columns are tight.
MIN_CUSTOMER = 110
#: The channel column's least width: its dot and the DM badge.
MIN_CHANNEL = 62


#: What an empty view says when no search or filter narrows it.
EMPTY_VIEW_TEXT: dict[QueueViewKind, str] = {
    QueueViewKind.OPEN: "Nothing open. New mentions appear here as they arrive.",
    QueueViewKind.BREACHED: "Nothing breached. Well done.",
    QueueViewKind.WAITING: "Nothing is waiting on a customer.",
    QueueViewKind.FOLLOW_UPS: "No follow-up is due.",
    QueueViewKind.RESOLVED_TODAY: "Nothing resolved today yet.",
    QueueViewKind.ALL: "No items yet. Sync an account, or add a post by hand.",
}


def empty_view_text(query: QueueQuery) -> str:
    """Why a view with no rows is empty, and what to do about it."""
    search = query.search.strip()
    if search:
        return f"No item matches “{search}”. Esc clears the search."
    filtered = query.channels or query.account_ids or query.priorities or query.tags or query.kinds
    if filtered or query.newcomer is not None:
        return "No item in this view matches the filters. Clear filters shows the whole view."
    return EMPTY_VIEW_TEXT.get(query.view, "Nothing here.")


class QueueView(QTableView):
    """Shows a QueueModel. Owns the SLA tick timer (STYLE B5 rule 2) and the band-change timer (rule 4)."""

    #: The current item changed: its mention id, or None when nothing is current.
    mention_selected = Signal(object)
    #: Enter/Return or a double click on an item: its mention id.
    mention_activated = Signal(int)
    #: One SLA tick happened at this time (epoch seconds); other widgets update their clocks from it.
    ticked = Signal(float)
    #: Escape in the queue while a search narrows it: the window clears the search.
    search_clear_requested = Signal()
    #: The viewport painted for the first time (start-up benchmarks).
    first_painted = Signal()

    def __init__(self, clock: Clock, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._clock = clock
        self._painted = False
        self._band_checked_at = clock.now()
        self._minute = -1
        self._scroll_anchor: int | None = None  # scroll position to keep while rows are inserted above

        self._tick_timer = QTimer(self)
        self._tick_timer.setObjectName("slaTickTimer")
        self._tick_timer.setSingleShot(True)  # re-armed each tick, aligned to the clock's next whole second
        self._tick_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._tick_timer.timeout.connect(self._on_tick_timer_timeout)

        self._band_timer = QTimer(self)
        self._band_timer.setObjectName("slaBandTimer")
        self._band_timer.setSingleShot(True)
        self._band_timer.timeout.connect(self._on_band_timer_timeout)

        self.setObjectName("queueView")
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setCornerButtonEnabled(False)
        self.setSortingEnabled(False)  # the order comes from SQL (STYLE B5)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setMouseTracking(True)

        vertical = self.verticalHeader()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(ROW_HEIGHT)
        vertical.setMinimumSectionSize(ROW_HEIGHT)
        vertical.hide()

        horizontal = self.horizontalHeader()
        horizontal.setHighlightSections(False)
        horizontal.setSectionsClickable(False)
        horizontal.setStretchLastSection(False)
        horizontal.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

        self._plain_delegate = PlainTextDelegate(self)
        self._sla_delegate = SlaDelegate(self)
        self._customer_delegate = CustomerDelegate(self)
        self._channel_delegate = ChannelDelegate(self)
        self.setItemDelegate(self._plain_delegate)
        self.setItemDelegateForColumn(Col.SLA, self._sla_delegate)
        self.setItemDelegateForColumn(Col.CUSTOMER, self._customer_delegate)
        self.setItemDelegateForColumn(Col.CHANNEL, self._channel_delegate)
        self._highlight_delegate = HighlightDelegate(self)
        self._tags_delegate = TagsDelegate(self)
        self._reply_delegate = ReplyStateDelegate(self)
        self.setItemDelegateForColumn(Col.PREVIEW, self._highlight_delegate)
        self.setItemDelegateForColumn(Col.TAGS, self._tags_delegate)
        self.setItemDelegateForColumn(Col.REPLY, self._reply_delegate)
        self.setAccessibleName("Queue")
        self.setAccessibleDescription("Queue items of the current view; Enter opens the conversation")

        self.doubleClicked.connect(self._on_view_double_clicked)

    # ------------------------------------------------------------------ model
    @override
    def setModel(self, model: QAbstractItemModel | None) -> None:
        if model is not None and not isinstance(model, QueueModel):
            raise TypeError("QueueView shows a QueueModel (its tick is what keeps the countdowns cheap)")
        super().setModel(model)
        header = self.horizontalHeader()
        for col in Col:
            if col is Col.PREVIEW:
                header.setSectionResizeMode(col, QHeaderView.ResizeMode.Stretch)
            else:
                header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
                header.resizeSection(col, COLUMN_WIDTHS[col])
        header.setSectionResizeMode(Col.SLA, QHeaderView.ResizeMode.Fixed)
        selection = self.selectionModel()
        if selection is not None:
            selection.currentRowChanged.connect(self._on_selection_current_row_changed)
        if model is not None:
            model.rowsAboutToBeInserted.connect(self._on_model_rows_about_to_be_inserted)
            model.rowsInserted.connect(self._on_model_rows_inserted)
            model.query_changed.connect(self._on_model_query_changed)

    def queue_model(self) -> QueueModel | None:
        model = self.model()
        return model if isinstance(model, QueueModel) else None

    def selected_mention_id(self) -> int | None:
        model = self.queue_model()
        current = self.currentIndex()
        if model is None or not current.isValid():
            return None
        return model.mention_id_at(current.row())

    def select_mention(self, mention_id: int) -> bool:
        """Make this mention the current, selected row and scroll to it; False if it is not in the queue."""
        model = self.queue_model()
        row = None if model is None else model.row_of(mention_id)
        selection = self.selectionModel()
        if model is None or row is None or selection is None:
            return False
        index = model.index(row, Col.PREVIEW)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        selection.setCurrentIndex(index, flags)
        self.scrollTo(index)
        return True

    def visible_rows(self) -> range:
        """Rows currently in the viewport (B5 rule 3): ``rowAt(0)`` .. ``rowAt(height - 1)``, -1 = last row."""
        model = self.model()
        top = self.rowAt(0)
        if model is None or top < 0:
            return range(0)
        bottom = self.rowAt(self.viewport().height() - 1)
        if bottom < 0:
            bottom = model.rowCount() - 1
        return range(top, bottom + 1)

    # ------------------------------------------------------------------ ticking
    def tick_timer(self) -> QTimer:
        return self._tick_timer

    def band_timer(self) -> QTimer:
        return self._band_timer

    def tick(self) -> None:
        """One SLA tick: the model repaints the SLA cells of the visible rows; band changes get scheduled."""
        model = self.queue_model()
        if model is None:
            return
        now = self._clock.now()
        rows = self.visible_rows()
        model.tick(now, rows)
        minute = int(now // 60)
        if minute != self._minute:
            # "Received" ages change once a minute: one repaint of what is visible, never a model-wide signal.
            self._minute = minute
            self.viewport().update()
        self._schedule_band_check(now, rows)
        self.ticked.emit(now)

    def _arm_tick_timer(self) -> None:
        # Align to the clock's next whole second, so that every countdown flips together, on the second.
        fraction = self._clock.now() % 1.0
        self._tick_timer.start(max(1, round((1.0 - fraction) * TICK_MS)))

    def _schedule_band_check(self, now: float, rows: range) -> None:
        model = self.queue_model()
        at = None if model is None else model.next_band_change(self._band_checked_at, rows)
        if at is None:
            self._band_timer.stop()
            return
        # Already past (the clock jumped, e.g. after suspend): check at the next turn of the event loop.
        self._band_timer.start(max(0, math.ceil((at - now) * 1000)))

    @Slot()
    def _on_tick_timer_timeout(self) -> None:
        self._arm_tick_timer()
        window = self.window()
        if window.isMinimized() or not self.isVisible():
            return  # Electrum's maybe_defer_update: nobody is looking
        self.tick()

    @Slot()
    def _on_band_timer_timeout(self) -> None:
        model = self.queue_model()
        if model is None:
            return
        now = self._clock.now()
        rows = self.visible_rows()
        changed = model.band_changes(self._band_checked_at, now, rows)
        self._band_checked_at = now
        if changed:
            model.refresh_rows(changed)
        self._schedule_band_check(now, rows)

    # ------------------------------------------------------------------ narrow windows
    def fit_columns(self) -> None:
        """Keep the SLA column on screen (issue 19 §10: at 800×600 it was pushed off to the right).

        The channel, customer, message and SLA columns always show; Reply, Tags and Received (in that order of
        importance) show while they fit beside a readable message column; the customer column gives way last.
        Their contents stay in the tooltips and the conversation pane.
        """
        model = self.queue_model()
        if model is None:
            return
        header = self.horizontalHeader()
        available = self.viewport().width()
        if available <= 0:
            return
        # The customer column: the agent's width when wider than the default, else the default (it gives way last).
        customer = max(header.sectionSize(Col.CUSTOMER), COLUMN_WIDTHS[Col.CUSTOMER])
        needed = COLUMN_WIDTHS[Col.CHANNEL] + header.sectionSize(Col.SLA) + customer + MIN_PREVIEW
        for col in OPTIONAL_COLUMNS:
            width = header.sectionSize(col) if not header.isSectionHidden(col) else COLUMN_WIDTHS[col]
            fits = needed + width <= available
            if fits:
                needed += width
            if header.isSectionHidden(col) == fits:
                header.setSectionHidden(col, not fits)
        channel = COLUMN_WIDTHS[Col.CHANNEL]
        if needed > available:
            customer = max(MIN_CUSTOMER, customer - (needed - available))
            needed = header.sectionSize(Col.SLA) + channel + customer + MIN_PREVIEW
        if needed > available:
            channel = max(MIN_CHANNEL, channel - (needed - available))  # the dot and the DM badge still fit
        for col, width in ((Col.CUSTOMER, customer), (Col.CHANNEL, channel)):
            if header.sectionSize(col) != width:
                header.resizeSection(col, width)

    # ------------------------------------------------------------------ events
    @override
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.fit_columns()

    @override
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._band_checked_at = self._clock.now()
        self._arm_tick_timer()

    @override
    def hideEvent(self, event: QHideEvent) -> None:
        self._tick_timer.stop()
        self._band_timer.stop()
        super().hideEvent(event)

    def empty_text(self) -> str:
        """The sentence the empty view shows ("" while it has rows): why it is empty and what to do."""
        model = self.queue_model()
        if model is None or model.rowCount() > 0:
            return ""
        return empty_view_text(model.query)

    @override
    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        text = self.empty_text()
        viewport = self.viewport()
        if text and viewport is not None:
            # An empty view says why, centred on the viewport, in the theme's secondary text (issue 19).
            painter = QPainter(viewport)
            painter.setPen(theme_text(SECONDARY_TEXT))
            area = viewport.rect().adjusted(24, 24, -24, -24)
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)
            painter.end()
        if not self._painted:
            self._painted = True
            self.first_painted.emit()

    @override
    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and event.modifiers() in (
            Qt.KeyboardModifier.NoModifier,
            Qt.KeyboardModifier.KeypadModifier,
        ):
            mention_id = self.selected_mention_id()
            if mention_id is not None:
                self.mention_activated.emit(mention_id)
                event.accept()
                return
        model = self.queue_model()
        if event.key() == Qt.Key.Key_Escape and model is not None and model.query.search.strip():
            self.search_clear_requested.emit()  # what the empty view's "Esc clears the search" promises
            event.accept()
            return
        super().keyPressEvent(event)

    def _pointer_in_viewport(self) -> bool:
        viewport = self.viewport()
        return viewport.isVisible() and viewport.rect().contains(viewport.mapFromGlobal(QCursor.pos()))

    # ------------------------------------------------------------------ slots
    @Slot(QModelIndex, int, int)
    def _on_model_rows_about_to_be_inserted(self, parent: QModelIndex, first: int, _last: int) -> None:
        """Rows don't move under the agent (issue 19 §5): remember where the rows on screen are."""
        if parent.isValid():
            return
        value = self.verticalScrollBar().value()
        top = self.rowAt(0)
        # Inserted above what the agent sees, or anywhere above the pointer while it is over the rows.
        above = top >= 0 and (first < top or (first == top and value > 0))
        pointer = self._pointer_in_viewport() and (
            (row := self.rowAt(self.viewport().mapFromGlobal(QCursor.pos()).y())) < 0 or first <= row
        )
        self._scroll_anchor = value if above or pointer else None

    @Slot()
    def _on_model_query_changed(self) -> None:
        viewport = self.viewport()
        if viewport is not None:
            viewport.update()  # the empty-view sentence names the search

    @Slot(QModelIndex, int, int)
    def _on_model_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        anchor, self._scroll_anchor = self._scroll_anchor, None
        if parent.isValid() or anchor is None:
            return
        self.updateGeometries()  # the scroll range must already include the new rows
        self.verticalScrollBar().setValue(anchor + (last - first + 1) * self.rowHeight(first))

    @Slot(QModelIndex, QModelIndex)
    def _on_selection_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.mention_selected.emit(current.data(Role.MENTION_ID) if current.isValid() else None)

    @Slot(QModelIndex)
    def _on_view_double_clicked(self, index: QModelIndex | QPersistentModelIndex) -> None:
        mention_id = index.data(Role.MENTION_ID)
        if isinstance(mention_id, int):
            self.mention_activated.emit(mention_id)
