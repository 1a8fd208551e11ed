"""The supervisor's review: loading (broken files named, repeats once), merging against hand-computed totals."""

from __future__ import annotations

import dataclasses
from datetime import UTC
from pathlib import Path

import openpyxl
import pytest
import sqlite_utils

from console.reports.export.atomic import ExportError
from console.reports.export.codec import write_json
from console.reports.review import load_summaries, merge, review_report, write_review
from console.reports.summary import ShiftInfo, ShiftSummary, SummaryBuilder, score_net_easy
from tests.console.shift_script import at, scripted_shift
from tests.fakes.clock import FakeClock


@pytest.fixture
def base(db: sqlite_utils.Database, clock: FakeClock) -> ShiftSummary:
    scripted = scripted_shift(db, clock)
    return SummaryBuilder(scripted.repo, clock).build(scripted.shift)


def _variant(base: ShiftSummary, *, agent: str, shift_id: int, day: int, answers: tuple[int, int, int],
             samples: list[int], received: int) -> ShiftSummary:  # fmt: skip
    easy, neutral, difficult = answers
    start = at(8) + day * 86_400
    return dataclasses.replace(
        base,
        shift=ShiftInfo(shift_id, agent, start, start + 8 * 3600, f"notes of {agent}"),
        counts=dataclasses.replace(base.counts, received=received),
        net_easy=score_net_easy(easy + neutral + difficult + 1, easy, neutral, difficult),
        first_response=dataclasses.replace(base.first_response, samples_s=samples, n=len(samples)),
    )


@pytest.fixture
def three(base: ShiftSummary, tmp_path: Path) -> list[Path]:
    summaries = [
        _variant(base, agent="Ana", shift_id=1, day=0, answers=(1, 0, 1), samples=[600, 900], received=5),
        _variant(base, agent="Ana", shift_id=2, day=1, answers=(3, 1, 0), samples=[300], received=7),
        _variant(base, agent="Bo", shift_id=1, day=1, answers=(0, 0, 2), samples=[1200, 4000, 60], received=11),
    ]
    return [write_json(s, tmp_path / f"{i}.json") for i, s in enumerate(summaries)]


def test_merge_of_three_summaries_matches_hand_computed_totals(three: list[Path]) -> None:
    review = load_summaries(three)
    assert len(review.summaries) == 3 and not review.problems
    m = merge(review, tz=UTC)
    assert m.total.shifts == 3 and m.total.received == 5 + 7 + 11
    assert m.total.handled == 15 and m.total.resolved == 9
    # first response pooled from every sample: [60, 300, 600, 900, 1200, 4000] -> median 750
    assert m.total.first_response.n == 6 and m.total.first_response.median_s == 750.0
    # Net Easy pooled from the answers (4 easy, 1 neutral, 3 difficult of 8) = +12.5, not the mean of scores
    ne = m.total.net_easy
    assert (ne.n, ne.easy, ne.neutral, ne.difficult) == (8, 4, 1, 3)
    assert ne.score == 12.5 and ne.sent == 11
    assert ne.margin is not None and ne.margin > 0
    ana, bo = m.agents
    assert (ana.label, ana.shifts, ana.received, bo.label, bo.received) == ("Ana", 2, 12, "Bo", 11)
    assert ana.net_easy.score == pytest.approx(100 * (4 - 1) / 6)
    assert [d.label for d in m.days] == ["2026-01-01 Thu", "2026-01-02 Fri"] and m.days[1].shifts == 2
    # SLA: each summary has 5 met and the same 3 breaches (its copies of one shift): each breach counts once
    assert (m.total.sla_met, m.total.sla_breached) == (15, 3)
    mastodon = next(c for c in m.channels if c.channel == "mastodon")
    assert (mastodon.shifts, mastodon.items, mastodon.handled, mastodon.resolved) == (3, 12, 12, 9)
    assert mastodon.handling_s == 3 * 3480 and mastodon.cost == 87.0
    assert len(m.breaches) == 3 and {agent for agent, _b in m.breaches} == {"Ana"}
    # The same three items were handed over in every shift: listed once, from the latest shift.
    assert len(m.handovers) == 3 and {agent for agent, _end, _h in m.handovers} == {"Bo"}


def test_broken_files_are_named_and_the_rest_still_load(three: list[Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "care-console/shift-summary", "version": 1, "shift": ')
    newer = tmp_path / "newer.json"
    newer.write_text('{"schema": "care-console/shift-summary", "version": 7}')
    review = load_summaries([three[0], broken, three[1], newer, three[0], three[2]])
    assert len(review.summaries) == 3
    assert [p.path for p in review.problems] == [str(broken), str(newer)]
    assert "truncated" in review.problems[0].message and "newer Care Console" in review.problems[1].message
    assert len(review.duplicates) == 1 and str(three[0]) in review.duplicates[0]


def test_merged_report_exports(three: list[Path], tmp_path: Path) -> None:
    review = load_summaries(three)
    pdf = write_review(review, tmp_path / "review.pdf", tz=UTC)
    assert pdf.read_bytes().startswith(b"%PDF-")
    html = write_review(review, tmp_path / "review.html", tz=UTC).read_text(encoding="utf-8")
    assert "Supervisor review" in html and "Per agent" in html and html.count("data:image/png") >= 4
    book = openpyxl.load_workbook(write_review(review, tmp_path / "review.xlsx", tz=UTC), read_only=True)
    assert book.sheetnames == ["Agents", "Days", "Channels", "Breaches", "Open hand-overs", "Items"]
    agents = list(book["Agents"].iter_rows(values_only=True))
    assert [r[0] for r in agents[1:]] == ["Ana", "Bo", "All shifts"] and agents[-1][2] == 23
    assert len(list(book["Items"].iter_rows(values_only=True))) == 1 + 3 * 6
    book.close()
    with pytest.raises(ExportError, match=r"use a \.pdf, \.html or \.xlsx"):
        write_review(review, tmp_path / "review.doc")


def test_empty_review_still_renders(tmp_path: Path) -> None:
    report = review_report(load_summaries([]))
    assert report.subtitle == "No summaries loaded"
