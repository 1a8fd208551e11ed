"""What a shift walked through in a real window found (issue 19): the main window's side of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils
from PySide6.QtCore import QCoreApplication, QPoint, Qt, QUrl
from PySide6.QtGui import QCursor, QGuiApplication
from PySide6.QtWidgets import QMessageBox, QSplitter
from pytestqt.qtbot import QtBot

from console.model import SyncReport
from console.queue import QueueQuery, QueueService, QueueView
from console.sla.alerts import AlertMonitor
from console.triage import Triage
from storage.triage import TriageRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.main_window import MainWindow
from widgets.queue_model import Col, Role


@pytest.fixture
def triage(db: sqlite_utils.Database, clock: FakeClock) -> Triage:
    return Triage(TriageRepo(db), clock, actor=lambda: "Sam")


@pytest.fixture
def items(factory: Factory, clock: FakeClock) -> dict[str, int]:
    now = clock.now()
    return {
        "late": factory.add(text="Parcel missing", handle="ana", name="Ana", posted_at=now - 2_400),
        "amber": factory.add(text="Refund please", handle="bo", name="Bo", posted_at=now - 1_500),
        "fresh": factory.add(text="App crashes", handle="cy", name="Cy", posted_at=now - 60),
    }


@pytest.fixture
def window(qtbot: QtBot, service: QueueService, clock: FakeClock, triage: Triage, items: dict[str, int]) -> MainWindow:
    win = MainWindow(service, clock, triage=triage, alerts=AlertMonitor(service, clock))
    qtbot.addWidget(win)
    win.resize(1400, 860)
    win.show()
    qtbot.waitExposed(win)
    return win


def _search(qtbot: QtBot, window: MainWindow, text: str) -> None:
    bar = window.workbench.filter_bar
    with qtbot.waitSignal(bar.query_changed, timeout=2000):
        bar.search_box.setText(text)
        bar.search_box.apply_now()


# ---------------------------------------------------------------------------------------------- §1 crash loop
@pytest.mark.parametrize("how", ["empty view", "search matching nothing"])
def test_shift_emptying_the_queue_with_an_item_open_keeps_ticking(
    qtbot: QtBot, window: MainWindow, clock: FakeClock, items: dict[str, int], how: str
) -> None:
    assert window.conversation.mention_id == items["late"]
    if how == "empty view":
        with qtbot.waitSignal(window.workbench.filter_bar.query_changed):
            window.workbench.filter_bar.view_actions[QueueView.FOLLOW_UPS].trigger()
    else:
        _search(qtbot, window, "xyzzy")
    assert window.queue_model.rowCount() == 0
    for _ in range(3):
        clock.advance(1)
        window.queue_view.tick()  # raised "zip() argument 2 is longer than argument 1" every second
    assert window.conversation.is_empty()
    assert not window.error_bar.isVisible()


# ---------------------------------------------------------------------------------------------- §12 alerts
def test_shift_status_bar_alerts_speak_of_the_whole_queue_during_a_search(
    qtbot: QtBot, window: MainWindow, items: dict[str, int]
) -> None:
    """A search hid the breached and amber items from the status bar's alert."""
    before = window.next_deadline_text()
    assert before == "1 breached · Next deadline in 05:00 (@bo)"
    _search(qtbot, window, "crashes")
    assert window.queue_model.rowCount() == 1
    assert window.next_deadline_text() == before
    with qtbot.waitSignal(window.workbench.filter_bar.query_changed):
        window.workbench.filter_bar.view_actions[QueueView.RESOLVED_TODAY].trigger()
    assert window.next_deadline_text() == before


def test_shift_status_bar_counts_breaches_beyond_the_first_page(
    qtbot: QtBot, service: QueueService, clock: FakeClock, factory: Factory
) -> None:
    factory.many(250, step=1)
    clock.advance(3_600)
    win = MainWindow(service, clock)
    qtbot.addWidget(win)
    assert service.count(QueueQuery(view=QueueView.BREACHED)) == 250
    assert win.next_deadline_text() == "250 breached"


# ---------------------------------------------------------------------------------------------- §5 rows under the mouse
def _id_at(window: MainWindow, point: QPoint) -> object:
    return window.queue_view.indexAt(point).data(Role.MENTION_ID)


def _arrive_above(window: MainWindow, factory: Factory, clock: FakeClock) -> int:
    """A mention arrives that sorts first (the nearest deadline): rows are inserted above everything."""
    result = factory.store([factory.new(text="Charged twice!", handle="dee", posted_at=clock.now() - 3_000)])
    (new_id,) = result.new_heads
    window.on_sync_report(
        SyncReport(factory.account.id, int(clock.now()), fetched=1, stored=1, new_items=result.new_heads)
    )
    assert window.queue_model.row_of(new_id) == 0
    return new_id


@pytest.fixture
def long_window(qtbot: QtBot, service: QueueService, clock: FakeClock, triage: Triage, factory: Factory) -> MainWindow:
    factory.many(60, step=10)
    win = MainWindow(service, clock, triage=triage)
    qtbot.addWidget(win)
    win.resize(1400, 860)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_shift_rows_stay_under_the_mouse_when_a_mention_arrives_above(
    qtbot: QtBot, long_window: MainWindow, factory: Factory, clock: FakeClock
) -> None:
    view = long_window.queue_view
    view.verticalScrollBar().setValue(10 * view.rowHeight(0))
    point = QPoint(200, 5 * view.rowHeight(0) + 4)
    pointed = _id_at(long_window, point)
    target = long_window.queue_model.mention_id_at(view.rowAt(point.y()))
    assert pointed == target
    _arrive_above(long_window, factory, clock)
    assert _id_at(long_window, point) == pointed
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert view.selected_mention_id() == pointed


def test_shift_rows_stay_under_the_pointer_at_the_top_of_the_queue(
    qtbot: QtBot, long_window: MainWindow, factory: Factory, clock: FakeClock
) -> None:
    view = long_window.queue_view
    assert view.verticalScrollBar().value() == 0
    point = QPoint(200, 2 * view.rowHeight(0) + 4)
    pointed = _id_at(long_window, point)
    QCursor.setPos(view.viewport().mapToGlobal(point))
    qtbot.waitUntil(lambda: view.viewport().mapFromGlobal(QCursor.pos()) == point)
    _arrive_above(long_window, factory, clock)
    assert _id_at(long_window, point) == pointed
    assert view.selected_mention_id() == long_window.conversation.mention_id


def test_shift_new_rows_show_at_the_top_when_nobody_points_at_the_queue(
    qtbot: QtBot, long_window: MainWindow, factory: Factory, clock: FakeClock
) -> None:
    view = long_window.queue_view
    QCursor.setPos(long_window.mapToGlobal(QPoint(-50, -50)))
    new_id = _arrive_above(long_window, factory, clock)
    assert view.verticalScrollBar().value() == 0
    assert _id_at(long_window, QPoint(200, 4)) == new_id


def test_shift_keyboard_action_lands_on_the_selected_item_after_rows_arrive_above(
    qtbot: QtBot, window: MainWindow, factory: Factory, clock: FakeClock, items: dict[str, int], service: QueueService
) -> None:
    window.queue_view.select_mention(items["amber"])
    _arrive_above(window, factory, clock)
    assert window.queue_view.selected_mention_id() == items["amber"]
    window.activateWindow()
    window.queue_view.setFocus()
    qtbot.waitUntil(window.queue_view.hasFocus)
    qtbot.keyClick(window.queue_view, "w")
    assert window.queue_model.row_of(items["amber"]) is None  # it left the Open view; it, and only it, waits
    assert service.queue_ids(QueueQuery(view=QueueView.WAITING)) == [items["amber"]]


# ---------------------------------------------------------------------------------------------- §16 desktop habits
class Opener:
    """A fake for QDesktopServices.openUrl: records, and answers as a desktop with (or without) a file manager."""

    def __init__(self, *, works: bool) -> None:
        self.works = works
        self.urls: list[str] = []

    def __call__(self, url: QUrl) -> bool:
        self.urls.append(url.toLocalFile())
        return self.works


def test_shift_open_logs_folder_without_a_file_manager_says_where_it_is(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    opener = Opener(works=False)
    assert not window.open_folder(tmp_path, what="logs folder", opener=opener)
    assert opener.urls == [str(tmp_path)]
    box = window.findChild(QMessageBox, "folderMessage")
    assert isinstance(box, QMessageBox)
    assert box.isVisible()
    assert str(tmp_path) in box.text()
    clipboard = QGuiApplication.clipboard()
    assert clipboard is not None
    assert clipboard.text() == str(tmp_path)


def test_shift_open_logs_folder_with_a_file_manager_notes_it(window: MainWindow, tmp_path: Path) -> None:
    assert window.open_folder(tmp_path, what="logs folder", opener=Opener(works=True))
    assert window.findChild(QMessageBox, "folderMessage") is None
    assert window.statusBar().currentMessage() == "Opened the logs folder in the file manager"


def test_shift_about_shows_the_version(qtbot: QtBot, window: MainWindow) -> None:
    before = QCoreApplication.applicationVersion()
    QCoreApplication.setApplicationVersion("4.5.6")
    try:
        window.about_action.trigger()
        box = window.findChild(QMessageBox, "aboutBox")
        assert isinstance(box, QMessageBox)
        assert "Care Console 4.5.6" in box.text()
        assert "Version 4.5.6" in box.text()
        box.close()
    finally:
        QCoreApplication.setApplicationVersion(before)


# ---------------------------------------------------------------------------------------------- §16 header sorting
def _click_header(qtbot: QtBot, window: MainWindow, col: Col) -> None:
    header = window.queue_view.horizontalHeader()
    x = header.sectionViewportPosition(col) + header.sectionSize(col) // 2
    with qtbot.waitSignal(window.workbench.filter_bar.query_changed):
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))


def _row_ids(window: MainWindow) -> list[int | None]:
    model = window.queue_model
    return [model.mention_id_at(r) for r in range(model.rowCount())]


def test_shift_header_click_sorts_then_reverses_then_restores(
    qtbot: QtBot, window: MainWindow, items: dict[str, int]
) -> None:
    header = window.queue_view.horizontalHeader()
    by_deadline = [items["late"], items["amber"], items["fresh"]]
    assert _row_ids(window) == by_deadline
    _click_header(qtbot, window, Col.CUSTOMER)
    assert _row_ids(window) == [items["late"], items["amber"], items["fresh"]]  # Ana, Bo, Cy
    assert header.isSortIndicatorShown()
    assert header.sortIndicatorSection() == Col.CUSTOMER
    assert header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
    assert window.workbench.heading() == ("Open", "Sorted by customer, A–Z")
    _click_header(qtbot, window, Col.CUSTOMER)
    assert _row_ids(window) == [items["fresh"], items["amber"], items["late"]]
    assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    _click_header(qtbot, window, Col.CUSTOMER)
    assert _row_ids(window) == by_deadline
    assert not header.isSortIndicatorShown()
    assert window.workbench.heading() == ("Open", "Nearest deadline first")


def test_shift_header_sort_received_newest_first_and_count_text(
    qtbot: QtBot, window: MainWindow, items: dict[str, int]
) -> None:
    splitter = window.findChild(QSplitter, "mainSplitter")
    assert isinstance(splitter, QSplitter)
    splitter.setSizes([900, 500])  # room for every column (a small test screen shares the width evenly)
    qtbot.waitUntil(lambda: not window.queue_view.isColumnHidden(Col.RECEIVED))
    _click_header(qtbot, window, Col.RECEIVED)
    assert _row_ids(window) == [items["fresh"], items["amber"], items["late"]]
    assert window.queue_size_text() == "3 open"
