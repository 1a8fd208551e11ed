"""What a shift walked through in a real window found (issue 19): the main window's side of it."""

from __future__ import annotations

import pytest
import sqlite_utils
from pytestqt.qtbot import QtBot

from console.alerts import AlertMonitor
from console.queue import QueueQuery, QueueService, QueueView
from console.triage import Triage
from storage.triage import TriageRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.main_window import MainWindow


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
