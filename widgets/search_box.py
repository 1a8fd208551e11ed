"""The queue's search box: full-text search over text, customers and tags, debounced while typing."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QHideEvent, QKeyEvent
from PySide6.QtWidgets import QLineEdit, QWidget
from typing_extensions import override

#: Wait this long after the last keystroke before searching (one query per pause, not per key).
DEBOUNCE_MS = 180


class SearchBox(QLineEdit):
    """Emits ``search_changed`` after typing pauses, at once on Enter; Escape clears and hands focus back."""

    #: The search text to apply (possibly empty).
    search_changed = Signal(str)
    #: Escape or Enter: the agent is done with the box (the window moves focus to the queue).
    finished = Signal()

    def __init__(self, parent: QWidget | None = None, *, debounce_ms: int = DEBOUNCE_MS) -> None:
        super().__init__(parent)
        self.setObjectName("searchBox")
        self.setPlaceholderText("Search messages, customers, tags  ( / )")
        self.setClearButtonEnabled(True)
        self.setAccessibleName("Search the queue")
        self.setAccessibleDescription("Full-text search over message text, customer names and tags")
        self.setMinimumWidth(160)
        self._applied = ""
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self._on_timer_timeout)
        self.textChanged.connect(self._on_text_changed)

    @property
    def applied(self) -> str:
        """The text of the last emitted search."""
        return self._applied

    def set_search(self, text: str) -> None:
        """Show ``text`` without emitting (the window restores a query)."""
        self._timer.stop()
        self.blockSignals(True)
        self.setText(text)
        self.blockSignals(False)
        self._applied = text

    def apply_now(self) -> None:
        self._timer.stop()
        if self.text() != self._applied:
            self._applied = self.text()
            self.search_changed.emit(self._applied)

    @override
    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            if self.text():
                self.clear()
                self.apply_now()
            self.finished.emit()
            event.accept()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Down):
            self.apply_now()
            self.finished.emit()
            event.accept()
            return
        super().keyPressEvent(event)

    @override
    def hideEvent(self, event: QHideEvent) -> None:
        # A pending search is applied now, while the window and its services are certainly still there.
        if self._timer.isActive():
            self.apply_now()
        super().hideEvent(event)

    @Slot(str)
    def _on_text_changed(self, _text: str) -> None:
        self._timer.start()

    @Slot()
    def _on_timer_timeout(self) -> None:
        self.apply_now()
