"""The list of unreadable channel items: what arrived, why it could not be read, when; try again or dismiss."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Protocol

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.sync.health import QuarantinedItem, RetryOutcome
from console.wording import count
from widgets.theme import channel_label, local_time

_HEADERS = ("Received", "Account", "Item", "Why it could not be read")
_INTRO = (
    "These items arrived from your channels but this version of Care Console could not read them. "
    "They were kept aside, exactly as received, and nothing else was affected. After an app update, "
    "“Try again” reads them with the new version; “Dismiss” removes the ones you have dealt with."
)


class QuarantineSource(Protocol):
    """What the dialog needs (console.sync.health.ChannelHealth provides it)."""

    def quarantined_items(self, account_id: int | None = None) -> list[QuarantinedItem]: ...

    def dismiss_quarantined(self, ids: Iterable[int]) -> int: ...

    async def retry_quarantined(self, ids: Iterable[int]) -> RetryOutcome: ...


def raw_preview(raw_json: str) -> str:
    """The raw entry pretty-printed when it is JSON, else as stored."""
    try:
        return json.dumps(json.loads(raw_json), indent=2, ensure_ascii=False, sort_keys=True)
    except ValueError:
        return raw_json


class QuarantineDialog(QDialog):
    """Non-modal list of the quarantine, newest first, with the raw entry of the selected item."""

    #: Items were read again and stored, or dismissed: the queue and the health strip should refresh.
    changed = Signal()

    def __init__(self, source: QuarantineSource, now: Callable[[], float], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("quarantineDialog")
        self.setWindowTitle("Unreadable items")
        self.resize(860, 520)
        self._source = source
        self._now = now
        self._items: list[QuarantinedItem] = []
        self._tasks: set[asyncio.Task[None]] = set()

        intro = QLabel(_INTRO)
        intro.setWordWrap(True)
        intro.setStyleSheet("color:#3C4043;")
        self.table = QTableWidget(0, len(_HEADERS))
        self.table.setObjectName("quarantineTable")
        self.table.setHorizontalHeaderLabels(list(_HEADERS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for column in range(3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.raw = QPlainTextEdit()
        self.raw.setObjectName("quarantineRaw")
        self.raw.setReadOnly(True)
        self.raw.setPlaceholderText("Select an item to see it exactly as it arrived.")
        self.raw.setStyleSheet("font-family: monospace;")
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.raw)
        splitter.setSizes([300, 160])

        self.status = QLabel()
        self.status.setObjectName("quarantineStatus")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.retry_button = QPushButton("Try again")
        self.retry_button.setToolTip("Read the selected items (all, when none is selected) with this version")
        self.retry_button.clicked.connect(self._on_retry)
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.setToolTip("Remove the selected items from this list")
        self.dismiss_button.clicked.connect(self._on_dismiss)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        actions = QHBoxLayout()
        actions.addWidget(self.retry_button)
        actions.addWidget(self.dismiss_button)
        actions.addWidget(self.status, 1)
        actions.addWidget(buttons)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(splitter, 1)
        layout.addLayout(actions)
        self.refresh()

    # ------------------------------------------------------------------ accessors (tests)
    @property
    def items(self) -> list[QuarantinedItem]:
        return list(self._items)

    def row_texts(self, row: int) -> list[str]:
        cells = [self.table.item(row, column) for column in range(len(_HEADERS))]
        return [cell.text() if cell is not None else "" for cell in cells]

    def select_rows(self, rows: Sequence[int]) -> None:
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for row in rows:
            self.table.selectRow(row)
        self.table.setSelectionMode(mode)

    # ------------------------------------------------------------------ behaviour
    def refresh(self) -> None:
        """Read the quarantine again (newest first)."""
        self._items = self._source.quarantined_items()
        now = self._now()
        self.table.setRowCount(len(self._items))
        for row, item in enumerate(self._items):
            cells = (
                local_time(item.at, now=now),
                f"{channel_label(item.kind)} @{item.handle}",
                item.external_id,
                item.error,
            )
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                cell.setToolTip(text)
                self.table.setItem(row, column, cell)
        empty = not self._items
        self.retry_button.setEnabled(not empty)
        self.dismiss_button.setEnabled(False)
        if empty:
            self.raw.clear()
            self.status.setText("Nothing is kept aside: every item that arrived could be read.")

    def _selected_ids(self) -> list[int]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self._items[row].id for row in rows if row < len(self._items)]

    @Slot()
    def _on_selection(self) -> None:
        ids = self._selected_ids()
        self.dismiss_button.setEnabled(bool(ids))
        selected = [item for item in self._items if item.id in ids]
        self.raw.setPlainText(raw_preview(selected[0].raw_json) if len(selected) == 1 else "")

    @Slot()
    def _on_dismiss(self) -> None:
        ids = self._selected_ids()
        if not ids:
            return
        removed = self._source.dismiss_quarantined(ids)
        self.status.setText(f"Dismissed {count(removed, 'item')}.")
        self.refresh()
        self.changed.emit()

    @Slot()
    def _on_retry(self) -> None:
        ids = self._selected_ids() or [item.id for item in self._items]
        if not ids:
            return
        self.retry_button.setEnabled(False)
        self.dismiss_button.setEnabled(False)
        self.status.setText(f"Reading {count(len(ids), 'item')} again…")
        self._run(self._retry(ids))

    async def _retry(self, ids: list[int]) -> None:
        try:
            outcome = await self._source.retry_quarantined(ids)
        except Exception as exc:  # storage trouble: say so, keep the list as it is
            self.status.setText(f"Could not try again: {exc}")
            self.refresh()
            return
        self.refresh()
        self.status.setText(outcome.message)
        if outcome.read:
            self.changed.emit()

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work, name="quarantine-retry")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def open_quarantine_dialog(
    parent: QWidget, source: QuarantineSource, now: Callable[[], float], on_changed: Callable[[], None] | None = None
) -> QuarantineDialog:
    """Open the list non-modally (STYLE B2)."""
    dialog = QuarantineDialog(source, now, parent=parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    if on_changed is not None:
        dialog.changed.connect(on_changed)
    dialog.open()
    return dialog
