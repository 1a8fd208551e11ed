"""The sync engine against the sandbox over loopback, fault by fault: nothing lost, nothing doubled, cursor safe."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlite_utils

from console.channels.base import AccountRef, ReplyTarget
from console.channels.errors import AuthExpired, ChannelError, Permanent, RateLimited, Transient
from console.channels.mastodon import MastodonConnector, id_key
from console.ports import MemorySecretStore
from console.sandbox import SandboxServer
from console.sandbox.faults import Fault, FaultRule
from console.sync.health import ChannelHealth, describe
from console.sync.inbox import MAX_BACKOFF, Poller
from storage.accounts import AccountRepo, SyncStateRepo
from storage.db import open_database
from storage.health import HealthRepo
from storage.mentions import MentionRepo
from storage.rows import Health
from tests.fakes.clock import FakeClock

Arun = Callable[..., Any]
#: "From the very beginning": lower than any sandbox id, so a backlog is read in full, page by page.
START = {"min_id": "0"}


@pytest.fixture
def server(clock: FakeClock) -> Iterator[SandboxServer]:
    sandbox = SandboxServer(seed=5, rate_per_minute=0.0, backlog=12, clock=clock)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@dataclass
class Engine:
    poller: Poller
    connector: MastodonConnector
    account_id: int
    secrets: MemorySecretStore
    health: HealthRepo

    @property
    def state_cursor(self) -> dict[str, Any] | None:
        return self.poller.sync_state.get(self.account_id).cursor


@asynccontextmanager
async def engine(
    db: sqlite_utils.Database,
    clock: FakeClock,
    server: SandboxServer,
    *,
    read_timeout: float = 0.3,
    page_limit: int = 5,
    seed: int = 7,
) -> AsyncIterator[Engine]:
    accounts = AccountRepo(db)
    account = accounts.add(kind="mastodon", handle="care", base_url=server.base_url, now=int(clock.now()))
    sync_state = SyncStateRepo(db)
    if sync_state.get(account.id).cursor is None and sync_state.get(account.id).last_success_at is None:
        sync_state.record_success(account.id, cursor=START, at=int(clock.now()), next_attempt_at=int(clock.now()))
    secrets = MemorySecretStore()
    secrets.set(f"mastodon:{account.id}", server.token)
    health = HealthRepo(db)
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0, read=read_timeout)) as client:
        ref = AccountRef(account.id, "mastodon", "care", server.base_url)
        connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock, page_limit=page_limit)
        poller = Poller(
            MentionRepo(db), accounts, sync_state, {account.id: connector}, clock,
            interval=30.0, rng=random.Random(seed), health=health,
        )  # fmt: skip
        yield Engine(poller, connector, account.id, secrets, health)


def sandbox_mentions(server: SandboxServer) -> dict[str, str]:
    """Notification id -> status id of every customer mention the sandbox created."""
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {server.token}"}, trust_env=False, timeout=5
    ) as http:
        found: dict[str, str] = {}
        cursor = "0"
        while True:
            page = http.get("/api/v1/notifications", params={"min_id": cursor, "limit": 80}).json()
            if not page:
                return found
            for entry in page:
                found[entry["id"]] = entry["status"]["id"]
            cursor = max((entry["id"] for entry in page), key=id_key)


def stored_external_ids(db: sqlite_utils.Database) -> list[str]:
    return [str(row[0]) for row in db.conn.execute("SELECT external_id FROM mentions")]


def assert_consistent(db: sqlite_utils.Database, server: SandboxServer, eng: Engine) -> None:
    """Every mention the sandbox created is stored exactly once (or quarantined), and the cursor is its newest."""
    created = sandbox_mentions(server)
    server.faults.clear()
    stored = stored_external_ids(db)
    assert len(stored) == len(set(stored)), "a mention was stored twice"
    quarantined_notifications = {row.external_id for row in eng.health.quarantined(eng.account_id, limit=10_000)}
    expected = {status for nid, status in created.items() if nid not in quarantined_notifications}
    assert set(stored) == expected
    assert eng.state_cursor == {"min_id": max(created, key=id_key)}


async def settle(eng: Engine, clock: FakeClock, server: SandboxServer, *, polls: int = 6) -> None:
    """Faults off; poll when due until the account is healthy and nothing new arrives."""
    server.faults.clear()
    for _ in range(polls):
        due = eng.poller.sync_state.get(eng.account_id).next_attempt_at
        if due is not None and due > clock.now():
            clock.set(due)
        report = (await eng.poller.sync_once())[0]
        if report.ok and report.fetched == 0:
            return
    raise AssertionError("the account did not settle")


EXPECTED_HEALTH: dict[Fault, Health] = {
    Fault.RETRY_AFTER: Health.RATE_LIMITED,
    Fault.RETRY_AFTER_DATE: Health.RATE_LIMITED,
    Fault.RATE_LIMIT_RESET: Health.RATE_LIMITED,
    Fault.SERVER_ERROR: Health.DEGRADED,
    Fault.BAD_GATEWAY: Health.DEGRADED,
    Fault.UNAVAILABLE: Health.DEGRADED,
    Fault.SLOW: Health.DEGRADED,
    Fault.DROP: Health.DEGRADED,
    Fault.MALFORMED_JSON: Health.DEGRADED,
    Fault.HTML_ERROR: Health.DEGRADED,
    Fault.REVOKED: Health.AUTH_EXPIRED,
    Fault.GONE: Health.DEGRADED,
    Fault.REPEAT: Health.OK,
    Fault.OUT_OF_ORDER: Health.OK,
    Fault.MALFORMED_ITEM: Health.OK,
    Fault.LOW_BUDGET: Health.OK,
}


@pytest.mark.parametrize("fault", list(EXPECTED_HEALTH), ids=lambda f: f.value)
def test_each_fault_is_survived_without_loss_or_duplicates(
    db: sqlite_utils.Database, clock: FakeClock, server: SandboxServer, arun: Arun, fault: Fault
) -> None:
    async def scenario() -> None:
        async with engine(db, clock, server) as eng:
            # The second page of the three this backlog takes is the one that goes wrong.
            await eng.poller.sync_once()
            server.generate(12)
            # A low budget shows on every answer (the latest headers count); the others hit one request.
            count = None if fault is Fault.LOW_BUDGET else 1
            server.set_faults([FaultRule(fault, count=count, delay=0.6, retry_after=300, remaining=1)])
            report = (await eng.poller.sync_once())[0]
            account = eng.poller.accounts.get(eng.account_id)
            assert account is not None
            assert report.health is EXPECTED_HEALTH[fault] is account.health, report
            now = int(clock.now())
            if report.health is Health.OK:
                assert report.ok
            else:
                assert report.error and account.health_reason == report.error
                assert report.next_attempt_at is not None and report.next_attempt_at > now
                assert describe(report)
            if fault in (Fault.RETRY_AFTER, Fault.RATE_LIMIT_RESET):
                assert report.next_attempt_at == now + 300  # the channel's word comes first
            if fault is Fault.RETRY_AFTER_DATE:
                assert report.next_attempt_at is not None and abs(report.next_attempt_at - (now + 300)) <= 1
            if fault is Fault.REVOKED:
                assert report.next_attempt_at == now + MAX_BACKOFF
            if fault is Fault.GONE:
                assert report.unreachable and report.offline_since == now
                assert eng.poller.offline_since == now
            if fault is Fault.LOW_BUDGET:
                assert report.throttled and report.next_attempt_at is not None
                assert report.next_attempt_at >= now + 290  # one request left for 300 s: wait, don't hit the wall
            if fault is Fault.MALFORMED_ITEM:
                assert report.quarantined == 1
                (row,) = eng.health.quarantined(eng.account_id)
                assert "account" in row.error and '"status"' in row.raw_json
            await settle(eng, clock, server)
            account = eng.poller.accounts.get(eng.account_id)
            assert account is not None and account.health is Health.OK
            assert eng.poller.offline_since is None
            assert_consistent(db, server, eng)
            assert len(stored_external_ids(db)) == 24 - (fault is Fault.MALFORMED_ITEM)

    arun(scenario(), timeout=20)


def test_deleted_upstream_is_permanent_404(
    db: sqlite_utils.Database, clock: FakeClock, server: SandboxServer, arun: Arun
) -> None:
    async def scenario() -> None:
        async with engine(db, clock, server) as eng:
            await eng.poller.sync_once()
            external_id = stored_external_ids(db)[0]
            server.set_faults([FaultRule(Fault.DELETED, count=1)])
            with pytest.raises(Permanent) as caught:
                await eng.connector.fetch_thread(external_id)
            assert caught.value.status == 404
            assert any(item.external_id == external_id for item in await eng.connector.fetch_thread(external_id))

    arun(scenario())


def test_a_restart_in_the_middle_of_a_backoff_resumes_the_persisted_schedule(
    tmp_path: Path, clock: FakeClock, server: SandboxServer, arun: Arun
) -> None:
    path = tmp_path / "care.db"

    async def first_run() -> int:
        db = open_database(path)
        try:
            async with engine(db, clock, server) as eng:
                server.set_faults([FaultRule(Fault.UNAVAILABLE, count=2)])
                await eng.poller.poll_due()
                await eng.poller.poll_due(forced=True)  # "Sync now" during a backoff still tries
                state = eng.poller.sync_state.get(eng.account_id)
                assert state.consecutive_failures == 2 and state.next_attempt_at is not None
                return state.next_attempt_at
        finally:
            db.conn.close()

    due = arun(first_run())
    clock.advance(5)
    requests_before = len(server.requests)

    async def second_run() -> None:
        db = open_database(path)  # the app restarted: new connection, new poller, same file
        try:
            async with engine(db, clock, server, seed=99) as eng:
                await eng.poller.poll_due()
                assert len(server.requests) == requests_before, "a restart must not hammer the channel"
                clock.set(due)
                report = (await eng.poller.sync_once())[0]
                assert report.ok and report.stored == 12
                assert eng.poller.sync_state.get(eng.account_id).consecutive_failures == 0
        finally:
            db.conn.close()

    arun(second_run())


def test_sync_now_does_not_override_a_rate_limit(
    db: sqlite_utils.Database, clock: FakeClock, server: SandboxServer, arun: Arun
) -> None:
    async def scenario() -> None:
        async with engine(db, clock, server) as eng:
            server.set_faults([FaultRule(Fault.RETRY_AFTER, count=1, retry_after=120)])
            await eng.poller.poll_due()
            requests = len(server.requests)
            await eng.poller.poll_due(forced=True)
            assert len(server.requests) == requests
            clock.advance(120)
            await eng.poller.poll_due(forced=True)
            assert len(server.requests) > requests

    arun(scenario())


def test_backoff_grows_degraded_then_failing(
    db: sqlite_utils.Database, clock: FakeClock, server: SandboxServer, arun: Arun
) -> None:
    async def scenario() -> None:
        async with engine(db, clock, server) as eng:
            server.set_faults([FaultRule(Fault.BAD_GATEWAY)])
            healths, delays = [], []
            for _ in range(6):
                report = (await eng.poller.sync_once())[0]
                assert report.next_attempt_at is not None
                healths.append(report.health)
                delays.append(report.next_attempt_at - report.at)
                clock.set(report.next_attempt_at)
            assert healths == [Health.DEGRADED] * 2 + [Health.FAILING] * 4
            assert delays[-1] > delays[0] and max(delays) <= MAX_BACKOFF
            assert stored_external_ids(db) == []

    arun(scenario())


def test_offline_when_no_channel_answers_and_back_on_reconnect(
    db: sqlite_utils.Database, clock: FakeClock, arun: Arun
) -> None:
    with SandboxServer(clock=clock, backlog=3) as gone:
        base_url = gone.base_url
        token = gone.token
    # The port is closed now: connections are refused, as when the network is down.

    async def scenario() -> None:
        accounts = AccountRepo(db)
        account = accounts.add(kind="mastodon", handle="care", base_url=base_url, now=int(clock.now()))
        secrets = MemorySecretStore()
        secrets.set(f"mastodon:{account.id}", token)
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
            ref = AccountRef(account.id, "mastodon", "care", base_url)
            connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock)
            poller = Poller(MentionRepo(db), accounts, SyncStateRepo(db), {account.id: connector}, clock,
                            rng=random.Random(1), health=HealthRepo(db))  # fmt: skip
            report = (await poller.sync_once())[0]
            assert report.unreachable and report.health is Health.DEGRADED
            assert poller.offline_since == int(clock.now())
            assert report.next_attempt_at is not None and report.next_attempt_at - report.at <= 120

    arun(scenario())


def test_auth_expired_end_to_end(
    db: sqlite_utils.Database, clock: FakeClock, server: SandboxServer, arun: Arun
) -> None:
    """Revoke in the sandbox -> the account turns red -> sign in again -> syncing and sending resume."""

    async def scenario() -> None:
        async with engine(db, clock, server) as eng:
            await eng.poller.sync_once()
            server.revoke_token()
            report = (await eng.poller.sync_once())[0]
            assert report.health is Health.AUTH_EXPIRED
            assert "sign in again" in describe(report).lower()
            target_id = stored_external_ids(db)[0]
            with pytest.raises(AuthExpired):
                await eng.connector.send_reply(
                    ReplyTarget(target_id, "someone", "public"), "Sorry about that!", idempotency_key="k1"
                )
            assert server.statuses_posted() == []

            service = ChannelHealth(
                eng.poller.accounts, eng.poller.sync_state, eng.health, eng.poller, {eng.account_id: eng.connector},
                renew_token=lambda account_id: eng.secrets.set(f"mastodon:{account_id}", server.token),
            )  # fmt: skip
            snapshot = service.snapshot()
            (red,) = snapshot.accounts
            assert red.needs_sign_in and snapshot.worst is Health.AUTH_EXPIRED
            message = await service.reauthenticate(eng.account_id)
            assert message.startswith("Signed in again")
            assert service.snapshot().accounts[0].health is Health.OK
            assert eng.poller.sync_state.get(eng.account_id).next_attempt_at == int(clock.now())
            server.generate(2)
            assert await eng.poller.poll_due()  # due now, not in 15 minutes
            assert len(stored_external_ids(db)) == 14
            receipt = await eng.connector.send_reply(
                ReplyTarget(target_id, "someone", "public"), "Sorry about that!", idempotency_key="k1"
            )
            assert [s["id"] for s in server.statuses_posted()] == [receipt.external_id]

    arun(scenario())


def test_reauthentication_that_still_fails_keeps_the_account_red(
    db: sqlite_utils.Database, clock: FakeClock, server: SandboxServer, arun: Arun
) -> None:
    async def scenario() -> None:
        async with engine(db, clock, server) as eng:
            server.revoke_token()
            await eng.poller.sync_once()
            service = ChannelHealth(
                eng.poller.accounts, eng.poller.sync_state, eng.health, eng.poller, {eng.account_id: eng.connector}
            )
            message = await service.reauthenticate(eng.account_id)
            assert "failed" in message
            assert service.snapshot().accounts[0].health is Health.AUTH_EXPIRED

    arun(scenario())


MIX = [fault for fault in Fault if fault is not Fault.DELETED]


def test_seeded_fault_mix_over_many_rounds_loses_and_doubles_nothing(
    db: sqlite_utils.Database, clock: FakeClock, server: SandboxServer, arun: Arun
) -> None:
    rng = random.Random(20261124)
    replies_wanted: dict[str, str] = {}  # idempotency key -> text
    replies_done: dict[str, str] = {}  # idempotency key -> status id

    async def send_pending(eng: Engine) -> None:
        stored = stored_external_ids(db)
        for key, text in replies_wanted.items():
            if key in replies_done:
                continue
            target = ReplyTarget(stored[int(key.split("-")[1]) % len(stored)], "someone", "public")
            for _ in range(3):
                try:
                    receipt = await eng.connector.send_reply(target, text, idempotency_key=key)
                except (Transient, RateLimited, AuthExpired):
                    continue  # the same key next time: the server answers with what it created, if anything
                except ChannelError as exc:
                    raise AssertionError(f"unexpected {exc!r}") from exc
                replies_done[key] = receipt.external_id
                break

    async def scenario() -> None:
        async with engine(db, clock, server, read_timeout=0.2, page_limit=4) as eng:
            for round_no in range(80):
                server.generate(rng.randint(0, 7))
                mix = rng.sample(MIX, 3)
                server.set_faults(
                    [FaultRule(f, probability=rng.uniform(0.1, 0.45), delay=0.3, retry_after=rng.choice([5, 60]))
                     for f in mix],
                    replace_all=True,
                )  # fmt: skip
                if stored_external_ids(db) and rng.random() < 0.5:
                    replies_wanted[f"reply-{round_no}"] = f"Round {round_no}: we are on it."
                await eng.poller.poll_due(forced=rng.random() < 0.3)
                await send_pending(eng)
                due = eng.poller.sync_state.get(eng.account_id).next_attempt_at or clock.now()
                clock.set(max(clock.now() + 1, min(due, clock.now() + 120)))
            fired = server.faults.fired()
            assert len(fired) >= 12, f"the mix should exercise most faults: {fired}"
            await settle(eng, clock, server, polls=12)
            await send_pending(eng)
            assert_consistent(db, server, eng)

    arun(scenario(), timeout=30)
    posted = server.statuses_posted()
    texts = [status["content"] for status in posted]
    assert len(texts) == len(set(texts)), "a reply was posted twice"
    assert set(replies_done) == set(replies_wanted), "a reply was lost"
    assert {status["id"] for status in posted} == set(replies_done.values())


def test_a_failure_after_some_pages_keeps_their_progress(
    db: sqlite_utils.Database, clock: FakeClock, server: SandboxServer, arun: Arun
) -> None:
    async def scenario() -> None:
        async with engine(db, clock, server, page_limit=5) as eng:
            server.set_faults([FaultRule(Fault.UNAVAILABLE, count=1, after=1)])  # page 2 of 3 fails
            report = (await eng.poller.sync_once())[0]
            assert report.health is Health.DEGRADED and report.error
            assert report.stored == 5 and len(report.new_items) == 5  # page 1 is stored and shown
            first_page = stored_external_ids(db)
            assert eng.state_cursor is not None and eng.state_cursor != START
            await settle(eng, clock, server)
            assert set(first_page) < set(stored_external_ids(db))
            assert_consistent(db, server, eng)

    arun(scenario())


def test_revoked_token_keeps_replies_queued_with_the_reason_until_signed_in_again(
    db: sqlite_utils.Database, clock: FakeClock, server: SandboxServer, arun: Arun
) -> None:
    """Revoke -> red account, replies stay queued saying why -> sign in again -> they go out, in order, once."""
    from console.replies.outbox import Outbox, SendOutcome
    from storage.replies import ReplyRepo
    from storage.rows import ReplyState

    async def scenario() -> None:
        async with engine(db, clock, server) as eng:
            await eng.poller.sync_once()
            heads = [int(r[0]) for r in db.conn.execute("SELECT id FROM mentions WHERE head_id IS NULL ORDER BY id")]
            replies = ReplyRepo(db)
            outbox = Outbox(replies, MentionRepo(db), eng.poller.accounts, {eng.account_id: eng.connector}, clock)
            server.revoke_token()
            first = outbox.queue(heads[0], "Sorry, checking your order now.")
            second = outbox.queue(heads[1], "Thanks, a refund is on its way.")
            outcomes = await outbox.drain()
            assert outcomes == {first: SendOutcome.WAITING}  # the second waits behind the first, in order
            row = replies.get(first)
            assert row is not None and row.state is ReplyState.QUEUED and "sign-in expired" in row.error
            assert server.statuses_posted() == []  # nothing looks sent while nothing went out

            report = (await eng.poller.sync_once())[0]
            assert report.health is Health.AUTH_EXPIRED
            service = ChannelHealth(
                eng.poller.accounts, eng.poller.sync_state, eng.health, eng.poller, {eng.account_id: eng.connector},
                renew_token=lambda account_id: eng.secrets.set(f"mastodon:{account_id}", server.token),
                on_signed_in=outbox.retry_account,
            )  # fmt: skip
            assert service.snapshot().accounts[0].needs_sign_in
            assert (await service.reauthenticate(eng.account_id)).startswith("Signed in again")
            # No waiting for the outbox's own retry time: the sign-in made the waiting replies due now.
            outcomes = await outbox.drain()
            assert outcomes == {first: SendOutcome.SENT, second: SendOutcome.SENT}
            posted = server.statuses_posted()
            assert [s["in_reply_to_id"] for s in posted] == [
                r[0] for r in db.conn.execute("SELECT external_id FROM mentions WHERE id IN (?, ?) ORDER BY id",
                                              (heads[0], heads[1]))
            ]  # fmt: skip
            assert await outbox.drain() == {}
            assert len(server.statuses_posted()) == 2

    arun(scenario())
