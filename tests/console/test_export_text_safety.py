"""Exports never pass control characters from customer text on, and never let a spreadsheet run a formula."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import sqlite_utils

from console.reports.export.service import Format, write_summary
from console.reports.export.tables import COLUMNS
from console.reports.summary import SummaryBuilder
from tests.console.shift_script import big_shift
from tests.fakes.clock import FakeClock

#: NUL, a right-to-left override, an isolate and a right-to-left mark: the "Trojan Source" reorderings.
HOSTILE = "refund\x00 for \u202eorder 1234\u202c and \u2067ABC\u2069 \u200fnow"
UNSAFE = ("\x00", "\u202e", "\u202c", "\u2067", "\u2069", "\u200f")


def _export_with_text(db: sqlite_utils.Database, clock: FakeClock, tmp_path: Path, text: str, fmt: Format) -> Path:
    shift = big_shift(db, clock, 2)
    db.conn.execute("UPDATE mentions SET tags = 'x', text = ? WHERE id = ?", (text, shift.ids["0"]))
    summary = SummaryBuilder(shift.repo, clock).build(shift.shift)
    return write_summary(summary, fmt, tmp_path / f"export.{fmt.value}")


def _csv_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.reader(stream))
    col = list(COLUMNS).index("text")
    return [row[col] for row in rows[1:]]


@pytest.mark.parametrize("fmt", [Format.CSV, Format.HTML])
def test_export_drops_nul_and_bidi_controls(
    db: sqlite_utils.Database, clock: FakeClock, tmp_path: Path, fmt: Format
) -> None:
    data = _export_with_text(db, clock, tmp_path, HOSTILE, fmt).read_text(encoding="utf-8-sig")
    assert "order 1234" in data  # the words are kept
    assert not [ch for ch in UNSAFE if ch in data]


@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("http://evil")', ' =HYPERLINK("http://evil")', '\n=HYPERLINK("http://evil")', "  @SUM(A1)",
     "\t+1+2", "\x00=1+2", "\u202e=1+2"],
)  # fmt: skip
def test_csv_formula_guard_looks_past_leading_blanks(
    db: sqlite_utils.Database, clock: FakeClock, tmp_path: Path, text: str
) -> None:
    texts = _csv_texts(_export_with_text(db, clock, tmp_path, text, Format.CSV))
    guarded = [t for t in texts if "=" in t or "@" in t or "+" in t]
    assert guarded and all(t.startswith("'") for t in guarded)


def test_csv_keeps_plain_text_and_line_breaks_as_they_are(
    db: sqlite_utils.Database, clock: FakeClock, tmp_path: Path
) -> None:
    text = "Hi team,\nthe parcel (order 1234) is late = not great"
    assert text in _csv_texts(_export_with_text(db, clock, tmp_path, text, Format.CSV))
