"""A priority change (triage, and its undo) recomputes the item's deadlines under the new priority's policy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlite_utils

from console.ports import MemorySecretStore
from console.runtime import SandboxOptions, open_runtime
from console.sla.policy import PolicyRule, PolicySet
from console.triage import Priority, Triage
from storage.rows import DeadlineKind, MentionKind, NewMention
from storage.triage import TriageRepo
from tests.console.test_sla_engine import MIN, T0, make_world
from tests.fakes.clock import FakeClock

FR = DeadlineKind.FIRST_RESPONSE


def test_triage_tells_the_listener_about_priority_changes_and_their_undo(db: sqlite_utils.Database) -> None:
    w = make_world(db, FakeClock(T0))
    head, _ = w.post(T0)
    calls: list[tuple[int, int, int, int]] = []
    triage = Triage(TriageRepo(db), w.clock, on_priority_change=lambda *args: calls.append(args))
    triage.set_priority(head, Priority.URGENT)
    w.clock.advance(60)
    triage.undo()
    normal, urgent = int(Priority.NORMAL), int(Priority.URGENT)
    assert calls == [(head, normal, urgent, T0), (head, urgent, normal, T0 + 60)]
    assert triage.set_priority(head, Priority.NORMAL) is None  # unchanged: no call
    assert len(calls) == 2


def test_priority_change_recomputes_running_deadlines_and_keeps_met_ones(db: sqlite_utils.Database) -> None:
    w = make_world(db, FakeClock(T0))
    rules = (PolicyRule(priority=1, first_response=10 * MIN, resolution=4 * 3600), PolicyRule())
    w.engine.set_policies(PolicySet(rules=rules))
    head, _ = w.post(T0)
    other, _ = w.post(T0)
    w.engine.record_response(other, T0 + 20 * MIN)  # met under the 30 min target
    triage = Triage(TriageRepo(db), w.clock, on_priority_change=w.engine.on_priority_change)
    assert w.one(head, FR).due_at == T0 + 30 * MIN

    triage.set_priority(head, Priority.URGENT)
    assert w.one(head, FR).due_at == T0 + 10 * MIN
    assert w.one(head, DeadlineKind.RESOLUTION).due_at == T0 + 4 * 3600
    assert w.due(head)[0] == T0 + 10 * MIN  # the queue's sort key follows

    triage.set_priority(other, Priority.URGENT)
    met = w.one(other, FR)
    assert (met.due_at, met.met_at) == (T0 + 30 * MIN, T0 + 20 * MIN)  # a met deadline keeps its times

    triage.undo()  # other back to normal
    triage.set_priority(head, Priority.NORMAL)
    assert w.one(head, FR).due_at == T0 + 30 * MIN


def test_runtime_wires_priority_changes_to_the_sla_engine(tmp_path: Path, clock: FakeClock) -> None:
    runtime = open_runtime(
        tmp_path, clock=clock, secrets=MemorySecretStore(), sandbox=SandboxOptions(rate_per_minute=0, backlog=0)
    )
    try:
        assert runtime.triage is not None and runtime.sla is not None
        rules = (PolicyRule(priority=1, first_response=10 * MIN), PolicyRule())
        runtime.sla.set_policies(PolicySet(rules=rules))
        account = runtime.accounts.list(enabled_only=True)[0]
        item = NewMention(
            account_id=account.id, external_id="s1", author_external_id="ana", author_handle="ana", author_name="Ana",
            text="help", url="", posted_at=int(clock.now()), kind=MentionKind.PUBLIC, visibility="public",
            parent_external_id=None, raw_json="{}",
        )  # fmt: skip
        result = runtime.mentions.store_batch(
            [item], channel="mastodon", fetched_at=int(clock.now()), plan=runtime.sla.planner("mastodon")
        )
        (head,) = result.new_heads
        runtime.triage.set_priority(head, Priority.URGENT)
        (first,) = [d for d in runtime.mentions.deadlines(head) if d.kind is FR]
        assert first.due_at == int(clock.now()) + 10 * MIN
    finally:
        asyncio.run(runtime.aclose())
