"""End to end over loopback: survey sent as a direct reply through the outbox, the sandbox answers, score appears."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlite_utils

from console.channels.base import AccountRef
from console.channels.mastodon import MastodonConnector
from console.ports import MemorySecretStore
from console.replies.outbox import Outbox
from console.runtime import SandboxOptions, open_runtime
from console.sandbox import SandboxServer
from console.sandbox.traffic import TrafficGenerator, is_survey_prompt
from console.surveys.answers import AnswerKind, parse_answer
from console.surveys.service import SurveyService
from console.sync.inbox import Poller
from storage.accounts import AccountRepo, SyncStateRepo
from storage.mentions import MentionRepo
from storage.replies import ReplyRepo
from storage.rows import MentionStatus
from storage.settings import SURVEY_QUESTION, SettingsRepo
from storage.surveys import SurveyRepo
from tests.fakes.clock import FakeClock


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[SandboxServer]:
    server = SandboxServer(seed=4, rate_per_minute=0.0, clock=clock)
    server.start()
    yield server
    server.stop()


async def _loop(db: sqlite_utils.Database, clock: FakeClock, sandbox: SandboxServer) -> dict[str, Any]:
    accounts = AccountRepo(db)
    account = accounts.add(kind="mastodon", handle="care", base_url="sandbox://embedded", now=int(clock.now()))
    secrets = MemorySecretStore()
    secrets.set(f"mastodon:{account.id}", sandbox.token)
    mentions = MentionRepo(db)
    settings = SettingsRepo(db)
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        ref = AccountRef(account.id, "mastodon", "care", sandbox.base_url)
        connectors = {account.id: MastodonConnector(client, account=ref, secrets=secrets, clock=clock)}
        poller = Poller(mentions, accounts, SyncStateRepo(db), connectors, clock)
        outbox = Outbox(ReplyRepo(db), mentions, accounts, connectors, clock)

        def send(mention_id: int, text: str, visibility: str | None) -> int:
            return outbox.queue(mention_id, text, visibility=visibility, purpose="survey")

        surveys = SurveyService(SurveyRepo(db), mentions, settings, clock, send)
        poller.subscribe(surveys.on_sync)

        sandbox.post_mention(author="priya@hachyderm.example", text="@care where is my parcel?")
        [report] = await poller.sync_once()
        [head] = report.new_items
        outbox.queue(head, "It left the depot this morning, it should arrive tomorrow.")
        await outbox.drain()
        db.conn.execute("UPDATE mentions SET status = 'resolved' WHERE id = ?", (head,))
        db.conn.execute("UPDATE deadlines SET met_at = ? WHERE mention_id = ?", (int(clock.now()), head))

        survey = await surveys.send(head)
        await outbox.drain()
        clock.advance(60)
        sandbox.simulate_follow_ups(force=True)  # the customer answers the reply and, now, the survey
        reports = await poller.sync_once()
        return {
            "head": head,
            "survey_id": survey.id,
            "posted": sandbox.statuses_posted(),
            "reports": reports,
            "state": surveys.state(head),
            "overall": surveys.overall(since=0, until=int(clock.now()) + 1),
        }


def test_send_answer_and_score_over_loopback(
    db: sqlite_utils.Database, clock: FakeClock, sandbox: SandboxServer, arun: Any
) -> None:
    result = arun(_loop(db, clock, sandbox))
    survey_posts = [s for s in result["posted"] if is_survey_prompt(s["content"])]
    assert len(survey_posts) == 1
    assert survey_posts[0]["visibility"] == "direct"
    assert SURVEY_QUESTION.default.split("?")[0].replace("'", "&#39;") in survey_posts[0]["content"]
    assert any(result["head"] in r.follow_ups for r in result["reports"])
    state = result["state"]
    assert state.survey is not None and state.survey.id == result["survey_id"]
    assert state.survey.answered, "the sandbox's answer was read"
    expected = TrafficGenerator(seed=4).survey_answer(ordinal=1, force=True)
    assert expected is not None
    assert state.survey.answer_text == expected.text == "@care 2"
    assert state.survey.score == 2 and not state.survey.needs_review
    overall = result["overall"]
    assert (overall.n, overall.sent, overall.score) == (1, 1, 100.0)


def test_sandbox_customers_answer_surveys_plausibly() -> None:
    traffic = TrafficGenerator(seed=1)
    answers = [traffic.survey_answer(ordinal=i) for i in range(400)]
    silent = sum(a is None for a in answers)
    assert 60 < silent < 140  # about a quarter never answer
    given = [a for a in answers if a is not None]
    assert any(a.delay > 7 * 86400 for a in given)  # some answer too late to count
    assert sum(a.delay < 180 for a in given) > len(given) / 2
    kinds = [parse_answer(a.text).kind for a in given]
    assert kinds.count(AnswerKind.SCORED) > 0.7 * len(given)
    assert AnswerKind.AMBIGUOUS in kinds and AnswerKind.NONE in kinds
    assert TrafficGenerator(seed=1).survey_answer(ordinal=3) == traffic.survey_answer(ordinal=3)


async def _through_runtime(data_dir: Path, clock: FakeClock) -> dict[str, Any]:
    runtime = open_runtime(
        data_dir,
        clock=clock,
        secrets=MemorySecretStore(),
        sandbox=SandboxOptions(seed=2, rate_per_minute=0.0, backlog=0),
        force_sandbox=True,
    )
    try:
        assert runtime.surveys is not None and runtime.replies is not None and runtime.sandbox is not None
        assert runtime.triage is not None
        outbox = runtime.replies.outbox
        runtime.sandbox.post_mention(
            author="sam", text="@care how do I change my delivery address?", visibility="direct"
        )
        [report] = await runtime.poller.sync_once()
        [head] = report.new_items
        outbox.queue(head, "Under Account → Addresses; it applies to orders not shipped yet.")
        await outbox.drain()
        runtime.sandbox.simulate_follow_ups(force=True)  # the customer thanks us…
        await runtime.poller.sync_once()
        runtime.triage.set_status(head, MentionStatus.RESOLVED)  # …and we resolve
        before = runtime.surveys.check(head)
        await runtime.surveys.send(head)
        await outbox.drain()
        clock.advance(60)
        runtime.sandbox.simulate_follow_ups(force=True)  # the survey answer
        await runtime.poller.sync_once()
        row = runtime.mentions.rows_by_id([head])[head]
        return {
            "before": before,
            "state": runtime.surveys.state(head),
            "status": row.status,
            "due_at": row.due_at,
            "deadlines": runtime.mentions.deadlines(head),
            "posted": runtime.sandbox.statuses_posted(),
        }
    finally:
        await runtime.aclose()


def test_the_runtime_wires_outbox_sync_and_sla(tmp_path: Path, clock: FakeClock, arun: Any) -> None:
    result = arun(_through_runtime(tmp_path, clock))
    assert result["before"].allowed and result["before"].private
    assert [s["visibility"] for s in result["posted"] if is_survey_prompt(s["content"])] == ["direct"]
    survey = result["state"].survey
    expected = TrafficGenerator(seed=2).survey_answer(ordinal=1, force=True)
    assert expected is not None and survey is not None
    assert survey.answer_text == expected.text
    assert survey.score == parse_answer(expected.text).score
    assert result["status"] is MentionStatus.RESOLVED  # a pure answer does not reopen the item
    assert result["due_at"] is None
    assert all(d.met_at is not None or d.cancelled_at is not None for d in result["deadlines"])
