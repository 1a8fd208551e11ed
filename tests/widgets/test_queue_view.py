"""QueueView: the SLA tick touches only visible rows, lazy first paint, timers, keyboard."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from pytestqt.qtbot import QtBot

from console.queue import QueueService
from tests.fakes.clock import FakeClock
from tests.widgets.factory import CountingQueue, Factory
from widgets.queue_model import BATCH_SIZE, Col, QueueModel, QueueSource
from widgets.queue_view import QueueView

ROWS = 10_000


class ChangeSpy:
    """Records every dataChanged as (top, left, bottom, right, roles)."""

    def __init__(self) -> None:
        self.emitted: list[tuple[int, int, int, int, list[int]]] = []

    def __call__(self, top_left: QModelIndex, bottom_right: QModelIndex, roles: Any = ()) -> None:
        row = (top_left.row(), top_left.column(), bottom_right.row(), bottom_right.column(), list(roles))
        self.emitted.append(row)


def _show_view(qtbot: QtBot, source: QueueSource, clock: FakeClock, *, height: int = 400) -> QueueView:
    model = QueueModel(source, clock, page_size=ROWS)  # the whole 10,000-row queue, not the first page
    view = QueueView(clock)
    qtbot.addWidget(view)
    model.setParent(view)
    view.setModel(model)
    model.reload()
    view.resize(900, height)
    with qtbot.waitSignal(view.first_painted):
        view.show()
    return view


@pytest.fixture
def big_queue(factory: Factory) -> QueueService:
    factory.many(ROWS)
    return factory.service()


def _model(view: QueueView) -> QueueModel:
    model = view.queue_model()
    assert model is not None
    return model


def test_queue_tick_touches_only_visible_rows(qtbot: QtBot, big_queue: QueueService, clock: FakeClock) -> None:
    view = _show_view(qtbot, big_queue, clock, height=400)
    model = _model(view)
    assert model.rowCount() == ROWS
    spy = ChangeSpy()
    model.dataChanged.connect(spy)
    clock.advance(1)
    view.tick()
    model.dataChanged.disconnect(spy)
    assert len(spy.emitted) == 1
    top, left, bottom, right, roles = spy.emitted[0]
    assert left == right == Col.SLA
    assert top == 0
    assert 0 < bottom - top + 1 < 50
    assert Qt.ItemDataRole.DisplayRole in roles
    assert model.now == clock.now()


def test_queue_view_tick_follows_the_scrolled_viewport(qtbot: QtBot, big_queue: QueueService, clock: FakeClock) -> None:
    view = _show_view(qtbot, big_queue, clock, height=400)
    model = _model(view)
    view.scrollTo(model.index(7_000, Col.PREVIEW), QueueView.ScrollHint.PositionAtTop)
    spy = ChangeSpy()
    model.dataChanged.connect(spy)
    view.tick()
    model.dataChanged.disconnect(spy)
    ((top, _left, bottom, _right, _roles),) = spy.emitted
    assert top == 7_000
    assert bottom - top + 1 < 50


def test_queue_view_first_paint_reads_rows_lazily_in_batches(
    qtbot: QtBot, big_queue: QueueService, clock: FakeClock
) -> None:
    source = CountingQueue(big_queue)
    view = _show_view(qtbot, source, clock, height=400)
    assert source.batches
    assert all(size <= BATCH_SIZE for size in source.batches)
    assert sum(source.batches) <= 2 * BATCH_SIZE
    read = len(source.batches)
    view.scrollToBottom()
    qtbot.waitUntil(lambda: len(source.batches) > read)
    assert all(size <= BATCH_SIZE for size in source.batches)
    assert sum(source.batches) < ROWS // 10


def test_queue_view_ticks_never_reorder_rows(qtbot: QtBot, factory: Factory, clock: FakeClock) -> None:
    factory.many(50, step=60)
    view = _show_view(qtbot, factory.service(), clock)
    model = _model(view)
    before = [model.mention_id_at(row) for row in range(model.rowCount())]
    with qtbot.assertNotEmitted(model.layoutChanged), qtbot.assertNotEmitted(model.rowsMoved):
        for _ in range(5):
            clock.advance(600)
            view.tick()
    assert [model.mention_id_at(row) for row in range(model.rowCount())] == before


def test_queue_view_timer_aligns_to_the_next_second_and_stops_when_hidden(
    qtbot: QtBot, factory: Factory, clock: FakeClock
) -> None:
    factory.many(3)
    clock.set(1_767_225_600.75)
    view = _show_view(qtbot, factory.service(), clock)
    timer = view.tick_timer()
    assert timer.isActive()
    assert timer.interval() == 250
    with qtbot.waitSignal(view.ticked, timeout=2_000) as blocker:
        clock.advance(0.25)
    assert blocker.args == [clock.now()]
    assert timer.interval() == 1_000
    view.hide()
    assert not timer.isActive()


def test_queue_view_band_flip_refreshes_the_row(qtbot: QtBot, factory: Factory, clock: FakeClock) -> None:
    mention_id = factory.add(posted_at=clock.now())
    source = CountingQueue(factory.service())
    view = _show_view(qtbot, source, clock)
    model = _model(view)
    view.tick()
    assert view.band_timer().isActive()
    assert view.band_timer().interval() == 1_350 * 1_000  # warning at 25% of 30 min left
    read = len(source.batches)
    clock.advance(1_350)
    with qtbot.waitSignal(model.dataChanged, check_params_cb=lambda top, bottom, roles=(): not roles):
        view.tick()  # the clock passed the change: the band timer fires at once and refreshes that row
    qtbot.waitUntil(lambda: len(source.batches) > read)
    assert model.row_of(mention_id) == 0
    assert view.band_timer().interval() == 450 * 1_000  # next: breached


def test_queue_view_enter_activates_the_selected_item(qtbot: QtBot, factory: Factory, clock: FakeClock) -> None:
    ids = factory.many(3)
    view = _show_view(qtbot, factory.service(), clock)
    assert view.select_mention(ids[1])
    with qtbot.waitSignal(view.mention_activated) as blocker:
        qtbot.keyClick(view, Qt.Key.Key_Return)
    assert blocker.args == [ids[1]]


def test_queue_view_arrow_keys_move_the_selection(qtbot: QtBot, factory: Factory, clock: FakeClock) -> None:
    ids = factory.many(3)
    view = _show_view(qtbot, factory.service(), clock)
    view.select_mention(ids[0])
    view.setFocus()
    with qtbot.waitSignal(view.mention_selected) as blocker:
        qtbot.keyClick(view, Qt.Key.Key_Down)
    assert blocker.args == [ids[1]]
    assert view.selected_mention_id() == ids[1]


def test_queue_view_has_fixed_row_heights(qtbot: QtBot, factory: Factory, clock: FakeClock) -> None:
    factory.many(3)
    view = _show_view(qtbot, factory.service(), clock)
    header = view.verticalHeader()
    assert header.sectionResizeMode(0) is header.ResizeMode.Fixed
    assert not header.isVisible()
    assert view.horizontalHeader().sectionResizeMode(Col.PREVIEW) is header.ResizeMode.Stretch
