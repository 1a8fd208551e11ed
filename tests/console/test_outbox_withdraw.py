"""Withdrawing a reply: only while nothing can have reached the channel (found by the robot, issue 19)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlite_utils

from console.replies.outbox import OutboxError, SendOutcome
from console.sandbox.faults import Fault, FaultRule
from storage.rows import ReplyState
from tests.console.test_outbox import sandbox_env
from tests.fakes.clock import FakeClock


def test_outbox_withdraw_refuses_a_reply_whose_last_try_got_no_answer(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            reply_id = env.outbox.queue(env.head(), "Thanks for your patience, it is on its way.")
            env.server.set_faults([FaultRule(Fault.DROP, count=1)])  # posted, then the answer is cut off
            outcomes = await env.outbox.drain()
            assert outcomes[reply_id] is not SendOutcome.SENT
            assert len(env.posted()) == 1  # the customer can already read it

            with pytest.raises(OutboxError, match="may already be"):
                env.outbox.withdraw(reply_id)

            clock.advance(120)
            await env.outbox.drain()  # the next pass finds it in the thread: sent, once
            row = env.replies.get(reply_id)
            assert row is not None and row.state is ReplyState.SENT
            assert [s["id"] for s in env.posted()] == [row.external_id]

    arun(scenario())


def test_outbox_withdraw_takes_back_a_reply_never_tried(
    db: sqlite_utils.Database, clock: FakeClock, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with sandbox_env(db, clock) as env:
            reply_id = env.outbox.queue(env.head(), "Thanks, looking into it now.")
            env.outbox.withdraw(reply_id)
            await env.outbox.drain()
            row = env.replies.get(reply_id)
            assert row is not None and row.state is ReplyState.FAILED
            assert env.posted() == []

    arun(scenario())
