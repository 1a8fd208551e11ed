"""The conversation pane explains a clock that stands still: time left when paused, when business hours resume."""

from __future__ import annotations

import sqlite_utils
from pytestqt.qtbot import QtBot

from console.queue import QueueService
from storage.rows import MentionStatus
from tests.console.test_sla_engine import MIN, T0, World, business_policy, make_world
from tests.fakes.clock import FakeClock
from widgets.conversation import ConversationPane


def _pane(qtbot: QtBot, w: World) -> ConversationPane:
    service = QueueService(w.mentions, w.events, w.clock, deadline_notes=w.engine.notes)
    pane = ConversationPane(service, w.clock)
    qtbot.addWidget(pane)
    return pane


def test_conversation_paused_deadline_says_how_much_was_left(qtbot: QtBot, db: sqlite_utils.Database) -> None:
    w = make_world(db, FakeClock(T0))
    head, _ = w.post(T0)
    w.engine.record_response(head, T0 + MIN)
    w.clock.set(T0 + 60 * MIN)
    w.status(head, MentionStatus.WAITING, T0 + 60 * MIN)
    w.clock.set(T0 + 2 * 3600)
    pane = _pane(qtbot, w)
    pane.show_mention(head)
    first, resolution = pane.deadline_texts()
    assert first.startswith("Met at ")
    assert resolution == "Paused (waiting on customer) · 23:00:00 left when paused"


def test_conversation_outside_business_hours_says_when_the_clock_resumes(
    qtbot: QtBot, db: sqlite_utils.Database
) -> None:
    w = make_world(db, FakeClock(T0))
    w.engine.set_policies(business_policy())
    friday_evening = T0 + 4 * 86_400 + 8 * 3600  # Fri 18:00 London
    w.clock.set(friday_evening)
    head, _ = w.post(friday_evening)
    pane = _pane(qtbot, w)
    pane.show_mention(head)
    first = pane.deadline_texts()[0]
    assert first.startswith("Running · ")
    assert first.endswith(" left · outside business hours · resumes Mon 09:00")

    monday = T0 + 7 * 86_400 - 60 * MIN  # Mon 09:00
    w.clock.set(monday + 60)
    pane.on_tick(w.clock.now())  # the notes are re-read on the tick (at most every 30 s)
    assert pane.deadline_texts()[0] == "Running · 29:00 left"


def test_conversation_without_an_sla_engine_shows_no_notes(qtbot: QtBot, db: sqlite_utils.Database) -> None:
    w = make_world(db, FakeClock(T0))
    head, _ = w.post(T0)
    w.clock.set(T0 + 10 * MIN)
    w.status(head, MentionStatus.WAITING, T0 + 10 * MIN)
    pane = ConversationPane(QueueService(w.mentions, w.events, w.clock), w.clock)
    qtbot.addWidget(pane)
    pane.show_mention(head)
    assert pane.deadline_texts()[1] == "Paused (waiting on customer)"
