"""After a sign-in the account's waiting replies leave at once, in order, instead of after AUTH_RETRY_SECONDS."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from console.channels.base import AccountRef
from console.channels.mastodon import MastodonConnector
from console.ports import MemorySecretStore
from console.replies.outbox import AUTH_RETRY_SECONDS, Outbox, SendOutcome
from console.runtime import SandboxOptions, open_runtime
from storage.rows import ReplyState
from tests.console.test_outbox import Env, sandbox_env
from tests.fakes.clock import FakeClock


def _expired_outbox(env: Env, secrets: MemorySecretStore) -> Outbox:
    """An outbox whose connector reads its token from ``secrets`` (revoked at first)."""
    secrets.set(f"mastodon:{env.account_id}", "revoked-token")
    ref = AccountRef(env.account_id, "mastodon", "care", env.server.base_url)
    connector = MastodonConnector(env.client, account=ref, secrets=secrets, clock=env.clock)
    return env.new_outbox({env.account_id: connector})


def test_retry_account_makes_the_waiting_replies_due_now(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            secrets = MemorySecretStore()
            outbox = _expired_outbox(env, secrets)
            heads = env.mentions.queue_ids()
            first = outbox.queue(heads[0], "Checking your order now.")
            second = outbox.queue(heads[1], "A refund is on its way.")
            assert await outbox.drain() == {first: SendOutcome.WAITING}  # the second waits behind it
            row = env.replies.get(first)
            assert row is not None and row.next_attempt_at == int(clock.now()) + AUTH_RETRY_SECONDS

            assert outbox.retry_account(env.account_id + 1) == 0  # another account: nothing changes
            assert outbox.retry_account(env.account_id) == 1
            row = env.replies.get(first)
            assert row is not None and row.state is ReplyState.QUEUED and row.next_attempt_at is None
            assert "sign-in expired" in row.error  # the reason stays until the reply is tried again

            secrets.set(f"mastodon:{env.account_id}", env.server.token)  # signed in again
            assert await outbox.drain() == {first: SendOutcome.SENT, second: SendOutcome.SENT}  # clock unchanged
            assert [s["content"].count("Checking") for s in env.posted()] == [1, 0]
            assert outbox.retry_account(env.account_id) == 0

    arun(scenario())


def test_retry_account_wakes_the_running_sender(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            secrets = MemorySecretStore()
            outbox = _expired_outbox(env, secrets)
            reply = outbox.queue(env.head(), "On it.")
            assert await outbox.drain() == {reply: SendOutcome.WAITING}
            task = asyncio.create_task(outbox.run())
            try:
                await asyncio.sleep(0.05)  # the sender is asleep until the retry time, minutes away
                assert env.posted() == []
                secrets.set(f"mastodon:{env.account_id}", env.server.token)
                outbox.retry_account(env.account_id)
                # Until the outbox has recorded the send, not merely until the server saw the post.
                while (row := env.replies.get(reply)) is None or row.state is not ReplyState.SENT:
                    assert not task.done(), task
                    await asyncio.sleep(0.01)
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            assert len(env.posted()) == 1

    arun(scenario())


def test_signing_in_again_in_the_app_sends_the_queued_replies_now(
    tmp_path: Path, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    """The runtime wires ChannelHealth.reauthenticate to Outbox.retry_account (revoke -> sign in -> sent)."""

    async def scenario() -> None:
        runtime = open_runtime(
            tmp_path, clock=clock, secrets=MemorySecretStore(), sandbox=SandboxOptions(rate_per_minute=0, backlog=3)
        )
        try:
            assert runtime.sandbox is not None and runtime.replies is not None
            await runtime.poller.sync_once()
            account_id = next(iter(runtime.connectors))
            outbox = runtime.replies.outbox
            runtime.sandbox.revoke_token()
            reply = outbox.queue(runtime.mentions.queue_ids()[0], "Thanks for waiting.")
            assert await outbox.drain() == {reply: SendOutcome.WAITING}
            message = await runtime.health.reauthenticate(account_id)
            assert message.startswith("Signed in again"), message
            assert await outbox.drain() == {reply: SendOutcome.SENT}  # no AUTH_RETRY_SECONDS wait
            assert len(runtime.sandbox.statuses_posted()) == 1
        finally:
            await runtime.aclose()

    arun(scenario())
