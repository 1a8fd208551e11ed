"""The queue's badges: priority shown (queue and header), NEW only while open, tags named, not just "+2"."""

from __future__ import annotations

import pytest
import sqlite_utils
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from console.queue import QueueQuery, QueueService, QueueView
from console.triage import Priority, Triage
from storage.rows import MentionStatus
from storage.triage import TriageRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.conversation import ConversationPane
from widgets.queue_delegates import fit_tags
from widgets.queue_model import Col, QueueModel, Role


@pytest.fixture
def triage(db: sqlite_utils.Database, clock: FakeClock) -> Triage:
    return Triage(TriageRepo(db), clock, actor=lambda: "Sam")


def _model(service: QueueService, clock: FakeClock, qtmodeltester: ModelTester, view: QueueView) -> QueueModel:
    model = QueueModel(service, clock)
    model.set_query(QueueQuery(view=view))
    model.reload()
    qtmodeltester.check(model)
    return model


def _data(model: QueueModel, mention_id: int, role: int, col: Col = Col.PREVIEW) -> object:
    row = model.row_of(mention_id)
    assert row is not None
    return model.index(row, col).data(role)


@pytest.mark.parametrize(
    ("priority", "badge"), [(Priority.URGENT, "Urgent"), (Priority.NORMAL, ""), (Priority.LOW, "Low")]
)
def test_queue_priority_badge(
    service: QueueService, clock: FakeClock, factory: Factory, triage: Triage, qtmodeltester: ModelTester,
    priority: Priority, badge: str,
) -> None:  # fmt: skip
    item = factory.add(text="Refund please")
    triage.set_priority(item, priority)
    model = _model(service, clock, qtmodeltester, QueueView.OPEN)
    assert _data(model, item, Role.PRIORITY_LABEL) == badge
    tooltip = _data(model, item, Qt.ItemDataRole.ToolTipRole)
    assert isinstance(tooltip, str)
    assert tooltip.startswith(f"Priority: {badge}\n") == bool(badge)


@pytest.mark.parametrize(
    ("status", "view", "new_badge"),
    [
        (MentionStatus.OPEN, QueueView.OPEN, True),
        (MentionStatus.WAITING, QueueView.WAITING, False),
        (MentionStatus.RESOLVED, QueueView.RESOLVED_TODAY, False),
    ],
)
def test_queue_new_badge_only_while_the_first_contact_is_open(
    service: QueueService, clock: FakeClock, factory: Factory, triage: Triage, qtmodeltester: ModelTester,
    status: MentionStatus, view: QueueView, new_badge: bool,
) -> None:  # fmt: skip
    item = factory.add(text="First time here", handle="newbie")
    assert factory.mentions.rows_by_id([item])[item].is_first_contact
    if status is not MentionStatus.OPEN:
        triage.set_status(item, status)
    model = _model(service, clock, qtmodeltester, view)
    assert _data(model, item, Role.IS_NEWCOMER, Col.CUSTOMER) is new_badge


def test_conversation_header_shows_priority(
    qtbot: QtBot, service: QueueService, clock: FakeClock, factory: Factory, triage: Triage
) -> None:
    item = factory.add(text="Refund please")
    triage.set_priority(item, Priority.URGENT)
    pane = ConversationPane(service, clock)
    qtbot.addWidget(pane)
    pane.show_mention(item)
    assert "Priority: Urgent" in pane.header_text().splitlines()[1]


@pytest.fixture
def metrics() -> QFontMetrics:
    return QFontMetrics(QFont())


def test_fit_tags_all_fit(metrics: QFontMetrics) -> None:
    assert fit_tags(["vip", "refund"], 400, metrics) == ["vip", "refund"]


def test_fit_tags_names_the_first_tag_before_counting_the_rest(metrics: QFontMetrics) -> None:
    """Issue 19 §16: a narrow column showed only "+2"."""
    tags = ["late-delivery", "refund", "vip"]
    width = metrics.horizontalAdvance("late-delivery") + 12  # room for the first tag's pill alone
    labels = fit_tags(tags, width, metrics)
    assert labels[-1] == "+2"
    assert labels[0].startswith("late")
    assert labels[0].endswith("…")


def test_fit_tags_whole_tags_then_a_count(metrics: QFontMetrics) -> None:
    tags = ["vip", "refund", "late-delivery-again"]
    width = metrics.horizontalAdvance("vip") + metrics.horizontalAdvance("refund") + metrics.horizontalAdvance("+1")
    assert fit_tags(tags, width + 3 * 12 + 2 * 4, metrics) == ["vip", "refund", "+1"]


def test_fit_tags_too_narrow_for_anything_but_a_count(metrics: QFontMetrics) -> None:
    assert fit_tags(["late-delivery", "refund"], metrics.horizontalAdvance("+2") + 12, metrics) == ["+2"]
