"""QueueModel: Qt model contract, cell values and roles, SLA ticks, lazy batches and row diffs."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from console.queue import QueueService
from console.sla.bands import Band
from storage.rows import MentionKind
from tests.fakes.clock import FakeClock
from tests.widgets.factory import CountingQueue, Factory
from widgets.queue_model import BATCH_SIZE, TICK_ROLES, Col, QueueModel, Role, preview_line

DISPLAY = Qt.ItemDataRole.DisplayRole


def _ids(model: QueueModel) -> list[int]:
    return [model.index(row, 0).data(Role.MENTION_ID) for row in range(model.rowCount())]


@pytest.fixture
def populated(factory: Factory, clock: FakeClock) -> list[int]:
    """A small queue: public and direct items, a thread with follow-ups, newcomers and returning customers."""
    now = clock.now()
    first = factory.add(text="Where is my parcel?\nOrdered on Monday.", handle="ana", name="Ana", posted_at=now - 900)
    factory.add(text="Card declined twice", handle="bo", name="Bo", kind=MentionKind.DIRECT, posted_at=now - 300)
    factory.add(text="Love the new app!", handle="ana", name="Ana", posted_at=now - 60)
    head_ext = factory.mentions.rows_by_id([first])[first].external_id
    factory.store([factory.new(text="Any news?", handle="ana", name="Ana", parent=head_ext, posted_at=now - 30)])
    return factory.service().queue_ids()


@pytest.fixture
def model(qtmodeltester: ModelTester, service: QueueService, clock: FakeClock, populated: list[int]) -> QueueModel:
    queue_model = QueueModel(service, clock)
    queue_model.reload()
    qtmodeltester.check(queue_model)
    return queue_model


def test_queue_model_passes_qtmodeltester(
    qtmodeltester: ModelTester, service: QueueService, clock: FakeClock, populated: list[int]
) -> None:
    queue_model = QueueModel(service, clock)
    queue_model.reload()
    assert queue_model.rowCount() == 3
    qtmodeltester.check(queue_model, force_py=True)
    queue_model.set_ids(list(reversed(populated)))
    queue_model.set_ids(populated[:1])
    queue_model.tick(clock.now() + 5, range(1))


def test_queue_model_orders_rows_by_due_time(model: QueueModel) -> None:
    due = [model.index(row, 0).data(Role.DUE_AT) for row in range(model.rowCount())]
    assert due == sorted(due)


def test_queue_model_tick_never_reorders(qtbot: QtBot, model: QueueModel, clock: FakeClock) -> None:
    before = _ids(model)
    with qtbot.assertNotEmitted(model.layoutAboutToBeChanged), qtbot.assertNotEmitted(model.modelReset):
        for _ in range(3):
            clock.advance(700)
            model.tick(clock.now(), range(model.rowCount()))
    assert _ids(model) == before


@pytest.mark.parametrize(
    ("elapsed", "text", "band"),
    [
        (0, "30:00", Band.OK),
        (1349, "07:31", Band.OK),
        (1350, "07:30", Band.WARNING),
        (1799, "00:01", Band.WARNING),
        (1800, "+00:00", Band.BREACHED),
        (1812, "+00:12", Band.BREACHED),
        (5400, "+1:00:00", Band.BREACHED),
    ],
)
def test_queue_model_countdown_follows_the_clock(
    service: QueueService, factory: Factory, clock: FakeClock, elapsed: int, text: str, band: Band
) -> None:
    factory.add(posted_at=clock.now())
    queue_model = QueueModel(service, clock)
    queue_model.reload()
    clock.advance(elapsed)
    queue_model.tick(clock.now(), range(1))
    index = queue_model.index(0, Col.SLA)
    assert index.data(DISPLAY) == text
    assert index.data(Role.BAND) == band.value


def test_queue_model_sla_foreground_changes_with_band(
    service: QueueService, factory: Factory, clock: FakeClock
) -> None:
    factory.add(posted_at=clock.now())
    queue_model = QueueModel(service, clock)
    queue_model.reload()
    colours = []
    for elapsed in (0, 1400, 1900):
        queue_model.tick(clock.now() + elapsed, range(1))
        colour = queue_model.index(0, Col.SLA).data(Qt.ItemDataRole.ForegroundRole)
        assert isinstance(colour, QColor)
        colours.append(colour.name())
    assert len(set(colours)) == 3


def test_queue_model_tick_emits_one_sla_range(qtbot: QtBot, model: QueueModel, clock: FakeClock) -> None:
    with qtbot.waitSignal(model.dataChanged) as blocker:
        model.tick(clock.now() + 1, range(1, 3))
    top_left, bottom_right, roles = blocker.args
    assert (top_left.row(), top_left.column(), bottom_right.row(), bottom_right.column()) == (1, Col.SLA, 2, Col.SLA)
    assert list(roles) == TICK_ROLES
    assert model.now == clock.now() + 1


def test_queue_model_tick_clamps_rows_to_the_queue(qtbot: QtBot, model: QueueModel, clock: FakeClock) -> None:
    with qtbot.waitSignal(model.dataChanged) as blocker:
        model.tick(clock.now(), range(1, 500))
    assert blocker.args[1].row() == model.rowCount() - 1
    with qtbot.assertNotEmitted(model.dataChanged):
        model.tick(clock.now(), range(0))


def test_queue_model_display_values(model: QueueModel, factory: Factory, populated: list[int]) -> None:
    rows = {model.index(r, 0).data(Role.MENTION_ID): r for r in range(model.rowCount())}
    thread_row, direct_row = rows[populated[0]], rows[populated[1]]
    assert model.index(thread_row, Col.CHANNEL).data(DISPLAY) == "Mastodon"
    assert model.index(direct_row, Col.CHANNEL).data(DISPLAY) == "Mastodon · DM"
    assert model.index(direct_row, Col.CHANNEL).data(Role.IS_DIRECT) is True
    assert model.index(thread_row, Col.CUSTOMER).data(DISPLAY) == "Ana @ana"
    assert model.index(thread_row, Col.PREVIEW).data(DISPLAY) == "(2) Where is my parcel?"
    assert model.index(thread_row, Col.PREVIEW).data(Qt.ItemDataRole.ToolTipRole) == (
        "Where is my parcel?\nOrdered on Monday."
    )
    assert model.index(thread_row, Col.RECEIVED).data(DISPLAY) == "now"  # the follow-up came 30 s ago


def test_queue_model_marks_first_contact_only(model: QueueModel, populated: list[int]) -> None:
    newcomer = {model.index(r, 0).data(Role.MENTION_ID): model.index(r, 0).data(Role.IS_NEWCOMER) for r in range(3)}
    assert newcomer == {populated[0]: True, populated[1]: True, populated[2]: False}


def test_queue_model_sla_shows_dash_without_deadline(service: QueueService, factory: Factory, clock: FakeClock) -> None:
    factory.mentions.store_batch(
        [factory.new()], channel="mastodon", fetched_at=int(clock.now()), plan=lambda _kind, _started: None
    )
    queue_model = QueueModel(service, clock)
    queue_model.reload()
    index = queue_model.index(0, Col.SLA)
    assert (index.data(DISPLAY), index.data(Role.BAND), index.data(Role.DUE_AT)) == ("—", Band.NONE.value, None)


def test_queue_model_header_names_columns(model: QueueModel) -> None:
    names = [model.headerData(col, Qt.Orientation.Horizontal) for col in Col]
    assert names == ["Channel", "Customer", "Message", "Tags", "Received", "SLA", "Reply"]
    assert model.headerData(0, Qt.Orientation.Vertical) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello", "Hello"),
        ("\n\n  first   line  \nsecond", "first line"),
        ("tabs\tand  spaces", "tabs and spaces"),
        ("", ""),
        ("x" * 300, "x" * 239 + "…"),
        ("@care @maria@fosstodon.example where is my order?", "where is my order?"),
        ("@care", "@care"),
        ("hi @care, thanks", "hi @care, thanks"),
    ],
)
def test_queue_model_preview_is_one_trimmed_line(text: str, expected: str) -> None:
    assert preview_line(text) == expected


def test_queue_model_fetches_rows_in_batches(factory: Factory, clock: FakeClock) -> None:
    factory.many(1_000)
    source = CountingQueue(factory.service())
    queue_model = QueueModel(source, clock)
    queue_model.reload()
    assert source.batches == []  # nothing is read before it is shown
    queue_model.index(500, Col.PREVIEW).data(DISPLAY)
    for row in range(480, 520):
        queue_model.index(row, Col.SLA).data(DISPLAY)
    assert source.batches == [BATCH_SIZE]


def test_queue_model_cache_is_bounded(factory: Factory, clock: FakeClock) -> None:
    factory.many(1_000)
    source = CountingQueue(factory.service())
    queue_model = QueueModel(source, clock, batch_size=50, cache_size=100)
    queue_model.reload()
    for row in range(0, 1_000, 10):
        queue_model.index(row, Col.PREVIEW).data(DISPLAY)
    calls = len(source.batches)
    queue_model.index(0, Col.PREVIEW).data(DISPLAY)  # long evicted
    assert len(source.batches) == calls + 1


def test_queue_model_set_ids_append_inserts_rows(qtbot: QtBot, model: QueueModel) -> None:
    ids = _ids(model)
    with qtbot.assertNotEmitted(model.modelReset), qtbot.waitSignal(model.rowsInserted) as blocker:
        model.set_ids([*ids, 9_001, 9_002])
    assert blocker.args[1:] == [3, 4]
    assert model.rowCount() == 5


def test_queue_model_set_ids_removal_removes_rows(qtbot: QtBot, model: QueueModel) -> None:
    ids = _ids(model)
    with qtbot.assertNotEmitted(model.modelReset), qtbot.waitSignal(model.rowsRemoved) as blocker:
        model.set_ids([ids[0], ids[2]])
    assert blocker.args[1:] == [1, 1]
    assert _ids(model) == [ids[0], ids[2]]


def test_queue_model_set_ids_reorder_keeps_persistent_index(qtbot: QtBot, model: QueueModel) -> None:
    ids = _ids(model)
    tracked = QPersistentModelIndex(model.index(0, Col.PREVIEW))
    with qtbot.assertNotEmitted(model.modelReset):
        model.set_ids([ids[1], 9_001, ids[2], ids[0]])
    assert tracked.row() == 3
    assert tracked.data(Role.MENTION_ID) == ids[0]


def test_queue_model_refresh_rows_rereads_only_those_rows(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock
) -> None:
    ids = factory.many(5)
    source = CountingQueue(service)
    queue_model = QueueModel(source, clock)
    queue_model.reload()
    queue_model.index(0, 0).data(DISPLAY)
    row = queue_model.row_of(ids[3])
    assert row is not None
    with qtbot.waitSignal(queue_model.dataChanged) as blocker:
        queue_model.refresh_rows([ids[3], 424_242])
    assert (blocker.args[0].row(), blocker.args[1].row()) == (row, row)
    queue_model.index(row, 0).data(DISPLAY)
    assert source.batches[-1] == 1


def test_queue_model_root_has_no_children(model: QueueModel) -> None:
    child_parent = model.index(0, 0)
    assert model.rowCount(child_parent) == 0
    assert model.columnCount(child_parent) == 0
    assert model.data(QModelIndex()) is None


def test_queue_model_set_ids_scattered_changes_reset(qtbot: QtBot, factory: Factory, clock: FakeClock) -> None:
    ids = factory.many(300)
    queue_model = QueueModel(factory.service(), clock)
    queue_model.reload()
    with qtbot.waitSignal(queue_model.modelReset), qtbot.assertNotEmitted(queue_model.rowsRemoved):
        queue_model.set_ids(ids[::2])  # 150 separate removals: one reset is cheaper
    assert queue_model.rowCount() == 150
    assert queue_model.row_of(ids[2]) == 1
