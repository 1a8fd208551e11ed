"""A post added by hand looks like one (issue 19, found walking the shift): its NEW badge goes once its reply is
marked sent, as a synced item's does once answered; its history says it was added by hand, not synced; and the
manual intake, which is no connection, has no chip in the channel-health strip."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QLabel, QListWidget, QPushButton
from pytestqt.qtbot import QtBot

from console.ports import MemorySecretStore
from console.runtime import Runtime, SandboxOptions, open_runtime
from storage.rows import ReplyState
from tests.fakes.clock import FakeClock
from widgets.conversation import event_text
from widgets.health import HealthStrip
from widgets.main_window import MainWindow
from widgets.queue_model import Col, Role

Arun = Callable[[Coroutine[Any, Any, Any]], Any]
LINK = "https://x.com/newcust/status/9"


@pytest.fixture
def runtime(tmp_path: Path, clock: FakeClock, arun: Arun) -> Iterator[Runtime]:
    rt = open_runtime(
        tmp_path, clock=clock, secrets=MemorySecretStore(), sandbox=SandboxOptions(rate_per_minute=0, backlog=0)
    )
    yield rt
    arun(rt.aclose())


def _is_new(window: MainWindow, mention_id: int) -> bool:
    model = window.queue_view.model()
    row = window.queue_model.row_of(mention_id)
    assert row is not None
    return bool(model.index(row, Col.CUSTOMER).data(Role.IS_NEWCOMER))


def test_hand_added_post_loses_new_once_its_reply_is_marked_sent(
    qtbot: QtBot, runtime: Runtime, clock: FakeClock, arun: Arun
) -> None:
    mention_id = runtime.manual_intake().add(link=LINK, text="Is my order lost?", author="newcust").mention_id
    assert mention_id is not None
    window = MainWindow(runtime.queue, clock, replies=runtime.replies, triage=runtime.triage)
    qtbot.addWidget(window)
    window.show()
    composer = window.composer
    assert composer is not None and runtime.replies is not None
    assert window.queue_view.select_mention(mention_id)
    assert _is_new(window, mention_id)  # a first contact nobody has answered
    composer.editor.setPlainText("It is on its way, sorry for the wait.")
    assert composer.send() is not None
    arun(runtime.replies.outbox.drain())
    (reply,) = runtime.replies.outbox.replies(mention_id)
    assert reply.state is ReplyState.QUEUED
    assert _is_new(window, mention_id)  # not answered yet: the reply waits for the agent to post it
    composer.refresh_replies()
    states = composer.findChild(QListWidget, "replyStates")
    assert states is not None
    states.setCurrentRow(0)
    mark_sent = next(b for b in composer.findChildren(QPushButton) if b.objectName() == "handOffSent")
    clock.advance(60)
    mark_sent.click()
    assert not _is_new(window, mention_id)


def test_history_of_a_hand_added_post_says_added_by_hand(runtime: Runtime, clock: FakeClock) -> None:
    mention_id = runtime.manual_intake().add(link=LINK, text="Is my order lost?", author="newcust").mention_id
    assert mention_id is not None
    history = [event_text(e, clock.now()).split("   ", 1)[1] for e in runtime.queue.history(mention_id)]
    assert "Added by hand" in history
    assert not any("sync" in text for text in history)


def test_health_strip_has_no_chip_for_the_manual_intake(qtbot: QtBot, runtime: Runtime, clock: FakeClock) -> None:
    runtime.manual_intake().add(link=LINK, text="Is my order lost?", author="newcust")
    snapshot = runtime.health.snapshot()
    assert snapshot.accounts  # the sandbox account is still there
    assert all(a.handle != "manual" for a in snapshot.accounts)
    strip = HealthStrip()
    qtbot.addWidget(strip)
    strip.set_snapshot(snapshot, clock.now())
    texts = [label.text() for label in strip.findChildren(QLabel)]
    assert any(f"@{a.handle}" in t for a in snapshot.accounts for t in texts)
    assert not any("@manual" in t for t in texts)
