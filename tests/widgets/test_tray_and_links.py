"""Tray alerts (count, notifications, do-not-disturb); conversation links and the customer panel."""

from __future__ import annotations

import pytest
import sqlite_utils
from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QTextBrowser, QWidget
from pytestqt.qtbot import QtBot

from console.queue import QueueService
from console.sla.alerts import Alert, AlertKind, AlertMonitor
from console.triage import Triage
from storage.rows import MentionStatus
from storage.triage import TriageRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.conversation import ConversationPane, event_text
from widgets.conversation_extras import URL_PATTERN, CustomerPanel
from widgets.tray import CHECK_EVERY_TICKS, TrayAlerts, notification_text, tray_icon


@pytest.fixture
def parent(qtbot: QtBot) -> QWidget:
    """The window a tray belongs to (the tray lives as long as its parent)."""
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


def test_tray_notifies_once_per_item_and_band(
    parent: QWidget, factory: Factory, service: QueueService, clock: FakeClock
) -> None:
    factory.add(handle="ana")
    tray = TrayAlerts(AlertMonitor(service, clock), parent)
    seen: list[tuple[str, str]] = []
    tray.notified.connect(lambda title, body, _alerts: seen.append((title, body)))
    clock.advance(1350)
    for _ in range(CHECK_EVERY_TICKS):
        tray.on_tick(clock.now())
    assert seen == [("SLA deadline near", "@ana's item is in the warning band")]
    assert tray.count == 1
    for _ in range(3 * CHECK_EVERY_TICKS):
        tray.on_tick(clock.now())
    assert len(seen) == 1


def test_tray_do_not_disturb(parent: QWidget, factory: Factory, service: QueueService, clock: FakeClock) -> None:
    factory.add()
    tray = TrayAlerts(AlertMonitor(service, clock), parent)
    tray.dnd_action.setChecked(True)
    seen: list[str] = []
    tray.notified.connect(lambda title, _body, _alerts: seen.append(title))
    clock.advance(1900)
    tray.refresh()
    assert seen == []


def test_tray_summarises_many_alerts() -> None:
    alerts = [Alert(i, AlertKind.BREACHED if i % 2 else AlertKind.WARNING, f"c{i}", 0) for i in range(5)]
    assert notification_text(alerts) == ("SLA breached", "Items 2 breached and 3 near their deadline")
    assert not tray_icon(3).isNull()


def test_conversation_links_open_only_web_urls_after_hover(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock
) -> None:
    item = factory.add(text="See https://shop.example/order/1. Or javascript:alert(1) <b>bold</b>")
    opened: list[QUrl] = []
    pane = ConversationPane(service, clock, open_url=opened.append)
    qtbot.addWidget(pane)
    pane.show_mention(item)
    assert "<b>bold</b>" in pane.thread_text()  # plain text, never rendered
    browser = thread_view(pane)  # what the browser says when the pointer rests on a link, then when it is clicked
    browser.highlighted.emit(QUrl("https://shop.example/order/1"))
    assert pane.hovered_link() == "https://shop.example/order/1"
    with qtbot.waitSignal(pane.url_opened):
        browser.anchorClicked.emit(QUrl("https://shop.example/order/1"))
    browser.anchorClicked.emit(QUrl("javascript:alert(1)"))
    assert [u.toString() for u in opened] == ["https://shop.example/order/1"]
    anchors = _anchors(pane)
    assert anchors == ["https://shop.example/order/1"]


def thread_view(pane: ConversationPane) -> QTextBrowser:
    browser = pane.findChild(QTextBrowser, "threadView")
    assert browser is not None
    return browser


def _anchors(pane: ConversationPane) -> list[str]:
    document = thread_view(pane).document()
    found = []
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.charFormat().isAnchor():
                found.append(fragment.charFormat().anchorHref())
            it += 1
        block = block.next()
    return found


def test_url_pattern_leaves_trailing_punctuation() -> None:
    assert URL_PATTERN.findall("go to https://a.example/x, then (https://b.example/y).") == [
        "https://a.example/x",
        "https://b.example/y",
    ]


def test_customer_panel_other_conversations_and_net_easy(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock, db: sqlite_utils.Database
) -> None:
    now = int(clock.now())
    old = factory.add(handle="ana", text="My first question", posted_at=now - 900)
    new = factory.add(handle="ana", text="Another one", posted_at=now - 60)
    panel = CustomerPanel(service)
    qtbot.addWidget(panel)
    panel.show_mention(new, now=now)
    (text,) = panel.other_texts()
    assert "My first question" in text and "New" in text
    assert panel.survey_text() == ""
    assert panel.toggle_button().text() == "1 other conversation"
    assert not panel.others_list().isVisibleTo(panel)
    panel.toggle_button().click()
    assert panel.others_list().isVisibleTo(panel)
    customer = service.rows_by_id([old])[old].customer_id
    db.conn.execute(
        "INSERT INTO surveys (mention_id, customer_id, sent_at, question_version, answer_text, score, parsed_at) "
        "VALUES (?, ?, ?, 'v1', '2', 2, ?)",
        (old, customer, now - 500, now - 400),
    )
    panel.show_mention(new, now=now)
    assert panel.survey_text().startswith("Last Net Easy answer: 2 of 7 (easy)")
    with qtbot.waitSignal(panel.conversation_requested) as blocker:
        panel.others_list().itemActivated.emit(panel.others_list().item(0))
    assert blocker.args == [old]


def test_history_shows_triage_changes(factory: Factory, service: QueueService, clock: FakeClock) -> None:
    item = factory.add()
    triage = Triage(TriageRepo(factory.db), clock, actor=lambda: "Sam")
    triage.set_status(item, MentionStatus.RESOLVED)
    triage.set_priority(item, 1)
    triage.set_tags(item, ["billing"])
    triage.undo()
    texts = [event_text(e, clock.now()).split("   ", 1)[1] for e in service.history(item)]
    assert texts[-4:] == [
        "Status changed: New → Resolved · Sam",
        "Priority changed: Urgent · Sam",
        "Tags changed: billing · Sam",
        "Tags changed: no tags (undone) · Sam",
    ]
