"""Layout and theme defects found walking a shift under Xvfb (issue 19 §9 and §10; each fails without its fix)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QLabel, QPushButton, QScrollArea, QSplitter, QWidget
from pytestqt.qtbot import QtBot

from console.ports import MemorySecretStore
from console.runtime import Runtime, SandboxOptions, open_runtime
from console.sla.alerts import AlertMonitor
from tests.fakes.clock import FakeClock
from widgets.elided_label import ElidedLabel
from widgets.main_window import ALERT_MIN_WIDTH, QUEUE_MIN_WIDTH, MainWindow
from widgets.shift_dialog import ShiftActions

Arun = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture
def runtime(tmp_path: Path, clock: FakeClock, arun: Arun) -> Iterator[Runtime]:
    rt = open_runtime(
        tmp_path, clock=clock, secrets=MemorySecretStore(), sandbox=SandboxOptions(rate_per_minute=0, backlog=0)
    )
    yield rt
    arun(rt.aclose())


# ------------------------------------------------------------------------------- 2. breach alert has priority


def test_breach_alert_keeps_its_whole_text_at_800x600(
    qtbot: QtBot, runtime: Runtime, clock: FakeClock, tmp_path: Path, arun: Arun
) -> None:
    """At 800x600 "4 breached · Nex…" was cut while "Expected wait not known yet", "Post status…" and "No shift
    running" kept their full width. The alert keeps its text up to ALERT_MIN_WIDTH, even beside "1 reply
    waiting to send"."""
    intake = runtime.manual_intake()
    for n in range(4):
        intake.add(link=f"https://x.com/cust{n}/status/{n + 1}", text="Still broken", author=f"cust{n}")
    clock.advance(6 * 3600)
    fresh = intake.add(link="https://x.com/fresh/status/9", text="Hello?", author="fresh").mention_id
    assert fresh is not None and runtime.replies is not None  # its deadline: "Next deadline in …"
    context = runtime.replies.context(fresh)
    assert context is not None
    runtime.replies.send(context, "On it.", visibility="public", seen_at=int(clock.now()))
    arun(runtime.replies.outbox.drain())  # a hand-off: "1 reply waiting to send"
    assert runtime.shifts is not None and runtime.exports is not None
    window = MainWindow(
        runtime.queue, clock, replies=runtime.replies, triage=runtime.triage,
        alerts=AlertMonitor(runtime.queue, clock), capacity=runtime.capacity,
    )  # fmt: skip
    qtbot.addWidget(window)
    actions = ShiftActions(window, runtime.shifts, runtime.exports, clock, export_dir=tmp_path / "exports")
    window.resize(800, 600)
    window.show()
    qtbot.waitExposed(window)
    window.refresh_queue()
    alert = window.findChild(ElidedLabel, "nextDeadline")
    assert alert is not None and "breached" in alert.text() and "Next deadline" in alert.text()
    whole = min(alert.fontMetrics().horizontalAdvance(alert.text()), ALERT_MIN_WIDTH)
    qtbot.waitUntil(lambda: alert.width() >= whole)
    assert alert.shown_text().startswith("4 breached · Next deadline in")
    assert window.width() <= 800
    outbox = window.findChild(ElidedLabel, "outboxStatus")
    assert outbox is not None and outbox.isVisible() and outbox.shown_text().startswith("1 reply")
    # The other labels are still there, cut if need be.
    assert actions.shift_label.isVisible() and actions.shift_label.text() == "No shift running"
    wait = window.findChild(QLabel, "expectedWait")
    assert wait is not None and wait.isVisible()


def test_cut_label_keeps_its_own_tooltip(qtbot: QtBot) -> None:
    label = ElidedLabel("Expected wait not known yet", min_width=20)
    qtbot.addWidget(label)
    label.setToolTip("No replies yet in the last hour")
    label.resize(40, 20)
    label.show()
    qtbot.waitExposed(label)
    label.grab()
    assert label.shown_text() != label.text()
    assert "Expected wait not known yet" in label.toolTip() and "No replies yet" in label.toolTip()
    label.resize(400, 20)
    label.grab()
    assert label.toolTip() == "No replies yet in the last hour"


# ------------------------------------------------------------------ 3. shrinking by hand keeps the composer usable


def _inside_viewport(widget: QWidget, scroll: QScrollArea) -> bool:
    viewport = scroll.viewport()
    top_left = widget.mapTo(viewport, QPoint(0, 0))
    return viewport.rect().contains(QRect(top_left, widget.size()))


def _scroll_of(widget: QWidget, name: str) -> QScrollArea:
    parent = widget.parentWidget()
    while parent is not None and not (isinstance(parent, QScrollArea) and parent.objectName() == name):
        parent = parent.parentWidget()
    assert isinstance(parent, QScrollArea)
    return parent


def test_shrinking_the_window_by_hand_keeps_send_in_view(qtbot: QtBot, runtime: Runtime, clock: FakeClock) -> None:
    """From 1400 wide to 800 by hand the splitter stayed at about 500/300 and Send was off to the side."""
    mention_id = (
        runtime.manual_intake().add(link="https://x.com/cust/status/5", text="Broken", author="cust").mention_id
    )
    assert mention_id is not None
    window = MainWindow(runtime.queue, clock, replies=runtime.replies, triage=runtime.triage)
    qtbot.addWidget(window)
    window.resize(1400, 860)
    window.show()
    qtbot.waitExposed(window)
    assert window.queue_view.select_mention(mention_id)
    splitter = window.findChild(QSplitter, "mainSplitter")
    assert splitter is not None
    splitter.setSizes([868, 532])  # the wide window's share (the test screen is smaller than 1400x860)
    qtbot.waitUntil(lambda: splitter.sizes()[1] > 500)
    window.resize(800, 600)
    composer = window.composer
    assert composer is not None
    send = next(b for b in composer.findChildren(QPushButton) if b.objectName() == "sendButton")
    scroll = _scroll_of(composer, "composerScroll")
    qtbot.waitUntil(lambda: window.width() == 800)
    qtbot.waitUntil(lambda: _inside_viewport(send, scroll))
    assert scroll.horizontalScrollBar().value() == 0
    assert splitter.sizes()[0] >= QUEUE_MIN_WIDTH


# ------------------------------------------------------------ 4. reply buttons stay visible with three replies


def test_hand_off_buttons_visible_with_three_replies_at_1400x815(
    qtbot: QtBot, runtime: Runtime, clock: FakeClock, arun: Arun
) -> None:
    """With three rows in the reply strip, Copy reply / Open post / Mark as sent sat below the composer's scroll
    area at about 1400x815: the agent had to scroll to reach them."""
    mention_id = (
        runtime.manual_intake().add(link="https://x.com/cust/status/6", text="Broken", author="cust").mention_id
    )
    assert mention_id is not None and runtime.replies is not None
    window = MainWindow(runtime.queue, clock, replies=runtime.replies, triage=runtime.triage)
    qtbot.addWidget(window)
    window.resize(1400, 815)
    window.show()
    qtbot.waitExposed(window)
    composer = window.composer
    assert composer is not None and window.queue_view.select_mention(mention_id)
    buttons = {b.text(): b for b in composer.findChildren(QPushButton)}
    for attempt in range(3):
        composer.editor.setPlainText(f"Sorry, a new pair ships today ({attempt}).")
        assert composer.send() is not None
        arun(runtime.replies.outbox.drain())
        composer.refresh_replies()
        if attempt < 2:
            buttons["Withdraw"].click()
            buttons["Edit again"].click()
            composer.editor.clear()
    assert len(runtime.replies.outbox.replies(mention_id)) == 3
    scroll = _scroll_of(composer, "composerScroll")
    hand_off = [buttons["Copy reply"], buttons["Open post"], buttons["Mark as sent"]]
    qtbot.waitUntil(lambda: all(b.isVisible() for b in hand_off))
    qtbot.waitUntil(lambda: all(_inside_viewport(b, scroll) for b in hand_off))
    assert scroll.verticalScrollBar().value() == 0
