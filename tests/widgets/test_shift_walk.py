"""Defects found walking a shift by hand in a real window (issue 19, Done when): each fails without its fix."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QPushButton
from pytestqt.qtbot import QtBot

from console.ports import MemorySecretStore
from console.queue import QueueService
from console.runtime import Runtime, SandboxOptions, open_runtime
from console.sla.alerts import AlertMonitor
from console.triage import Triage
from storage.rows import ReplyState
from storage.triage import TriageRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.conversation import event_text
from widgets.conversation_extras import CustomerPanel
from widgets.main_window import MainWindow
from widgets.welcome import Start, WelcomeDialog

Arun = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture
def runtime(tmp_path: Path, clock: FakeClock, arun: Arun) -> Iterator[Runtime]:
    rt = open_runtime(
        tmp_path, clock=clock, secrets=MemorySecretStore(), sandbox=SandboxOptions(rate_per_minute=0, backlog=0)
    )
    yield rt
    arun(rt.aclose())


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


def test_status_bar_message_has_room_beside_the_deadline_alert(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock, db: sqlite_utils.Database
) -> None:
    """Pressing E on an unanswered item asks for a second E in the status bar; the question must be readable.
    The alert label used to stretch over the whole bar once the message hid the sync label, so the question
    (and every other status message) was drawn in no room at all."""
    now = clock.now()
    factory.add(text="Where is my parcel?", handle="ana", name="Ana", posted_at=now - 600)
    factory.add(text="Refund please", handle="bo", name="Bo", posted_at=now - 3600)
    triage = Triage(TriageRepo(db), clock, actor=lambda: "Sam")
    window = MainWindow(service, clock, triage=triage, alerts=AlertMonitor(service, clock))
    qtbot.addWidget(window)
    window.resize(1400, 860)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    window.queue_view.setFocus()
    qtbot.waitUntil(window.queue_view.hasFocus)
    qtbot.keyClick(window.queue_view, "e")
    message = window.statusBar().currentMessage()
    assert "again" in message
    alert = window.findChild(QLabel, "nextDeadline")
    assert isinstance(alert, QLabel) and alert.isVisible() and "breached" in alert.text()
    qtbot.wait(10)
    room = alert.mapTo(window.statusBar(), alert.rect().topLeft()).x()
    assert room >= window.statusBar().fontMetrics().horizontalAdvance(message)


def test_hand_off_buttons_show_after_withdraw_edit_again_and_send(
    qtbot: QtBot, runtime: Runtime, clock: FakeClock, arun: Arun
) -> None:
    """Withdraw a reply to a post added by hand, Edit again, Send: the new reply is the one selected, so Copy
    reply / Open post / Mark as sent show without hunting for its row (the withdrawn row stayed selected)."""
    mention_id = (
        runtime.manual_intake().add(link="https://x.com/cust/status/7", text="Broken", author="cust").mention_id
    )
    assert mention_id is not None and runtime.replies is not None
    window = MainWindow(runtime.queue, clock, replies=runtime.replies, triage=runtime.triage)
    qtbot.addWidget(window)
    window.show()
    composer = window.composer
    assert composer is not None and window.queue_view.select_mention(mention_id)
    buttons = {b.text(): b for b in composer.findChildren(QPushButton)}
    composer.editor.setPlainText("Sorry, a new pair ships today.")
    assert composer.send() is not None
    arun(runtime.replies.outbox.drain())
    composer.refresh_replies()
    buttons["Withdraw"].click()
    assert buttons["Edit again"].isVisible()
    buttons["Edit again"].click()
    assert composer.send() is not None
    arun(runtime.replies.outbox.drain())
    composer.refresh_replies()
    states = [r.state for r in runtime.replies.outbox.replies(mention_id)]
    assert states == [ReplyState.FAILED, ReplyState.QUEUED]
    assert buttons["Mark as sent"].isVisible() and buttons["Copy reply"].isVisible()
    assert not buttons["Edit again"].isVisible()


def test_net_easy_offered_as_soon_as_a_hand_off_reply_is_marked_sent(
    qtbot: QtBot, runtime: Runtime, clock: FakeClock, arun: Arun
) -> None:
    """The Net Easy section said "the customer is still waiting for a reply" after Mark as sent, until the
    agent selected the item again."""
    mention_id = (
        runtime.manual_intake().add(link="https://x.com/cust/status/8", text="Broken", author="cust").mention_id
    )
    assert mention_id is not None and runtime.replies is not None
    window = MainWindow(runtime.queue, clock, replies=runtime.replies, triage=runtime.triage, surveys=runtime.surveys)
    qtbot.addWidget(window)
    window.show()
    composer, survey = window.composer, window.survey_panel
    assert composer is not None and survey is not None
    assert window.queue_view.select_mention(mention_id)
    assert not survey.button().isEnabled()
    composer.editor.setPlainText("Sorry, a new pair ships today.")
    assert composer.send() is not None
    arun(runtime.replies.outbox.drain())
    composer.refresh_replies()
    buttons = {b.text(): b for b in composer.findChildren(QPushButton)}
    buttons["Mark as sent"].click()
    assert "waiting for a reply" not in survey.status_text()
    assert survey.button().isEnabled()


def test_window_as_big_as_the_screen_is_shown_maximized(qtbot: QtBot, service: QueueService, clock: FakeClock) -> None:
    """On a screen smaller than 1400x860 the window opens maximized, so the window manager keeps its title bar and
    status bar on screen; shown at the free area's size, its frame pushed the status bar below the screen's edge."""
    free = QGuiApplication.primaryScreen().availableGeometry()
    big = MainWindow(service, clock)
    qtbot.addWidget(big)
    big.fit_to_screen(free.width() + 600, free.height() + 260)
    big.show_fitted()
    assert big.isVisible() and big.isMaximized()
    small = MainWindow(service, clock)
    qtbot.addWidget(small)
    small.fit_to_screen(free.width() // 2, free.height() // 2)
    small.show_fitted()
    assert small.isVisible() and not small.isMaximized()


def test_history_says_withdrawn_for_a_reply_the_agent_took_back(runtime: Runtime, arun: Arun, clock: FakeClock) -> None:
    """The reply strip said "Withdrawn", the history beside it "Reply not sent"."""
    mention_id = (
        runtime.manual_intake().add(link="https://x.com/cust/status/9", text="Broken", author="cust").mention_id
    )
    assert mention_id is not None and runtime.replies is not None
    outbox = runtime.replies.outbox
    context = runtime.replies.context(mention_id)
    assert context is not None
    reply_id = runtime.replies.send(
        context, "Sorry, a new pair ships today.", visibility="public", seen_at=int(clock.now())
    )
    outbox.withdraw(reply_id)
    history = [event_text(e, clock.now()).split("   ", 1)[1] for e in runtime.queue.history(mention_id)]
    assert any(text.startswith("Reply withdrawn") for text in history)
    assert not any(text.startswith("Reply not sent") for text in history)
