"""Delegates: plain-text tooltips, and every pill variant paints (exceptions in paint fail the test)."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from console.queue import QueueService
from console.sla.bands import Band
from storage.rows import MentionKind
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.delegates import TOOLTIP_CHARS, plain_tooltip
from widgets.queue_model import Col, QueueModel, Role
from widgets.queue_view import QueueView


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<b>x</b>", "&lt;b&gt;x&lt;/b&gt;"),
        ("a & b", "a &amp; b"),
        ("<img src='http://evil.example/p.png'>", "&lt;img src=&#x27;http://evil.example/p.png&#x27;&gt;"),
    ],
)
def test_delegates_tooltip_escapes_markup(text: str, shown: str) -> None:
    assert plain_tooltip(text) == f"<p style='white-space:pre-wrap'>{shown}</p>"


def test_delegates_tooltip_is_cut() -> None:
    # A whole thread belongs in the conversation pane, not in a tooltip.
    assert len(plain_tooltip("y" * 5_000)) < TOOLTIP_CHARS + 50


def test_delegates_paint_every_band_and_badge(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock
) -> None:
    now = clock.now()
    factory.add(posted_at=now - 1_900, handle="late", name="A very long customer name that will not fit the column")
    factory.add(posted_at=now - 1_500, kind=MentionKind.DIRECT, handle="soon")
    factory.add(posted_at=now, handle="fresh")
    factory.mentions.store_batch([factory.new(handle="none")], channel="mastodon", fetched_at=int(now),
                                 plan=lambda _kind, _started: None)  # fmt: skip
    model = QueueModel(service, clock)
    view = QueueView(clock)
    qtbot.addWidget(view)
    view.setModel(model)
    model.reload()
    view.resize(900, 300)
    view.show()
    qtbot.waitExposed(view)
    bands = {model.index(row, Col.SLA).data(Role.BAND) for row in range(model.rowCount())}
    assert bands == {band.value for band in Band}
    assert any(model.index(row, 0).data(Role.IS_DIRECT) for row in range(model.rowCount()))
    view.select_mention(model.mention_id_at(1) or 0)
    assert not view.grab().isNull()
