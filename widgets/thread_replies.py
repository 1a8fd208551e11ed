"""Our own replies drawn inline in the conversation thread: indented cards marked as ours, plain text only."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QTextCharFormat, QTextCursor

from console.model import ReplyState
from console.replies.our_replies import OurReply
from widgets.conversation_extras import insert_card, insert_card_body
from widgets.dark import text as theme_text
from widgets.theme import SECONDARY_TEXT, local_time

__all__ = ["OUR_BACKGROUND", "OUR_INDENT", "insert_our_reply", "our_reply_header"]

OUR_BACKGROUND = "#EEF5FF"
OUR_BORDER = "#C9DCF5"
#: Our replies sit indented from the left, like the answering side of a chat.
OUR_INDENT = 36
_STATE_COLOURS = {
    ReplyState.QUEUED: "#8A6D00",
    ReplyState.SENDING: "#8A6D00",
    ReplyState.FAILED: "#B42318",
    ReplyState.SENT: "#1F7A3A",
}


def our_reply_header(reply: OurReply, now: float) -> str:
    """The card's header line as plain text: ``"Sam (us) · Sent 14:05 · edited · Direct message"``."""
    state = reply.state_text
    if reply.state is ReplyState.SENT:
        state += f" {local_time(reply.at, now=now)}"
    return " · ".join([f"{reply.agent} (us)", state, *reply.labels])


def insert_our_reply(cursor: QTextCursor, reply: OurReply, now: float, *, base: QFont, first: bool) -> None:
    """Append one of our replies to the thread document as an indented card (text inserted as text, never HTML).

    Args:
        cursor: A cursor on the thread document (moved to its end).
        reply: The reply entry.
        now: For the time shown.
        base: The thread's body font.
        first: No top margin (the first card of the document).
    """
    insert_card(cursor, first=first, border=OUR_BORDER, background=OUR_BACKGROUND, indent=OUR_INDENT)

    name = QTextCharFormat()
    name.setFontWeight(QFont.Weight.DemiBold)
    meta = QTextCharFormat()
    meta.setForeground(QColor(SECONDARY_TEXT))
    state = QTextCharFormat()
    state.setForeground(theme_text(_STATE_COLOURS.get(reply.state, SECONDARY_TEXT)))
    state.setFontWeight(QFont.Weight.DemiBold)
    body = QTextCharFormat()
    body.setFont(base)
    if reply.state is not ReplyState.SENT:
        body.setForeground(QColor(SECONDARY_TEXT))  # not on the channel (yet): shown muted

    cursor.insertText(reply.agent, name)
    cursor.insertText(" (us)", meta)
    cursor.insertText("  ·  ", meta)
    state_text = reply.state_text
    if reply.state is ReplyState.SENT:
        state_text += f" {local_time(reply.at, now=now)}"
    cursor.insertText(state_text, state)
    for label in reply.labels:
        cursor.insertText(f"  ·  {label}", meta)
    insert_card_body(cursor, reply.text, body)
