"""Manual intake dialog: paste a post's link and text from any channel; it enters the queue with its SLA."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from console.sync.manual import IntakeError, ManualIntake, reply_handoff

__all__ = ["ManualIntakeDialog", "hand_off_reply", "open_manual_intake"]


class ManualIntakeDialog(QDialog):
    """Stays open after each add so several posts can be pasted in a row; bad input loses nothing."""

    item_added = Signal(int)

    def __init__(self, intake: ManualIntake, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("manualIntake")
        self.setWindowTitle("Add a post by hand")
        self.resize(560, 420)
        self._intake = intake
        layout = QVBoxLayout(self)
        intro = QLabel(
            "For channels without an API connection (or X without paid access): paste the post's link and text. "
            "It enters the queue with its deadlines; your reply is copied and the post opened in the browser."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.link = QLineEdit()
        self.link.setPlaceholderText("https://x.com/customer/status/1234567890")
        self.author = QLineEdit()
        self.author.setPlaceholderText("taken from the link when empty")
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("The customer's words, as posted")
        self.direct = QCheckBox("Private message")
        form.addRow("Link", self.link)
        form.addRow("Author", self.author)
        form.addRow("Text", self.text)
        form.addRow("", self.direct)
        layout.addLayout(form)
        self.status = QLabel()
        self.status.setObjectName("manualIntakeStatus")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.add_button = self.buttons.addButton("Add to queue", QDialogButtonBox.ButtonRole.ActionRole)
        self.add_button.setDefault(True)
        self.add_button.clicked.connect(self._on_add_clicked)
        self.buttons.rejected.connect(self.close)
        layout.addWidget(self.buttons)

    @Slot()
    def _on_add_clicked(self) -> None:
        try:
            result = self._intake.add(
                link=self.link.text(),
                text=self.text.toPlainText(),
                author=self.author.text(),
                direct=self.direct.isChecked(),
            )
        except IntakeError as exc:
            self.status.setStyleSheet("color:#B92E2E;")
            self.status.setText(str(exc))  # the fields keep what was typed
            return
        if result.duplicate or result.mention_id is None:
            self.status.setStyleSheet("color:#7A4B00;")
            self.status.setText("This link is already in the queue.")
            return
        self.status.setStyleSheet("color:#17663A;")
        self.status.setText(f"Added to the queue ({result.source}).")
        self.link.clear()
        self.author.clear()
        self.text.clear()
        self.direct.setChecked(False)
        self.item_added.emit(result.mention_id)


def hand_off_reply(link: str, text: str, *, open_url: Callable[[QUrl], object] = QDesktopServices.openUrl) -> None:
    """Send a manual item's reply the only way there is: copy it and open the original post."""
    handoff = reply_handoff(link, text)
    clipboard = QGuiApplication.clipboard()
    clipboard.setText(handoff.clipboard_text)
    open_url(QUrl(handoff.open_url))


def open_manual_intake(parent: QWidget, intake: ManualIntake, on_added: Callable[[int], None]) -> ManualIntakeDialog:
    """Open the dialog non-modally (STYLE B2)."""
    dialog = ManualIntakeDialog(intake, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.item_added.connect(on_added)
    dialog.open()
    return dialog
