"""The summary never says two things at once (issue 19, #8): over generated shifts, every figure agrees with its rows.

Shifts are generated with the real SLA engine (clocks, holding replies, waiting, reopening follow-ups, breach
sweeps that may or may not run before the end), then the summary and its report are checked against themselves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.reports.export.report import shift_report
from console.reports.summary import ShiftSummary, SummaryBuilder
from storage.db import open_database
from storage.rows import MentionStatus
from storage.shifts import ShiftRepo
from tests.console.test_sla_engine import MIN, T0, World, make_world
from tests.fakes.clock import FakeClock

AGENT = "Ana Agent"
START = T0 + 8 * 3600
END = START + 8 * 3600
FIRST_RESPONSE_TARGET = 30 * MIN  # the shipped policy, around the clock
S = MentionStatus

OPS = ("reply", "holding_late", "holding", "resolve", "community", "wait", "open", "follow_up", "sweep", "touch")


@dataclass(frozen=True)
class ItemPlan:
    posted: int  # minutes from the shift start (negative: before it, an overnight backlog)
    steps: tuple[tuple[str, int], ...]  # (op, minutes after the previous step)


items = st.lists(
    st.builds(
        ItemPlan,
        st.integers(-12 * 60, 8 * 60),
        st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 120)), max_size=6).map(tuple),
    ),
    min_size=1,
    max_size=8,
)


class Shop:
    """A generated shift on a real database and SLA engine."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.replies = 0

    def reply(self, head: int, at: int, *, purpose: str, holding_until: int | None = None) -> None:
        self.replies += 1
        self.w.db.conn.execute(
            "INSERT INTO replies (mention_id, text, purpose, idempotency_key, state, created_at, queued_at, sent_at, "
            "external_id) VALUES (?, ?, ?, ?, 'sent', ?, ?, ?, ?)",
            (head, f"Reply {self.replies}", purpose, f"k{self.replies}", at, at, at, f"r{self.replies}"),
        )
        self.w.events.append(at=at, actor=AGENT, kind="reply_queued", mention_id=head, purpose=purpose)
        self.w.engine.reply_sent(head, at, purpose=purpose, holding_until=holding_until)

    def status(self, head: int, new: S, at: int) -> None:
        old = self.w.mentions.rows_by_id([head])[head].status
        if old is new:
            return
        self.w.events.append(
            at=at, actor=AGENT, kind="status_changed", mention_id=head, **{"from": old.value, "to": new.value}
        )
        self.w.status(head, new, at)


def play(world: World, plans: list[ItemPlan], *, sweep_at_end: bool) -> ShiftSummary:
    shop = Shop(world)
    timeline: list[tuple[int, int, str, int]] = []  # (at, order, op, item index)
    for index, plan in enumerate(plans):
        at = START + plan.posted * MIN
        timeline.append((at, len(timeline), "post", index))
        for op, gap in plan.steps:
            at += gap * MIN
            timeline.append((at, len(timeline), op, index))
    timeline.sort()
    heads: dict[int, tuple[int, str]] = {}
    repo = ShiftRepo(world.db)
    shift = repo.start(AGENT, START)
    for at, _order, op, index in timeline:
        if at > END:
            break
        world.clock.set(at)
        if op == "post":
            heads[index] = world.post(at)
            continue
        if index not in heads:
            continue
        head, ext = heads[index]
        status = world.mentions.rows_by_id([head])[head].status
        if op == "reply":
            shop.reply(head, at, purpose="reply")
        elif op == "holding_late":
            shop.reply(head, at, purpose="holding", holding_until=at - 10 * MIN)  # promised time already past
        elif op == "holding":
            shop.reply(head, at, purpose="holding", holding_until=at + 45 * MIN)
        elif op in ("resolve", "community", "wait", "open"):
            target = {"resolve": S.RESOLVED, "community": S.COMMUNITY, "wait": S.WAITING, "open": S.OPEN}[op]
            if status is not S.SPAM:
                shop.status(head, target, at)
        elif op == "follow_up":
            world.post(at, parent=ext)
        elif op == "touch":
            world.events.append(at=at, actor=AGENT, kind="tags_changed", mention_id=head, tags="x")
        elif op == "sweep":
            world.engine.record_breaches(at)
    world.clock.set(END)
    if sweep_at_end:
        world.engine.record_breaches(END)
    return SummaryBuilder(repo, world.clock).build(repo.end(shift.id, END, ""))


def check(summary: ShiftSummary) -> None:
    c = summary.counts
    rows = summary.items
    # Counts agree with the item rows.
    assert c.received == sum(r.received_in_shift for r in rows)
    assert c.handled == sum(r.handled_in_shift for r in rows)
    assert c.still_open == sum(r.open_at_end for r in rows) == len(summary.handover)
    resolved = [r for r in rows if r.resolved_at is not None]
    assert c.resolved == len(resolved)
    assert all(r.status in ("resolved", "community") and not r.open_at_end for r in resolved)
    assert c.community == sum(r.status == "community" for r in resolved)
    assert c.resolved_single_reply <= c.resolved - c.community
    # Breaches: the SLA table, the breach list, the item rows and the hourly chart tell one story.
    by_kind = {k.kind: k for k in summary.sla}
    listed = Counter(b.kind for b in summary.breaches)
    assert all(by_kind[kind].breached == listed[kind] for kind in by_kind)
    assert all(k.inherited == sum(b.inherited for b in summary.breaches if b.kind == k.kind) for k in summary.sla)
    assert sum(r.breaches for r in rows) == len(summary.breaches)
    assert sum(h.breached for h in summary.hours) == len(summary.breaches)
    assert sum(h.met for h in summary.hours) == sum(k.met for k in summary.sla)
    row_of = {r.mention_id: r for r in rows}
    for b in summary.breaches:
        assert getattr(row_of[b.mention_id], f"sla_{b.kind}") == "breached", b
        assert b.met_at is None or b.met_at > b.due_at  # a deadline met in its due second is never a breach
    breached_pairs = {(b.mention_id, b.kind) for b in summary.breaches}
    for r in rows:
        for kind in by_kind:
            if getattr(r, f"sla_{kind}") == "breached":
                assert (r.mention_id, kind) in breached_pairs, (r, kind)
    for h in summary.handover:
        for d in h.deadlines:
            if d.state == "breached":
                assert (h.mention_id, d.kind) in breached_pairs, (h, d)
    # A first response slower than its target is never shown beside "met" (nor a running clock): it is a
    # breach, or the clock had stopped before the reply (resolved without one), or it is not this shift's.
    for r in rows:
        if r.first_response_s is not None and r.first_response_s > FIRST_RESPONSE_TARGET:
            assert r.sla_first_response in ("breached", "stopped", "before the shift", ""), r
    fr = summary.first_response
    assert fr.n == sum(1 for r in rows if r.first_response_at is not None and START <= r.first_response_at <= END)
    assert len(fr.business_samples_s) == fr.n
    # The report says what the summary says, once.
    report = shift_report(summary, tz=UTC)
    sla_tile = next(t for t in report.tiles if t.label == "SLA met")
    assert sla_tile.note.startswith(f"{len(summary.breaches):,} breach")
    paragraphs = [p for s in report.sections for p in s.paragraphs]
    assert ("No deadline was breached in this shift." in paragraphs) == (not summary.breaches)


@pytest.fixture
def worlds() -> Iterator[list[World]]:
    made: list[World] = []
    yield made
    for world in made:
        world.db.conn.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=items, sweep_at_end=st.booleans())
def test_every_summary_figure_agrees_with_its_own_rows(
    worlds: list[World], plans: list[ItemPlan], sweep_at_end: bool
) -> None:
    world = make_world(open_database(None), FakeClock(START))
    worlds.append(world)
    check(play(world, plans, sweep_at_end=sweep_at_end))


def test_a_late_first_response_without_a_recorded_breach_is_still_a_breach(worlds: list[World]) -> None:
    """The walk-through's "34-minute first response beside SLA met –, 0 breaches": the sweeper never ran."""
    world = make_world(open_database(None), FakeClock(START))
    worlds.append(world)
    summary = play(world, [ItemPlan(60, (("reply", 34),))], sweep_at_end=False)
    assert summary.first_response.samples_s == [34 * MIN]
    first = next(k for k in summary.sla if k.kind == "first_response")
    assert (first.met, first.breached) == (0, 1)
    check(summary)
