"""First run: the agent's name, "connect an account" or "try the sandbox", then a short tour of the window."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from typing_extensions import override


class Start(StrEnum):
    ACCOUNT = "account"
    SANDBOX = "sandbox"


class WelcomeDialog(QDialog):
    """Two pages: who you are, then where your mentions come from. Opened with ``open()``, never ``exec()``."""

    def __init__(self, *, agent_name: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomeDialog")
        self.setWindowTitle("Welcome to Care Console")
        self.setModal(True)
        self.resize(580, 330)
        self.start: Start | None = None
        self._pages = QStackedWidget()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(28, 24, 28, 20)
        layout.addWidget(self._pages)

        name_page = QWidget()
        name_layout = QVBoxLayout(name_page)
        title = QLabel("Welcome to Care Console")
        title.setObjectName("welcomeTitle")
        name_layout.addWidget(title)
        intro = QLabel(
            "Every customer who mentions you shows up in one queue, with a countdown to the answer they expect "
            "(30 minutes, day and night). First, what should customers call you?"
        )
        intro.setWordWrap(True)
        name_layout.addWidget(intro)
        self.name_edit = QLineEdit(agent_name)
        self.name_edit.setObjectName("agentName")
        self.name_edit.setPlaceholderText("Your first name, as it appears in replies")
        self.name_edit.setMaxLength(60)
        name_layout.addWidget(self.name_edit)
        hint = QLabel("Templates sign replies with it ({agent_name}); you can change it later in Settings.")
        hint.setObjectName("welcomeHint")
        hint.setWordWrap(True)
        name_layout.addWidget(hint)
        name_layout.addStretch(1)
        name_buttons = QHBoxLayout()
        name_buttons.addStretch(1)
        self.next_button = QPushButton("Next")
        self.next_button.setObjectName("welcomeNext")
        self.next_button.setDefault(True)
        self.next_button.clicked.connect(self._on_next_clicked)
        name_buttons.addWidget(self.next_button)
        name_layout.addLayout(name_buttons)
        self._pages.addWidget(name_page)

        start_page = QWidget()
        start_layout = QVBoxLayout(start_page)
        start_title = QLabel("Where do your customers write to you?")
        start_title.setObjectName("welcomeTitle")
        start_layout.addWidget(start_title)
        self.account_button = self._choice(
            "Connect an account",
            "Mastodon, Bluesky, Discourse, X, YouTube or a Facebook Page. Tokens stay in your system keyring.",
            "welcomeAccount",
        )
        self.sandbox_button = self._choice(
            "Try it with the sandbox",
            "A realistic demo queue of simulated customers on this computer. Nothing leaves your machine.",
            "welcomeSandbox",
        )
        self.account_button.clicked.connect(lambda: self._finish(Start.ACCOUNT))
        self.sandbox_button.clicked.connect(lambda: self._finish(Start.SANDBOX))
        start_layout.addWidget(self.account_button)
        start_layout.addWidget(self.sandbox_button)
        start_layout.addStretch(1)
        back_row = QHBoxLayout()
        back = QPushButton("Back")
        back.clicked.connect(lambda: self._pages.setCurrentIndex(0))
        back_row.addWidget(back)
        back_row.addStretch(1)
        start_layout.addLayout(back_row)
        self._pages.addWidget(start_page)

        self.name_edit.textChanged.connect(self._on_name_changed)
        # Enter in the name field presses the default button (Next) once; connecting returnPressed as well would
        # handle the same key twice and pick a start on the agent's behalf.
        self._on_name_changed(self.name_edit.text())

    @staticmethod
    def _choice(title: str, text: str, name: str) -> QPushButton:
        button = QPushButton(f"{title}\n{text}")
        button.setObjectName(name)
        button.setProperty("class", "choice")
        button.setMinimumHeight(72)
        button.setAutoDefault(False)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        return button

    @property
    def agent_name(self) -> str:
        return " ".join(self.name_edit.text().split())

    @Slot(str)
    def _on_name_changed(self, _text: str) -> None:
        self.next_button.setEnabled(bool(self.agent_name))

    @Slot()
    def _on_next_clicked(self) -> None:
        if self.agent_name:
            self._pages.setCurrentIndex(1)
            self.sandbox_button.setFocus()

    def _finish(self, start: Start) -> None:
        self.start = start
        self.accept()

    @override
    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Escape never skips the name or the choice (issue 19 §16): on the choice it goes back to the name."""
        if event.key() == Qt.Key.Key_Escape:
            event.accept()
            if self._pages.currentIndex() == 1:
                self._pages.setCurrentIndex(0)
                self.name_edit.setFocus()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self._pages.currentIndex() == 1:
            # The choices are not auto-default (the Enter that pressed Next must not also pick a start), so
            # Enter on the focused choice presses it here, as a keyboard user expects.
            for choice in (self.account_button, self.sandbox_button):
                if self.focusWidget() is choice:
                    event.accept()
                    choice.click()
                    return
        super().keyPressEvent(event)


@dataclass(frozen=True, slots=True)
class TourStep:
    object_name: str  # the widget to point at, found by objectName in the window
    title: str
    text: str
    x_fraction: float = 0.33  # where along the target the bubble starts (the countdown sits at the right)


DEFAULT_STEPS = (
    TourStep("queueView", "Your queue", "Every conversation waiting for you, the most urgent first. Arrow keys move, "
             "Enter opens it."),
    TourStep("queueView", "The countdown", "Green while there is time, amber when a quarter of the target is left, "
             "red and counting up once the customer waited too long.", x_fraction=0.55),
    TourStep("composer", "Reply like a person", "Start from a template, fill the [blanks], and send with Ctrl+Enter. "
             "Replies wait safely in the outbox when you are offline."),
    TourStep("surveyPanel", "Ask how easy it was", "One click sends the Net Easy question privately; the answer comes "
             "back into the console."),
)  # fmt: skip


class Tour(QObject):
    """A bubble that walks over named widgets of a window, one step at a time; skips widgets that are absent."""

    finished = Signal()

    def __init__(self, window: QWidget, steps: tuple[TourStep, ...] = DEFAULT_STEPS) -> None:
        super().__init__(window)
        self._window = window
        self._steps = [s for s in steps if window.findChild(QWidget, s.object_name) is not None]
        self._index = -1
        self.bubble = QFrame(window)
        self.bubble.setObjectName("tourBubble")
        self.bubble.setFrameShape(QFrame.Shape.StyledPanel)
        self.bubble.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.bubble.setAutoFillBackground(True)
        layout = QVBoxLayout(self.bubble)
        layout.setContentsMargins(16, 12, 16, 12)
        self._title = QLabel()
        self._title.setObjectName("tourTitle")
        self._title.setTextFormat(Qt.TextFormat.PlainText)
        self._text = QLabel()
        self._text.setWordWrap(True)
        self._text.setFixedWidth(300)
        self._progress = QLabel()
        self._progress.setObjectName("tourProgress")
        layout.addWidget(self._title)
        layout.addWidget(self._text)
        buttons = QHBoxLayout()
        buttons.addWidget(self._progress)
        buttons.addStretch(1)
        self.skip_button = QPushButton("Skip tour")
        self.skip_button.clicked.connect(self.stop)
        self.next_button = QPushButton("Next")
        self.next_button.setObjectName("tourNext")
        self.next_button.clicked.connect(self.next)
        buttons.addWidget(self.skip_button)
        buttons.addWidget(self.next_button)
        layout.addLayout(buttons)
        self.bubble.hide()
        window.installEventFilter(self)

    @property
    def step_titles(self) -> list[str]:
        return [s.title for s in self._steps]

    @property
    def current(self) -> int:
        return self._index

    @Slot()
    def start(self) -> None:
        self._index = -1
        self.next()

    @Slot()
    def next(self) -> None:
        self._index += 1
        if self._index >= len(self._steps):
            self.stop()
            return
        step = self._steps[self._index]
        self._title.setText(step.title)
        self._text.setText(step.text)
        self._progress.setText(f"{self._index + 1} of {len(self._steps)}")
        self.next_button.setText("Done" if self._index == len(self._steps) - 1 else "Next")
        self.bubble.adjustSize()
        self._place()
        self.bubble.show()
        self.bubble.raise_()
        self.next_button.setFocus()

    @Slot()
    def stop(self) -> None:
        self.bubble.hide()
        self._index = len(self._steps)
        self.finished.emit()

    def _place(self) -> None:
        if not 0 <= self._index < len(self._steps):
            return
        step = self._steps[self._index]
        target = self._window.findChild(QWidget, step.object_name)
        if target is None or not target.isVisible():
            self.bubble.move(40, 80)
            return
        corner = target.mapTo(
            self._window, QPoint(int(target.width() * step.x_fraction), min(target.height() // 3, 160))
        )
        x = min(max(8, corner.x()), self._window.width() - self.bubble.width() - 8)
        y = min(max(8, corner.y()), self._window.height() - self.bubble.height() - 8)
        self.bubble.move(x, y)

    @override
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._window and event.type() == QEvent.Type.Resize and self.bubble.isVisible():
            self._place()
        if (
            watched is self._window
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Escape
            and self.bubble.isVisible()
        ):  # Escape closes the tour (issue 19 §2); key presses nobody took reach the window
            self.stop()
            return True
        return False
