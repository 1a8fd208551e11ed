"""ConversationPane: the thread as plain text, every deadline with its state, history, safe links."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from console.queue import QueueService
from storage.rows import MentionKind
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.conversation import EMPTY_TEXT, ConversationPane


class OpenedUrls:
    """A fake for QDesktopServices.openUrl: records instead of starting a browser."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: QUrl) -> bool:
        self.urls.append(url.toString())
        return True


@pytest.fixture
def opened() -> OpenedUrls:
    return OpenedUrls()


@pytest.fixture
def pane(qtbot: QtBot, service: QueueService, clock: FakeClock, opened: OpenedUrls) -> ConversationPane:
    widget = ConversationPane(service, clock, open_url=opened)
    qtbot.addWidget(widget)
    widget.resize(560, 700)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.fixture
def thread_head(factory: Factory, clock: FakeClock) -> int:
    now = clock.now()
    head = factory.add(text="<b>x</b> is what the app shows\n<img src='http://evil.example/p.png'>", posted_at=now - 60)
    head_ext = factory.mentions.rows_by_id([head])[head].external_id
    factory.store([factory.new(text="Any update?", kind=MentionKind.DIRECT, parent=head_ext, posted_at=now - 10)])
    return head


def test_conversation_starts_empty(pane: ConversationPane) -> None:
    assert pane.is_empty()
    label = pane.findChild(QLabel, "emptyState")
    assert isinstance(label, QLabel)
    assert label.isVisible()
    assert label.text() == EMPTY_TEXT == "Select an item to see the conversation"


def test_conversation_shows_markup_literally(pane: ConversationPane, thread_head: int) -> None:
    pane.show_mention(thread_head)
    text = pane.thread_text()
    assert "<b>x</b> is what the app shows" in text
    assert "<img src='http://evil.example/p.png'>" in text


def test_conversation_shows_thread_in_order_with_direct_marker(pane: ConversationPane, thread_head: int) -> None:
    pane.show_mention(thread_head)
    text = pane.thread_text()
    assert text.index("is what the app shows") < text.index("Any update?")
    assert text.count("Ana Lima") == 2
    assert text.count("Direct message") == 1
    assert text.index("Direct message") > text.index("is what the app shows")


def test_conversation_lists_every_deadline_with_countdown(
    pane: ConversationPane, thread_head: int, clock: FakeClock
) -> None:
    pane.show_mention(thread_head)
    assert pane.deadline_texts() == ["Running · 29:00 left", "Running · 23:59:00 left"]
    clock.advance(1_830)
    pane.on_tick(clock.now())
    assert pane.deadline_texts() == ["Breached · +01:30", "Running · 23:28:30 left"]


def test_conversation_shows_met_deadlines(
    pane: ConversationPane, factory: Factory, thread_head: int, clock: FakeClock
) -> None:
    factory.db.execute(
        "UPDATE deadlines SET met_at = ? WHERE mention_id = ? AND kind = 'first_response'",
        (int(clock.now()), thread_head),
    )
    pane.show_mention(thread_head)
    first, _resolution = pane.deadline_texts()
    assert first.startswith("Met at ")


def test_conversation_lists_history(pane: ConversationPane, thread_head: int) -> None:
    pane.show_mention(thread_head)
    history = pane.history_texts()
    assert len(history) == 2
    assert "Received · sync" in history[0]
    assert "Customer follow-up · sync" in history[1]


def test_conversation_returns_to_empty_state(pane: ConversationPane, thread_head: int) -> None:
    pane.show_mention(thread_head)
    assert not pane.is_empty()
    pane.show_mention(None)
    assert pane.is_empty()
    assert pane.mention_id is None


@pytest.mark.parametrize(
    ("url", "opens"),
    [
        ("https://social.example/@ana/1", True),
        ("http://social.example/@ana/1", True),
        ("javascript:alert(1)", False),
        ("file:///etc/passwd", False),
        ("", False),
    ],
)
def test_conversation_opens_only_web_links(
    qtbot: QtBot, pane: ConversationPane, factory: Factory, opened: OpenedUrls, url: str, opens: bool
) -> None:
    mention_id = factory.add(url=url)
    pane.show_mention(mention_id)
    button = pane.open_button()
    assert button.isEnabled() is opens
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert opened.urls == ([url] if opens else [])


@pytest.mark.parametrize("then_show", [None, 999_999], ids=["no-selection", "item-gone"])
def test_conversation_tick_after_emptying_does_not_crash(
    pane: ConversationPane, thread_head: int, clock: FakeClock, then_show: int | None
) -> None:
    """Issue 19 §1: an item open, then a view with no items: the countdown kept zipping stale labels."""
    pane.show_mention(thread_head)
    assert len(pane.deadline_texts()) == 2
    pane.show_mention(then_show)
    clock.advance(1)
    pane.on_tick(clock.now())
    assert pane.is_empty()
    assert pane.deadline_texts() == []
