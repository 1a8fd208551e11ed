"""The conversation's Net Easy section: send the survey (one click or Ctrl+Shift+E), its state, one-click scoring."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import Awaitable
from typing import Protocol

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from console.model import MentionStatus
from console.ports import Clock
from console.surveys.service import SurveyRefused, SurveyRow, SurveyState
from console.triage import Change, TriageField
from widgets.net_easy_panel import ReportSource
from widgets.theme import local_time

SHORTCUT = "Ctrl+Shift+E"
_LEADING_MENTIONS = re.compile(r"^(?:\s*@[\w.\-]+(?:@[\w.\-]+)?)+")
SCORE_WORDS = {1: "extremely easy", 2: "very easy", 3: "fairly easy", 4: "neutral", 5: "fairly difficult",
               6: "very difficult", 7: "extremely difficult"}  # fmt: skip


class SurveySource(ReportSource, Protocol):
    """What the section and the report need (console.surveys.service.SurveyService)."""

    def state(self, mention_id: int) -> SurveyState: ...

    def send(self, mention_id: int) -> Awaitable[SurveyRow]: ...

    def score_manually(self, survey_id: int, score: int | None) -> SurveyRow: ...


def score_label(score: int) -> str:
    """``"2 (very easy)"``."""
    return f"{score} ({SCORE_WORDS.get(score, '?')})"


def _quote(text: str | None) -> str:
    """The customer's answer without the leading @mentions every reply carries."""
    return _LEADING_MENTIONS.sub("", text or "").strip()


class SurveyPanel(QFrame):
    """Under the thread: a "Send Net Easy" button that says where it goes, the survey's state, manual scoring.

    Sending is asynchronous (the outbox port may await); the task is kept until it finishes and a refusal or
    error is shown in the section itself, never in a modal box.
    """

    #: A survey was queued for this item (mention id).
    survey_sent = Signal(int)
    #: The agent scored a flagged answer (survey id).
    survey_scored = Signal(int)
    #: Sending failed for a reason other than the guard (message for the error bar).
    failed = Signal(str)

    def __init__(self, source: SurveySource, clock: Clock, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("surveyPanel")
        self._source = source
        self._clock = clock
        self._mention_id: int | None = None
        self._state: SurveyState | None = None
        self._tasks: set[asyncio.Future[SurveyRow]] = set()
        self._notice = ""
        self._prompt_for: int | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 4)
        layout.setSpacing(6)
        row = QHBoxLayout()
        row.setSpacing(10)
        texts = QVBoxLayout()
        texts.setSpacing(2)
        title = QLabel("Net Easy")
        title.setObjectName("sectionTitle")
        texts.addWidget(title)
        self._status = QLabel()
        self._status.setObjectName("surveyStatus")
        self._status.setTextFormat(Qt.TextFormat.PlainText)
        self._status.setWordWrap(True)
        self._status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        texts.addWidget(self._status)
        row.addLayout(texts, 1)

        self.send_action = QAction("Send Net Easy survey", self)
        self.send_action.setShortcut(QKeySequence(SHORTCUT))
        self.send_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.send_action.triggered.connect(self._on_send_action_triggered)
        self._button = QPushButton("Send Net Easy")
        self._button.setObjectName("sendSurvey")
        self._button.setCursor(Qt.CursorShape.PointingHandCursor)
        self._button.clicked.connect(self._on_send_action_triggered)
        row.addWidget(self._button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(row)

        # After resolving: "Send the Net Easy survey?" (a setting turns it off).
        self._prompt = QWidget()
        self._prompt.setObjectName("surveyPrompt")
        prompt_row = QHBoxLayout(self._prompt)
        prompt_row.setContentsMargins(0, 0, 0, 0)
        prompt_row.setSpacing(8)
        self._prompt_label = QLabel("Resolved. Ask the customer how easy it was?")
        self._prompt_label.setTextFormat(Qt.TextFormat.PlainText)
        self._prompt_label.setWordWrap(True)
        self._prompt_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        prompt_row.addWidget(self._prompt_label, 1)
        self._prompt_send = QPushButton("Send survey")
        self._prompt_send.setObjectName("surveyPromptSend")
        self._prompt_send.clicked.connect(self._on_prompt_send_clicked)
        self._prompt_later = QPushButton("Not now")
        self._prompt_later.clicked.connect(self._on_prompt_later_clicked)
        self._prompt_never = QPushButton("Don't ask again")
        self._prompt_never.setObjectName("surveyPromptNever")
        self._prompt_never.clicked.connect(self._on_prompt_never_clicked)
        for button in (self._prompt_send, self._prompt_later, self._prompt_never):
            prompt_row.addWidget(button)
        layout.addWidget(self._prompt)

        # A flagged answer: one click scores it.
        self._review = QWidget()
        self._review.setObjectName("surveyReview")
        review_row = QHBoxLayout(self._review)
        review_row.setContentsMargins(0, 0, 0, 0)
        review_row.setSpacing(4)
        self._score_buttons: list[QPushButton] = []
        for score in range(1, 8):
            button = QPushButton(str(score))
            button.setObjectName("surveyScore")
            button.setToolTip(score_label(score))
            button.clicked.connect(lambda _checked=False, s=score: self._score(s))
            review_row.addWidget(button)
            self._score_buttons.append(button)
        self._not_answer = QPushButton("Not an answer")
        self._not_answer.clicked.connect(lambda _checked=False: self._score(None))
        review_row.addWidget(self._not_answer)
        review_row.addStretch(1)
        layout.addWidget(self._review)

        self._prompt.hide()
        self._review.hide()
        self.hide()

    # ------------------------------------------------------------------ public API
    @property
    def mention_id(self) -> int | None:
        return self._mention_id

    def status_text(self) -> str:
        return self._status.text()

    def button(self) -> QPushButton:
        return self._button

    def score_buttons(self) -> list[QPushButton]:
        return list(self._score_buttons)

    def not_answer_button(self) -> QPushButton:
        return self._not_answer

    def prompt_visible(self) -> bool:
        return not self._prompt.isHidden()

    def prompt_buttons(self) -> tuple[QPushButton, QPushButton, QPushButton]:
        return self._prompt_send, self._prompt_later, self._prompt_never

    def review_visible(self) -> bool:
        return not self._review.isHidden()

    def pending(self) -> int:
        return len(self._tasks)

    @Slot(object)
    def set_mention(self, mention_id: int | None) -> None:
        """Show the section for this queue item (hidden for None)."""
        if mention_id != self._mention_id:
            self._notice = ""
            if self._prompt_for is not None and mention_id != self._prompt_for:
                # The agent moved on to someone else: the offer for the resolved customer goes (issue 19 §16).
                self._prompt.hide()
                self._prompt_for = None
        self._mention_id = mention_id
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Re-read the survey state (after a sync answered it, a send, a status change)."""
        if self._mention_id is None:
            self._state = None
            self.hide()
            return
        state = self._source.state(self._mention_id)
        self._state = state
        check = state.check
        survey = state.survey
        route = "privately" if check.private else "in the public thread"
        self._button.setText("Send Net Easy" if check.private else "Send Net Easy (public)")
        self._button.setToolTip(
            f"Ask how easy it was, {check.route} ({SHORTCUT})" if check.allowed else check.reason or "Not available"
        )
        self._button.setEnabled(check.allowed and not self._tasks)
        self.send_action.setEnabled(check.allowed and not self._tasks)
        self._review.setVisible(survey is not None and survey.needs_review)
        if self._notice:
            text = self._notice
        elif survey is not None:
            text = self._survey_text(state, survey)
        elif check.allowed:
            text = f"Not surveyed yet. The question goes {route}" + (
                "." if check.private else ": this channel has no private messages."
            )
        else:
            text = check.reason.replace("Not sent: ", "No survey: ", 1)
        self._status.setText(text)
        review = "review" if survey is not None and survey.needs_review and not self._notice else "normal"
        if self._status.property("state") != review:
            self._status.setProperty("state", review)
            self._status.style().unpolish(self._status)
            self._status.style().polish(self._status)
        if self._prompt_for == self._mention_id and not check.allowed:
            self._prompt.hide()
            self._prompt_for = None
        self.show()

    def _survey_text(self, state: SurveyState, survey: SurveyRow) -> str:
        now = self._clock.now()
        sent = f"Surveyed {local_time(survey.sent_at, now=now)}"
        if survey.needs_review:
            return (
                f'{sent}. Unclear answer: "{_quote(survey.answer_text)}". '
                "Score it by hand (1 = extremely easy, 7 = extremely difficult):"
            )
        if survey.answered and survey.score is not None:
            comment = f' · "{survey.comment}"' if survey.comment else ""
            return f"{sent}. Answered {score_label(survey.score)}{comment}"
        if survey.answered:
            return f'{sent}. Scored as no answer: "{_quote(survey.answer_text)}"'
        if state.expired:
            return f"{sent}. No answer within 7 days."
        return f"{sent}. Waiting for the answer (counted for 7 days)."

    @Slot(object)
    def on_triage_changed(self, change: Change) -> None:
        """After the agent resolves an item, offer the survey (unless turned off or refused)."""
        if change.field is not TriageField.STATUS or change.new is not MentionStatus.RESOLVED:
            return
        self.offer_after_resolve(change.mention_id)

    def offer_after_resolve(self, mention_id: int) -> None:
        """Show the "send Net Easy?" prompt for this item if the setting is on and the guard allows it.

        The prompt names the customer. It comes after the selection has already jumped to the next item, and
        goes as soon as the agent selects another one: it never hangs over someone else's conversation.
        """
        if not self._source.prompt_after_resolve:
            return
        state = self._source.state(mention_id)
        if not state.check.allowed:
            return
        self._prompt_for = state.mention_id
        where = "" if state.check.private else " (in the public thread)"
        self._prompt_label.setText(f"Resolved @{state.customer}. Ask how easy it was{where}?")
        self._prompt.show()
        self.show()

    # ------------------------------------------------------------------ slots
    @Slot()
    def _on_send_action_triggered(self) -> None:
        if self._mention_id is not None and self._button.isEnabled():
            self._send(self._mention_id)

    @Slot()
    def _on_prompt_send_clicked(self) -> None:
        if self._prompt_for is not None:
            self._send(self._prompt_for)

    def _send(self, mention_id: int) -> None:
        if self._tasks:
            return
        self._prompt.hide()
        self._prompt_for = None
        future = asyncio.ensure_future(self._source.send(mention_id))
        self._tasks.add(future)
        future.add_done_callback(functools.partial(self._on_send_done, mention_id))
        self._button.setEnabled(False)
        self.send_action.setEnabled(False)

    def _on_send_done(self, mention_id: int, future: asyncio.Future[SurveyRow]) -> None:
        self._tasks.discard(future)
        if future.cancelled():
            return
        error = future.exception()
        if isinstance(error, SurveyRefused):
            self._notice = error.check.reason
        elif error is not None:
            self._notice = ""
            self.failed.emit(f"The Net Easy survey could not be queued: {error}")
        else:
            self._notice = ""
            self.survey_sent.emit(mention_id)
        with contextlib.suppress(RuntimeError):  # the panel was deleted while the send ran
            self.refresh()

    def _score(self, score: int | None) -> None:
        state = self._state
        if state is None or state.survey is None:
            return
        row = self._source.score_manually(state.survey.id, score)
        self.survey_scored.emit(row.id)
        self.refresh()

    @Slot()
    def _on_prompt_later_clicked(self) -> None:
        self._prompt.hide()
        self._prompt_for = None

    @Slot()
    def _on_prompt_never_clicked(self) -> None:
        self._source.set_prompt_after_resolve(False)
        self._prompt.hide()
        self._prompt_for = None

    def cancel_pending(self) -> None:
        """Cancel sends still running (window closing)."""
        for task in list(self._tasks):
            task.cancel()
