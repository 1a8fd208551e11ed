"""End to end: the sending process is SIGKILLed at random points during 200 sends; every reply is posted once."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.channels.base import AccountRef
from console.channels.mastodon import MastodonConnector
from console.ports import MemorySecretStore
from console.replies.outbox import Outbox
from console.sandbox import SandboxServer
from console.sync.inbox import Poller
from storage.accounts import AccountRepo, SyncStateRepo
from storage.db import open_database
from storage.mentions import MentionRepo
from storage.replies import ReplyRepo
from storage.rows import ReplyState
from tests.fakes.clock import FakeClock
from tests.fakes.outbox_worker import EXIT_DONE, EXIT_WAITING

REPLIES = 200
KILL_PROBABILITY = 0.012
MAX_RUNS = 300
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_outbox_posts_every_reply_exactly_once_across_sigkills(tmp_path: Path, arun: Callable[..., Any]) -> None:
    clock = FakeClock()
    db_path = tmp_path / "care.db"
    with SandboxServer(backlog=0, clock=clock, seed=11) as server:
        for i in range(REPLIES):
            server.post_mention(author=f"cust{i}@shop.example", text=f"@care question {i}")
        db = open_database(db_path)
        accounts = AccountRepo(db)
        account = accounts.add(kind="mastodon", handle="care", base_url=server.base_url, now=int(clock.now()))
        sync_state = SyncStateRepo(db)
        sync_state.record_success(account.id, cursor={"min_id": "0"}, at=int(clock.now()), next_attempt_at=0)
        mentions = MentionRepo(db)

        async def sync() -> None:
            async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
                secrets = MemorySecretStore()
                secrets.set(f"mastodon:{account.id}", server.token)
                ref = AccountRef(account.id, "mastodon", "care", server.base_url)
                connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock)
                await Poller(mentions, accounts, sync_state, {account.id: connector}, clock).sync_once()

        arun(sync())
        heads = sorted(mentions.queue_ids())
        assert len(heads) == REPLIES
        replies = ReplyRepo(db)
        outbox = Outbox(replies, mentions, accounts, {}, clock)
        reply_ids = [outbox.queue(head, f"Reply number {n}: we're on it.") for n, head in enumerate(heads)]
        db.conn.close()

        kills = 0
        for run in range(MAX_RUNS):
            result = subprocess.run(
                [sys.executable, "-m", "tests.fakes.outbox_worker", "--db", str(db_path), "--base-url",
                 server.base_url, "--token", server.token, "--account-id", str(account.id), "--now",
                 str(clock.now()), "--seed", str(1000 + run), "--kill-p", str(KILL_PROBABILITY)],
                cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert result.returncode in (EXIT_DONE, EXIT_WAITING, -9), result.stderr
            kills += result.returncode == -9
            if result.returncode == EXIT_DONE:
                break
            # Past the 1 h idempotency window (and into a new rate-limit window): only the thread check protects.
            clock.advance(3601)
        else:
            pytest.fail(f"the outbox did not finish in {MAX_RUNS} runs")

        assert kills >= 5, "the test must actually kill the sender"
        db = open_database(db_path)
        try:
            rows = [ReplyRepo(db).get(reply_id) for reply_id in reply_ids]
        finally:
            db.conn.close()
        posted = server.statuses_posted()
    assert all(row is not None and row.state is ReplyState.SENT for row in rows)
    texts = Counter(status["content"] for status in posted)
    assert len(posted) == REPLIES, f"{len(posted) - REPLIES} duplicates: {[t for t, n in texts.items() if n > 1][:3]}"
    assert len({status["in_reply_to_id"] for status in posted}) == REPLIES
    assert {row.external_id for row in rows if row is not None} == {status["id"] for status in posted}
