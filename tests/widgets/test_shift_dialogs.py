"""Start/End shift dialogs, the export dialog (progress, off the loop) and the Review window."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
import sqlite_utils
from PySide6.QtWidgets import QMainWindow, QMessageBox
from pytestqt.qtbot import QtBot
from shiboken6 import isValid

from console.reports.export.codec import write_json
from console.reports.export.service import ExportService, Format
from console.shifts.service import ShiftService
from storage.db import open_database
from storage.settings import SettingsRepo
from storage.shifts import ShiftRepo
from tests.console.shift_script import at, scripted_shift
from tests.fakes.clock import FakeClock
from widgets.export_dialog import ExportDialog
from widgets.review_window import ReviewWindow
from widgets.shift_dialog import ShiftActions


@pytest.fixture
def file_db(tmp_path: Path) -> Iterator[tuple[Path, sqlite_utils.Database]]:
    path = tmp_path / "care.sqlite3"
    db = open_database(path)
    yield path, db
    db.conn.close()


@pytest.fixture
def shifts(file_db: tuple[Path, sqlite_utils.Database], clock: FakeClock) -> ShiftService:
    db = file_db[1]
    return ShiftService(ShiftRepo(db), SettingsRepo(db), clock)


@pytest.fixture
def actions(
    file_db: tuple[Path, sqlite_utils.Database],
    shifts: ShiftService,
    clock: FakeClock,
    qtbot: QtBot,
    qloop: qasync.QEventLoop,
    tmp_path: Path,
) -> Iterator[ShiftActions]:
    path, db = file_db
    window = QMainWindow()
    window.menuBar().addMenu("&File").addAction("&Quit")
    qtbot.addWidget(window)
    exports = ExportService(path, clock, SettingsRepo(db))
    clock.set(at(8))
    result = ShiftActions(window, shifts, exports, clock, export_dir=tmp_path)
    yield result
    exports.close()


def test_menu_gets_the_shift_actions_before_quit(actions: ShiftActions) -> None:
    window = actions.parent()
    assert isinstance(window, QMainWindow)
    (menu,) = [m for m in window.menuBar().actions() if m.text() == "&File"]
    texts = [a.text() for a in menu.menu().actions()]  # type: ignore[union-attr]
    assert texts == ["S&tart shift…", "&End shift…", "E&xport shift summary…", "&Review summaries…", "", "&Quit"]
    assert actions.start_action.isEnabled() and not actions.end_action.isEnabled()
    assert actions.shift_label.text() == "No shift running"


def test_start_then_end_shift_leads_to_saving_the_summary(
    actions: ShiftActions, shifts: ShiftService, clock: FakeClock, qtbot: QtBot, tmp_path: Path
) -> None:
    start = actions.start_shift()
    start.name_edit.setText("")
    start.start_button.click()
    assert "Enter your name" in start.error.text()
    start.name_edit.setText("Ana Agent")
    start.start_button.click()
    assert actions.end_action.isEnabled() and "Ana Agent" in actions.shift_label.text()

    clock.set(at(16))
    end = actions.end_shift()
    qtbot.waitUntil(lambda: end.preview.tabs.count() > 0, timeout=20_000)
    assert end.preview.tabs.tabText(0) == "Volume and service levels"
    end.notes_edit.setPlainText("Call the courier")
    end.end_button.click()
    assert shifts.current() is None and actions.start_action.isEnabled()
    last = shifts.last()
    assert last is not None and last.notes == "Call the courier"

    window = actions.parent()
    assert isinstance(window, QMainWindow)
    (dialog,) = [d for d in window.findChildren(ExportDialog) if d.isVisible()]  # opened for the ended shift
    assert dialog.objectName() == "exportDialog"
    dialog.format_box.setCurrentIndex(dialog.format_box.findData(Format.JSON.value))
    target = tmp_path / "summary.json"
    dialog.path_edit.setText(str(target))
    with qtbot.waitSignal(dialog.exported, timeout=20_000):
        dialog.save_button.click()
    assert target.exists() and dialog.progress.value() == 100
    assert "Saved to" in dialog.status.text()


def test_export_dialog_reports_a_bad_folder(
    actions: ShiftActions, file_db: tuple[Path, sqlite_utils.Database], clock: FakeClock, qtbot: QtBot, tmp_path: Path
) -> None:
    scripted_shift(file_db[1], clock)
    dialog = actions.export_summary()
    assert dialog is not None
    dialog.path_edit.setText(str(tmp_path / "missing" / "x.pdf"))
    dialog.save_button.click()
    qtbot.waitUntil(lambda: "does not exist" in dialog.status.text(), timeout=20_000)
    assert dialog.save_button.isEnabled()


def test_an_export_dialog_closed_before_its_export_ends_still_writes_the_file(
    actions: ShiftActions, file_db: tuple[Path, sqlite_utils.Database], clock: FakeClock, qtbot: QtBot, tmp_path: Path
) -> None:
    """Closing (deleting) the dialog mid-export must not raise in the loop when the export's task finishes."""
    scripted_shift(file_db[1], clock)
    dialog = actions.export_summary()
    assert dialog is not None
    dialog.format_box.setCurrentIndex(dialog.format_box.findData(Format.JSON.value))
    target = tmp_path / "closed-early.json"
    dialog.path_edit.setText(str(target))
    dialog.save_button.click()
    task = dialog._task
    assert task is not None
    dialog.deleteLater()
    qtbot.waitUntil(lambda: not isValid(dialog), timeout=5_000)
    qtbot.waitUntil(task.done, timeout=20_000)
    qtbot.wait(50)  # the done callback runs on the next turn of the loop; the loop fixture fails on its exception
    assert target.exists()


def test_stale_shift_is_closed_at_its_last_activity_after_asking(
    actions: ShiftActions, shifts: ShiftService, file_db: tuple[Path, sqlite_utils.Database], clock: FakeClock,
    qtbot: QtBot,
) -> None:  # fmt: skip
    service = shifts
    service.start("Ana")
    file_db[1].conn.execute(
        "INSERT INTO events (at, actor, kind, data) VALUES (?, 'Ana', 'tags_changed', '{}')", (at(9, 30),)
    )
    clock.set(at(22))
    box = actions.ask_about_stale_shift()
    assert box is not None and "Close it at its last recorded activity" in box.text()
    box.button(QMessageBox.StandardButton.Yes).click()
    last = service.last()
    assert service.current() is None and last is not None and last.ended_at == at(9, 30)
    assert actions.ask_about_stale_shift() is None


def test_review_window_loads_merges_and_exports(
    db: sqlite_utils.Database, clock: FakeClock, qtbot: QtBot, qloop: qasync.QEventLoop, tmp_path: Path
) -> None:
    from console.reports.summary import SummaryBuilder

    scripted = scripted_shift(db, clock)
    good = write_json(SummaryBuilder(scripted.repo, clock).build(scripted.shift), tmp_path / "good.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    window = ReviewWindow()
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.loaded, timeout=20_000) as loaded:
        window.load_files([good, broken])
    assert loaded.args == [1, 1]
    assert str(broken) in window.messages.text() and window.export_action.isEnabled()
    tabs = [window.view.tabs.tabText(i) for i in range(window.view.tabs.count())]
    assert tabs[:3] == ["Per agent", "Per channel", "Per day"]
    with qtbot.waitSignal(window.loaded, timeout=20_000):
        window.load_files([good])  # the same shift again: loaded once
    assert len(window.review.summaries) == 1 and "Skipped" in window.messages.text()
    with qtbot.waitSignal(window.exported, timeout=20_000):
        window.export_to(tmp_path / "review.html")
    assert "Supervisor review" in (tmp_path / "review.html").read_text(encoding="utf-8")
