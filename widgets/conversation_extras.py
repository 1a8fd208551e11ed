"""Conversation pane extras: the customer's other conversations, the last Net Easy answer, and safe links."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Protocol

from PySide6.QtCore import QPoint, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QCursor, QTextBlockFormat, QTextCharFormat, QTextCursor, QTextFrameFormat, QTextLength
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from console.model import MentionStatus
from console.triage import PRIORITY_LABELS, STATUS_LABELS, Priority
from widgets.dark import surface as theme_surface
from widgets.dark import text as theme_text
from widgets.delegates import plain_tooltip
from widgets.elided_label import ElidedLabel
from widgets.queue_model import preview_line
from widgets.theme import local_time

#: http(s) links in plain customer text; trailing punctuation stays outside the link.
URL_PATTERN = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)
LINK_COLOUR = "#1F5BD6"
#: Net Easy: 1-2 easy, 3-4 neutral, 5-7 difficult (reference/metrics.md).
_SCORE_WORDS = {1: "extremely easy", 2: "easy", 3: "fairly easy", 4: "neutral", 5: "fairly difficult",
                6: "difficult", 7: "extremely difficult"}  # fmt: skip


class CustomerSource(Protocol):
    def other_conversations(self, mention_id: int) -> list[tuple[int, int, str, str]]: ...

    def last_survey_answer(self, mention_id: int) -> tuple[int, int | None, str] | None: ...


def insert_linked_text(
    cursor: QTextCursor, text: str, body: QTextCharFormat, links: Sequence[tuple[str, str]] = ()
) -> None:
    """Insert plain ``text``; http(s) URLs become anchors (still text, never HTML), everything else literal.

    ``links`` maps shortened visible link texts (``example.com/a/very/lo…``) to their real targets, read from the
    channel's HTML: they become anchors to the real target, which the hover shows.
    """
    targets = {visible: href for visible, href in links if visible and URL_PATTERN.fullmatch(href)}
    pattern = URL_PATTERN
    if targets:
        shortened = "|".join(re.escape(v) for v in sorted(targets, key=len, reverse=True))
        pattern = re.compile(f"{shortened}|{URL_PATTERN.pattern}", re.IGNORECASE)
    position = 0
    for found in pattern.finditer(text):
        if found.start() > position:
            cursor.insertText(text[position : found.start()], body)
        shown = found.group(0)
        href = targets.get(shown, shown)
        link = QTextCharFormat(body)
        link.setAnchor(True)
        link.setAnchorHref(href)
        link.setForeground(theme_text(LINK_COLOUR))
        link.setFontUnderline(True)
        link.setToolTip(href)
        cursor.insertText(shown, link)
        position = found.end()
    if position < len(text):
        cursor.insertText(text[position:], body)


def insert_card(
    cursor: QTextCursor, *, first: bool, border: str, background: str, dashed: bool = False, indent: int = 0
) -> None:
    """Open a card at the end of the thread document and leave the cursor inside it.

    A 1 px border, 10 px padding, the full width less ``indent`` on the left, 10 px below the card before it
    unless it is the ``first`` (a customer's message, one read from the channel, or one of our replies).
    """
    frame = QTextFrameFormat()
    frame.setBorder(1)
    frame.setBorderBrush(theme_surface(border))
    style = QTextFrameFormat.BorderStyle
    frame.setBorderStyle(style.BorderStyle_Dashed if dashed else style.BorderStyle_Solid)
    frame.setPadding(10)
    frame.setTopMargin(0 if first else 10)
    if indent:
        frame.setLeftMargin(indent)
    frame.setWidth(QTextLength(QTextLength.Type.PercentageLength, 100))
    frame.setBackground(theme_surface(background))
    cursor.movePosition(QTextCursor.MoveOperation.End)
    cursor.insertFrame(frame)


def insert_card_body(
    cursor: QTextCursor, text: str, body: QTextCharFormat, links: Sequence[tuple[str, str]] = ()
) -> None:
    """A card's text under its header line, 6 px below it, with its links (``insert_linked_text``)."""
    block = QTextBlockFormat()
    block.setTopMargin(6)
    cursor.insertBlock(block, body)
    insert_linked_text(cursor, text, body, links)


class LinkGuard:
    """Links in the thread: a hover shows the real target, a click opens only http(s) in the system browser."""

    def __init__(
        self,
        browser_widget: QWidget,
        open_url: Callable[[QUrl], object],
        is_safe: Callable[[str], bool],
    ) -> None:
        self._widget = browser_widget
        self._open_url = open_url
        self._is_safe = is_safe
        self.hovered = ""

    def on_highlighted(self, url: QUrl) -> None:
        target = url.toString()
        self.hovered = target
        if target:
            QToolTip.showText(QCursor.pos() + QPoint(12, 12), f"Opens in your browser:\n{target}", self._widget)
        else:
            QToolTip.hideText()

    def on_anchor_clicked(self, url: QUrl) -> bool:
        """Open ``url`` when it is a web link; returns whether it was opened."""
        target = url.toString()
        if not self._is_safe(target):
            return False
        self._open_url(QUrl(target))
        return True


def triage_detail(kind: str, data: dict[str, object]) -> str:
    """``": Open → Resolved"``, ``": Urgent"``, ``": billing, refund"`` (and "(undone)") for triage events."""
    detail = ""
    if kind == "status_changed":
        labels = {s.value: label for s, label in STATUS_LABELS.items()}
        old, new = str(data.get("from")), str(data.get("to"))
        detail = f": {labels.get(old, old)} → {labels.get(new, new)}"
    elif kind == "priority_changed":
        to = data.get("to")
        detail = f": {PRIORITY_LABELS.get(Priority(to), to)}" if to in {int(p) for p in Priority} else f": {to}"
    elif kind == "tags_changed":
        tags = data.get("tags")
        detail = f": {', '.join(str(t) for t in tags) or 'no tags'}" if isinstance(tags, list) else ""
    if detail and data.get("undo"):
        detail += " (undone)"
    return detail


def score_text(score: int | None, answer: str) -> str:
    if score is None:
        return f"Unclear answer: “{answer}” (needs scoring by hand)"
    return f"{score} of 7 ({_SCORE_WORDS.get(score, '')})"


class CustomerPanel(QWidget):
    """Under the thread, compact: the last Net Easy answer, and the customer's other conversations behind a
    toggle (Enter or a double click opens one)."""

    #: Open this other conversation.
    conversation_requested = Signal(int)

    def __init__(self, source: CustomerSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("customerPanel")
        self._source = source
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        row = QHBoxLayout()
        row.setSpacing(10)
        self._toggle = QToolButton()
        self._toggle.setObjectName("otherConversationsToggle")
        self._toggle.setCheckable(True)
        self._toggle.setArrowType(Qt.ArrowType.RightArrow)
        self._toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._toggle.setAccessibleName("Show the customer's other conversations")
        self._toggle.toggled.connect(self._on_toggle_toggled)
        row.addWidget(self._toggle)
        # Elided, not a plain QLabel: a long answer must not widen the conversation pane past the window
        # (found walking the shift at 1400x860: the header's buttons were cut off behind a scroll bar).
        self._survey = ElidedLabel()
        self._survey.setObjectName("lastNetEasy")
        row.addWidget(self._survey, 1)
        layout.addLayout(row)
        self._others = QListWidget()
        self._others.setObjectName("otherConversations")
        self._others.setAccessibleName("The customer's other conversations")
        self._others.setMaximumHeight(84)
        self._others.itemActivated.connect(self._on_item_activated)
        self._others.hide()
        layout.addWidget(self._others)

    @Slot(object)
    def show_mention(self, mention_id: int | None, *, now: float = 0.0) -> None:
        self._others.clear()
        if mention_id is None:
            self.hide()
            return
        others = self._source.other_conversations(mention_id)
        answer = self._source.last_survey_answer(mention_id)
        self._toggle.setText(
            f"{len(others)} other conversation{'s' if len(others) != 1 else ''}" if others else "First conversation"
        )
        self._toggle.setEnabled(bool(others))
        if answer is None:
            self._survey.setText("")
        else:
            answered_at, score, text = answer
            self._survey.setText(
                f"Last Net Easy answer: {score_text(score, text)} · {local_time(answered_at, now=now)}"
            )
        for other_id, posted_at, status, text in others:
            label = STATUS_LABELS.get(MentionStatus(status), status)
            item = QListWidgetItem(f"{local_time(posted_at, now=now)} · {label} · {preview_line(text)}")
            item.setData(Qt.ItemDataRole.UserRole, other_id)
            item.setToolTip(plain_tooltip(text))
            self._others.addItem(item)
        self._others.setVisible(bool(others) and self._toggle.isChecked())
        self.show()

    @Slot(bool)
    def _on_toggle_toggled(self, shown: bool) -> None:
        self._toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self._others.setVisible(shown and self._others.count() > 0)

    def toggle_button(self) -> QToolButton:
        return self._toggle

    def other_texts(self) -> list[str]:
        return [self._others.item(i).text() for i in range(self._others.count())]

    def survey_text(self) -> str:
        return self._survey.text()

    def others_list(self) -> QListWidget:
        return self._others

    @Slot(QListWidgetItem)
    def _on_item_activated(self, item: QListWidgetItem) -> None:
        mention_id = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(mention_id, int):
            self.conversation_requested.emit(mention_id)
