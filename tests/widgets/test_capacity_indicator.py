"""The expected wait in the status bar, and the status post: previewed, editable, sent through the outbox."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
import sqlite_utils
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from console.channels.base import ReplyReceipt
from console.queue import QueueService
from console.replies.capacity import CapacityService
from console.replies.outbox import Outbox
from storage.accounts import AccountRepo
from storage.capacity import CapacityRepo, StatusPostRepo
from storage.replies import ReplyRepo
from storage.rows import ReplyState
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.capacity import CapacityIndicator, StatusPostDialog
from widgets.main_window import MainWindow


class StatusChannel:
    """A fake channel that can post statuses (in process, no network): records what it was asked to post."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.posted: list[tuple[str, str, str]] = []

    async def post_status(self, text: str, *, idempotency_key: str, visibility: str = "public") -> ReplyReceipt:
        self.posted.append((text, idempotency_key, visibility))
        return ReplyReceipt(str(len(self.posted)), f"https://social.example/@care/{len(self.posted)}", 0)


@pytest.fixture
def channel(clock: FakeClock) -> StatusChannel:
    return StatusChannel(clock)


@pytest.fixture
def capacity(factory: Factory, db: sqlite_utils.Database, clock: FakeClock, channel: StatusChannel) -> CapacityService:
    outbox = Outbox(
        ReplyRepo(db), factory.mentions, AccountRepo(db), {factory.account.id: channel}, clock,  # type: ignore[dict-item]
        rng=random.Random(1), statuses=StatusPostRepo(db),
    )  # fmt: skip
    return CapacityService(CapacityRepo(db), AccountRepo(db), outbox, clock)


def _pace(db: sqlite_utils.Database, clock: FakeClock, replies: int) -> None:
    """``replies`` customer replies sent over the last two hours (the agent's recent pace)."""
    now = int(clock.now())
    for i in range(replies):
        db.conn.execute(
            "INSERT INTO events (at, actor, kind, data) VALUES (?, 'outbox', 'reply_sent', ?)",
            (now - i * (7200 // replies), json.dumps({"purpose": "reply"})),
        )


def _indicator(qtbot: QtBot, capacity: CapacityService, clock: FakeClock) -> CapacityIndicator:
    widget = CapacityIndicator(capacity, clock)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_capacity_indicator_shows_the_expected_wait_and_how_it_was_reached(
    qtbot: QtBot, factory: Factory, db: sqlite_utils.Database, clock: FakeClock, capacity: CapacityService
) -> None:
    factory.many(4)
    _pace(db, clock, 24)
    indicator = _indicator(qtbot, capacity, clock)
    assert indicator.text() == "Expected wait ~25 min"
    label = indicator.findChild(QLabel, "expectedWait")
    assert isinstance(label, QLabel)
    assert label.toolTip().startswith("4 waiting for a reply; you sent 24 replies in the last 1.9 hours (12.5 an hour)")
    assert indicator.post_button.isEnabled()


def test_capacity_indicator_without_a_pace_says_not_known_and_cannot_post(
    qtbot: QtBot, factory: Factory, clock: FakeClock, capacity: CapacityService
) -> None:
    factory.many(3)
    indicator = _indicator(qtbot, capacity, clock)
    assert indicator.text() == "Expected wait not known yet"
    assert not indicator.post_button.isEnabled()


def test_capacity_indicator_follows_the_queue_on_refresh(
    qtbot: QtBot, factory: Factory, db: sqlite_utils.Database, clock: FakeClock, capacity: CapacityService
) -> None:
    _pace(db, clock, 24)
    indicator = _indicator(qtbot, capacity, clock)
    assert indicator.text() == "Expected wait ~5 min"
    factory.many(11)
    indicator.refresh()
    assert indicator.text() == "Expected wait ~1 h"


def test_status_post_is_previewed_editable_and_sent_through_the_outbox(
    qtbot: QtBot,
    factory: Factory,
    db: sqlite_utils.Database,
    clock: FakeClock,
    capacity: CapacityService,
    channel: StatusChannel,
    arun: Callable[..., Any],
) -> None:
    factory.many(4)
    _pace(db, clock, 24)
    indicator = _indicator(qtbot, capacity, clock)
    qtbot.mouseClick(indicator.post_button, Qt.MouseButton.LeftButton)
    dialog = indicator.dialog
    assert isinstance(dialog, StatusPostDialog)
    qtbot.waitUntil(dialog.isVisible)
    assert "about 25 minutes" in dialog.editor.toPlainText()
    assert dialog.preview_text() == dialog.editor.toPlainText().strip()
    assert dialog.post_button.isEnabled()

    dialog.editor.setPlainText("Busy day! We're answering in about 25 minutes right now. [your name]")
    assert not dialog.post_button.isEnabled()
    assert "[your name]" in dialog.problem_text()
    dialog.editor.setPlainText("x" * 501)
    assert not dialog.post_button.isEnabled()
    assert "Too long for Mastodon" in dialog.problem_text()
    dialog.editor.setPlainText("Busy day! We're answering in about 25 minutes right now. – Sam")
    assert dialog.preview_text() == "Busy day! We're answering in about 25 minutes right now. – Sam"
    assert dialog.post_button.isEnabled()

    qtbot.mouseClick(dialog.post_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    (post,) = StatusPostRepo(db).recent()
    assert (post.state, post.purpose, post.wait_seconds) == (ReplyState.QUEUED, "status", 25 * 60)
    assert post.text == "Busy day! We're answering in about 25 minutes right now. – Sam"
    assert channel.posted == []  # committed first; the outbox sends it
    assert indicator.text().endswith("· status waiting to post")

    arun(capacity.outbox.drain())
    assert channel.posted == [(post.text, post.idempotency_key, "public")]
    assert "· status posted " in indicator.text()


def test_main_window_shows_the_expected_wait_in_the_status_bar(
    qtbot: QtBot, service: QueueService, factory: Factory, db: sqlite_utils.Database, clock: FakeClock,
    capacity: CapacityService,
) -> None:  # fmt: skip
    factory.many(4)
    _pace(db, clock, 24)
    window = MainWindow(service, clock, capacity=capacity)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    indicator = window.capacity
    assert indicator is not None and indicator.isVisible()
    assert indicator.text() == "Expected wait ~25 min"
    factory.many(6)
    window.refresh_queue()
    assert indicator.text() == "Expected wait ~55 min"
    assert MainWindow(service, clock).capacity is None
