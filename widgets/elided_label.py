"""A one-line label that cuts its text with "…" when narrow, instead of widening the window (issue 19 §10)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QStyle, QStyleOption, QWidget
from typing_extensions import override


class ElidedLabel(QLabel):
    """Plain text on one line; ``text()`` is always the whole text, and the tooltip shows it when it is cut."""

    def __init__(self, text: str = "", parent: QWidget | None = None, *, min_width: int = 40) -> None:
        super().__init__(text, parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self._min_width = min_width
        self._own_tip = ""

    @override
    def setToolTip(self, tip: str) -> None:
        """A tooltip of the label's own (an explanation); the whole text is added to it when the text is cut."""
        self._own_tip = tip
        super().setToolTip(tip)

    def shown_text(self) -> str:
        """The text as painted at the current width ("Nearest dead…" when narrow)."""
        rect = self.contentsRect()
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())

    @override
    def minimumSizeHint(self) -> QSize:
        return QSize(min(self._min_width, super().minimumSizeHint().width()), super().minimumSizeHint().height())

    @override
    def paintEvent(self, event: QPaintEvent) -> None:
        shown = self.shown_text()
        cut = self.text() if shown != self.text() else ""
        super().setToolTip("\n\n".join(part for part in (cut, self._own_tip) if part))
        painter = QPainter(self)
        option = QStyleOption()
        option.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_Widget, option, painter, self)
        self.style().drawItemText(
            painter, self.contentsRect(), int(self.alignment()), self.palette(), self.isEnabled(), shown,
            self.foregroundRole(),
        )  # fmt: skip
