"""The expected wait in the status bar, and the dialog that publishes it as an honest status post."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from console.ports import Clock
from console.replies.capacity import StatusAccount, WaitEstimate
from console.replies.checks import LengthCheck
from console.replies.outbox import OutboxError
from console.replies.templates import blanks
from widgets.elided_label import ElidedLabel
from widgets.theme import local_time

#: The estimate moves with the pace window even when nothing else happens: re-read it this often.
REFRESH_MS = 60_000


class CapacitySource(Protocol):
    """What the indicator and the dialog use (console.replies.capacity.CapacityService)."""

    def estimate(self) -> WaitEstimate: ...

    def status_text(self, estimate: WaitEstimate | None = None) -> str: ...

    def accounts(self) -> list[StatusAccount]: ...

    def check_length(self, account: StatusAccount, text: str) -> LengthCheck: ...

    def post(self, account_id: int, text: str, *, estimate: WaitEstimate | None = None) -> int: ...

    def subscribe(self, listener: Callable[[int], None]) -> None: ...

    def post_state(self, post_id: int) -> tuple[str, int | None, str]: ...


class StatusPostDialog(QDialog):
    """Preview and edit the status update with the real figure, pick the account, post it through the outbox."""

    #: The status post was queued (its id); it leaves with the outbox.
    posted = Signal(int)

    def __init__(self, source: CapacitySource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statusPostDialog")
        self.setWindowTitle("Post the expected wait")
        self.setMinimumWidth(520)
        self._source = source
        self._estimate = source.estimate()
        self._accounts = source.accounts()

        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        figure = QLabel(self._figure_text())
        figure.setObjectName("statusFigure")
        figure.setTextFormat(Qt.TextFormat.PlainText)
        figure.setWordWrap(True)
        layout.addWidget(figure)

        account_row = QHBoxLayout()
        account_row.addWidget(QLabel("Post from"))
        self._account = QComboBox()
        self._account.setObjectName("statusAccount")
        for account in self._accounts:
            self._account.addItem(account.label, account.id)
        account_row.addWidget(self._account, 1)
        layout.addLayout(account_row)

        self._editor = QPlainTextEdit()
        self._editor.setObjectName("statusText")
        self._editor.setPlainText(source.status_text(self._estimate))
        self._editor.setTabChangesFocus(True)
        self._editor.setMinimumHeight(96)
        self._editor.setMaximumHeight(140)
        layout.addWidget(self._editor)

        title = QLabel("Preview")
        title.setObjectName("sectionTitle")
        layout.addWidget(title)
        frame = QFrame()
        frame.setObjectName("statusPreview")
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        preview_layout = QVBoxLayout(frame)
        self._preview_meta = QLabel()
        self._preview_meta.setObjectName("statusPreviewMeta")
        self._preview_meta.setTextFormat(Qt.TextFormat.PlainText)
        self._preview = QLabel()
        self._preview.setObjectName("statusPreviewText")
        self._preview.setTextFormat(Qt.TextFormat.PlainText)  # the agent's text is never rendered as HTML
        self._preview.setWordWrap(True)
        preview_layout.addWidget(self._preview_meta)
        preview_layout.addWidget(self._preview)
        layout.addWidget(frame)

        self._problem = QLabel()
        self._problem.setObjectName("statusProblem")
        self._problem.setTextFormat(Qt.TextFormat.PlainText)
        self._problem.setWordWrap(True)
        layout.addWidget(self._problem)

        self._buttons = QDialogButtonBox()
        self._post_button = QPushButton("Post status")
        self._post_button.setObjectName("postStatus")
        self._post_button.setDefault(True)
        self._buttons.addButton(self._post_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self._buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self._buttons.accepted.connect(self._on_buttons_accepted)
        self._buttons.rejected.connect(self.reject)
        layout.addWidget(self._buttons)

        self._editor.textChanged.connect(self._on_editor_text_changed)
        self._account.currentIndexChanged.connect(self._on_account_current_index_changed)
        self._update()

    # ------------------------------------------------------------------ accessors (tests)
    @property
    def editor(self) -> QPlainTextEdit:
        return self._editor

    @property
    def post_button(self) -> QPushButton:
        return self._post_button

    def preview_text(self) -> str:
        return self._preview.text()

    def problem_text(self) -> str:
        return self._problem.text()

    # ------------------------------------------------------------------ internals
    def _figure_text(self) -> str:
        estimate = self._estimate
        if not estimate.known:
            return f"Expected wait not known yet. {estimate.basis()}"
        return f"Expected wait for a new message: {estimate.phrase()}. {estimate.basis()}"

    def _selected(self) -> StatusAccount | None:
        account_id = self._account.currentData()
        return next((a for a in self._accounts if a.id == account_id), None)

    def _problems(self, text: str, account: StatusAccount | None) -> list[str]:
        problems: list[str] = []
        if account is None:
            problems.append("No account can post a status update (Mastodon accounts can).")
        if not text.strip():
            problems.append("The status update is empty.")
        left = blanks(text)
        if left:
            problems.append(f"Fill in {', '.join(f'[{b.label}]' for b in left[:3])} first.")
        if account is not None and text.strip():
            length = self._source.check_length(account, text)
            if length.over:
                problems.append(length.reason)
        return problems

    def _update(self) -> None:
        text = self._editor.toPlainText()
        account = self._selected()
        self._preview.setText(text.strip())
        if account is not None:
            count = self._source.check_length(account, text)
            self._preview_meta.setText(
                f"Public post · {account.label} · {count.count:,} of {count.limit:,} {count.unit}"
            )
        else:
            self._preview_meta.setText("No account can post a status update")
        problems = self._problems(text, account)
        self._problem.setText(" ".join(problems))
        self._problem.setVisible(bool(problems))
        self._post_button.setEnabled(not problems)

    # ------------------------------------------------------------------ slots
    @Slot()
    def _on_editor_text_changed(self) -> None:
        self._update()

    @Slot(int)
    def _on_account_current_index_changed(self, _index: int) -> None:
        self._update()

    @Slot()
    def _on_buttons_accepted(self) -> None:
        account = self._selected()
        text = self._editor.toPlainText().strip()
        if account is None or self._problems(text, account):
            self._update()
            return
        try:
            post_id = self._source.post(account.id, text, estimate=self._estimate)
        except OutboxError as exc:
            self._problem.setText(f"Not posted: {exc}")
            self._problem.setVisible(True)
            return
        self.posted.emit(post_id)
        self.accept()


class CapacityIndicator(QWidget):
    """Status bar: "Expected wait ~25 min" (how it was reached in the tooltip) and a one-click "Post status…"."""

    def __init__(self, source: CapacitySource, clock: Clock, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("capacityIndicator")
        self._source = source
        self._clock = clock
        self._dialog: StatusPostDialog | None = None
        self._last_post: int | None = None
        self._estimate: WaitEstimate | None = None

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self._label = ElidedLabel(min_width=40)  # cut before the breach alert beside it (an 800x600 screen)
        self._label.setObjectName("expectedWait")
        self._label.setTextFormat(Qt.TextFormat.PlainText)
        self._button = QToolButton()
        self._button.setObjectName("postStatusButton")
        self._button.setText("Post status…")
        self._button.setCursor(Qt.CursorShape.PointingHandCursor)
        self._button.setAutoRaise(True)
        self._button.clicked.connect(self._on_button_clicked)
        layout.addWidget(self._label)
        layout.addWidget(self._button)

        source.subscribe(self._on_source_post_changed)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    # ------------------------------------------------------------------ accessors (tests)
    def text(self) -> str:
        return self._label.text()

    @property
    def post_button(self) -> QToolButton:
        return self._button

    @property
    def dialog(self) -> StatusPostDialog | None:
        return self._dialog

    # ------------------------------------------------------------------ public slots
    @Slot()
    def refresh(self) -> None:
        """Re-read the estimate (after a sync, a sent reply, a triage change, and every minute)."""
        estimate = self._source.estimate()
        self._estimate = estimate
        text = f"Expected wait {estimate.short()}"
        tip = estimate.basis()
        if self._last_post is not None:
            state, at, error = self._source.post_state(self._last_post)
            if state == "sent" and at is not None:
                text += f" · status posted {local_time(at, now=self._clock.now())}"
            elif state == "failed":
                text += " · status not posted"
                tip += f"\nThe last status update was not posted: {error}"
            else:
                text += " · status waiting to post"
        self._label.setText(text)
        self._label.setToolTip(tip)
        can_post = estimate.known and bool(self._source.accounts())
        self._button.setEnabled(can_post)
        self._button.setToolTip(
            "Preview and post this wait as a status update"
            if can_post
            else "Posting needs a known wait (a few replies sent) and a Mastodon account"
        )

    # ------------------------------------------------------------------ slots
    @Slot()
    def _on_button_clicked(self) -> None:
        if self._dialog is not None:
            self._dialog.close()
        dialog = StatusPostDialog(self._source, self.window())
        dialog.posted.connect(self._on_dialog_posted)
        self._dialog = dialog
        dialog.open()  # never exec() (STYLE B2)

    @Slot(int)
    def _on_dialog_posted(self, post_id: int) -> None:
        self._last_post = post_id
        self.refresh()

    def _on_source_post_changed(self, post_id: int) -> None:
        if post_id == self._last_post:
            self.refresh()
