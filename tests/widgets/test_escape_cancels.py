"""Escape cancels: it leaves correction mode and closes the tour (issue 19 §2)."""

from __future__ import annotations

import sqlite_utils
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QListWidget, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from storage.replies import ReplyRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from tests.widgets.test_composer import make_composer, make_desk
from widgets.welcome import Tour, TourStep, WelcomeDialog


def test_composer_escape_leaves_correction_mode(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    desk = make_desk(db, factory, clock)
    head = factory.add(text="Refund?", external_id="s1")
    sent = desk.outbox.queue(head, "Your refund leaves on Monday.")
    ReplyRepo(db).mark_sent(sent, external_id="r1", url="", at=int(clock.now()))
    composer = make_composer(qtbot, desk, head)
    composer.refresh_replies()
    states = composer.findChild(QListWidget, "replyStates")
    assert isinstance(states, QListWidget)
    states.setCurrentRow(0)
    correct = next(b for b in composer.findChildren(QPushButton) if b.text() == "Correct…")
    qtbot.mouseClick(correct, Qt.MouseButton.LeftButton)
    assert composer.is_correcting()
    assert composer.text() == "Your refund leaves on Monday."
    composer.activateWindow()
    composer.editor.setFocus()
    qtbot.waitUntil(composer.editor.hasFocus)
    qtbot.keyClick(composer.editor, Qt.Key.Key_Escape)
    assert not composer.is_correcting()
    assert composer.text() == ""
    send = composer.findChild(QPushButton, "sendButton")
    assert isinstance(send, QPushButton)
    assert send.text() == "Send"


def test_tour_escape_closes_it(qtbot: QtBot) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    for name in ("first", "second"):
        child = QWidget(window)
        child.setObjectName(name)
    window.resize(800, 600)
    window.show()
    qtbot.waitExposed(window)
    tour = Tour(window, (TourStep("first", "One", "The first"), TourStep("second", "Two", "The second")))
    tour.start()
    window.activateWindow()
    qtbot.waitUntil(tour.next_button.hasFocus)
    with qtbot.waitSignal(tour.finished):
        qtbot.keyClick(tour.next_button, Qt.Key.Key_Escape)
    assert not tour.bubble.isVisible()


def test_welcome_escape_skips_neither_the_name_nor_the_choice(qtbot: QtBot) -> None:
    """Issue 19 §16: Escape rejected the welcome, leaving no name and no start chosen."""
    dialog = WelcomeDialog()
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitExposed(dialog)
    qtbot.keyClick(dialog.name_edit, Qt.Key.Key_Escape)
    assert dialog.isVisible()
    assert dialog.result() == 0
    qtbot.keyClicks(dialog.name_edit, "Ana")
    qtbot.keyClick(dialog.name_edit, Qt.Key.Key_Return)
    assert dialog.sandbox_button.isVisible()
    qtbot.keyClick(dialog.sandbox_button, Qt.Key.Key_Escape)
    assert dialog.isVisible()
    assert dialog.name_edit.isVisible()  # back on the name page, the choice still to make
    assert dialog.start is None
