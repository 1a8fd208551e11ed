"""The status bar shows a backlog's catch-up as it lands, batch by batch, then the usual "Synced" line."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from console.channels.base import Backfill
from console.model import SyncReport
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


def test_status_bar_says_how_far_back_a_first_sync_went(
    qtbot: QtBot, service: QueueService, clock: FakeClock, factory: Factory
) -> None:
    window = MainWindow(service, clock)
    qtbot.addWidget(window)
    account = factory.account.id
    now = int(clock.now())
    horizon = now - 7 * 24 * 3600
    running = Backfill(horizon=horizon, oldest=now - 2 * 24 * 3600, done=False)
    window.on_sync_report(SyncReport(account, now, stored=80, catching_up=True, caught_up=80, backfill=running))
    assert window.sync_status_text().startswith("Catching up · 80 messages so far… · First sync reading back to ")
    done = Backfill(horizon=horizon, oldest=horizon + 60, done=True, reached_horizon=True)
    window.on_sync_report(SyncReport(account, now, stored=40, caught_up=120, backfill=done))
    assert window.sync_status_text().startswith("Synced 0 s ago · 0 new · First sync reached its horizon (")
