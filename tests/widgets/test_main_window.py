"""MainWindow: live queue updates from sync reports, selection kept, error bar, status bar, settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot

from console.model import Health, SyncReport
from console.queue import QueueService
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.main_window import MainWindow
from widgets.signals import SyncBridge


def _window(qtbot: QtBot, service: QueueService, clock: FakeClock, **kwargs: object) -> MainWindow:
    window = MainWindow(service, clock, **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def items(factory: Factory, clock: FakeClock) -> list[int]:
    now = clock.now()
    return [
        factory.add(text="Parcel missing", handle="ana", name="Ana", posted_at=now - 600),
        factory.add(text="Refund please", handle="bo", name="Bo", posted_at=now - 300),
        factory.add(text="App crashes", handle="cy", name="Cy", posted_at=now - 60),
    ]


@pytest.fixture
def window(qtbot: QtBot, service: QueueService, clock: FakeClock, items: list[int]) -> MainWindow:
    return _window(qtbot, service, clock)


def test_main_window_title_has_suffix(qtbot: QtBot, service: QueueService, clock: FakeClock) -> None:
    window = _window(qtbot, service, clock, title_suffix=" — Sandbox")
    assert window.windowTitle() == "Care Console — Sandbox"


def test_main_window_selects_the_most_urgent_item_at_start(window: MainWindow, items: list[int]) -> None:
    assert window.queue_view.selected_mention_id() == items[0]
    assert window.conversation.mention_id == items[0]
    assert "Parcel missing" in window.conversation.thread_text()


def test_main_window_shows_new_item_after_sync_report_and_keeps_selection(
    qtbot: QtBot, window: MainWindow, factory: Factory, clock: FakeClock, items: list[int]
) -> None:
    window.queue_view.select_mention(items[1])
    result = factory.store([factory.new(text="Urgent: charged twice", handle="dee", posted_at=clock.now() - 1_200)])
    (new_id,) = result.new_heads
    report = SyncReport(factory.account.id, int(clock.now()), fetched=1, stored=1, new_items=result.new_heads)
    with qtbot.waitSignal(window.queue_model.rowsInserted), qtbot.assertNotEmitted(window.queue_model.modelReset):
        window.on_sync_report(report)
    model = window.queue_model
    assert model.rowCount() == 4
    assert model.row_of(new_id) == 0  # the nearest deadline sorts first
    assert window.queue_view.selected_mention_id() == items[1]
    assert window.conversation.mention_id == items[1]
    assert window.queue_size_text() == "4 open"


def test_main_window_follow_up_refreshes_row_and_conversation(
    qtbot: QtBot, window: MainWindow, factory: Factory, clock: FakeClock, items: list[int]
) -> None:
    head = factory.mentions.rows_by_id([items[0]])[items[0]]
    result = factory.store([factory.new(text="Hello? Anyone?", handle="ana", parent=head.external_id)])
    report = SyncReport(factory.account.id, int(clock.now()), fetched=1, stored=1, follow_ups=result.follow_up_heads)
    window.on_sync_report(report)
    row = window.queue_model.row_of(items[0])
    assert row is not None
    assert window.queue_model.index(row, 2).data() == "(2) Parcel missing"
    assert "Hello? Anyone?" in window.conversation.thread_text()


def test_main_window_status_after_ok_report(window: MainWindow, clock: FakeClock, factory: Factory) -> None:
    report = SyncReport(factory.account.id, int(clock.now()), fetched=3, stored=3, new_items=(1, 2, 3))
    window.on_sync_report(report)
    assert window.sync_status_text() == "Synced 0 s ago · 3 new"
    assert window.sync_status_ok()
    clock.advance(12)
    window.queue_view.tick()
    assert window.sync_status_text() == "Synced 12 s ago · 3 new"


def test_main_window_status_after_error_report(window: MainWindow, clock: FakeClock, factory: Factory) -> None:
    report = SyncReport(
        factory.account.id,
        int(clock.now()),
        error="HTTP 429 Too Many Requests",
        health=Health.RATE_LIMITED,
        next_attempt_at=int(clock.now()) + 120,
    )
    window.on_sync_report(report)
    text = window.sync_status_text()
    assert text.startswith("Sync failed (rate limited): HTTP 429 Too Many Requests")
    assert "retrying at" in text
    assert not window.sync_status_ok()
    ok = SyncReport(factory.account.id, int(clock.now()) + 130, fetched=0)
    window.on_sync_report(ok)
    assert window.sync_status_ok()


def test_main_window_set_sync_status_overrides_until_next_report(window: MainWindow) -> None:
    window.set_sync_status("Syncing…", False)
    assert (window.sync_status_text(), window.sync_status_ok()) == ("Syncing…", False)
    window.queue_view.tick()
    assert window.sync_status_text() == "Syncing…"


def test_main_window_next_deadline_in_status_bar(window: MainWindow, clock: FakeClock) -> None:
    assert window.next_deadline_text() == "Next deadline in 20:00 (@ana)"
    clock.advance(1_260)
    window.queue_view.tick()
    assert window.next_deadline_text() == "1 breached · Next deadline in 04:00 (@bo)"


def test_main_window_error_bar_appears_and_is_dismissible(qtbot: QtBot, window: MainWindow) -> None:
    bar = window.error_bar
    assert not bar.isVisible()
    window.show_error("Could not store 3 synced mentions: database is locked")
    assert bar.isVisible()
    assert bar.message() == "Could not store 3 synced mentions: database is locked"
    assert window.isEnabled()  # not modal: the rest of the window keeps working
    with qtbot.waitSignal(bar.dismissed):
        qtbot.mouseClick(bar.dismiss_button(), Qt.MouseButton.LeftButton)
    assert not bar.isVisible()


def test_main_window_sync_action_requests_sync(qtbot: QtBot, window: MainWindow) -> None:
    assert window.sync_action.shortcut().toString() == "Ctrl+R"
    with qtbot.waitSignal(window.sync_requested):
        window.sync_action.trigger()


def test_main_window_enter_focuses_conversation(qtbot: QtBot, window: MainWindow) -> None:
    window.activateWindow()
    window.queue_view.setFocus()
    qtbot.keyClick(window.queue_view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.conversation.isAncestorOf(window.focusWidget()))


def test_main_window_emits_first_paint_once(qtbot: QtBot, service: QueueService, clock: FakeClock) -> None:
    window = MainWindow(service, clock)
    qtbot.addWidget(window)
    painted: list[bool] = []
    window.first_paint.connect(lambda: painted.append(True))
    window.show()
    qtbot.waitUntil(lambda: painted == [True])
    window.queue_view.viewport().repaint()
    assert painted == [True]


def test_main_window_saves_and_restores_geometry(
    qtbot: QtBot, service: QueueService, clock: FakeClock, tmp_path: Path
) -> None:
    settings = QSettings(str(tmp_path / "care.ini"), QSettings.Format.IniFormat)
    window = _window(qtbot, service, clock, settings=settings)
    window.resize(760, 540)  # the offscreen screen is 800 x 600: restoreGeometry keeps windows on it
    window.close()
    assert settings.contains("main_window/geometry")
    assert settings.contains("main_window/splitter")
    again = _window(qtbot, service, clock, settings=settings)
    assert (again.width(), again.height()) == (760, 540)


def test_sync_bridge_delivers_reports(qtbot: QtBot, window: MainWindow, clock: FakeClock, factory: Factory) -> None:
    bridge = SyncBridge()
    bridge.report.connect(window.on_sync_report)
    report = SyncReport(factory.account.id, int(clock.now()), new_items=(7,))
    with qtbot.waitSignal(bridge.report):
        bridge.report.emit(report)
    assert window.sync_status_text() == "Synced 0 s ago · 1 new"
