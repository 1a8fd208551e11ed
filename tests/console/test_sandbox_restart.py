"""Restarting the app on the sandbox continues the same shift: nothing is seeded twice, old items can be answered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from console.ports import MemorySecretStore
from console.runtime import Runtime, SandboxOptions, open_runtime
from storage.mentions import QueueView
from storage.rows import ReplyState
from tests.fakes.clock import FakeClock

T = TypeVar("T")
Arun = Callable[[Awaitable[T]], T]
OPTIONS = SandboxOptions(rate_per_minute=0, backlog=9)


def _open(folder: Path, clock: FakeClock) -> Runtime:
    return open_runtime(folder, clock=clock, secrets=MemorySecretStore(), sandbox=OPTIONS)


def test_a_restart_on_the_sandbox_seeds_nothing_again_and_answers_items_from_before(
    tmp_path: Path, clock: FakeClock, arun: Arun[Any]
) -> None:
    """Issue 19 #6: 39 open items stayed 39 (not 52) and a reply to an item from before the restart is sent."""

    async def second(later: int) -> tuple[list[int], ReplyState]:
        runtime = _open(tmp_path, clock)
        try:
            assert runtime.sandbox is not None and runtime.sandbox.restored
            await runtime.poller.sync_once()
            assert runtime.replies is not None
            runtime.replies.outbox.queue(later, "Sorry for the wait, here is what happened.")
            await runtime.replies.outbox.drain()
            (reply,) = runtime.replies.outbox.replies(later)
            return runtime.mentions.queue_ids(QueueView.OPEN), reply.state
        finally:
            await runtime.aclose()

    runtime = _open(tmp_path, clock)

    async def sync_and_answer() -> tuple[list[int], int, int]:
        try:
            await runtime.poller.sync_once()
            assert runtime.replies is not None
            open_ids = runtime.mentions.queue_ids(QueueView.OPEN)
            runtime.replies.outbox.queue(open_ids[0], "Thanks, we're on it.")
            await runtime.replies.outbox.drain()
            return open_ids, open_ids[0], open_ids[-1]
        finally:
            await runtime.aclose()

    before, answered, later = arun(sync_and_answer())
    assert len(before) == 9
    clock.advance(15 * 60)
    after, state = arun(second(later))
    assert sorted(after) == sorted(before)  # the backlog was not seeded again
    assert state is ReplyState.SENT  # the sandbox still knows the post from before the restart
    assert answered in after  # still open: it was answered, not resolved
