"""A non-modal, dismissible error bar for the top of a window (STYLE B2: errors never pop a modal dialog)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget


class ErrorBar(QFrame):
    """Shows the latest error message until the user dismisses it; repeated errors are counted, not stacked."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBar")
        self._count = 0
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 8, 10, 8)
        layout.setSpacing(10)
        self._icon = QLabel("!")
        self._icon.setObjectName("errorBarIcon")
        self._icon.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._icon.setFixedSize(20, 20)
        layout.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        self._message = QLabel()
        self._message.setObjectName("errorBarMessage")
        self._message.setTextFormat(Qt.TextFormat.PlainText)  # error texts can quote server responses
        self._message.setWordWrap(True)
        self._message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self._message, 1)
        self._copy = QPushButton("Copy details")
        self._copy.setObjectName("errorBarCopy")
        self._copy.setCursor(Qt.CursorShape.PointingHandCursor)
        self._copy.clicked.connect(self._on_copy_clicked)
        self._copy.hide()
        layout.addWidget(self._copy, 0, Qt.AlignmentFlag.AlignTop)
        self._details = ""
        self._dismiss = QPushButton("Dismiss")
        self._dismiss.setObjectName("errorBarDismiss")
        self._dismiss.setCursor(Qt.CursorShape.PointingHandCursor)
        self._dismiss.clicked.connect(self._on_dismiss_clicked)
        layout.addWidget(self._dismiss, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def message(self) -> str:
        return self._message.text()

    def dismiss_button(self) -> QPushButton:
        return self._dismiss

    def copy_button(self) -> QPushButton:
        return self._copy

    @Slot(str)
    @Slot(str, str)
    def show_message(self, message: str, details: str = "") -> None:
        """Show ``message``; with ``details`` (a redacted crash report), offer "Copy details"."""
        self._count = 1 if self.isHidden() else self._count + 1
        suffix = f"  ({self._count} errors; showing the latest)" if self._count > 1 else ""
        self._message.setText(message + suffix)
        self._details = details
        self._copy.setText("Copy details")
        self._copy.setVisible(bool(details))
        self.show()

    @Slot()
    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self._details)
        self._copy.setText("Copied")

    @Slot()
    def _on_dismiss_clicked(self) -> None:
        self._count = 0
        self.hide()
        self.dismissed.emit()
