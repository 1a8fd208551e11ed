"""The status bar shows a backlog's catch-up as it lands, batch by batch, then the usual "Synced" line."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from console.inbox import SyncReport
from console.queue import QueueService
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.main_window import MainWindow


def test_status_bar_shows_catch_up_progress(
    qtbot: QtBot, service: QueueService, clock: FakeClock, factory: Factory
) -> None:
    window = MainWindow(service, clock)
    qtbot.addWidget(window)
    account = factory.account.id
    now = int(clock.now())
    window.on_sync_report(SyncReport(account, now, fetched=400, stored=400, catching_up=True, caught_up=400))
    assert window.sync_status_text() == "Catching up · 400 messages so far…"
    window.on_sync_report(SyncReport(account, now, fetched=400, stored=400, catching_up=True, caught_up=8_800))
    assert window.sync_status_text() == "Catching up · 8,800 messages so far…"
    window.on_sync_report(SyncReport(account, now, fetched=0, stored=0, caught_up=8_800))
    assert window.sync_status_text() == "Synced 0 s ago · 0 new"
    assert window.sync_status_ok()
