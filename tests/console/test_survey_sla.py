"""A bare Net Easy answer owes no reply: the real SLA engine starts no next response and nothing stays reopened."""

from __future__ import annotations

from typing import Any

import pytest
import sqlite_utils

from console.model import SyncReport
from console.sla.engine import SlaEngine
from console.surveys.service import SurveyService
from storage.deadlines import DeadlineRepo
from storage.rows import DeadlineKind, MentionStatus
from storage.settings import SURVEY_CUSTOMER_DAYS
from tests.fakes.clock import FakeClock
from tests.fakes.surveys import World


class Wired:
    """The survey world with the real SLA engine wired the way runtime.py wires it."""

    def __init__(self, db: sqlite_utils.Database, clock: FakeClock) -> None:
        self.world = World(db, clock)
        self.clock = clock
        self.engine = SlaEngine(DeadlineRepo(db, self.world.mentions), self.world.settings, clock)
        self.world.service = SurveyService(
            self.world.repo,
            self.world.mentions,
            self.world.settings,
            clock,
            self.world.outbox,
            on_status_change=self.engine.on_status_change,
            on_answered=self.engine.recompute,
        )
        self.world.service.subscribe(self.world.heard.extend)

    def answered_item(self, final: MentionStatus) -> int:
        """A conversation the agent answered through the engine, then left in ``final``."""
        _, head = self.world.message("cust")
        self.engine.recompute([head])
        self.clock.advance(60)
        self.world.db.conn.execute(
            "INSERT INTO replies (mention_id, text, purpose, idempotency_key, state, external_id, created_at, sent_at) "
            "VALUES (?, 'on it', 'reply', ?, 'sent', ?, ?, ?)",
            (head, f"agent-{head}", f"r{head}", int(self.clock.now()), int(self.clock.now())),
        )
        self.engine.record_response(head, int(self.clock.now()))
        if final is not MentionStatus.OPEN:
            self.world.set_status(head, final)
            self.engine.on_status_change(head, MentionStatus.OPEN, final, int(self.clock.now()))
        return head

    def customer_says(self, head: int, text: str, *, author: str = "cust") -> None:
        """The customer's message arrives the way a sync stores it; the listeners run in runtime order."""
        self.clock.advance(120)
        self.world.message(author, text, parent=f"out-{len(self.world.outbox.calls)}")
        self.engine.on_synced(SyncReport(self.world.account.id, int(self.clock.now()), follow_ups=(head,)))
        self.world.sync(head)

    def running(self, head: int) -> list[DeadlineKind]:
        return [d.kind for d in self.world.mentions.deadlines(head) if d.met_at is None and d.cancelled_at is None]


@pytest.fixture
def wired(db: sqlite_utils.Database, clock: FakeClock) -> Wired:
    return Wired(db, clock)


@pytest.mark.parametrize("final", [MentionStatus.OPEN, MentionStatus.RESOLVED])
def test_bare_answer_starts_no_next_response(wired: Wired, arun: Any, final: MentionStatus) -> None:
    head = wired.answered_item(final)
    status_before = wired.world.status(head)
    arun(wired.world.service.send(head))
    wired.customer_says(head, "2")
    survey = wired.world.service.state(head).survey
    assert survey is not None and survey.score == 2
    assert wired.world.status(head) == status_before  # not left reopened
    assert DeadlineKind.NEXT_RESPONSE not in wired.running(head)
    planned = wired.engine.planned(head)  # the replay itself agrees, not only the stored rows
    assert not [p for p in planned if p.kind is DeadlineKind.NEXT_RESPONSE and p.running]
    if final is MentionStatus.RESOLVED:
        assert wired.running(head) == []
        assert wired.world.mentions.rows_by_id([head])[head].due_at is None
        # The reopening is undone, not counted: exactly one resolution, met when the agent resolved it.
        resolutions = [d for d in wired.world.mentions.deadlines(head) if d.kind is DeadlineKind.RESOLUTION]
        assert [d.met_at is not None for d in resolutions].count(True) == 1


def test_bare_answer_on_a_waiting_item_puts_it_back_to_waiting(wired: Wired, arun: Any) -> None:
    head = wired.answered_item(MentionStatus.RESOLVED)
    arun(wired.world.service.send(head))
    wired.world.set_status(head, MentionStatus.WAITING)
    wired.engine.on_status_change(head, MentionStatus.RESOLVED, MentionStatus.WAITING, int(wired.clock.now()))
    wired.customer_says(head, "a 2")
    assert wired.world.status(head) == "waiting"
    assert DeadlineKind.NEXT_RESPONSE not in wired.running(head)


def test_answer_with_a_question_is_a_real_follow_up(wired: Wired, arun: Any) -> None:
    head = wired.answered_item(MentionStatus.RESOLVED)
    arun(wired.world.service.send(head))
    wired.customer_says(head, "2 - but where is my refund?")
    assert wired.world.status(head) == "open"
    assert DeadlineKind.NEXT_RESPONSE in wired.running(head)
    assert any(p.kind is DeadlineKind.NEXT_RESPONSE and p.running for p in wired.engine.planned(head))


def test_a_later_plain_follow_up_still_starts_next_response(wired: Wired, arun: Any) -> None:
    head = wired.answered_item(MentionStatus.OPEN)
    arun(wired.world.service.send(head))
    wired.customer_says(head, "2")
    assert DeadlineKind.NEXT_RESPONSE not in wired.running(head)
    wired.customer_says(head, "actually the app crashed again")
    assert DeadlineKind.NEXT_RESPONSE in wired.running(head)


def test_net_easy_per_template_used_in_the_conversation(wired: Wired, arun: Any) -> None:
    from console.surveys.service import Grouping

    world = wired.world
    world.settings.set(SURVEY_CUSTOMER_DAYS, 0)
    now = int(wired.clock.now())
    world.db.conn.execute(
        "INSERT INTO templates (name, body, created_at, updated_at) VALUES ('Apology', 'Sorry', ?, ?)", (now, now)
    )
    apology = int(world.db.conn.execute("SELECT id FROM templates WHERE name = 'Apology'").fetchone()[0])
    start = now
    for i, answer in enumerate(["1", "7", "2"]):
        _, head = world.message(f"c{i}")
        wired.clock.advance(30)
        template = apology if i < 2 else None
        world.db.conn.execute(
            "INSERT INTO replies (mention_id, text, purpose, idempotency_key, state, external_id, created_at, "
            "sent_at, template_id) VALUES (?, 'sorry', 'reply', ?, 'sent', ?, ?, ?, ?)",
            (head, f"t{i}", f"tr{i}", int(wired.clock.now()), int(wired.clock.now()), template),
        )
        world.db.conn.execute("UPDATE deadlines SET met_at = ? WHERE mention_id = ?", (int(wired.clock.now()), head))
        world.set_status(head, MentionStatus.RESOLVED)
        arun(world.service.send(head))
        wired.customer_says(head, answer, author=f"c{i}")
        wired.clock.advance(2 * 86400)
    report = world.service.report(since=start, until=int(wired.clock.now()) + 1)
    rows = {g.label: g.figure for g in report.groups[Grouping.TEMPLATE]}
    assert set(rows) == {"Apology"}  # the third conversation used no template
    assert (rows["Apology"].n, rows["Apology"].score) == (2, 0.0)  # one easy (1), one difficult (7)
    assert report.overall.n == 3
