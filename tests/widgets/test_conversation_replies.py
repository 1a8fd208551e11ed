"""Our own replies appear inline in the conversation thread, in order, marked as ours with their outbox state."""

from __future__ import annotations

import sqlite_utils
from pytestqt.qtbot import QtBot

from console.queue import QueueService
from console.replies.desk import ReplyDesk, build_reply_desk
from storage.accounts import AccountRepo
from storage.replies import ReplyRepo
from storage.settings import AGENT_NAME, SettingsRepo
from storage.templates import TemplateRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.conversation import ConversationPane


def make(db: sqlite_utils.Database, factory: Factory, clock: FakeClock) -> ReplyDesk:
    settings = SettingsRepo(db)
    settings.set(AGENT_NAME, "Sam")
    return build_reply_desk(
        replies=ReplyRepo(db), templates=TemplateRepo(db), mentions=factory.mentions, accounts=AccountRepo(db),
        connectors={}, settings=settings, clock=clock,
    )  # fmt: skip


def pane_for(qtbot: QtBot, service: QueueService, clock: FakeClock, desk: ReplyDesk, head: int) -> ConversationPane:
    pane = ConversationPane(service, clock, replies=desk.outbox.replies)
    qtbot.addWidget(pane)
    pane.resize(700, 600)
    pane.show()
    pane.show_mention(head)
    return pane


def test_our_replies_show_inline_in_order_with_agent_and_state(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, service: QueueService, clock: FakeClock
) -> None:
    desk = make(db, factory, clock)
    head = factory.add(text="Where is my parcel?", external_id="s1")
    clock.advance(60)
    reply_id = desk.outbox.queue(head, "Sorry Ana, checking with the courier <b>now</b>.")
    pane = pane_for(qtbot, service, clock, desk, head)
    text = pane.thread_text()
    assert "Sam (us)" in text and "Queued" in text
    assert "<b>now</b>" in text  # plain text: markup shows literally
    assert text.index("Where is my parcel?") < text.index("checking with the courier")

    replies = ReplyRepo(db)
    replies.mark_sending(reply_id, now=int(clock.now()))
    pane.refresh()
    assert "Sending…" in pane.thread_text()
    replies.mark_sent(reply_id, external_id="r1", url="https://social.example/@care/r1", at=int(clock.now()))
    clock.advance(60)
    factory.store([factory.new(text="Thanks, still nothing though", parent="r1")])
    pane.refresh()
    text = pane.thread_text()
    assert "Sent " in text and "Queued" not in text
    assert text.index("Where is my parcel?") < text.index("checking with") < text.index("still nothing")


def test_failed_withdrawn_and_corrected_replies(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, service: QueueService, clock: FakeClock
) -> None:
    desk = make(db, factory, clock)
    replies = ReplyRepo(db)
    head = factory.add(text="Refund?", external_id="s1")
    clock.advance(30)
    sent = desk.outbox.queue(head, "Your refund leaves on Monday.")
    replies.mark_sent(sent, external_id="r1", url="", at=int(clock.now()))
    clock.advance(30)
    failed = desk.outbox.queue(head, "A second note that bounced.")
    replies.mark_failed(failed, error="The instance refused it (422).", at=int(clock.now()))
    withdrawn = desk.outbox.queue(head, "Never mind this one.")
    desk.outbox.withdraw(withdrawn)
    clock.advance(30)
    fix = desk.outbox.correct(sent, "Your refund leaves on Tuesday.")
    replies.mark_sent(fix, external_id="r1", url="", at=int(clock.now()))  # edited in place: same id

    pane = pane_for(qtbot, service, clock, desk, head)
    text = pane.thread_text()
    assert "Not sent – The instance refused it (422)." in text
    assert "Never mind this one." not in text  # withdrawn: never left
    assert "Your refund leaves on Tuesday." in text and "edited" in text
    assert "Monday" not in text  # the channel shows the corrected text; the old one is in the history
    assert text.count("Sam (us)") == 2  # the edit is folded into the reply it corrected
    assert any("Reply corrected: edited in place" in line for line in pane.history_texts())


def test_without_replies_the_thread_is_unchanged(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock
) -> None:
    head = factory.add(text="Hello")
    pane = ConversationPane(service, clock)
    qtbot.addWidget(pane)
    pane.show_mention(head)
    assert "(us)" not in pane.thread_text()
