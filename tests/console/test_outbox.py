"""The outbox against the sandbox over loopback: exactly-once after crashes, offline queueing, freshness, edits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlite_utils

from console.channels.base import AccountRef, Connector, ReplyTarget
from console.channels.mastodon import MastodonConnector
from console.ports import MemorySecretStore
from console.replies.outbox import Outbox, OutboxError, SendOutcome, same_reply_text
from console.sandbox import SandboxServer
from console.sync.inbox import Poller
from storage.accounts import AccountRepo, SyncStateRepo
from storage.events import EventRepo
from storage.mentions import MentionRepo
from storage.replies import ReplyRepo
from storage.rows import ReplyRow, ReplyState
from tests.fakes.clock import FakeClock
from tests.fakes.http_server import FakeHttpServer


@dataclass
class Env:
    server: SandboxServer
    client: httpx.AsyncClient
    connector: MastodonConnector
    outbox: Outbox
    replies: ReplyRepo
    mentions: MentionRepo
    accounts: AccountRepo
    account_id: int
    clock: FakeClock
    sent: list[ReplyRow]

    def new_outbox(self, connectors: dict[int, Connector] | None = None) -> Outbox:
        """A fresh Outbox over the same database: what a restarted process builds."""
        return Outbox(
            self.replies, self.mentions, self.accounts,
            connectors if connectors is not None else {self.account_id: self.connector}, self.clock,
            on_sent=self.sent.append, rng=random.Random(3),
        )  # fmt: skip

    def head(self) -> int:
        ids = self.mentions.queue_ids()
        assert ids
        return ids[0]

    def posted(self) -> list[dict[str, Any]]:
        return self.server.statuses_posted()


@contextlib.asynccontextmanager
async def sandbox_env(db: sqlite_utils.Database, clock: FakeClock, *, backlog: int = 3) -> AsyncIterator[Env]:
    server = SandboxServer(backlog=backlog, clock=clock, seed=5)
    server.start()
    try:
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
            accounts = AccountRepo(db)
            row = accounts.add(kind="mastodon", handle="care", base_url=server.base_url, now=int(clock.now()))
            secrets = MemorySecretStore()
            secrets.set(f"mastodon:{row.id}", server.token)
            ref = AccountRef(row.id, "mastodon", "care", server.base_url)
            connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock)
            mentions = MentionRepo(db)
            poller = Poller(mentions, accounts, SyncStateRepo(db), {row.id: connector}, clock)
            await poller.sync_once()
            replies = ReplyRepo(db)
            sent: list[ReplyRow] = []
            env = Env(server, client, connector, None, replies, mentions, accounts, row.id, clock, sent)  # type: ignore[arg-type]
            env.outbox = env.new_outbox()
            yield env
    finally:
        server.stop()


def test_reply_is_committed_as_queued_before_any_network_call(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            before = len(env.server.requests)
            reply_id = env.outbox.queue(env.head(), "Thanks, looking into it now.")
            row = env.replies.get(reply_id)
            assert row is not None
            assert row.state is ReplyState.QUEUED
            assert row.idempotency_key
            assert len(env.server.requests) == before
            assert env.outbox.waiting_count() == 1
            assert [e.kind for e in EventRepo(db).for_mention(env.head())].count("reply_queued") == 1

    arun(scenario())


def test_outbox_sends_and_records_external_id(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            head = env.head()
            reply_id = env.outbox.queue(head, "Thanks, looking into it now.")
            outcomes = await env.outbox.drain()
            assert outcomes == {reply_id: SendOutcome.SENT}
            row = env.replies.get(reply_id)
            assert row is not None and row.state is ReplyState.SENT
            posted = env.posted()
            assert len(posted) == 1
            assert row.external_id == posted[0]["id"]
            assert row.url == posted[0]["url"]
            target = env.mentions.thread(head)[-1]
            assert posted[0]["in_reply_to_id"] == target.external_id
            assert f"@{target.author_handle.split('@')[0]}" in posted[0]["content"]
            assert [r.id for r in env.sent] == [reply_id]
            assert env.outbox.waiting_count() == 0

    arun(scenario())


def test_crashed_sending_reply_already_posted_is_marked_sent_not_posted_again(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            head = env.head()
            reply_id = env.outbox.queue(head, "Sorry about that, I've refunded the fee.")
            row = env.replies.mark_sending(reply_id, now=int(clock.now()))
            assert row is not None
            target = env.mentions.thread(head)[-1]
            # The process posted, then died before recording it.
            await env.connector.send_reply(
                ReplyTarget(target.external_id, target.author_handle, target.visibility),
                row.text, idempotency_key=row.idempotency_key,
            )  # fmt: skip
            clock.advance(2 * 3600)  # past Mastodon's 1 h idempotency window: only the thread check can tell
            restarted = env.new_outbox()
            outcomes = await restarted.drain()
            assert outcomes == {reply_id: SendOutcome.RECONCILED}
            assert len(env.posted()) == 1
            stored = env.replies.get(reply_id)
            assert stored is not None and stored.state is ReplyState.SENT
            assert stored.external_id == env.posted()[0]["id"]

    arun(scenario())


def test_crashed_sending_reply_not_posted_is_resent_with_the_same_key(arun: Callable[..., Any]) -> None:
    from storage.db import open_database

    db = open_database(None)
    clock = FakeClock()

    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            head = env.head()
            reply_id = env.outbox.queue(head, "On it!")
            sending = env.replies.mark_sending(reply_id, now=int(clock.now()))
            assert sending is not None
            key = sending.idempotency_key
            # The process died before the request left. Restart against a recording server.
            with FakeHttpServer() as fake:
                target = env.mentions.thread(head)[-1]
                response = await env.client.get(
                    f"{env.server.base_url}/api/v1/statuses/{target.external_id}",
                    headers={"Authorization": f"Bearer {env.server.token}"},
                )
                status_json = response.json()
                fake.reply(200, json=status_json)
                fake.reply(200, json={"ancestors": [], "descendants": []})
                posted = {**status_json, "id": "999", "in_reply_to_id": target.external_id, "url": "http://x/999"}
                fake.reply(200, json=posted)
                secrets = MemorySecretStore()
                secrets.set(f"mastodon:{env.account_id}", "t")
                ref = AccountRef(env.account_id, "mastodon", "care", fake.base_url)
                connector = MastodonConnector(env.client, account=ref, secrets=secrets, clock=clock)
                outcomes = await env.new_outbox({env.account_id: connector}).drain()
                assert outcomes == {reply_id: SendOutcome.SENT}
                post = fake.requests[-1]
                assert post.method == "POST"
                assert post.headers["idempotency-key"] == key
                stored = env.replies.get(reply_id)
                assert stored is not None and stored.external_id == "999" and stored.attempts == 2

    try:
        arun(scenario())
    finally:
        db.conn.close()


def test_same_idempotency_key_posts_once_on_the_sandbox(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            target = env.mentions.thread(env.head())[-1]
            reply_target = ReplyTarget(target.external_id, target.author_handle, target.visibility)
            first = await env.connector.send_reply(reply_target, "Hello!", idempotency_key="k-1")
            second = await env.connector.send_reply(reply_target, "Hello!", idempotency_key="k-1")
            assert first.external_id == second.external_id
            assert len(env.posted()) == 1

    arun(scenario())


def test_offline_replies_wait_queued_and_leave_in_order_when_back(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            ids = env.mentions.queue_ids()
            first = env.outbox.queue(ids[0], "First reply")
            second = env.outbox.queue(ids[1], "Second reply")
            fake = FakeHttpServer().start()
            base = fake.base_url
            fake.stop()  # nothing listens there any more: the network is down
            secrets = MemorySecretStore()
            secrets.set(f"mastodon:{env.account_id}", env.server.token)
            down = MastodonConnector(
                env.client, account=AccountRef(env.account_id, "mastodon", "care", base), secrets=secrets, clock=clock
            )
            offline = env.new_outbox({env.account_id: down})
            outcomes = await offline.drain()
            assert outcomes == {first: SendOutcome.WAITING}  # the second waits behind the first
            row = env.replies.get(first)
            assert row is not None and row.state is ReplyState.QUEUED
            assert "Could not reach" in row.error and row.next_attempt_at is not None
            assert offline.waiting_count() == 2
            assert env.posted() == []
            clock.advance(3600)
            outcomes = await env.new_outbox().drain()
            assert outcomes == {first: SendOutcome.SENT, second: SendOutcome.SENT}
            assert [s["content"].count("First") + 2 * s["content"].count("Second") for s in env.posted()] == [1, 2]

    arun(scenario())


def test_auth_expired_keeps_the_reply_queued_with_the_reason(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            reply_id = env.outbox.queue(env.head(), "Hello there")
            secrets = MemorySecretStore()
            secrets.set(f"mastodon:{env.account_id}", "revoked-token")
            ref = AccountRef(env.account_id, "mastodon", "care", env.server.base_url)
            expired = MastodonConnector(env.client, account=ref, secrets=secrets, clock=clock)
            outcomes = await env.new_outbox({env.account_id: expired}).drain()
            assert outcomes == {reply_id: SendOutcome.WAITING}
            row = env.replies.get(reply_id)
            assert row is not None and row.state is ReplyState.QUEUED and row.external_id is None
            assert "sign-in expired" in row.error
            assert env.sent == []

    arun(scenario())


def test_permanent_refusal_fails_with_the_reason(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            reply_id = env.outbox.queue(env.head(), "x" * 600)
            outcomes = await env.outbox.drain()
            assert outcomes == {reply_id: SendOutcome.FAILED}
            row = env.replies.get(reply_id)
            assert row is not None and row.state is ReplyState.FAILED
            assert "character limit" in row.error
            assert "reply_failed" in [e.kind for e in EventRepo(db).for_mention(row.mention_id)]

    arun(scenario())


def test_stale_reply_is_held_when_the_customer_posted_since(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            head = env.head()
            target = env.mentions.thread(head)[-1]
            reply_id = env.outbox.queue(head, "Could you DM me your order number?", seen_at=int(clock.now()))
            clock.advance(600)
            env.server.post_mention(
                author=target.author_handle, text="@care never mind, it arrived!", in_reply_to_id=target.external_id
            )
            outcomes = await env.outbox.drain()
            assert outcomes == {reply_id: SendOutcome.HELD}
            row = env.replies.get(reply_id)
            assert row is not None and row.state is ReplyState.QUEUED
            assert "it arrived" in row.hold_reason and target.author_handle in row.hold_reason
            assert env.posted() == []
            env.outbox.confirm(reply_id)
            assert await env.outbox.drain() == {reply_id: SendOutcome.SENT}

    arun(scenario())


def test_stale_reply_without_news_is_sent(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            reply_id = env.outbox.queue(env.head(), "Still on it", seen_at=int(clock.now()))
            clock.advance(600)
            assert await env.outbox.drain() == {reply_id: SendOutcome.SENT}

    arun(scenario())


def test_correction_edits_the_sent_reply_and_is_logged(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            reply_id = env.outbox.queue(env.head(), "Your refund is on its way (3 days).")
            await env.outbox.drain()
            fix_id = env.outbox.correct(reply_id, "Your refund is on its way (5 working days).")
            assert await env.outbox.drain() == {fix_id: SendOutcome.SENT}
            posted = env.posted()
            assert len(posted) == 1
            assert "5 working days" in posted[0]["content"] and posted[0]["edited_at"] is not None
            original = env.replies.get(reply_id)
            assert original is not None and "3 days" in original.text  # never silently replaced
            events = [(e.kind, json.loads(e.data)) for e in EventRepo(db).for_mention(original.mention_id)]
            assert ("reply_corrected", {"reply_id": reply_id, "mode": "edit", "correction_id": fix_id}) in events

    arun(scenario())


def test_correction_without_edit_support_posts_a_follow_up(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    class NoEdit:
        kind = "mastodon"

        def __init__(self, inner: MastodonConnector) -> None:
            self.fetch_thread = inner.fetch_thread
            self.send_reply = inner.send_reply

    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            reply_id = env.outbox.queue(env.head(), "Refund in 3 days.")
            await env.outbox.drain()
            fix_id = env.outbox.correct(reply_id, "Correction: it's 5 working days, sorry!")
            outbox = env.new_outbox({env.account_id: NoEdit(env.connector)})  # type: ignore[dict-item]
            assert await outbox.drain() == {fix_id: SendOutcome.SENT}
            assert len(env.posted()) == 2
            events = [json.loads(e.data) for e in EventRepo(db).for_mention(env.head()) if e.kind == "reply_corrected"]
            assert events and events[0]["mode"] == "follow_up"

    arun(scenario())


def test_sent_reply_lets_customer_follow_up_join_the_thread(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            head = env.head()
            env.outbox.queue(head, "Can you try again now?")
            await env.outbox.drain()
            env.server.simulate_follow_ups(force=True)
            poller = Poller(env.mentions, env.accounts, SyncStateRepo(db), {env.account_id: env.connector}, clock)
            reports = await poller.sync_once()
            assert head in reports[0].follow_ups
            assert len(env.mentions.thread(head)) == 2

    arun(scenario())


def test_queue_rejects_empty_text_and_unknown_items(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            with pytest.raises(OutboxError, match="empty"):
                env.outbox.queue(env.head(), "   ")
            with pytest.raises(OutboxError, match="no item"):
                env.outbox.queue(987654, "hello")
            assert env.outbox.waiting_count() == 0

    arun(scenario())


def test_reply_to_a_direct_message_stays_direct(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock, backlog=0) as env:
            env.server.post_mention(
                author="dee@example.social", text="@care my address is private", visibility="direct"
            )
            await Poller(
                env.mentions, env.accounts, SyncStateRepo(db), {env.account_id: env.connector}, clock
            ).sync_once()
            reply_id = env.outbox.queue(env.head(), "Thanks, got it", visibility="public")
            await env.outbox.drain()
            row = env.replies.get(reply_id)
            assert row is not None and row.visibility == "direct"
            assert env.posted()[0]["visibility"] == "direct"

    arun(scenario())


def test_drafts_survive_a_new_outbox(db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            env.outbox.save_draft(env.head(), "Half-written")
            env.outbox.save_draft(env.head(), "Half-written reply")
            assert env.new_outbox().draft(env.head()) == "Half-written reply"
            env.outbox.queue(env.head(), "Half-written reply, done")
            assert env.outbox.draft(env.head()) == ""

    arun(scenario())


@pytest.mark.parametrize(
    ("posted", "ours", "same"),
    [
        ("@alice Thanks, on it!", "Thanks, on it!", True),
        ("@alice@other.social  Thanks,\non it!", "thanks, on it!", True),
        ("@alice Thanks, on it", "Thanks, on it!", False),
    ],
)
def test_same_reply_text(posted: str, ours: str, same: bool) -> None:
    assert same_reply_text(posted, ours) is same


def test_withdrawn_reply_is_never_sent(db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            reply_id = env.outbox.queue(env.head(), "Oops, wrong customer")
            env.outbox.withdraw(reply_id)
            assert await env.outbox.drain() == {}
            assert env.posted() == []
            assert env.replies.mark_sending(reply_id, now=int(clock.now())) is None
            with pytest.raises(OutboxError, match="still queued"):
                env.outbox.withdraw(reply_id)

    arun(scenario())


def test_run_loop_sends_as_soon_as_a_reply_is_queued(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            task = asyncio.create_task(env.outbox.run())
            try:
                await asyncio.sleep(0)  # the loop is idle, waiting to be woken
                reply_id = env.outbox.queue(env.head(), "Sent by the background sender")
                for _ in range(500):
                    row = env.replies.get(reply_id)
                    if row is not None and row.state is ReplyState.SENT:
                        break
                    await asyncio.sleep(0.01)
                assert row is not None and row.state is ReplyState.SENT
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    arun(scenario())
