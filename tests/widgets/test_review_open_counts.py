"""The Review window never says two numbers for the open items: the "Open hand-overs" tile and tab count what
the "All shifts" row's Open column counts, an item open in several shifts once and one resolved later not at all
(issue 19 §8, the rule of issue 20 numbers 5)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import qasync
import sqlite_utils
from PySide6.QtWidgets import QLabel, QTableWidget, QTableWidgetItem
from pytestqt.qtbot import QtBot

from console.reports.export.codec import write_json
from console.reports.summary import ShiftInfo, ShiftSummary, SummaryBuilder
from tests.console.shift_script import at, scripted_shift
from tests.fakes.clock import FakeClock
from widgets.review_window import ReviewWindow


def _shift(base: ShiftSummary, *, shift_id: int, day: int, resolved: set[int]) -> ShiftSummary:
    """`base` as a later shift, in which the items in `resolved` were closed before its end."""
    start = at(8) + day * 86_400
    return dataclasses.replace(
        base,
        shift=ShiftInfo(shift_id, "Ana", start, start + 8 * 3600, ""),
        items=[dataclasses.replace(r, open_at_end=r.open_at_end and r.mention_id not in resolved) for r in base.items],
        handover=[h for h in base.handover if h.mention_id not in resolved],
    )


def _tile_value(window: ReviewWindow, label: str) -> str:
    caption = next(w for w in window.findChildren(QLabel) if w.text() == label.upper())
    parent = caption.parentWidget()
    assert parent is not None
    values = [w.text() for w in parent.findChildren(QLabel) if w is not caption]
    return values[0]


def _text(item: QTableWidgetItem | None) -> str:
    return "" if item is None else item.text()


def _all_shifts_open(window: ReviewWindow) -> str:
    for table in window.findChildren(QTableWidget):
        headers = [_text(table.horizontalHeaderItem(c)) for c in range(table.columnCount())]
        for r in range(table.rowCount()):
            if _text(table.item(r, 0)) == "All shifts" and "Open" in headers:
                return _text(table.item(r, headers.index("Open")))
    raise AssertionError("no All shifts row")


def test_open_hand_overs_agree_with_the_open_column_when_an_item_is_resolved_later(
    db: sqlite_utils.Database, clock: FakeClock, qtbot: QtBot, qloop: qasync.QEventLoop, tmp_path: Path
) -> None:
    scripted = scripted_shift(db, clock)
    base = SummaryBuilder(scripted.repo, clock).build(scripted.shift)
    assert len(base.handover) >= 2
    closed = base.handover[0].mention_id
    first = _shift(base, shift_id=1, day=0, resolved=set())
    second = _shift(base, shift_id=2, day=1, resolved={closed})
    paths = [write_json(s, tmp_path / f"{i}.json") for i, s in enumerate([first, second])]
    window = ReviewWindow()
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.loaded, timeout=20_000):
        window.load_files(paths)
    still_open = len(base.handover) - 1  # every item open in both shifts counts once; the closed one not at all
    assert _all_shifts_open(window) == f"{still_open:,}"
    assert _tile_value(window, "Open hand-overs") == f"{still_open:,}"
    tabs = window.view.tabs
    assert f"Open hand-overs ({still_open:,})" in [tabs.tabText(i) for i in range(tabs.count())]
