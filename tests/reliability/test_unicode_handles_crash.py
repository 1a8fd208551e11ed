"""SIGKILLs while replying to customers whose handles hold combining accents, right-to-left overrides and "+",
on a hostile server that ignores idempotency keys and rewrites what it shows: every reply is posted once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from console.replies.outbox import Outbox
from console.sla.bands import SlaPolicy
from storage.accounts import AccountRepo
from storage.db import open_database
from storage.mentions import MentionRepo
from storage.replies import ReplyRepo
from storage.rows import MentionKind, NewMention, ReplyState
from tests.fakes.clock import FakeClock
from tests.fakes.hostile_mastodon_server import HostileMastodonServer
from tests.fakes.outbox_worker import EXIT_DONE, EXIT_WAITING
from tests.reliability.conftest import TALLY, rounds

ROOT = Path(__file__).resolve().parents[2]
KILL_PROBABILITY = 0.1
MAX_RUNS = 400
#: Handles a real (or hostile) server may hand over; each customer gets one, numbered.
HANDLES = (
    "jose\u0301{n}@shop.example",  # a decomposed accent (the server shows it composed)
    "\u202e{n}live@shop.example",  # a right-to-left override (the server drops it)
    "ann+{n}@shop.example",  # a plus (not a word character)
    "\u05d3\u05e0\u05d4{n}@\u05e7\u05d5\u05e4\u05d4.example",  # Hebrew, right to left
    "zo\u200d\u00eb{n}",  # a zero-width joiner inside, no domain
    "\u092a\u094d\u0930\u093f\u092f{n}@shop.example",  # a Devanagari conjunct
)


@pytest.mark.slow
def test_replies_to_unicode_handles_are_posted_once_across_sigkills(tmp_path: Path) -> None:
    replies_wanted = rounds(60, per_soak_round=6)
    clock = FakeClock()
    db_path = tmp_path / "care.db"
    with HostileMastodonServer(clock) as server:
        db = open_database(db_path)
        accounts = AccountRepo(db)
        account = accounts.add(kind="mastodon", handle="care", base_url=server.base_url, now=int(clock.now()))
        items = []
        for n in range(replies_wanted):
            status = server.post_mention(author=HANDLES[n % len(HANDLES)].format(n=n), text=f"question {n}")
            items.append(
                NewMention(
                    account_id=account.id, external_id=status["id"], author_external_id=status["account"]["id"],
                    author_handle=status["account"]["acct"], author_name="", text=f"@care question {n}",
                    url=status["url"], posted_at=int(clock.now()), kind=MentionKind.PUBLIC, visibility="public",
                    parent_external_id=None, raw_json=json.dumps(status),
                )
            )  # fmt: skip
        mentions = MentionRepo(db)
        mentions.store_batch(items, channel="mastodon", fetched_at=int(clock.now()), plan=SlaPolicy().plan)
        heads = sorted(mentions.queue_ids())
        assert len(heads) == replies_wanted
        outbox = Outbox(ReplyRepo(db), mentions, accounts, {}, clock)
        reply_ids = [
            outbox.queue(head, f"Sorry for the wait ({n}), your refund is on its way.") for n, head in enumerate(heads)
        ]
        db.conn.close()

        kills = 0
        for run in range(MAX_RUNS):
            clock.advance(60)
            result = subprocess.run(
                [sys.executable, "-m", "tests.fakes.outbox_worker", "--db", str(db_path), "--base-url",
                 server.base_url, "--token", server.token, "--account-id", str(account.id), "--now",
                 str(clock.now()), "--seed", str(5000 + run), "--kill-p", str(KILL_PROBABILITY)],
                cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert result.returncode in (EXIT_DONE, EXIT_WAITING, -9), result.stderr[-3000:]
            kills += result.returncode == -9
            if result.returncode == EXIT_DONE:
                break
        else:
            pytest.fail(f"the outbox did not finish in {MAX_RUNS} runs")

        assert kills >= 3, "the test must actually kill the sender"
        db = open_database(db_path)
        try:
            rows = [ReplyRepo(db).get(reply_id) for reply_id in reply_ids]
        finally:
            db.conn.close()
        posted = server.posted_by_us()
    TALLY["SIGKILLs survived (Unicode handles, hostile server)"] += kills
    TALLY["replies sent to Unicode handles"] += len(posted)
    assert all(row is not None and row.state is ReplyState.SENT for row in rows)
    per_parent = Counter(status["in_reply_to_id"] for status in posted)
    doubles = {parent: n for parent, n in per_parent.items() if n > 1}
    assert not doubles, f"{sum(doubles.values()) - len(doubles)} replies posted twice"
    assert len(posted) == replies_wanted
    assert {row.external_id for row in rows if row is not None} == {status["id"] for status in posted}
