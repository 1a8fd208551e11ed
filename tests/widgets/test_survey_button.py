"""The Net Easy section: send in one click, the route shown before sending, refusals, one-click scoring, prompt."""

from __future__ import annotations

import qasync
import sqlite_utils
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from console.surveys.service import SurveyService
from console.triage import Change, TriageField
from storage.events import EventRepo
from storage.rows import MentionKind, MentionStatus
from storage.settings import SURVEY_PROMPT_AFTER_RESOLVE
from tests.fakes.clock import FakeClock
from tests.fakes.surveys import World
from widgets.conversation import event_text
from widgets.survey_button import SHORTCUT, SurveyPanel


def panel_for(world: World, qtbot: QtBot) -> SurveyPanel:
    panel = SurveyPanel(world.service, world.clock)
    qtbot.addWidget(panel)
    return panel


def test_one_click_sends_privately_and_shows_the_wait(
    db: sqlite_utils.Database, clock: FakeClock, qtbot: QtBot, qloop: qasync.QEventLoop
) -> None:
    world = World(db, clock)
    _, head = world.message("cust")
    world.answered(head)
    panel = panel_for(world, qtbot)
    panel.set_mention(head)
    assert panel.button().text() == "Send Net Easy"
    assert "privately" in panel.status_text()
    assert SHORTCUT in panel.button().toolTip()
    with qtbot.waitSignal(panel.survey_sent, timeout=3000) as sent:
        qtbot.mouseClick(panel.button(), Qt.MouseButton.LeftButton)
    assert sent.args == [head]
    assert world.outbox.calls[0][0] == head and world.outbox.calls[0][2] == "direct"
    assert "Waiting for the answer" in panel.status_text()
    assert not panel.button().isEnabled()
    assert "already surveyed" in panel.button().toolTip()


def test_the_shortcut_sends_too(
    db: sqlite_utils.Database, clock: FakeClock, qtbot: QtBot, qloop: qasync.QEventLoop
) -> None:
    world = World(db, clock)
    _, head = world.message("cust")
    world.answered(head)
    panel = panel_for(world, qtbot)
    panel.set_mention(head)
    assert panel.send_action.shortcut().toString() == SHORTCUT
    with qtbot.waitSignal(panel.survey_sent, timeout=3000):
        panel.send_action.trigger()
    assert len(world.outbox.calls) == 1


def test_channel_without_private_path_says_so_before_sending(
    db: sqlite_utils.Database, clock: FakeClock, qtbot: QtBot
) -> None:
    world = World(db, clock, channel="youtube")
    _, head = world.message("viewer")
    world.answered(head)
    panel = panel_for(world, qtbot)
    panel.set_mention(head)
    assert panel.button().text() == "Send Net Easy (public)"
    assert "public thread" in panel.status_text()
    assert "public thread" in panel.button().toolTip()


def test_refused_send_says_why_and_is_disabled(db: sqlite_utils.Database, clock: FakeClock, qtbot: QtBot) -> None:
    world = World(db, clock)
    _, head = world.message("cust")  # nobody answered yet: the customer is waiting
    panel = panel_for(world, qtbot)
    panel.set_mention(head)
    assert not panel.button().isEnabled()
    assert "still waiting for a reply" in panel.status_text()
    panel.set_mention(None)
    assert panel.isHidden()


def test_flagged_answer_is_scored_in_one_click(
    db: sqlite_utils.Database, clock: FakeClock, qtbot: QtBot, arun: object
) -> None:
    world = World(db, clock)
    _, head = world.message("cust")
    world.answered(head)
    arun(world.service.send(head))  # type: ignore[operator]
    clock.advance(60)
    world.message("cust", "2 or 3", parent="out-1", kind=MentionKind.DIRECT)
    world.sync(head)
    panel = panel_for(world, qtbot)
    panel.set_mention(head)
    assert panel.review_visible()
    assert "Unclear answer" in panel.status_text() and '"2 or 3"' in panel.status_text()
    with qtbot.waitSignal(panel.survey_scored, timeout=1000):
        qtbot.mouseClick(panel.score_buttons()[2], Qt.MouseButton.LeftButton)
    assert not panel.review_visible()
    assert "Answered 3 (fairly easy)" in panel.status_text()
    state = world.service.state(head)
    assert state.survey is not None and state.survey.score == 3
    history = [event_text(e, clock.now()) for e in EventRepo(db).for_mention(head)]
    assert any("Net Easy survey sent" in line for line in history)
    assert any("Net Easy answer to score by hand · sync" in line for line in history)
    assert any("Net Easy answer: 3 · agent" in line for line in history)


def test_prompt_after_resolving_and_turning_it_off(
    db: sqlite_utils.Database, clock: FakeClock, qtbot: QtBot, qloop: qasync.QEventLoop
) -> None:
    world = World(db, clock)
    _, head = world.message("cust")
    world.answered(head)
    _, other = world.message("other")
    panel = panel_for(world, qtbot)
    panel.show()
    panel.set_mention(other)  # the selection moved on after resolving
    panel.on_triage_changed(Change(head, TriageField.STATUS, MentionStatus.OPEN, MentionStatus.RESOLVED, 0))
    assert panel.prompt_visible()
    send, later, never = panel.prompt_buttons()
    with qtbot.waitSignal(panel.survey_sent, timeout=3000) as sent:
        qtbot.mouseClick(send, Qt.MouseButton.LeftButton)
    assert sent.args == [head]
    assert not panel.prompt_visible()

    _, third = world.message("third")
    world.answered(third)
    panel.set_mention(third)
    panel.on_triage_changed(Change(third, TriageField.PRIORITY, 2, 1, 0))
    assert not panel.prompt_visible()  # only resolving asks
    panel.offer_after_resolve(third)
    assert panel.prompt_visible()
    qtbot.mouseClick(never, Qt.MouseButton.LeftButton)
    assert not panel.prompt_visible()
    assert world.settings.get(SURVEY_PROMPT_AFTER_RESOLVE) is False
    panel.offer_after_resolve(third)
    assert not panel.prompt_visible()
    assert isinstance(world.service, SurveyService)
    assert later.text() == "Not now"


def test_main_window_shows_the_section_for_the_selected_item(
    db: sqlite_utils.Database, clock: FakeClock, qtbot: QtBot
) -> None:
    from console.queue import QueueService
    from storage.events import EventRepo
    from widgets.main_window import MainWindow

    world = World(db, clock)
    _, head = world.message("cust")
    window = MainWindow(QueueService(world.mentions, EventRepo(db), clock), clock, surveys=world.service)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    panel = window.survey_panel
    assert panel is not None
    assert panel.send_action in window.actions()
    window.queue_view.select_mention(head)
    assert panel.mention_id == head
    assert panel.isVisible()
    assert "waiting for a reply" in panel.status_text()


def test_prompt_goes_when_the_agent_moves_on_to_another_customer(
    db: sqlite_utils.Database, clock: FakeClock, qtbot: QtBot
) -> None:
    """Issue 19 §16: the prompt for one customer stayed visible while the agent worked on others."""
    world = World(db, clock)
    _, head = world.message("cust")
    world.answered(head)
    _, other = world.message("other")
    _, third = world.message("third")
    panel = panel_for(world, qtbot)
    panel.show()
    panel.set_mention(other)  # resolving moved the selection on: the offer follows, about @cust
    panel.offer_after_resolve(head)
    assert panel.prompt_visible()
    panel.set_mention(third)  # the agent works on someone else
    assert not panel.prompt_visible()
    panel.set_mention(head)
    assert not panel.prompt_visible()  # "Not now", in effect; the Net Easy button is still there
