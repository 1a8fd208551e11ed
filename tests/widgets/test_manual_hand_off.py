"""A post added by hand, from intake to "sent": the window offers copy / open post / mark as sent (issue 19 #3)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QListWidget, QPushButton
from pytestqt.qtbot import QtBot

from console.ports import MemorySecretStore
from console.runtime import Runtime, SandboxOptions, open_runtime
from storage.rows import DeadlineKind, ReplyState
from tests.fakes.clock import FakeClock
from widgets.main_window import MainWindow

Arun = Callable[[Coroutine[Any, Any, Any]], Any]
LINK = "https://x.com/cust/status/7"


@pytest.fixture
def runtime(tmp_path: Path, clock: FakeClock, arun: Arun) -> Iterator[Runtime]:
    rt = open_runtime(
        tmp_path, clock=clock, secrets=MemorySecretStore(), sandbox=SandboxOptions(rate_per_minute=0, backlog=0)
    )
    yield rt
    arun(rt.aclose())


def test_reply_to_a_hand_added_post_is_handed_off_and_marked_sent_in_the_window(
    qtbot: QtBot, runtime: Runtime, clock: FakeClock, arun: Arun
) -> None:
    result = runtime.manual_intake().add(link=LINK, text="Where is my parcel?", author="cust")
    mention_id = result.mention_id
    assert mention_id is not None
    window = MainWindow(runtime.queue, clock, replies=runtime.replies, triage=runtime.triage)
    qtbot.addWidget(window)
    window.show()
    composer = window.composer
    assert composer is not None and runtime.replies is not None
    assert window.queue_view.select_mention(mention_id)
    composer.editor.setPlainText("Sorry about that, it ships today.")
    assert composer.counter_text() == "33 characters"  # no channel limit to show for a post added by hand
    assert composer.send() is not None
    arun(runtime.replies.outbox.drain())  # no API for this post: the outbox hands it to the agent
    composer.refresh_replies()
    (reply,) = runtime.replies.outbox.replies(mention_id)
    assert reply.state is ReplyState.QUEUED
    assert "by hand" in composer.reply_state_texts()[0] and "not connected" not in composer.reply_state_texts()[0]

    opened: list[QUrl] = []
    composer.open_url = opened.append
    buttons = {b.objectName(): b for b in composer.findChildren(QPushButton)}
    states = composer.findChild(QListWidget, "replyStates")
    assert states is not None
    states.setCurrentRow(0)
    assert all(buttons[name].isVisible() for name in ("handOffCopy", "handOffOpen", "handOffSent"))
    buttons["handOffCopy"].click()
    assert QGuiApplication.clipboard().text() == "Sorry about that, it ships today."
    buttons["handOffOpen"].click()
    assert [url.toString() for url in opened] == [LINK]

    clock.advance(120)
    buttons["handOffSent"].click()
    (reply,) = runtime.replies.outbox.replies(mention_id)
    assert reply.state is ReplyState.SENT and reply.sent_at == int(clock.now())
    assert composer.reply_state_texts()[0].startswith("Reply · Sent")
    assert not buttons["handOffSent"].isVisible()
    first = [d for d in runtime.queue.deadlines(mention_id) if d.kind is DeadlineKind.FIRST_RESPONSE]
    assert first and first[0].met_at == int(clock.now())  # marking it sent meets the first response
    assert runtime.replies.outbox.waiting_count() == 0
