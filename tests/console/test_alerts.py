"""Alert rules: once per item when it enters the warning band or breaches; do-not-disturb silences."""

from __future__ import annotations

import pytest
import sqlite_utils

from console.queue import QueueService
from console.sla.alerts import DO_NOT_DISTURB, AlertKind, AlertMonitor
from storage.settings import SettingsRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory

WARN_AFTER = 1350  # 30 min first response, warning at 25 % left
DUE_AFTER = 1800


@pytest.fixture
def factory(db: sqlite_utils.Database, clock: FakeClock) -> Factory:
    return Factory(db, clock)


@pytest.fixture
def service(factory: Factory) -> QueueService:
    return factory.service()


def test_alerts_warning_then_breach_once_each(factory: Factory, service: QueueService, clock: FakeClock) -> None:
    item = factory.add(handle="ana")
    monitor = AlertMonitor(service, clock)
    assert monitor.check() == []
    clock.advance(WARN_AFTER)
    (alert,) = monitor.check()
    assert (alert.mention_id, alert.kind, alert.author_handle) == (item, AlertKind.WARNING, "ana")
    assert monitor.near_breach_count() == 1
    clock.advance(10)
    assert monitor.check() == []
    clock.advance(DUE_AFTER - WARN_AFTER)
    assert [(a.mention_id, a.kind) for a in monitor.check()] == [(item, AlertKind.BREACHED)]
    clock.advance(60)
    assert monitor.check() == []
    assert monitor.near_breach_count() == 0


def test_alerts_jump_reports_both_bands(factory: Factory, service: QueueService, clock: FakeClock) -> None:
    factory.add()
    monitor = AlertMonitor(service, clock)
    clock.advance(DUE_AFTER + 5)
    assert {a.kind for a in monitor.check()} == {AlertKind.BREACHED}  # already past the warning band when seen


def test_alerts_do_not_disturb_silences_and_never_replays(
    factory: Factory, service: QueueService, clock: FakeClock, db: sqlite_utils.Database
) -> None:
    settings = SettingsRepo(db)
    factory.add()
    monitor = AlertMonitor(service, clock, settings=settings)
    monitor.set_do_not_disturb(True)
    assert settings.get(DO_NOT_DISTURB) is True
    clock.advance(WARN_AFTER)
    assert monitor.check() == []
    monitor.set_do_not_disturb(False)
    assert monitor.check() == []
    assert AlertMonitor(service, clock, settings=settings).do_not_disturb is False


def test_alerts_skip_items_that_left_the_open_queue(
    factory: Factory, service: QueueService, clock: FakeClock, db: sqlite_utils.Database
) -> None:
    item = factory.add()
    db.conn.execute("UPDATE mentions SET status = 'resolved' WHERE id = ?", (item,))
    monitor = AlertMonitor(service, clock)
    clock.advance(DUE_AFTER)
    assert monitor.check() == []
