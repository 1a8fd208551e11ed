"""Seeded random mixes of the sandbox's fault switches over many rounds of sync and sends, through the real
runtime (poller, background store, outbox): every mention is stored once, every reply posted at most once,
and every reply the outbox calls sent is posted exactly once."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from console.ports import MemorySecretStore
from console.runtime import SandboxOptions, open_runtime
from console.sandbox.faults import Fault, FaultRule
from storage.db import DB_FILENAME, open_database
from storage.replies import ReplyRepo
from storage.rows import ReplyState
from tests.console.test_sync_faults import sandbox_mentions
from tests.fakes.clock import FakeClock
from tests.reliability.conftest import TALLY, rounds

#: Deleted-upstream (404 on a status) and revoked sign-ins need an agent; everything else is survived alone.
MIX = [f for f in Fault if f not in (Fault.DELETED, Fault.REVOKED)]


def test_fault_mix_over_rounds_of_sync_and_sends(tmp_path: Path, arun: Callable[..., Any]) -> None:
    clock = FakeClock()
    rng = random.Random(12_2026)
    runtime = open_runtime(
        tmp_path, clock=clock, secrets=MemorySecretStore(), sandbox=SandboxOptions(rate_per_minute=0.0, backlog=6)
    )
    n_rounds = rounds(80, per_soak_round=20)
    reply_ids: list[int] = []
    heads_replied: set[int] = set()
    try:
        server = runtime.sandbox
        assert server is not None and runtime.replies is not None
        outbox = runtime.replies.outbox
        for round_no in range(n_rounds):
            server.generate(rng.randint(0, 5))
            server.set_faults(
                [FaultRule(f, probability=rng.uniform(0.1, 0.5), delay=0.2, retry_after=rng.choice([5, 60]))
                 for f in rng.sample(MIX, 3)],
                replace_all=True,
            )  # fmt: skip
            arun(runtime.poller.poll_due(forced=rng.random() < 0.3), timeout=30)
            heads = runtime.mentions.queue_ids()
            if heads and rng.random() < 0.6:
                head = rng.choice(heads)
                reply_ids.append(outbox.queue(head, f"Round {round_no}: we are on it ({head})."))
                heads_replied.add(head)
            arun(outbox.drain(), timeout=30)
            clock.advance(rng.choice([5, 30, 120]))
        fired = server.faults.fired()
        server.faults.clear()
        held = 0
        for _ in range(20):  # faults off: everything catches up
            clock.advance(300)
            arun(runtime.poller.poll_due(forced=True), timeout=30)
            for head in heads_replied:  # the agent confirms replies held because the customer wrote again
                for row in outbox.replies(head):
                    if row.hold_reason and row.state is ReplyState.QUEUED:
                        outbox.confirm(row.id)
                        held += 1
            arun(outbox.drain(), timeout=30)
        posted = server.statuses_posted()
        created = sandbox_mentions(server)
    finally:
        arun(runtime.aclose())
    db = open_database(tmp_path / DB_FILENAME)
    try:
        assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = [row[0] for row in db.conn.execute("SELECT external_id FROM mentions")]
        quarantined = {row[0] for row in db.conn.execute("SELECT external_id FROM quarantine")}
        replies = [ReplyRepo(db).get(i) for i in reply_ids]
    finally:
        db.conn.close()
    assert len(stored) == len(set(stored)), "a mention was stored twice"
    expected = {status for nid, status in created.items() if nid not in quarantined}
    assert set(stored) == expected, f"{len(expected - set(stored))} mentions lost"
    texts = Counter(status["content"] for status in posted)
    assert not [t for t, n in texts.items() if n > 1], "a reply was posted twice"
    sent = [r for r in replies if r is not None and r.state is ReplyState.SENT]
    assert {r.external_id for r in sent} == {status["id"] for status in posted}, "a sent reply is not on the server"
    assert sum(fired.values()) >= n_rounds // 2, f"too few faults fired: {fired}"
    assert len(sent) == len(reply_ids), "every reply leaves once the faults stop and held ones are confirmed"
    TALLY["fault-mix rounds"] += n_rounds
    TALLY["faults injected"] += sum(fired.values())
    TALLY["replies sent through faults"] += len(sent)
    TALLY["held replies confirmed"] += held
    TALLY["replies posted twice"] += 0
