"""An empty queue view says why it is empty and what to do, centred in the view, in both themes (issue 19,
found walking the shift: Breached with nothing breached and a search matching nothing showed a blank table)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from console.queue import QueueQuery, QueueService, QueueView
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.dark import dark_palette
from widgets.main_window import MainWindow
from widgets.queue_model import QueueModel
from widgets.queue_view import QueueView as QueueTable


def _show(qtbot: QtBot, service: QueueService, clock: FakeClock) -> QueueTable:
    model = QueueModel(service, clock)
    view = QueueTable(clock)
    qtbot.addWidget(view)
    model.setParent(view)
    view.setModel(model)
    model.reload()
    view.resize(900, 400)
    with qtbot.waitSignal(view.first_painted):
        view.show()
    return view


def _query(view: QueueTable, query: QueueQuery) -> None:
    model = view.queue_model()
    assert model is not None
    model.set_query(query)


def _ink_in_the_middle(view: QueueTable) -> list[QColor]:
    """The colours drawn in the middle band of the viewport that are not its background."""
    viewport = view.viewport()
    image = viewport.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    background = viewport.palette().color(QPalette.ColorRole.Base)
    h, w = image.height(), image.width()
    inked = []
    for y in range(h // 2 - 30, h // 2 + 30):
        for x in range(w // 4, 3 * w // 4, 2):
            colour = image.pixelColor(x, y)
            if abs(colour.lightness() - background.lightness()) > 60:
                inked.append(colour)
    return inked


@pytest.fixture
def one_open_item(factory: Factory) -> QueueService:
    factory.add(text="Where is my parcel?")
    return factory.service()


def test_breached_view_with_nothing_breached_says_so(
    qtbot: QtBot, one_open_item: QueueService, clock: FakeClock
) -> None:
    view = _show(qtbot, one_open_item, clock)
    assert view.empty_text() == ""  # the Open view has its item: no sentence over the rows
    _query(view, QueueQuery(view=QueueView.BREACHED))
    assert view.empty_text() == "Nothing breached. Well done."
    assert _ink_in_the_middle(view)


def test_search_matching_nothing_names_the_search_and_how_to_clear_it(
    qtbot: QtBot, one_open_item: QueueService, clock: FakeClock
) -> None:
    view = _show(qtbot, one_open_item, clock)
    blank = _ink_in_the_middle(view)
    _query(view, QueueQuery(search="xyz"))
    assert view.empty_text() == "No item matches “xyz”. Esc clears the search."
    assert len(_ink_in_the_middle(view)) > len(blank)
    _query(view, QueueQuery(search="parcel"))
    assert view.empty_text() == ""


@pytest.fixture
def dark_theme(qapp: QApplication) -> Iterator[None]:
    previous = QPalette(QApplication.palette())
    QApplication.setPalette(dark_palette())
    yield
    QApplication.setPalette(previous)


def test_empty_view_sentence_is_readable_in_the_dark_theme(
    qtbot: QtBot, one_open_item: QueueService, clock: FakeClock, dark_theme: None
) -> None:
    view = _show(qtbot, one_open_item, clock)
    _query(view, QueueQuery(view=QueueView.BREACHED))
    background = view.viewport().palette().color(QPalette.ColorRole.Base)
    assert background.lightness() < 128
    ink = _ink_in_the_middle(view)
    assert ink and max(c.lightness() for c in ink) > background.lightness() + 60  # light text on the dark base


def test_escape_in_the_queue_clears_a_search_that_matches_nothing(
    qtbot: QtBot, one_open_item: QueueService, clock: FakeClock
) -> None:
    """The sentence promises "Esc clears the search": after Enter the focus is in the queue, and Esc there works."""
    window = MainWindow(one_open_item, clock)
    qtbot.addWidget(window)
    window.show()
    box = window.workbench.filter_bar.search_box
    box.setFocus()
    qtbot.keyClicks(box, "xyz")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    view = window.queue_view
    assert view.empty_text() == "No item matches “xyz”. Esc clears the search."
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert box.text() == ""
    assert view.empty_text() == "" and window.queue_model.rowCount() == 1
