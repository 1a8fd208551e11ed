"""SlaEngine: every clock rule of issue 14 with a fake clock, plus properties against replay from the log."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.model import SyncReport
from console.sla.calendar import Calendar
from console.sla.engine import SlaEngine
from console.sla.policy import ALWAYS_NAME, PolicyRule, PolicySet, shipped_policy
from console.triage import Triage
from storage.accounts import AccountRepo
from storage.db import open_database
from storage.deadlines import DeadlineRepo
from storage.events import EventRepo
from storage.mentions import MentionRepo
from storage.rows import DeadlineKind, DeadlineRow, MentionKind, MentionStatus, NewMention
from storage.settings import SettingsRepo
from storage.triage import TriageRepo
from tests.fakes.clock import FakeClock

T0 = 1_772_445_600  # Monday 2026-03-02 10:00 London (GMT)
MIN = 60
FR, NR, RES, FU = (
    DeadlineKind.FIRST_RESPONSE,
    DeadlineKind.NEXT_RESPONSE,
    DeadlineKind.RESOLUTION,
    DeadlineKind.FOLLOW_UP,
)
S = MentionStatus


@dataclass
class World:
    db: sqlite_utils.Database
    clock: FakeClock
    mentions: MentionRepo
    repo: DeadlineRepo
    events: EventRepo
    engine: SlaEngine
    n: int = 0

    def post(self, at: int, *, parent: str | None = None) -> tuple[int, str]:
        """A customer message posted at ``at``; returns (head id, external id)."""
        self.n += 1
        ext = f"m{self.n}"
        item = NewMention(
            account_id=1, external_id=ext, author_external_id="ana", author_handle="ana", author_name="Ana",
            text="help", url="", posted_at=at, kind=MentionKind.PUBLIC, visibility="public",
            parent_external_id=parent, raw_json="{}",
        )  # fmt: skip
        result = self.mentions.store_batch(
            [item], channel="mastodon", fetched_at=int(self.clock.now()), plan=self.engine.planner("mastodon")
        )
        self.engine.on_synced(SyncReport(1, at, follow_ups=result.follow_up_heads))
        (mid,) = result.inserted_ids
        head = self.repo.head_of(mid)
        assert head is not None
        return head, ext

    def status(self, head: int, new: MentionStatus, at: int) -> None:
        old = self.mentions.rows_by_id([head])[head].status
        with self.db.atomic():
            self.db.conn.execute("UPDATE mentions SET status = ? WHERE id = ?", (new.value, head))
        self.engine.on_status_change(head, old, new, at)

    def rows(self, head: int) -> dict[DeadlineKind, list[DeadlineRow]]:
        out: dict[DeadlineKind, list[DeadlineRow]] = {}
        for row in self.mentions.deadlines(head):
            out.setdefault(row.kind, []).append(row)
        for rows in out.values():
            rows.sort(key=lambda r: r.started_at)
        return out

    def one(self, head: int, kind: DeadlineKind) -> DeadlineRow:
        (row,) = self.rows(head)[kind]
        return row

    def due(self, head: int) -> tuple[int | None, int | None]:
        m = self.mentions.rows_by_id([head])[head]
        return m.due_at, m.warn_at


def make_world(db: sqlite_utils.Database, clock: FakeClock) -> World:
    AccountRepo(db).add(kind="mastodon", handle="care", base_url="http://sandbox", now=T0)
    mentions = MentionRepo(db)
    repo = DeadlineRepo(db, mentions)
    return World(db, clock, mentions, repo, EventRepo(db), SlaEngine(repo, SettingsRepo(db), clock))


@pytest.fixture
def w(db: sqlite_utils.Database) -> World:
    return make_world(db, FakeClock(T0))


def kinds(w: World, head: int, kind: str) -> list[str]:
    return [e.kind for e in w.events.for_mention(head) if e.kind == kind]


# ---------------------------------------------------------------------- clocks start at the post time
def test_clocks_start_at_the_customer_post_time_not_the_fetch_time(w: World) -> None:
    w.clock.set(T0 + 20 * MIN)
    head, _ = w.post(T0)
    assert w.one(head, FR).due_at == T0 + 30 * MIN
    assert w.one(head, FR).warn_at == T0 + 30 * MIN - 450  # 25% of the target left
    assert w.one(head, RES).due_at == T0 + 24 * 3600
    assert w.due(head) == (T0 + 30 * MIN, T0 + 30 * MIN - 450)


# ---------------------------------------------------------------------- responses
@pytest.mark.parametrize(("human", "met"), [(True, True), (False, False)])
def test_only_a_human_reply_meets_the_first_response(w: World, human: bool, met: bool) -> None:
    head, _ = w.post(T0)
    w.engine.record_response(head, T0 + 5 * MIN, human=human)
    assert (w.one(head, FR).met_at == T0 + 5 * MIN) is met
    assert w.one(head, RES).met_at is None
    assert len(kinds(w, head, "deadline_met")) == int(met)


@pytest.mark.parametrize(
    ("purpose", "meets"), [("reply", True), ("holding", True), ("survey", False), ("status", False)]
)
def test_reply_sent_purposes(w: World, purpose: str, meets: bool) -> None:
    head, _ = w.post(T0)
    w.engine.reply_sent(head, T0 + MIN, purpose=purpose, holding_until=T0 + 3 * 3600)
    assert (w.one(head, FR).met_at is not None) is meets


def test_a_reply_to_a_message_of_the_thread_counts_for_its_item(w: World) -> None:
    head, ext = w.post(T0)
    follow, _ = w.post(T0 + MIN, parent=ext)
    assert follow == head
    follow_id = max(m.id for m in w.mentions.thread(head))
    w.engine.record_response(follow_id, T0 + 2 * MIN)
    assert w.one(head, FR).met_at == T0 + 2 * MIN


def test_customer_follow_up_after_a_reply_starts_next_response(w: World) -> None:
    head, ext = w.post(T0)
    w.engine.record_response(head, T0 + 10 * MIN)
    w.post(T0 + 20 * MIN, parent=ext)
    w.post(T0 + 25 * MIN, parent=ext)  # still unanswered: the clock runs from the oldest unanswered message
    nr = w.one(head, NR)
    assert (nr.started_at, nr.due_at) == (T0 + 20 * MIN, T0 + 80 * MIN)
    assert w.due(head)[0] == T0 + 80 * MIN
    w.engine.record_response(head, T0 + 30 * MIN)
    assert w.one(head, NR).met_at == T0 + 30 * MIN
    assert w.due(head)[0] == T0 + 24 * 3600  # only resolution left


def test_follow_up_before_the_first_reply_adds_no_next_response(w: World) -> None:
    head, ext = w.post(T0)
    w.post(T0 + 5 * MIN, parent=ext)
    assert NR not in w.rows(head)


# ---------------------------------------------------------------------- pauses
def test_waiting_pauses_next_response_and_resolution_never_first_response(w: World) -> None:
    head, ext = w.post(T0)
    w.status(head, S.WAITING, T0 + 5 * MIN)
    assert w.one(head, FR).paused_at is None
    assert w.one(head, RES).paused_at == T0 + 5 * MIN
    w.engine.record_response(head, T0 + 6 * MIN)
    w.post(T0 + 10 * MIN, parent=ext)  # reopens: resolution resumes
    assert w.mentions.rows_by_id([head])[head].status is S.OPEN
    res = w.one(head, RES)
    assert res.paused_at is None and res.due_at == T0 + 24 * 3600 + 5 * MIN
    w.status(head, S.WAITING, T0 + 20 * MIN)
    nr = w.one(head, NR)
    assert nr.paused_at == T0 + 20 * MIN
    assert w.due(head) == (None, None)  # nothing running: the item sorts last
    w.status(head, S.OPEN, T0 + 80 * MIN)
    nr = w.one(head, NR)
    assert nr.paused_at is None and nr.due_at == T0 + 10 * MIN + 60 * MIN + 60 * MIN
    assert len(kinds(w, head, "deadline_paused")) == 3 and len(kinds(w, head, "deadline_resumed")) == 3


def test_a_paused_clock_is_never_breached(w: World) -> None:
    head, _ = w.post(T0)
    w.engine.record_response(head, T0 + MIN)
    w.status(head, S.WAITING, T0 + 2 * MIN)
    assert w.engine.record_breaches(T0 + 30 * 86_400) == []


# ---------------------------------------------------------------------- resolve, reopen, spam
def test_resolve_stops_every_clock(w: World) -> None:
    head, ext = w.post(T0)
    w.engine.record_response(head, T0 + MIN, holding_until=T0 + 3600)
    w.post(T0 + 2 * MIN, parent=ext)
    w.status(head, S.RESOLVED, T0 + 3 * MIN)
    rows = w.rows(head)
    assert rows[RES][0].met_at == T0 + 3 * MIN
    assert rows[NR][0].cancelled_at == T0 + 3 * MIN and rows[FU][0].cancelled_at == T0 + 3 * MIN
    assert w.due(head) == (None, None)
    assert w.engine.record_breaches(T0 + 30 * 86_400) == []  # unlike peers, nothing keeps counting


def test_new_message_on_a_resolved_item_reopens_with_next_response_and_fresh_resolution(w: World) -> None:
    head, ext = w.post(T0)
    w.engine.record_response(head, T0 + MIN)
    w.status(head, S.RESOLVED, T0 + 2 * MIN)
    w.clock.set(T0 + 2 * 86_400)
    w.post(T0 + 2 * 86_400, parent=ext)
    assert w.mentions.rows_by_id([head])[head].status is S.OPEN
    assert w.one(head, NR).due_at == T0 + 2 * 86_400 + 60 * MIN
    res = w.rows(head)[RES]
    assert [r.met_at for r in res] == [T0 + 2 * MIN, None]
    assert res[1].due_at == T0 + 3 * 86_400  # measured from the reopening, so it does not escalate at once
    assert w.engine.record_breaches(T0 + 2 * 86_400 + 1) == []


def test_spam_cancels_everything_and_follow_ups_do_not_restart_clocks(w: World) -> None:
    head, ext = w.post(T0)
    w.engine.record_response(head, T0 + MIN)
    w.status(head, S.SPAM, T0 + 2 * MIN)
    w.post(T0 + 3 * MIN, parent=ext)
    assert all(r.cancelled_at is not None for rows in w.rows(head).values() for r in rows if r.met_at is None)
    assert w.due(head) == (None, None)


# ---------------------------------------------------------------------- holding reply
def test_holding_reply_meets_the_response_and_opens_a_follow_up_commitment(w: World) -> None:
    head, _ = w.post(T0)
    w.engine.record_response(head, T0 + 4 * MIN, holding_until=T0 + 5 * 3600)
    assert w.one(head, FR).met_at == T0 + 4 * MIN
    fu = w.one(head, FU)
    assert (fu.started_at, fu.due_at, fu.met_at) == (T0 + 4 * MIN, T0 + 5 * 3600, None)
    assert w.due(head)[0] == T0 + 5 * 3600
    assert kinds(w, head, "follow_up_promised") == ["follow_up_promised"]
    # Coming back as promised meets the commitment.
    w.engine.record_response(head, T0 + 4 * 3600)
    assert w.one(head, FU).met_at == T0 + 4 * 3600


def test_broken_promise_is_a_breach_with_its_cause(w: World) -> None:
    head, _ = w.post(T0)
    w.engine.record_response(head, T0 + MIN, holding_until=T0 + 3600)
    assert w.engine.record_breaches(T0 + 3601) == [head]
    (event,) = [e for e in w.events.for_mention(head) if e.kind == "breached"]
    assert '"deadline": "follow_up"' in event.data and "promised" in event.data and event.at == T0 + 3600


# ---------------------------------------------------------------------- breaches
def test_breach_is_logged_once_keeps_counting_and_survives_resolve(w: World) -> None:
    head, _ = w.post(T0)
    assert w.engine.record_breaches(T0 + 31 * MIN) == [head]
    assert w.engine.record_breaches(T0 + 60 * MIN) == []
    assert len(kinds(w, head, "breached")) == 1
    fr = w.one(head, FR)
    assert fr.breached_at == T0 + 30 * MIN and fr.met_at is None
    assert w.due(head)[0] == T0 + 30 * MIN  # overdue: the queue keeps counting up from the due time
    (event,) = [e for e in w.events.for_mention(head) if e.kind == "breached"]
    assert "no human reply within the 30 min first response target" in event.data
    w.engine.record_response(head, T0 + 70 * MIN)
    w.status(head, S.RESOLVED, T0 + 80 * MIN)
    fr = w.one(head, FR)
    assert fr.breached_at == T0 + 30 * MIN and fr.met_at == T0 + 70 * MIN
    assert len(kinds(w, head, "breached")) == 1


# ---------------------------------------------------------------------- policies
def business_policy(first_minutes: int = 30) -> PolicySet:
    cal = Calendar("Europe/London", (((9 * 60, 17 * 60),),) * 5 + ((), ()))
    return PolicySet(
        rules=(PolicyRule(first_response=first_minutes * MIN, calendar="business"),),
        calendars={ALWAYS_NAME: Calendar(), "business": cal},
    )


def test_policy_change_recomputes_open_deadlines_and_past_breaches_stay(w: World) -> None:
    old, _ = w.post(T0)
    w.engine.record_breaches(T0 + 31 * MIN)
    w.clock.set(T0 + 40 * MIN)
    fresh, _ = w.post(T0 + 35 * MIN)
    changed = w.engine.set_policies(PolicySet(rules=(PolicyRule(first_response=2 * 3600),)))
    assert fresh in changed
    assert w.one(fresh, FR).due_at == T0 + 35 * MIN + 2 * 3600
    assert w.due(fresh)[0] == T0 + 35 * MIN + 2 * 3600
    kept = w.one(old, FR)
    assert (kept.due_at, kept.breached_at) == (T0 + 30 * MIN, T0 + 30 * MIN)
    assert len(kinds(w, old, "breached")) == 1
    # The new policy is saved and survives a restart.
    again = SlaEngine(w.repo, SettingsRepo(w.db), w.clock)
    assert again.policies.rules[0].first_response == 2 * 3600


def test_per_channel_and_priority_rules_first_match_wins(w: World) -> None:
    rules = (
        PolicyRule(channel="mastodon", priority=1, first_response=10 * MIN),
        PolicyRule(channel="bluesky", first_response=45 * MIN),
        PolicyRule(),
    )
    w.engine.set_policies(PolicySet(rules=rules))
    head, _ = w.post(T0)
    assert w.one(head, FR).due_at == T0 + 30 * MIN
    with w.db.atomic():
        w.db.conn.execute("UPDATE mentions SET priority = 1 WHERE id = ?", (head,))
    w.engine.recompute([head])
    assert w.one(head, FR).due_at == T0 + 10 * MIN


def test_business_hours_policy_clock_does_not_run_at_night_and_says_when_it_resumes(w: World) -> None:
    w.engine.set_policies(business_policy())
    friday_evening = T0 + 4 * 86_400 + 8 * 3600  # Fri 18:00
    w.clock.set(friday_evening)
    head, _ = w.post(friday_evening)
    fr = w.one(head, FR)
    assert fr.due_at == T0 + 7 * 86_400 - 30 * MIN  # Monday 09:30
    notes = w.engine.notes(head, [fr], friday_evening + 3600)
    assert notes == {fr.id: "outside business hours · resumes Mon 09:00"}


def test_paused_deadline_note_says_how_much_was_left(w: World) -> None:
    head, _ = w.post(T0)
    w.engine.record_response(head, T0 + MIN)
    w.status(head, S.WAITING, T0 + 60 * MIN)
    res = w.one(head, RES)
    assert w.engine.notes(head, [res], T0 + 2 * 3600) == {res.id: "23:00:00 left when paused"}


def test_band_change_pass_and_schedule(w: World) -> None:
    a, _ = w.post(T0)
    b, _ = w.post(T0 + 10 * MIN)
    warn_a = T0 + 30 * MIN - 450
    assert w.engine.next_band_change(T0) == warn_a
    assert w.engine.band_changes(T0, warn_a) == [a]
    assert w.engine.band_changes(warn_a, T0 + 40 * MIN) == sorted({a, b})
    assert w.engine.band_changes(T0 + 41 * MIN, T0 + 42 * MIN) == []


def test_shipped_policy_matches_the_reference_defaults() -> None:
    rule = shipped_policy().rule_for("mastodon", 2)
    assert (rule.first_response, rule.next_response, rule.resolution, rule.warn_fraction) == (
        30 * MIN, 60 * MIN, 24 * 3600, 0.25,
    )  # fmt: skip
    assert rule.calendar == ALWAYS_NAME


# ---------------------------------------------------------------------- properties
Op = tuple[str, int]
ops = st.lists(
    st.tuples(st.sampled_from(["follow_up", "reply", "bot", "holding", "wait", "open", "resolve"]),
              st.integers(1, 90 * MIN)),
    max_size=12,
)  # fmt: skip


def run_ops(w: World, script: list[Op]) -> int:
    head, ext = w.post(T0)
    at = T0
    for op, gap in script:
        at += gap
        w.clock.set(at)
        if op == "follow_up":
            w.post(at, parent=ext)
        elif op in ("reply", "bot", "holding"):
            w.engine.record_response(
                head, at, human=op != "bot", holding_until=at + 2 * 3600 if op == "holding" else None
            )
        else:
            target = {"wait": S.WAITING, "open": S.OPEN, "resolve": S.RESOLVED}[op]
            if w.mentions.rows_by_id([head])[head].status is not target:
                w.status(head, target, at)
        w.engine.record_breaches(at)
    return head


@pytest.fixture
def worlds() -> Iterator[list[World]]:
    made: list[World] = []
    yield made
    for world in made:
        world.db.conn.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=ops, business=st.booleans())
def test_live_engine_equals_recompute_from_the_log(worlds: list[World], script: list[Op], business: bool) -> None:
    world = make_world(open_database(None), FakeClock(T0))
    worlds.append(world)
    if business:
        world.engine.set_policies(business_policy())
    head = run_ops(world, script)
    live = [
        (r.kind, r.started_at, r.due_at, r.met_at, r.paused_at, r.cancelled_at) for r in world.mentions.deadlines(head)
    ]
    planned = world.engine.planned(head)
    for row in world.mentions.deadlines(head):
        # A deadline is never met before the reply that meets it, nor before it starts.
        if row.met_at is not None:
            assert row.met_at >= row.started_at
        if row.breached_at is not None:
            assert row.breached_at == row.due_at
    replayed = sorted((p.kind, p.started_at, p.due_at, p.met_at, p.paused_at, p.cancelled_at) for p in planned)
    assert sorted(live) == replayed
    assert all(p.paused_seconds >= 0 for p in planned)
    # Recomputing writes nothing new: the live engine already is the recomputation.
    assert world.engine.recompute([head]) == []


def test_status_change_logged_by_triage_is_not_logged_twice(w: World) -> None:
    head, _ = w.post(T0)
    w.events.append(
        at=T0 + MIN, actor="agent", kind="status_changed", mention_id=head, **{"from": "new", "to": "waiting"}
    )
    w.engine.on_status_change(head, S.NEW, S.WAITING, T0 + MIN)
    assert len(kinds(w, head, "status_changed")) == 1
    assert w.one(head, RES).paused_at == T0 + MIN


# ---------------------------------------------------------------------- undo (issue 19 #4)
@pytest.mark.parametrize("status", [S.RESOLVED, S.WAITING, S.SPAM, S.COMMUNITY])
def test_undo_restores_every_clock_of_a_breached_item_exactly(w: World, status: MentionStatus) -> None:
    """A stray "e" on a breached, unanswered item and Ctrl+Z: the clocks, their breach and the queue's due time
    are as before, not a cancelled first response beside a fresh 24-hour clock."""
    head, _ = w.post(T0)
    w.clock.set(T0 + 36 * MIN)
    assert w.engine.record_breaches() == [head]
    before_rows = w.rows(head)
    before_due = w.due(head)
    triage = Triage(TriageRepo(w.db), w.clock, on_status_change=w.engine.on_status_change)
    triage.set_status(head, status)
    assert w.due(head) != before_due or status is S.WAITING
    w.clock.advance(40)
    assert triage.undo() is not None
    assert w.rows(head) == before_rows  # ids, start, due, warn, breach, nothing met, paused or cancelled
    assert w.due(head) == before_due
    assert w.mentions.rows_by_id([head])[head].status is S.NEW
    assert len(kinds(w, head, "breached")) == 1


def test_undo_of_an_earlier_change_restores_its_clocks_after_a_later_undo(w: World) -> None:
    head, _ = w.post(T0)
    before_rows = w.rows(head)
    triage = Triage(TriageRepo(w.db), w.clock, on_status_change=w.engine.on_status_change)
    w.clock.set(T0 + 5 * MIN)
    triage.set_status(head, S.WAITING)
    w.clock.set(T0 + 10 * MIN)
    triage.set_status(head, S.RESOLVED)
    w.clock.set(T0 + 15 * MIN)
    triage.undo()
    triage.undo()
    assert w.rows(head) == before_rows
    w.clock.set(T0 + 20 * MIN)
    triage.set_status(head, S.RESOLVED)  # a real resolve after the undos still stops the clocks
    assert w.one(head, RES).met_at == T0 + 20 * MIN
    assert w.one(head, FR).cancelled_at == T0 + 20 * MIN
