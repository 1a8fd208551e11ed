"""Defects found walking a shift by hand in a real window (issue 19, Done when): each fails without its fix."""

from __future__ import annotations

import sqlite_utils
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from console.queue import QueueService
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.conversation_extras import CustomerPanel
from widgets.welcome import Start, WelcomeDialog


def test_welcome_enter_on_the_focused_choice_starts_it(qtbot: QtBot) -> None:
    dialog = WelcomeDialog(agent_name="Ana")
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.keyClick(dialog.name_edit, Qt.Key.Key_Return)
    assert dialog.focusWidget() is dialog.sandbox_button
    assert dialog.start is None
    with qtbot.waitSignal(dialog.accepted):
        qtbot.keyClick(dialog.sandbox_button, Qt.Key.Key_Return)
    assert dialog.start is Start.SANDBOX


def test_welcome_enter_in_the_name_field_does_not_pick_a_start(qtbot: QtBot) -> None:
    dialog = WelcomeDialog(agent_name="Ana")
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.keyClick(dialog.name_edit, Qt.Key.Key_Return)
    assert dialog.isVisible() and dialog.sandbox_button.isVisible()


def test_customer_panel_long_net_easy_answer_does_not_widen_the_pane(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock, db: sqlite_utils.Database
) -> None:
    now = int(clock.now())
    old = factory.add(handle="ana", text="My first question", posted_at=now - 900)
    new = factory.add(handle="ana", text="Another one", posted_at=now - 60)
    panel = CustomerPanel(service)
    qtbot.addWidget(panel)
    panel.show_mention(new, now=now)
    customer = service.rows_by_id([old])[old].customer_id
    answer = "honestly it took three tries and a phone call but in the end it was fine " * 3
    db.conn.execute(
        "INSERT INTO surveys (mention_id, customer_id, sent_at, question_version, answer_text, score, parsed_at) "
        "VALUES (?, ?, ?, 'v1', ?, NULL, ?)",
        (old, customer, now - 500, answer, now - 400),
    )
    panel.show_mention(new, now=now)
    assert panel.survey_text().startswith("Last Net Easy answer: Unclear answer")
    label = panel.findChild(QLabel, "lastNetEasy")
    assert isinstance(label, QLabel)
    # The label may shrink below its text (it elides), so the pane keeps to the window's width.
    assert label.minimumSizeHint().width() <= 120
    panel.resize(300, panel.height())
    qtbot.wait(0)
    assert panel.width() == 300
