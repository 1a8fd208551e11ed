"""A reply that did not leave: a plain reason, Retry, its text back in the editor; "Withdrawn" is no failure;
quitting with replies still queued asks first (issue 19 #6). Against the sandbox on loopback."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QListWidget, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from console.ports import MemorySecretStore
from console.replies.outbox import plain_reason
from console.runtime import Runtime, SandboxOptions, open_runtime
from storage.mentions import QueueView
from storage.rows import ReplyState
from tests.fakes.clock import FakeClock
from widgets.composer import Composer
from widgets.main_window import MainWindow

Arun = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture
def runtime(tmp_path: Path, clock: FakeClock, arun: Arun) -> Iterator[Runtime]:
    rt = open_runtime(
        tmp_path, clock=clock, secrets=MemorySecretStore(), sandbox=SandboxOptions(rate_per_minute=0, backlog=3)
    )
    arun(rt.poller.sync_once())
    yield rt
    arun(rt.aclose())


@pytest.fixture
def window(qtbot: QtBot, runtime: Runtime, clock: FakeClock) -> MainWindow:
    win = MainWindow(runtime.queue, clock, replies=runtime.replies, triage=runtime.triage)
    qtbot.addWidget(win)
    win.show()
    return win


def buttons(composer: Composer) -> dict[str, QPushButton]:
    return {b.objectName(): b for b in composer.findChildren(QPushButton) if b.objectName()}


def select_reply(composer: Composer, row: int) -> None:
    states = composer.findChild(QListWidget, "replyStates")
    assert states is not None
    states.setCurrentRow(row)


def open_item(window: MainWindow, runtime: Runtime) -> tuple[int, Composer]:
    mention_id = runtime.mentions.queue_ids(QueueView.OPEN)[0]
    assert window.queue_view.select_mention(mention_id)
    composer = window.composer
    assert composer is not None
    return mention_id, composer


def test_failed_reply_says_why_plainly_and_can_be_retried_or_edited_again(
    window: MainWindow, runtime: Runtime, arun: Arun
) -> None:
    mention_id, composer = open_item(window, runtime)
    assert runtime.replies is not None and runtime.sandbox is not None
    too_long = "We have refunded the order. " * 20  # the server refuses it (500 characters at most)
    runtime.replies.outbox.queue(mention_id, too_long)
    arun(runtime.replies.outbox.drain())
    composer.refresh_replies()
    (reply,) = runtime.replies.outbox.replies(mention_id)
    assert reply.state is ReplyState.FAILED
    (text,) = composer.reply_state_texts()
    assert "The channel did not accept the reply" in text
    assert "422" not in text and "refused" not in text and "/api/" not in text
    assert "The channel did not accept the reply" in window.conversation.thread_text()  # the thread says it too

    select_reply(composer, 0)
    assert buttons(composer)["retryReply"].isVisible() and buttons(composer)["editReplyAgain"].isVisible()
    buttons(composer)["retryReply"].click()
    (reply,) = runtime.replies.outbox.replies(mention_id)
    assert reply.state is ReplyState.QUEUED  # queued again, with the same idempotency key
    arun(runtime.replies.outbox.drain())
    composer.refresh_replies()
    select_reply(composer, 0)
    buttons(composer)["editReplyAgain"].click()
    assert composer.text() == too_long.strip()
    composer.editor.setPlainText("We have refunded the order.")
    assert composer.send() is not None
    arun(runtime.replies.outbox.drain())
    states = [r.state for r in runtime.replies.outbox.replies(mention_id)]
    assert states == [ReplyState.FAILED, ReplyState.SENT]
    (posted,) = runtime.sandbox.statuses_posted()  # the refused one never reached the server
    assert posted["content"].endswith(" We have refunded the order.</p>")


def test_withdrawn_reply_says_withdrawn_not_failed(window: MainWindow, runtime: Runtime) -> None:
    mention_id, composer = open_item(window, runtime)
    assert runtime.replies is not None
    composer.editor.setPlainText("Oops, wrong customer.")
    assert composer.send() is not None
    select_reply(composer, 0)
    withdraw = next(b for b in composer.findChildren(QPushButton) if b.text() == "Withdraw")
    withdraw.click()
    composer.refresh_replies()
    (text,) = composer.reply_state_texts()
    assert "Withdrawn" in text and "Not sent" not in text and "Failed" not in text
    select_reply(composer, 0)
    assert not buttons(composer)["retryReply"].isVisible()
    assert buttons(composer)["editReplyAgain"].isVisible()
    assert runtime.queue.reply_states([mention_id]).get(mention_id) is not ReplyState.FAILED


def test_quitting_with_a_reply_still_queued_asks_first(qtbot: QtBot, window: MainWindow, runtime: Runtime) -> None:
    window.confirm_quit_with_waiting_replies = True  # as main.py sets it for the app's window
    _mention_id, composer = open_item(window, runtime)
    composer.editor.setPlainText("On its way!")
    assert composer.send() is not None  # the outbox is not running: the reply waits
    window.close()
    box = window.findChild(QMessageBox, "quitWithWaitingReplies")
    assert box is not None and box.isVisible() and "1 reply has not been sent yet" in box.text()
    assert window.isVisible()
    keep = next(b for b in box.buttons() if b.text() == "Keep working")
    keep.click()
    assert window.isVisible()
    window.close()
    box = window.findChild(QMessageBox, "quitWithWaitingReplies")
    assert box is not None
    quit_anyway = next(b for b in box.buttons() if b.text() == "Quit anyway")
    quit_anyway.click()
    qtbot.waitUntil(lambda: not window.isVisible())


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (
            "127.0.0.1 refused POST /api/v1/statuses (404: The post you are trying to reply to does not appear to "
            "exist.).",
            "The post this answers is gone from the channel (deleted, or it never reached it).",
        ),
        (
            "mastodon.social refused POST /api/v1/statuses (422: Validation failed: Text character limit of 500 "
            "exceeded).",
            "The channel did not accept the reply: Validation failed: Text character limit of 500 exceeded.",
        ),
        ("x.com refused POST /2/tweets (403: <html>Forbidden</html>).", "The channel does not allow this reply"),
        ("The message this reply answers is no longer stored.", "The message this reply answers is no longer stored."),
        ("HTTPStatusError: Server error '500 Internal Server Error'", "The channel did not take the reply."),
    ],
)
def test_plain_reason(stored: str, shown: str) -> None:
    assert plain_reason(stored).startswith(shown)
