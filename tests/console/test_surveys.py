"""SurveyService: the fatigue guard, the send port, reading answers after sync, manual scoring, the figures."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlite_utils

from console.model import SyncReport
from console.surveys.service import MIN_GAP, Refusal, SurveyRefused, SurveyService, question_version
from storage.events import EventRepo
from storage.rows import MentionKind, MentionStatus
from storage.settings import AGENT_NAME, SURVEY_CUSTOMER_DAYS, SURVEY_QUESTION
from tests.fakes.clock import FakeClock
from tests.fakes.surveys import World

DAY = 86400


@pytest.fixture
def world(db: sqlite_utils.Database, clock: FakeClock) -> World:
    return World(db, clock)


def test_send_goes_privately_through_the_outbox_and_is_recorded(world: World, arun: Any) -> None:
    world.settings.set(AGENT_NAME, "ana")
    _, head = world.message("cust")
    world.answered(head)
    survey = arun(world.service.send(head))
    assert world.outbox.calls == [(head, SURVEY_QUESTION.default, "direct")]
    assert "1 (extremely easy)" in SURVEY_QUESTION.default and "7 (extremely difficult)" in SURVEY_QUESTION.default
    assert survey.mention_id == head and survey.reply_id is not None
    assert survey.question_version == question_version(SURVEY_QUESTION.default)
    assert (survey.scale_min, survey.scale_max) == (1, 7)
    events = [e for e in EventRepo(world.db).for_mention(head) if e.kind == "survey_sent"]
    assert len(events) == 1 and events[0].actor == "ana"
    assert json.loads(events[0].data) == {"survey_id": survey.id}


def test_edited_question_is_sent_and_versioned(world: World, arun: Any) -> None:
    world.settings.set(SURVEY_QUESTION, "How easy was that? 1 = very easy, 7 = very hard")
    _, head = world.message("cust")
    world.answered(head)
    survey = arun(world.service.send(head))
    assert world.outbox.calls[0][1] == "How easy was that? 1 = very easy, 7 = very hard"
    assert survey.question_version != question_version(SURVEY_QUESTION.default)


def test_channel_without_private_path_goes_in_thread_and_says_so(
    db: sqlite_utils.Database, clock: FakeClock, arun: Any
) -> None:
    world = World(db, clock, channel="youtube")
    _, head = world.message("viewer")
    world.answered(head)
    check = world.service.check(head)
    assert check.allowed and not check.private
    assert "public thread" in check.route
    arun(world.service.send(head))
    assert world.outbox.calls[0][2] is None


@pytest.mark.parametrize(
    ("status", "refusal", "words"),
    [
        (MentionStatus.SPAM, Refusal.SPAM, "spam"),
        (MentionStatus.COMMUNITY, Refusal.COMMUNITY, "community"),
        (MentionStatus.WAITING, Refusal.WAITING, "waiting"),
    ],
)
def test_guard_refuses_spam_community_and_waiting(
    world: World, status: MentionStatus, refusal: Refusal, words: str, arun: Any
) -> None:
    _, head = world.message("cust")
    world.answered(head, resolve=False)
    world.set_status(head, status)
    check = world.service.check(head)
    assert not check.allowed and check.refusal is refusal and words in check.reason
    with pytest.raises(SurveyRefused, match=words):
        arun(world.service.send(head))
    assert world.outbox.calls == []


def test_guard_refuses_while_the_customer_waits_for_a_reply(world: World) -> None:
    _, head = world.message("cust")
    check = world.service.check(head)
    assert check.refusal is Refusal.WAITING and "waiting for a reply" in check.reason
    world.answered(head, resolve=False)
    assert world.service.check(head).allowed  # answered, not resolved: fine


def test_one_survey_per_conversation(world: World, clock: FakeClock, arun: Any) -> None:
    _, head = world.message("cust")
    world.answered(head)
    arun(world.service.send(head))
    clock.advance(200 * DAY)
    check = world.service.check(head)
    assert check.refusal is Refusal.ALREADY_SURVEYED
    assert "already surveyed" in check.reason


def test_per_customer_interval_and_24h_floor(world: World, clock: FakeClock, arun: Any) -> None:
    heads = []
    for _ in range(4):
        _, head = world.message("cust")
        world.answered(head)
        heads.append(head)
    _, other = world.message("someone-else")
    world.answered(other)
    arun(world.service.send(heads[0]))
    assert world.service.check(other).allowed  # another customer is not affected
    clock.advance(3 * DAY)
    check = world.service.check(heads[1])
    assert check.refusal is Refusal.CUSTOMER_RECENT and "3 days ago" in check.reason and "every 30 days" in check.reason
    world.settings.set(SURVEY_CUSTOMER_DAYS, 0)
    assert world.service.check(heads[1]).allowed
    arun(world.service.send(heads[1]))
    clock.advance(MIN_GAP - 3600)
    check = world.service.check(heads[2])
    assert check.refusal is Refusal.CUSTOMER_24H and "24 hours" in check.reason
    clock.advance(3600)
    assert world.service.check(heads[2]).allowed
    arun(world.service.send(heads[2]))
    world.settings.set(SURVEY_CUSTOMER_DAYS, 30)
    clock.advance(29 * DAY)
    assert world.service.check(heads[3]).refusal is Refusal.CUSTOMER_RECENT
    clock.advance(DAY)
    assert world.service.check(heads[3]).allowed
    with pytest.raises(ValueError, match="between"):
        world.settings.set(SURVEY_CUSTOMER_DAYS, 181)


def test_failed_survey_reply_does_not_count_for_fatigue(world: World, arun: Any) -> None:
    _, head = world.message("cust")
    world.answered(head)
    survey = arun(world.service.send(head))
    world.db.conn.execute("UPDATE replies SET state = 'failed' WHERE id = ?", (survey.reply_id,))
    assert world.service.check(head).allowed


def send_and_answer(world: World, clock: FakeClock, arun: Any, text: str, *, author: str = "cust") -> tuple[int, int]:
    _, head = world.message("cust")
    world.answered(head)
    arun(world.service.send(head))
    clock.advance(120)
    survey_ext = f"out-{len(world.outbox.calls)}"
    _, message = world.message(author, text, parent=survey_ext, kind=MentionKind.DIRECT)
    return head, message


def test_pure_answer_is_scored_and_the_item_stays_resolved(world: World, clock: FakeClock, arun: Any) -> None:
    head, _ = send_and_answer(world, clock, arun, "@care 2 thanks!")
    assert world.status(head) == "open"  # the sync reopened it, as for any follow-up
    answered = world.sync(head)
    assert [(s.score, s.comment, s.needs_review) for s in answered] == [(2, "thanks!", False)]
    assert world.status(head) == "resolved"
    running = world.mentions.deadlines(head)
    assert all(d.met_at is not None or d.cancelled_at is not None for d in running)
    kinds = [e.kind for e in EventRepo(world.db).for_mention(head)]
    assert kinds[-2:] == ["survey_answered", "status_changed"]
    assert world.mentions.rows_by_id([head])[head].due_at is None
    assert world.sync(head) == []  # read once


def test_answer_with_a_new_question_keeps_the_item_open(world: World, clock: FakeClock, arun: Any) -> None:
    head, _ = send_and_answer(world, clock, arun, "2. also, when will the refund show up?")
    [survey] = world.sync(head)
    assert survey.score == 2
    assert world.status(head) == "open"
    assert any(d.kind.value == "next_response" and d.cancelled_at is None for d in world.mentions.deadlines(head))


def test_ambiguous_answer_is_flagged_then_scored_by_hand(world: World, clock: FakeClock, arun: Any) -> None:
    world.settings.set(AGENT_NAME, "ana")
    head, _ = send_and_answer(world, clock, arun, "2 or 3")
    [survey] = world.sync(head)
    assert survey.needs_review and survey.score is None and survey.answer_text == "2 or 3"
    assert world.service.needing_review() == [survey]
    scored = world.service.score_manually(survey.id, 3)
    assert scored.score == 3 and not scored.needs_review
    assert world.service.needing_review() == []
    last = [e for e in EventRepo(world.db).for_mention(head) if e.kind == "survey_answered"][-1]
    assert last.actor == "ana" and json.loads(last.data)["manual"] is True
    with pytest.raises(ValueError, match="1–7"):
        world.service.score_manually(survey.id, 9)


def test_messages_from_anyone_else_never_count(world: World, clock: FakeClock, arun: Any) -> None:
    head, _ = send_and_answer(world, clock, arun, "1", author="bystander")
    assert world.sync(head) == []
    assert world.service.state(head).survey is not None
    assert world.service.state(head).survey.score is None  # type: ignore[union-attr]


def test_answers_after_seven_days_do_not_count(world: World, clock: FakeClock, arun: Any) -> None:
    _, head = world.message("cust")
    world.answered(head)
    arun(world.service.send(head))
    clock.advance(7 * DAY + 60)
    world.message("cust", "2", parent="out-1")
    assert world.sync(head) == []
    assert world.service.state(head).expired


def test_chatter_before_the_answer_is_skipped(world: World, clock: FakeClock, arun: Any) -> None:
    head, _ = send_and_answer(world, clock, arun, "thanks for asking!")
    assert world.sync(head) == []
    clock.advance(60)
    world.message("cust", "very easy", parent="out-1")
    [survey] = world.sync(head)
    assert survey.score == 2


def test_state_shows_the_customers_last_answer(world: World, clock: FakeClock, arun: Any) -> None:
    head, _ = send_and_answer(world, clock, arun, "1")
    world.sync(head)
    clock.advance(40 * DAY)
    _, again = world.message("cust", "new problem")
    state = world.service.state(again)
    assert state.survey is None
    assert state.last_answer is not None and state.last_answer.score == 1


def test_figures_per_channel_agent_and_response_rate(world: World, clock: FakeClock, arun: Any) -> None:
    world.settings.set(AGENT_NAME, "ana")
    start = int(clock.now())
    for i, text in enumerate(["1", "2", "6", None]):
        _, head = world.message(f"c{i}")
        world.answered(head)
        arun(world.service.send(head))
        clock.advance(60)
        if text is not None:
            world.message(f"c{i}", text, parent=f"out-{i + 1}")
            world.sync(head)
    overall = world.service.overall(since=start, until=int(clock.now()) + 1)
    assert (overall.n, overall.sent) == (3, 4)
    assert overall.score == pytest.approx(100 * (2 - 1) / 3)
    assert overall.response_rate == pytest.approx(0.75)
    assert overall.low_sample
    assert world.service.per_channel(since=start, until=int(clock.now()) + 1)["mastodon"].n == 3
    assert set(world.service.per_agent(since=start, until=int(clock.now()) + 1)) == {"ana"}


def test_with_the_sla_engine_a_pure_answer_leaves_no_clock_running(
    db: sqlite_utils.Database, clock: FakeClock, arun: Any
) -> None:
    from console.sla.engine import SlaEngine
    from storage.deadlines import DeadlineRepo

    world = World(db, clock)
    engine = SlaEngine(DeadlineRepo(db, world.mentions), world.settings, clock)
    world.service = SurveyService(
        world.repo, world.mentions, world.settings, clock, world.outbox, on_status_change=engine.on_status_change
    )
    world.service.subscribe(world.heard.extend)
    _, head = world.message("cust")
    engine.recompute([head])
    clock.advance(60)
    engine.record_response(head, int(clock.now()))
    world.set_status(head, MentionStatus.RESOLVED)
    engine.on_status_change(head, MentionStatus.OPEN, MentionStatus.RESOLVED, int(clock.now()))
    arun(world.service.send(head))
    clock.advance(120)
    world.message("cust", "1 thanks", parent="out-1")
    engine.on_synced(SyncReport(world.account.id, int(clock.now()), follow_ups=(head,)))  # the first listener
    [survey] = world.sync(head)
    assert survey.score == 1
    engine.recompute([head])  # any later replay agrees
    assert world.status(head) == "resolved"
    assert all(d.met_at is not None or d.cancelled_at is not None for d in world.mentions.deadlines(head))
    assert world.mentions.rows_by_id([head])[head].due_at is None


def test_report_compares_with_the_previous_period_and_groups(world: World, clock: FakeClock, arun: Any) -> None:
    from console.surveys.net_easy import Trend
    from console.surveys.service import Grouping

    world.settings.set(AGENT_NAME, "ana")
    world.settings.set(SURVEY_CUSTOMER_DAYS, 0)
    start = int(clock.now())

    def survey_and_answer(customer: str, answer: str) -> None:
        _, head = world.message(customer)
        world.answered(head)
        arun(world.service.send(head))
        clock.advance(60)
        world.message(customer, answer, parent=f"out-{len(world.outbox.calls)}")
        world.sync(head)
        clock.advance(DAY + 60)

    clock.advance(10)
    for i in range(12):  # the first 30 days: mostly difficult
        survey_and_answer(f"a{i}", "6" if i < 9 else "1")
    clock.set(start + 30 * DAY + 10)
    for i in range(12):  # the next 30 days: mostly easy
        survey_and_answer(f"b{i}", "1" if i < 11 else "7")
    until = start + 60 * DAY + 2
    report = world.service.report(since=until - 30 * DAY, until=until, points=5)
    assert (report.overall.n, report.previous.n) == (12, 12)
    assert report.overall.score == pytest.approx(100 * 10 / 12)
    assert report.previous.score == pytest.approx(-50.0)
    assert report.trend is Trend.UP
    assert report.overall.low_sample
    assert len(report.points) == 5 and sum(p.figure.n for p in report.points) == 12
    [channel] = report.groups[Grouping.CHANNEL]
    assert channel.label == "Mastodon" and channel.figure.n == 12
    assert [g.label for g in report.groups[Grouping.AGENT]] == ["ana"]
    assert report.groups[Grouping.SHIFT] == ()


def test_an_answer_in_a_fresh_direct_message_counts_and_is_resolved(world: World, clock: FakeClock, arun: Any) -> None:
    _, head = world.message("cust")
    world.answered(head)
    survey = arun(world.service.send(head))
    clock.advance(300)
    _, public = world.message("cust", "@care 1")  # a public post never counts
    _, dm = world.message("cust", "@care 1 thanks", kind=MentionKind.DIRECT)
    world.heard.clear()
    world.service.on_sync(SyncReport(world.account.id, int(clock.now()), new_items=(public, dm)))
    [answered] = world.heard
    assert answered.id == survey.id and answered.score == 1 and answered.comment == "thanks"
    assert world.status(dm) == "resolved" and world.status(public) == "new"
    clock.advance(60)
    _, later = world.message("cust", "2", kind=MentionKind.DIRECT)
    world.service.on_sync(SyncReport(world.account.id, int(clock.now()), new_items=(later,)))
    assert world.status(later) == "new"  # the survey is answered already


def test_a_fresh_direct_message_with_a_question_stays_open(world: World, clock: FakeClock, arun: Any) -> None:
    _, head = world.message("cust")
    world.answered(head)
    arun(world.service.send(head))
    clock.advance(300)
    _, dm = world.message("cust", "3, but where is my refund?", kind=MentionKind.DIRECT)
    world.service.on_sync(SyncReport(world.account.id, int(clock.now()), new_items=(dm,)))
    assert world.service.state(head).survey.score == 3  # type: ignore[union-attr]
    assert world.status(dm) == "new"


def test_question_must_keep_both_anchors(world: World) -> None:
    with pytest.raises(ValueError, match="both ends of the scale"):
        world.service.set_question("How easy was it? Reply 1 to 7.")
    with pytest.raises(ValueError, match="empty"):
        world.service.set_question("   ")
    assert world.service.question == SURVEY_QUESTION.default  # nothing lost on a refusal
    world.service.set_question("How easy was it today?  1 = very easy,\n7 = very hard")
    assert world.service.question == "How easy was it today? 1 = very easy, 7 = very hard"
    world.service.reset_question()
    assert world.service.question == SURVEY_QUESTION.default
    world.service.set_customer_days(90)
    assert world.service.customer_days == 90
    with pytest.raises(ValueError, match="between"):
        world.service.set_customer_days(-1)


def test_an_answer_written_in_time_counts_even_when_synced_late(world: World, clock: FakeClock, arun: Any) -> None:
    _, head = world.message("cust")
    world.answered(head)
    arun(world.service.send(head))
    clock.advance(2 * DAY)
    world.message("cust", "1", parent="out-1")  # written on day 2…
    clock.advance(10 * DAY)  # …read after ten days offline
    [survey] = world.sync(head)
    assert survey.score == 1
