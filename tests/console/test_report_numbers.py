"""The shift report says each figure one way (issue 20, numbers 6; issue 19, #8): bounds, dates, inherited breaches."""

from __future__ import annotations

from datetime import UTC

import sqlite_utils

from console.reports.export.report import fmt_net_easy, fmt_net_easy_short, shift_report
from console.reports.summary import SummaryBuilder, score_net_easy
from storage.shifts import ShiftRepo
from tests.console.shift_script import AGENT, Script, at
from tests.fakes.clock import FakeClock


def _texts(report: object) -> str:
    """Every string a reader sees in a report (tiles, tables, paragraphs), one per line."""
    out: list[str] = []
    for tile in getattr(report, "tiles", []):
        out += [tile.label, tile.value, tile.note]
    for section in getattr(report, "sections", []):
        out += [section.title, section.intro, *section.paragraphs]
        for tile in section.tiles:
            out += [tile.label, tile.value, tile.note]
        for table in section.tables:
            out += [*table.headers, table.note, *(cell for row in table.rows for cell in row)]
    return "\n".join(out)


def test_net_easy_cells_show_the_interval_bounds_not_a_margin() -> None:
    reference = score_net_easy(25, 12, 5, 3)  # metrics.md §3: +45, adjusted-Wald [+8, +70]
    assert fmt_net_easy_short(reference) == "+45 [+8, +70], n=20"
    assert "95% CI [+8, +70]" in fmt_net_easy(reference)
    # "+100 ±73, n=1" implied a bound above +100. Adjusted Wald: n' = 4, pE = 1.75/4, pD = 0.75/4, centre +25,
    # SE = sqrt((0.625 - 0.0625) / 4) = 0.375 -> 25 ± 73.5 = [-48, +98], which does not even hold the raw score.
    assert fmt_net_easy_short(score_net_easy(1, 1, 0, 0)) == "+100 [-48, +98], n=1"


def test_the_report_never_writes_plus_minus_for_net_easy(db: sqlite_utils.Database, clock: FakeClock) -> None:
    s = Script(db, clock)
    repo = ShiftRepo(db)
    shift = repo.start(AGENT, at(8))
    for i, score in enumerate((1, 2, 6)):
        item = s.post(s.mastodon.id, "mastodon", f"c{i}", "Help with my order", at(8, i))
        s.reply(item, at(8, 10), at(8, 10))
        s.survey(item, at(8, 20), score)
    clock.set(at(9))
    summary = SummaryBuilder(repo, clock).build(repo.end(shift.id, at(9), ""))
    text = _texts(shift_report(summary, tz=UTC))
    assert "±" not in text
    ne = summary.net_easy
    assert f"[{ne.low:+.0f}, {ne.high:+.0f}]" in text


def test_handover_deadlines_due_another_day_carry_their_date(db: sqlite_utils.Database, clock: FakeClock) -> None:
    s = Script(db, clock)
    repo = ShiftRepo(db)
    shift = repo.start(AGENT, at(16))
    s.post(s.mastodon.id, "mastodon", "ana", "Late-night question", at(23, 40))  # first response due 00:10
    clock.set(at(23, 50))
    summary = SummaryBuilder(repo, clock).build(repo.end(shift.id, at(23, 50), ""))
    text = _texts(shift_report(summary, tz=UTC))
    assert "First response: running, due Fri 02 Jan 00:10" in text
    assert "due 00:10" not in text


def test_inherited_breaches_are_reported_as_such(db: sqlite_utils.Database, clock: FakeClock) -> None:
    s = Script(db, clock)
    night = s.post(s.mastodon.id, "mastodon", "ana", "Overnight", at(2))
    s.mentions.mark_breaches(at(7))
    repo = ShiftRepo(db)
    shift = repo.start(AGENT, at(8))
    s.reply(night, at(8, 5), at(8, 5))
    clock.set(at(9))
    summary = SummaryBuilder(repo, clock).build(repo.end(shift.id, at(9), ""))
    report = shift_report(summary, tz=UTC)
    sla_tile = next(t for t in report.tiles if t.label == "SLA met")
    assert sla_tile.value == "0%" and sla_tile.note.endswith("(1 inherited)")
    text = _texts(report)
    assert "Breaches (1)" in text and "(inherited)" in text
    assert "No deadline was breached" not in text
