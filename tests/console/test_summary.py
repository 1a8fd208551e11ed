"""Every summary figure on a scripted shift, against values computed by hand (see shift_script.py)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import sqlite_utils

from console.reports.summary import ShiftSummary, SummaryBuilder, percentile, score_net_easy
from storage.shifts import ShiftRepo
from tests.console.shift_script import AGENT, Script, ScriptedShift, at, scripted_shift
from tests.fakes.clock import FakeClock


@pytest.fixture
def scripted(db: sqlite_utils.Database, clock: FakeClock) -> ScriptedShift:
    return scripted_shift(db, clock)


@pytest.fixture
def summary(scripted: ScriptedShift, clock: FakeClock) -> ShiftSummary:
    return SummaryBuilder(scripted.repo, clock, hourly_rate=30.0).build(scripted.shift)


def test_summary_counts(summary: ShiftSummary) -> None:
    c = summary.counts
    # received A B C D E (F came before the shift); handled F A B C D (E untouched); resolved A B C (C by community)
    assert (c.received, c.handled, c.resolved, c.community, c.resolved_single_reply) == (5, 5, 3, 1, 1)
    assert (c.still_open, c.replies_sent, c.surveys_sent, c.surveys_answered) == (3, 5, 3, 2)
    assert summary.shift.agent == AGENT and summary.shift.notes == "Chase the courier for @eve's parcel"


def test_first_response_median_and_p90(summary: ShiftSummary) -> None:
    fr = summary.first_response
    # D 10 min, A 15 min, B 40 min (holding reply), F 125 min (posted 06:00, answered 08:05)
    assert fr.samples_s == [600, 900, 2400, 7500]
    assert fr.median_s == 1650.0
    assert fr.p90_s == 5970.0  # 2400 + 0.7 × (7500 − 2400)
    assert fr.mean_s == 2850.0


def test_sla_per_kind_with_every_breach(summary: ShiftSummary, scripted: ScriptedShift) -> None:
    by_kind = {k.kind: (k.met, k.breached, k.inherited, k.met_pct) for k in summary.sla}
    # F's breach (06:30) came before the shift, which answered F: it counts, as inherited (issue 20, numbers 1).
    # C's first response stopped when the community answered.
    assert by_kind["first_response"] == (2, 3, 1, 40.0)
    assert by_kind["resolution"] == (3, 0, 0, 100.0)
    assert by_kind["next_response"] == (0, 0, 0, None)
    assert [(b.mention_id, b.kind, b.breached_at, b.met_at, b.inherited) for b in summary.breaches] == [
        (scripted.ids["F"], "first_response", at(6, 30), at(8, 5), True),
        (scripted.ids["B"], "first_response", at(8, 50), at(9), False),
        (scripted.ids["E"], "first_response", at(15, 30), None, False),
    ]


def test_net_easy_with_margin_and_response_rate(summary: ShiftSummary) -> None:
    ne = summary.net_easy
    assert (ne.sent, ne.n, ne.easy, ne.neutral, ne.difficult) == (3, 2, 1, 0, 1)
    assert ne.score == 0.0
    assert ne.response_rate == pytest.approx(2 / 3)
    # adjusted Wald: n' = 5, pE = pD = 0.35, SE = sqrt(0.7 / 5) -> ±1.96 × 0.3742 = ±73.3 points
    assert ne.margin == pytest.approx(73.34, abs=0.01)
    assert ne.low_sample


def test_net_easy_matches_the_reference_example() -> None:
    ne = score_net_easy(25, 12, 5, 3)  # reference/metrics.md §3: n = 20, 12 easy, 3 difficult
    assert ne.score == 45.0
    assert round(ne.low or 0) == 8 and round(ne.high or 0) == 70
    assert ne.response_rate == 0.8
    assert score_net_easy(4, 0, 0, 0).score is None


def test_per_channel_figures_and_cost(summary: ShiftSummary) -> None:
    ch = {c.channel: c for c in summary.channels}
    masto, bsky = ch["mastodon"], ch["bluesky"]
    assert (masto.items, masto.unique_customers, masto.handled, masto.resolved) == (4, 3, 4, 3)
    assert masto.resolution_rate == 75.0
    # agent time: F 240 s, A 600+360+60, B 600+600+360+60, C 600 (gaps capped at 10 min)
    assert masto.handling_s == 3480 and masto.cost == 29.0
    assert (bsky.items, bsky.unique_customers, bsky.handled, bsky.resolved, bsky.resolution_rate) == (2, 2, 1, 0, 0.0)
    assert bsky.handling_s == 360 and bsky.cost == 3.0
    assert (masto.net_easy.n, masto.net_easy.sent, bsky.net_easy.n, bsky.net_easy.sent) == (2, 2, 0, 1)


def test_top_themes_with_counts_and_two_quotes(summary: ShiftSummary) -> None:
    themes = [(t.kind, t.label, t.count) for t in summary.themes]
    assert themes == [
        ("tag", "shipping", 2), ("tag", "app", 1), ("tag", "billing", 1), ("tag", "login", 1),
        ("term", "parcel", 3), ("term", "order", 2),
    ]  # fmt: skip
    parcel = next(t for t in summary.themes if t.label == "parcel")
    assert parcel.quotes == ["My parcel is late again, order 123 @shop", "Refund for my parcel please"]


def test_handover_lists_every_open_item_with_deadlines(summary: ShiftSummary, scripted: ScriptedShift) -> None:
    ids = scripted.ids
    assert [h.mention_id for h in summary.handover] == [ids["E"], ids["F"], ids["D"]]
    eve, ana, dan = summary.handover
    assert [(d.kind, d.state) for d in eve.deadlines] == [("first_response", "breached"), ("resolution", "running")]
    assert [(d.kind, d.state) for d in dan.deadlines] == [("resolution", "paused")]
    assert dan.status == "waiting" and dan.last_message_from == "agent"
    assert ana.last_message == "Reply 1" and eve.last_message_from == "customer"


def test_items_carry_times_states_sla_and_survey(summary: ShiftSummary, scripted: ScriptedShift) -> None:
    rows = {r.mention_id: r for r in summary.items}
    assert set(rows) == set(scripted.ids.values())
    b = rows[scripted.ids["B"]]
    assert (b.status, b.first_response_s, b.replies_sent, b.sla_first_response, b.survey_score) == (
        "resolved", 2400, 2, "breached", 6,
    )  # fmt: skip
    assert rows[scripted.ids["C"]].sla_first_response == "stopped"
    assert rows[scripted.ids["E"]].handled_in_shift is False and rows[scripted.ids["E"]].open_at_end


def test_status_at_shift_end_is_replayed_from_the_log(
    db: sqlite_utils.Database, clock: FakeClock, scripted: ScriptedShift
) -> None:
    Script(db, clock).status(scripted.ids["E"], at(17), "new", "resolved")  # after the shift ended
    summary = SummaryBuilder(scripted.repo, clock).build(scripted.shift)
    assert scripted.ids["E"] in [h.mention_id for h in summary.handover]
    assert summary.counts.resolved == 3


def test_a_running_shift_is_summarised_up_to_now(db: sqlite_utils.Database, clock: FakeClock) -> None:
    script = Script(db, clock)
    repo = ShiftRepo(db)
    shift = repo.start("Bo", at(8))
    script.post(script.mastodon.id, "mastodon", "zed", "hello there", at(8, 30))
    script.post(script.mastodon.id, "mastodon", "yan", "later on", at(12))
    clock.set(at(9))
    summary = SummaryBuilder(repo, clock).build(shift)
    assert summary.shift.ended_at is None and summary.counts.received == 1


def test_features_not_built_give_empty_figures_not_fakes(db: sqlite_utils.Database, clock: FakeClock) -> None:
    script = Script(db, clock)
    repo = ShiftRepo(db)
    shift = repo.start("Bo", at(8))
    script.post(script.mastodon.id, "mastodon", "zed", "hello there", at(8, 30))
    shift = repo.end(shift.id, at(9), "")
    summary = SummaryBuilder(repo, clock).build(shift)
    assert summary.counts.handled == 0 and summary.counts.resolved == 0
    assert summary.first_response.n == 0 and summary.first_response.median_s is None
    assert summary.net_easy.score is None and summary.net_easy.response_rate is None
    assert all(k.met == 0 for k in summary.sla)
    assert summary.channels[0].handling_s == 0 and summary.channels[0].resolution_rate is None


def test_redacted_summary_names_no_customer(scripted: ScriptedShift, clock: FakeClock) -> None:
    summary = SummaryBuilder(scripted.repo, clock).build(scripted.shift, redact=True)
    text = json.dumps(dataclasses.asdict(summary), ensure_ascii=False)
    for handle in ("@ana", "@ben", "@cara", "@dan", "@eve", "@shop", "https://", "Cara", "Ben"):
        assert handle not in text, handle
    assert summary.redacted
    customers = {r.customer for r in summary.items}
    assert customers == {"customer 1", "customer 2", "customer 3", "customer 4", "customer 5"}
    assert summary.items[0].customer == summary.items[1].customer  # ana wrote F and A: one pseudonym


def test_percentile_interpolates() -> None:
    assert percentile([], 0.9) is None
    assert percentile([10.0], 0.9) == 10.0
    assert percentile([0.0, 10.0], 0.9) == 9.0


def test_hourly_sla_chart_agrees_with_the_sla_table(summary: ShiftSummary) -> None:
    # F was breached before the shift and answered late in it: an inherited breach, charted in the first hour.
    assert summary.hours[0].breached == 2  # F (inherited) and B (08:50)
    met = sum(b.met for b in summary.hours)
    breached = sum(b.breached for b in summary.hours)
    assert met == sum(k.met for k in summary.sla)
    assert breached == sum(k.breached for k in summary.sla)
