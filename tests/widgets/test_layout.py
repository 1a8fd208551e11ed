"""Layout on a small screen and under a busy composer (issue 19 §10): nothing off screen, squeezed or overlapping."""

from __future__ import annotations

import itertools

import pytest
import sqlite_utils
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QListWidget, QPushButton, QSplitter, QTextBrowser, QWidget
from pytestqt.qtbot import QtBot

from console.queue import QueueService
from console.replies.desk import ReplyDesk
from storage.replies import ReplyRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from tests.widgets.test_composer import make_desk
from widgets.composer import Composer
from widgets.conversation import THREAD_MIN_LINES
from widgets.main_window import MainWindow
from widgets.queue_model import Col


@pytest.fixture
def desk(db: sqlite_utils.Database, factory: Factory, clock: FakeClock) -> ReplyDesk:
    return make_desk(db, factory, clock)


@pytest.fixture
def window(qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock, desk: ReplyDesk) -> MainWindow:
    now = clock.now()
    for i in range(30):
        factory.add(text=f"Where is order {i}? It was due yesterday and nobody answers.", handle=f"customer{i}",
                    name=f"Customer Number {i}", posted_at=now - 60 * i)  # fmt: skip
    win = MainWindow(service, clock, replies=desk)
    qtbot.addWidget(win)
    return win


def _show(qtbot: QtBot, window: MainWindow, width: int, height: int) -> None:
    window.resize(width, height)
    window.show()
    qtbot.waitExposed(window)
    qtbot.wait(10)


def _composer(window: MainWindow) -> Composer:
    composer = window.composer
    assert composer is not None
    return composer


def _in(widget: QWidget, ancestor: QWidget) -> QRect:
    return QRect(widget.mapTo(ancestor, widget.rect().topLeft()), widget.size())


def test_layout_fits_an_800x600_screen(qtbot: QtBot, window: MainWindow) -> None:
    hint = window.minimumSizeHint()
    assert hint.width() <= 800
    assert hint.height() <= 560


@pytest.mark.parametrize("width", [800, 1000, 1400])
def test_layout_sla_column_stays_on_screen(qtbot: QtBot, window: MainWindow, width: int) -> None:
    _show(qtbot, window, width, 600)
    view = window.queue_view
    right = view.columnViewportPosition(Col.SLA) + view.columnWidth(Col.SLA)
    assert not view.isColumnHidden(Col.SLA)
    assert right <= view.viewport().width()
    assert view.horizontalScrollBar().maximum() == 0
    assert view.columnWidth(Col.PREVIEW) >= 80


def test_layout_wide_window_shows_every_column(qtbot: QtBot, window: MainWindow) -> None:
    _show(qtbot, window, 1400, 860)
    splitter = window.findChild(QSplitter, "mainSplitter")
    assert isinstance(splitter, QSplitter)
    splitter.setSizes([900, 500])  # the default queue share of a 1400-pixel window on a large screen
    qtbot.wait(10)
    view = window.queue_view
    assert [c for c in Col if view.isColumnHidden(c)] == []


@pytest.mark.parametrize("extra", ["templates", "privacy", "correction"])
def test_layout_window_does_not_grow_when_the_composer_opens_more(
    qtbot: QtBot, window: MainWindow, db: sqlite_utils.Database, desk: ReplyDesk, extra: str
) -> None:
    _show(qtbot, window, 800, 600)
    _open_extra(qtbot, window, desk, db, extra)
    qtbot.wait(10)
    assert window.width() <= 800
    assert window.height() <= 600
    assert window.minimumSizeHint().height() <= 560


@pytest.mark.parametrize("extra", ["templates", "privacy", "correction"])
def test_layout_customer_message_keeps_its_lines(
    qtbot: QtBot, window: MainWindow, db: sqlite_utils.Database, desk: ReplyDesk, extra: str
) -> None:
    window.setMaximumSize(800, 600)  # maximised on a small screen: the window cannot grow
    _show(qtbot, window, 800, 600)
    thread = window.conversation.findChild(QTextBrowser, "threadView")
    assert isinstance(thread, QTextBrowser)
    _open_extra(qtbot, window, desk, db, extra)
    qtbot.wait(10)
    lines = thread.viewport().height() // thread.fontMetrics().lineSpacing()
    assert lines >= THREAD_MIN_LINES


def test_layout_correction_mode_counter_and_send_do_not_overlap_the_text(
    qtbot: QtBot, window: MainWindow, db: sqlite_utils.Database, desk: ReplyDesk
) -> None:
    _show(qtbot, window, 800, 600)
    composer = _composer(window)
    _open_extra(qtbot, window, desk, db, "correction")
    send = composer.findChild(QPushButton, "sendButton")
    assert isinstance(send, QPushButton)
    assert send.text() == "Send correction"
    editor = composer.editor
    # The scroll area re-fits the composer on the next turn of the event loop.
    qtbot.waitUntil(lambda: not _in(send, composer).intersects(_in(editor, composer)), timeout=2000)
    assert editor.height() >= editor.minimumHeight()


def _open_extra(qtbot: QtBot, window: MainWindow, desk: ReplyDesk, db: sqlite_utils.Database, extra: str) -> None:
    composer = _composer(window)
    mention = composer.mention_id
    assert mention is not None
    if extra == "templates":
        composer.open_picker()
        assert composer.template_results()
    elif extra == "privacy":
        composer.editor.setPlainText("I've sent the label to ana@example.com.")
        assert composer.send() is None
        assert composer.privacy_prompt()
    else:
        sent = desk.outbox.queue(mention, "Your refund leaves on Monday.")
        ReplyRepo(db).mark_sent(sent, external_id="r1", url="", at=int(desk.clock.now()))
        composer.refresh_replies()
        states = composer.findChild(QListWidget, "replyStates")
        assert isinstance(states, QListWidget)
        states.setCurrentRow(0)
        correct = next(b for b in composer.findChildren(QPushButton) if b.text() == "Correct…")
        qtbot.mouseClick(correct, Qt.MouseButton.LeftButton)
        assert composer.is_correcting()


def test_layout_conversation_sections_never_overlap_on_a_small_screen(
    qtbot: QtBot, window: MainWindow, factory: Factory
) -> None:
    """Word-wrapped headers and deadlines need more lines when narrow: the pane scrolls, nothing overlaps."""
    long_name = factory.add(
        text="My parcel went to the wrong depot twice and the tracking page says nothing useful at all.",
        handle="a.customer.with.a.very.long.handle.indeed",
        name="Maximiliana Wilhelmina von Schwarzenberg-Lichtenstein",
        posted_at=factory.clock.now() - 3_000,
    )
    window.setMaximumSize(800, 600)
    _show(qtbot, window, 800, 600)
    window.queue_view.select_mention(long_name)
    page = window.conversation.page()
    names = ["conversationSubtitle", "deadlineBox", "threadView", "historyList"]

    def apart() -> bool:
        rects = []
        for name in names:
            widget = page.findChild(QWidget, name)
            assert widget is not None
            rects.append(_in(widget, page))
        return all(a.bottom() < b.top() for a, b in itertools.pairwise(rects))

    qtbot.waitUntil(apart, timeout=2000)
