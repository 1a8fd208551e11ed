"""The Review window's message line: a success reads as a success, never in an error's red (issue 19 §16)."""

from __future__ import annotations

from pathlib import Path

import qasync
import sqlite_utils
from pytestqt.qtbot import QtBot

from console.reports.export.codec import write_json
from console.reports.summary import SummaryBuilder
from tests.console.shift_script import scripted_shift
from tests.fakes.clock import FakeClock
from widgets.review_window import MessageState, ReviewWindow


def test_review_window_success_after_a_problem_is_not_red(
    db: sqlite_utils.Database, clock: FakeClock, qtbot: QtBot, qloop: qasync.QEventLoop, tmp_path: Path
) -> None:
    scripted = scripted_shift(db, clock)
    good = write_json(SummaryBuilder(scripted.repo, clock).build(scripted.shift), tmp_path / "good.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    window = ReviewWindow()
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.loaded, timeout=20_000):
        window.load_files([good, broken])
    assert window.message_state() is MessageState.ERROR
    assert window.messages.text().startswith("1 summary loaded.")  # not "1 summaries"
    red = window.messages.palette().color(window.messages.foregroundRole())
    with qtbot.waitSignal(window.exported, timeout=20_000):
        window.export_to(tmp_path / "review.html")
    assert window.messages.text().startswith("Saved the merged report to")
    assert window.message_state() is MessageState.OK
    window.messages.ensurePolished()
    assert window.messages.palette().color(window.messages.foregroundRole()) != red
