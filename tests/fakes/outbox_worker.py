"""A sending process for the crash test: drains the outbox and SIGKILLs itself at seeded random points.

Run as ``python -m tests.fakes.outbox_worker --db PATH --base-url URL --token T --account-id N --now EPOCH
--seed S --kill-p P``. Exit codes: 0 = nothing left to send, 3 = replies wait (rate limited or offline);
a kill shows as -9 to the parent. The kill points are the dangerous windows of the send path: right after
``sending`` is committed, just before the request leaves, after the server answered but before ``sent`` is
committed, and right after ``sent`` is committed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import httpx

from console.channels.base import AccountRef
from console.channels.mastodon import MastodonConnector
from console.ports import MemorySecretStore
from console.replies.outbox import Outbox, SendOutcome
from storage.accounts import AccountRepo
from storage.db import open_database
from storage.mentions import MentionRepo
from storage.replies import ReplyRepo
from storage.rows import ReplyRow

EXIT_DONE = 0
EXIT_WAITING = 3


class FixedClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


class Killer:
    def __init__(self, seed: int, probability: float) -> None:
        self._rng = random.Random(seed)
        self._p = probability

    def maybe_die(self) -> None:
        if self._rng.random() < self._p:
            os.kill(os.getpid(), signal.SIGKILL)


class KillingReplyRepo(ReplyRepo):
    def __init__(self, db: Any, killer: Killer) -> None:
        super().__init__(db)
        self._killer = killer

    def mark_sending(self, reply_id: int, *, now: int) -> ReplyRow | None:
        row = super().mark_sending(reply_id, now=now)
        self._killer.maybe_die()
        return row

    def mark_sent(self, reply_id: int, *, external_id: str, url: str, at: int, actor: str = "outbox") -> ReplyRow:
        row = super().mark_sent(reply_id, external_id=external_id, url=url, at=at, actor=actor)
        self._killer.maybe_die()
        return row


async def run(args: argparse.Namespace) -> int:
    killer = Killer(args.seed, args.kill_p)
    db = open_database(Path(args.db))
    clock = FixedClock(args.now)

    async def on_request(_request: httpx.Request) -> None:
        killer.maybe_die()

    async def on_response(_response: httpx.Response) -> None:
        killer.maybe_die()

    hooks: dict[str, list[Any]] = {"request": [on_request], "response": [on_response]}
    async with httpx.AsyncClient(timeout=10.0, trust_env=False, event_hooks=hooks) as client:
        secrets = MemorySecretStore()
        secrets.set(f"mastodon:{args.account_id}", args.token)
        ref = AccountRef(args.account_id, "mastodon", "care", args.base_url)
        connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock)
        replies = KillingReplyRepo(db, killer)
        outbox = Outbox(
            replies, MentionRepo(db), AccountRepo(db), {args.account_id: connector}, clock,
            freshness_seconds=10**9, rng=random.Random(args.seed),
        )  # fmt: skip
        while replies.pending():
            outcomes = await outbox.drain()
            if not outcomes or all(o is SendOutcome.WAITING for o in outcomes.values()):
                return EXIT_WAITING
    return EXIT_DONE


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--account-id", type=int, required=True)
    parser.add_argument("--now", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--kill-p", type=float, default=0.0)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
