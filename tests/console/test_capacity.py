"""Honest capacity: the expected wait (pure), its inputs from the store, and the status post through the outbox."""

from __future__ import annotations

import contextlib
import json
import math
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlite_utils

from console.channels.base import AccountRef, Connector
from console.channels.bluesky import BlueskyConnector, status_rkey
from console.channels.mastodon import MastodonConnector
from console.channels.x import XConnector, XTokens
from console.ports import MemorySecretStore
from console.replies.capacity import (
    CEILING_SECONDS,
    DEFAULT_STATUS_TEMPLATE,
    CapacityService,
    WaitEstimate,
    expected_wait,
    fill_status,
    format_wait,
    round_wait,
)
from console.replies.outbox import STATUS_RESEND_SECONDS, Outbox, OutboxError
from console.sandbox import SandboxServer
from console.sla.calendar import ALWAYS, Calendar
from storage.account_admin import AccountAdmin
from storage.accounts import AccountRepo
from storage.capacity import CapacityRepo, StatusPostRepo
from storage.mentions import MentionRepo
from storage.replies import ReplyRepo
from storage.rows import MentionStatus, ReplyState
from tests.fakes.bluesky_server import FakeBlueskyServer
from tests.fakes.clock import FakeClock
from tests.fakes.http_server import FakeHttpServer
from tests.fakes.x_server import FakeXServer
from tests.widgets.factory import Factory

HOUR = 3600
MIN = 60


@pytest.fixture
def factory(db: sqlite_utils.Database, clock: FakeClock) -> Factory:
    return Factory(db, clock)


# ---------------------------------------------------------------------- the figure (pure)
@pytest.mark.parametrize(
    ("ahead", "replies", "window", "seconds", "capped"),
    [
        (4, 24, 2 * HOUR, 25 * MIN, False),  # 12 an hour: 5 min each, 4 ahead + its own = 25 min
        (0, 24, 2 * HOUR, 5 * MIN, False),  # empty queue: one reply's time
        (0, 120, 2 * HOUR, 5 * MIN, False),  # faster than the floor: still "about 5 minutes"
        (5, 12, 2 * HOUR, 60 * MIN, False),  # exactly an hour
        (6, 12, 2 * HOUR, 75 * MIN, False),  # 70 min, rounded up to the quarter hour
        (3, 7, 2 * HOUR, round_wait(4 * 2 * HOUR / 7), False),  # 68.6 min -> 75 min
        (200, 4, 2 * HOUR, CEILING_SECONDS, True),  # past the ceiling: "more than 8 hours"
        (10, 1, 2 * HOUR, None, False),  # one reply is no pace yet
        (10, 0, 2 * HOUR, None, False),  # no replies: unknown, never a made-up figure
        (10, 5, 0, None, False),
    ],
)
def test_expected_wait_table(ahead: int, replies: int, window: int, seconds: int | None, capped: bool) -> None:
    estimate = expected_wait(ahead=ahead, replies=replies, window_seconds=window)
    assert (estimate.seconds, estimate.capped) == (seconds, capped)
    assert estimate.known is (seconds is not None)


LONDON_9_TO_5 = Calendar("Europe/London", (((9 * 60, 17 * 60),),) * 5 + ((), ()))  # Monday to Friday


def _london(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/London")).timestamp())


@pytest.mark.parametrize(
    ("at", "ahead", "seconds", "capped"),
    [
        # 12 replies an hour, 4 ahead: 25 minutes of work. In office hours the wait is the work.
        ("2026-03-04T10:00", 4, 25 * MIN, False),
        # Before opening: it waits for 09:00, then the work.
        ("2026-03-04T08:00", 4, HOUR + 25 * MIN + 5 * MIN, False),  # 1 h 25 min, rounded up to the quarter
        # Ten minutes before closing: 10 minutes today, 15 tomorrow from 09:00 (16 h 15 min): past the ceiling.
        ("2026-03-04T16:50", 4, CEILING_SECONDS, True),
        # Saturday: Monday morning.
        ("2026-03-07T12:00", 0, CEILING_SECONDS, True),
    ],
)
def test_expected_wait_counts_working_time_on_the_calendar(at: str, ahead: int, seconds: int, capped: bool) -> None:
    now = _london(at)
    estimate = expected_wait(ahead=ahead, replies=24, window_seconds=2 * HOUR, now=now, calendar=LONDON_9_TO_5)
    assert (estimate.seconds, estimate.capped) == (seconds, capped)
    assert estimate.working_seconds == (ahead + 1) * 5 * MIN
    assert "business hours" in estimate.basis()
    around_the_clock = expected_wait(ahead=ahead, replies=24, window_seconds=2 * HOUR, now=now, calendar=ALWAYS)
    assert around_the_clock.seconds == max(5 * MIN, round_wait((ahead + 1) * 5 * MIN))
    assert around_the_clock.working_seconds is None


def test_expected_wait_rounds_up_never_down() -> None:
    assert round_wait(21 * MIN) == 25 * MIN
    assert round_wait(25 * MIN) == 25 * MIN
    assert round_wait(1) == 5 * MIN
    assert round_wait(61 * MIN) == 75 * MIN
    assert round_wait(2 * HOUR + 1) == 2 * HOUR + 15 * MIN


@pytest.mark.parametrize(
    ("seconds", "capped", "text", "short"),
    [
        (25 * MIN, False, "about 25 minutes", "~25 min"),
        (HOUR, False, "about 1 hour", "~1 h"),
        (HOUR + 30 * MIN, False, "about 1 hour 30 minutes", "~1 h 30 min"),
        (2 * HOUR + 15 * MIN, False, "about 2 hours 15 minutes", "~2 h 15 min"),
        (8 * HOUR, True, "more than 8 hours", "> 8 h"),
    ],
)
def test_wait_phrases(seconds: int, capped: bool, text: str, short: str) -> None:
    estimate = WaitEstimate(ahead=1, replies=10, window_seconds=2 * HOUR, seconds=seconds, capped=capped)
    assert format_wait(seconds, capped=capped) == text
    assert estimate.phrase() == text
    assert estimate.short() == short


def test_unknown_wait_says_so_and_leaves_a_blank_in_the_status() -> None:
    estimate = expected_wait(ahead=3, replies=0, window_seconds=2 * HOUR)
    assert estimate.short() == "not known yet"
    assert estimate.pace_per_hour is None
    assert "Not enough replies" in estimate.basis()
    assert "[expected wait]" in fill_status(DEFAULT_STATUS_TEMPLATE, estimate)


def test_status_template_carries_the_real_figure() -> None:
    estimate = expected_wait(ahead=4, replies=24, window_seconds=2 * HOUR)
    text = fill_status(DEFAULT_STATUS_TEMPLATE, estimate)
    assert text.startswith("We're answering new messages in about 25 minutes right now.")
    assert fill_status("{open_items} ahead, {expected_wait}; {customer_name}", estimate) == (
        "4 ahead, about 25 minutes; {customer_name}"
    )
    assert estimate.pace_per_hour == 12.0
    assert "12.0 an hour" in estimate.basis()


# ---------------------------------------------------------------------- the inputs (store)
def _sent(db: sqlite_utils.Database, at: int, purpose: str, mention_id: int | None = None) -> None:
    db.conn.execute(
        "INSERT INTO events (at, actor, mention_id, kind, data) VALUES (?, 'outbox', ?, 'reply_sent', ?)",
        (at, mention_id, json.dumps({"purpose": purpose, "reply_id": 1})),
    )


def test_capacity_repo_counts_only_items_awaiting_a_reply(factory: Factory, db: sqlite_utils.Database) -> None:
    new, answered, waiting, resolved = (factory.add(handle=f"c{i}") for i in range(4))
    db.conn.execute("UPDATE deadlines SET met_at = 1 WHERE mention_id = ? AND kind = 'first_response'", (answered,))
    db.conn.execute("UPDATE mentions SET status = ? WHERE id = ?", (MentionStatus.WAITING.value, waiting))
    db.conn.execute("UPDATE mentions SET status = ? WHERE id = ?", (MentionStatus.RESOLVED.value, resolved))
    repo = CapacityRepo(db)
    assert repo.awaiting_response(cap=100) == 1
    more = factory.many(30)
    assert repo.awaiting_response(cap=100) == 1 + len(more)
    assert repo.awaiting_response(cap=10) == 10  # the count stops at the cap
    assert new > 0


def test_capacity_repo_counts_customer_replies_in_the_window(db: sqlite_utils.Database) -> None:
    for at, purpose in [(100, "reply"), (200, "holding"), (300, "survey"), (400, "correction"), (500, "status"),
                        (600, "reply"), (5000, "reply")]:  # fmt: skip
        _sent(db, at, purpose)
    repo = CapacityRepo(db)
    assert repo.replies_sent(0, 1000, ("reply", "holding")) == 3
    assert repo.replies_sent(100, 1000, ("reply", "holding")) == 2  # (since, until]
    assert repo.replies_sent(0, 1000, ()) == 0


def test_capacity_service_estimates_from_the_queue_and_the_recent_pace(
    factory: Factory, db: sqlite_utils.Database, clock: FakeClock
) -> None:
    now = int(clock.now())
    factory.many(4)
    for i in range(24):  # 12 an hour over the last two hours
        _sent(db, now - i * 300, "reply")
    _sent(db, now - 3 * HOUR, "reply")  # before the window
    service = CapacityService(CapacityRepo(db), AccountRepo(db), _outbox(db, factory, {}), clock)
    estimate = service.estimate()
    # 24 replies since the first one 1 h 55 min ago: 12.5 an hour; 5 replies' time = 24 min, said as 25.
    assert (estimate.ahead, estimate.replies, estimate.window_seconds) == (4, 24, 23 * 300)
    assert estimate.seconds == 25 * MIN
    assert service.status_text(estimate).startswith("We're answering new messages in about 25 minutes")
    # New Year's Day is a holiday on the team's calendar: a message now waits for 2 January.
    closed_today = Calendar("UTC", holidays=frozenset({date(2026, 1, 1)}))
    on_calendar = CapacityService(
        CapacityRepo(db), AccountRepo(db), _outbox(db, factory, {}), clock, calendar=lambda: closed_today
    )
    assert (on_calendar.estimate().capped, on_calendar.estimate().working_seconds) == (
        True,
        math.ceil(5 * 23 * 300 / 24),
    )


def test_capacity_pace_is_measured_since_the_shift_and_the_first_reply_over_half_an_hour_at_least(
    factory: Factory, db: sqlite_utils.Database, clock: FakeClock
) -> None:
    now = int(clock.now())
    for age in (100, 1500, 2900, 4300, 5700, 8000):  # the last is older than the two-hour window
        _sent(db, now - age, "reply")
    shift: list[int | None] = [None]
    service = CapacityService(
        CapacityRepo(db), AccountRepo(db), _outbox(db, factory, {}), clock, shift_start=lambda: shift[0]
    )
    assert (service.estimate().replies, service.estimate().window_seconds) == (5, 5700)  # since the first reply
    shift[0] = now - HOUR
    assert (service.estimate().replies, service.estimate().window_seconds) == (3, 2900)  # in the shift
    shift[0] = now - 5 * MIN
    assert (service.estimate().replies, service.estimate().window_seconds) == (1, 30 * MIN)  # never shorter
    assert not service.estimate().known  # one reply is no pace


def _outbox(db: sqlite_utils.Database, factory: Factory, connectors: dict[int, Connector]) -> Outbox:
    return Outbox(
        ReplyRepo(db), factory.mentions, AccountRepo(db), connectors, factory.clock,
        rng=random.Random(1), statuses=StatusPostRepo(db),
    )  # fmt: skip


# ---------------------------------------------------------------------- the status post (sandbox over loopback)
@dataclass
class Env:
    server: SandboxServer
    client: httpx.AsyncClient
    connector: MastodonConnector
    outbox: Outbox
    statuses: StatusPostRepo
    service: CapacityService
    account_id: int


def _wired(
    db: sqlite_utils.Database,
    clock: FakeClock,
    accounts: AccountRepo,
    connectors: dict[int, Connector],
    **outbox_options: Any,
) -> tuple[Outbox, StatusPostRepo, CapacityService]:
    """The outbox with its status-post table and the capacity service over it, as the app wires them."""
    statuses = StatusPostRepo(db)
    outbox = Outbox(
        ReplyRepo(db), MentionRepo(db), accounts, connectors, clock, rng=random.Random(1), statuses=statuses,
        **outbox_options,
    )  # fmt: skip
    return outbox, statuses, CapacityService(CapacityRepo(db), accounts, outbox, clock)


@contextlib.asynccontextmanager
async def status_env(db: sqlite_utils.Database, clock: FakeClock) -> AsyncIterator[Env]:
    server = SandboxServer(backlog=0, rate_per_minute=0, clock=clock, seed=3)
    server.start()
    try:
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
            accounts = AccountRepo(db)
            row = accounts.add(kind="mastodon", handle="care", base_url=server.base_url, now=int(clock.now()))
            secrets = MemorySecretStore()
            secrets.set(f"mastodon:{row.id}", server.token)
            connector = MastodonConnector(
                client, account=AccountRef(row.id, "mastodon", "care", server.base_url), secrets=secrets, clock=clock
            )
            outbox, statuses, service = _wired(db, clock, accounts, {row.id: connector}, actor=lambda: "Sam")
            yield Env(server, client, connector, outbox, statuses, service, row.id)
    finally:
        server.stop()


def _status_events(db: sqlite_utils.Database) -> list[tuple[str, str, dict[str, Any]]]:
    rows = db.conn.execute(
        "SELECT kind, actor, data FROM events WHERE kind LIKE 'status_%' AND mention_id IS NULL ORDER BY id"
    ).fetchall()
    return [(r[0], r[1], json.loads(r[2])) for r in rows]


def test_status_post_is_committed_before_the_network_and_posted_once_as_a_plain_status(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with status_env(db, clock) as env:
            (account,) = env.service.accounts()
            assert account.id == env.account_id and account.label == "Mastodon · @care"
            estimate = expected_wait(ahead=4, replies=24, window_seconds=2 * HOUR)
            text = env.service.status_text(estimate)
            before = len(env.server.requests)
            post_id = env.service.post(account.id, text, estimate=estimate)
            row = env.statuses.get(post_id)
            assert row is not None and row.state is ReplyState.QUEUED and row.idempotency_key
            assert (row.purpose, row.visibility, row.wait_seconds) == ("status", "public", 25 * MIN)
            assert len(env.server.requests) == before  # nothing left yet
            await env.outbox.drain()
            sent = env.statuses.get(post_id)
            assert sent is not None and sent.state is ReplyState.SENT and sent.external_id
            (posted,) = env.server.statuses_posted()
            assert posted["id"] == sent.external_id
            assert posted["in_reply_to_id"] is None and posted["visibility"] == "public"
            assert "about 25 minutes" in posted["content"] and "@" not in posted["content"]
            await env.outbox.drain()  # nothing pending: not posted again
            assert len(env.server.statuses_posted()) == 1
            kinds = [(kind, actor) for kind, actor, _data in _status_events(db)]
            assert kinds == [("status_queued", "Sam"), ("status_posted", "outbox")]
            assert _status_events(db)[1][2]["external_id"] == sent.external_id

    arun(scenario())


def test_status_post_retried_after_a_crash_is_not_posted_twice(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with status_env(db, clock) as env:
            post_id = env.service.post(env.account_id, "We're answering in about 10 minutes right now.")
            row = env.statuses.get(post_id)
            assert row is not None
            # The first attempt reached the server, then the app died before recording it.
            receipt = await env.connector.post_status(row.text, idempotency_key=row.idempotency_key)
            env.statuses.mark_sending(post_id, now=int(clock.now()))
            clock.advance(60)
            await env.outbox.drain()  # the same key: the server answers with the status it made
            sent = env.statuses.get(post_id)
            assert sent is not None and sent.state is ReplyState.SENT and sent.external_id == receipt.external_id
            assert len(env.server.statuses_posted()) == 1

    arun(scenario())


def test_status_post_attempted_long_ago_fails_instead_of_risking_a_duplicate(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with status_env(db, clock) as env:
            post_id = env.service.post(env.account_id, "We're answering in about 10 minutes right now.")
            env.statuses.mark_sending(post_id, now=int(clock.now()))
            clock.advance(STATUS_RESEND_SECONDS + 1)
            await env.outbox.drain()
            row = env.statuses.get(post_id)
            assert row is not None and row.state is ReplyState.FAILED
            assert "may have posted it" in row.error
            assert env.server.statuses_posted() == []
            assert [k for k, _a, _d in _status_events(db)] == ["status_queued", "status_failed"]

    arun(scenario())


def test_status_post_waits_while_the_channel_fails_and_leaves_when_it_is_back(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with status_env(db, clock) as env:
            with FakeHttpServer() as fake:
                fake.reply(503, json={"error": "busy"})
                secrets = MemorySecretStore()
                secrets.set(f"mastodon:{env.account_id}", "t")
                flaky = MastodonConnector(
                    env.client, account=AccountRef(env.account_id, "mastodon", "care", fake.base_url),
                    secrets=secrets, clock=clock,
                )  # fmt: skip
                env.outbox.connectors = {env.account_id: flaky}
                post_id = env.service.post(env.account_id, "About 15 minutes right now.")
                await env.outbox.drain()
                row = env.statuses.get(post_id)
                assert row is not None and row.state is ReplyState.QUEUED and row.next_attempt_at is not None
                assert row.error.startswith("Waiting to retry")
                (request,) = [r for r in fake.requests if r.path.endswith("/statuses")]
                assert request.form["status"] == ["About 15 minutes right now."]
                assert "in_reply_to_id" not in request.form
            env.outbox.connectors = {env.account_id: env.connector}
            await env.outbox.drain()  # not due yet
            assert env.server.statuses_posted() == []
            clock.set(float(row.next_attempt_at or 0))
            await env.outbox.drain()
            done = env.statuses.get(post_id)
            assert done is not None and done.state is ReplyState.SENT
            assert len(env.server.statuses_posted()) == 1

    arun(scenario())


def test_status_post_refuses_empty_text_and_accounts_that_cannot_post(
    factory: Factory, db: sqlite_utils.Database
) -> None:
    class ReplyOnly:
        """A connector without ``post_status`` (e.g. a channel that only replies)."""

    outbox = _outbox(db, factory, {factory.account.id: ReplyOnly()})  # type: ignore[dict-item]
    service = CapacityService(CapacityRepo(db), AccountRepo(db), outbox, factory.clock)
    assert service.accounts() == []
    with pytest.raises(OutboxError, match="cannot post status updates"):
        service.post(factory.account.id, "About 5 minutes.")
    with pytest.raises(OutboxError, match="empty"):
        service.post(factory.account.id, "  ")
    no_table = Outbox(ReplyRepo(db), factory.mentions, AccountRepo(db), {}, factory.clock)
    with pytest.raises(OutboxError, match="not available"):
        no_table.post_status(factory.account.id, "About 5 minutes.")
    assert StatusPostRepo(db).pending() == []


def test_removing_an_account_removes_its_status_posts(factory: Factory, db: sqlite_utils.Database) -> None:
    repo = StatusPostRepo(db)
    repo.enqueue(account_id=factory.account.id, text="x", visibility="public", idempotency_key="k", now=1, actor="a")
    AccountAdmin(db).remove(factory.account.id, delete_items=True, now=2)
    assert repo.recent() == []


def test_bluesky_account_is_offered_and_its_status_post_is_not_posted_twice_after_a_crash(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        with FakeBlueskyServer() as server:
            async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
                accounts = AccountRepo(db)
                row = accounts.add(kind="bluesky", handle="brand.test", base_url=server.base_url, now=int(clock.now()))
                secrets = MemorySecretStore()
                secrets.set(f"bluesky:{row.id}", server.password)
                ref = AccountRef(row.id, "bluesky", "brand.test", server.base_url)
                connector = BlueskyConnector(client, account=ref, secrets=secrets, clock=clock)
                outbox, statuses, service = _wired(db, clock, accounts, {row.id: connector})
                (account,) = service.accounts()
                assert (account.id, account.label) == (row.id, "Bluesky · @brand.test")
                first = service.post(row.id, "We're answering in about 10 minutes right now.")
                await outbox.drain()
                sent = statuses.get(first)
                assert sent is not None and sent.state is ReplyState.SENT
                assert sent.external_id == f"at://{server.did}/app.bsky.feed.post/{status_rkey(sent.idempotency_key)}"
                # A second post: its first attempt reached the PDS, then the app died before recording it.
                second = service.post(row.id, "We're answering in about 20 minutes right now.")
                pending = statuses.get(second)
                assert pending is not None
                receipt = await connector.post_status(pending.text, idempotency_key=pending.idempotency_key)
                statuses.mark_sending(second, now=int(clock.now()))
                clock.advance(60)
                await outbox.drain()  # the same record key: the post is found, not made again
                again = statuses.get(second)
                assert again is not None and again.state is ReplyState.SENT
                assert again.external_id == receipt.external_id
                assert len(server.own_posts()) == 2

    arun(scenario())


def test_x_status_post_half_sent_at_a_crash_fails_instead_of_posting_twice(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        with FakeXServer() as server:
            async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
                accounts = AccountRepo(db)
                row = accounts.add(kind="x", handle="brand", base_url=server.base_url, now=int(clock.now()))
                secrets = MemorySecretStore()
                access, refresh = server.issue()
                secrets.set(f"x:{row.id}", XTokens(access, refresh, clock.now() + 7200, "client").dumps())
                ref = AccountRef(row.id, "x", "brand", server.base_url)
                connector = XConnector(client, account=ref, secrets=secrets, clock=clock)
                outbox, statuses, service = _wired(db, clock, accounts, {row.id: connector})
                assert [a.label for a in service.accounts()] == ["X · @brand"]
                # Rate limited: X certainly did not post it, so it waits and leaves later.
                server.fail_next(
                    429, {"title": "Too Many Requests", "detail": "Too Many Requests"}, path="/2/tweets",
                    headers={"x-rate-limit-reset": str(int(clock.now()) + 120)},
                )  # fmt: skip
                limited = service.post(row.id, "About 10 minutes right now.")
                await outbox.drain()
                waiting = statuses.get(limited)
                assert waiting is not None and waiting.state is ReplyState.QUEUED
                clock.advance(121)
                await outbox.drain()
                done = statuses.get(limited)
                assert done is not None and done.state is ReplyState.SENT
                # Half sent: X took it, then the app died before recording it. X has no idempotency key.
                crashed = service.post(row.id, "About 20 minutes right now.")
                pending = statuses.get(crashed)
                assert pending is not None
                await connector.post_status(pending.text, idempotency_key=pending.idempotency_key)
                statuses.mark_sending(crashed, now=int(clock.now()))
                clock.advance(60)  # well inside the window in which Mastodon would resend with its key
                await outbox.drain()
                failed = statuses.get(crashed)
                assert failed is not None and failed.state is ReplyState.FAILED
                assert "may have posted it" in failed.error
                assert [s["text"] for s in server.statuses] == [
                    "About 10 minutes right now.",
                    "About 20 minutes right now.",
                ]

    arun(scenario())
