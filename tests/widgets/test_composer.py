"""The reply composer: templates by keyboard, blanks and Tab, phrase hints, counter, privacy prompt, drafts, outbox."""

from __future__ import annotations

import sqlite_utils
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLineEdit, QPushButton
from pytestqt.qtbot import QtBot

from console.model import MentionKind
from console.reply_desk import ReplyDesk, build_reply_desk
from storage.accounts import AccountRepo
from storage.replies import ReplyRepo
from storage.settings import AGENT_NAME, SettingsRepo
from storage.templates import TemplateRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.composer import Composer
from widgets.main_window import MainWindow


def make_desk(db: sqlite_utils.Database, factory: Factory, clock: FakeClock) -> ReplyDesk:
    settings = SettingsRepo(db)
    settings.set(AGENT_NAME, "Sam")
    return build_reply_desk(
        replies=ReplyRepo(db), templates=TemplateRepo(db), mentions=factory.mentions, accounts=AccountRepo(db),
        connectors={}, settings=settings, clock=clock,
    )  # fmt: skip


def make_composer(qtbot: QtBot, desk: ReplyDesk, mention_id: int | None) -> Composer:
    composer = Composer(desk)
    qtbot.addWidget(composer)
    composer.resize(600, 400)
    composer.show()
    composer.set_mention(mention_id)
    return composer


def test_composer_template_inserted_by_keyboard_fills_placeholders(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    head = factory.add(name="Ana Lima", handle="ana")
    composer = make_composer(qtbot, make_desk(db, factory, clock), head)
    composer.editor.setFocus()
    qtbot.keyClick(composer.editor, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: bool(composer.template_results()))
    search = composer.findChild(QLineEdit, "templateSearch")
    assert search is not None
    qtbot.keyClicks(search, "apology mistake")
    assert composer.template_results()[0].startswith("Apology: our mistake")
    qtbot.keyClick(search, Qt.Key.Key_Return)
    text = composer.text()
    assert text.startswith("Hi Ana, you're right")
    assert "Sam" in text and "{" not in text
    selected = composer.editor.textCursor().selectedText()
    assert selected == "[what went wrong]"  # the first blank is selected, ready to type over


def test_composer_tab_jumps_to_the_next_blank(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    composer = make_composer(qtbot, make_desk(db, factory, clock), factory.add())
    composer.editor.setPlainText("Hi, your order [order] ships on [date].")
    composer.editor.setFocus()
    qtbot.keyClick(composer.editor, Qt.Key.Key_Tab)
    assert composer.editor.textCursor().selectedText() == "[order]"
    qtbot.keyClick(composer.editor, Qt.Key.Key_Tab)
    assert composer.editor.textCursor().selectedText() == "[date]"
    assert [kind for _s, _e, kind in composer.editor.marked_ranges()] == ["blank", "blank"]


def test_composer_blanks_block_sending_with_the_reason(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    composer = make_composer(qtbot, make_desk(db, factory, clock), factory.add())
    composer.editor.setPlainText("Your refund is [amount].")
    assert not composer.can_send()
    assert "[amount]" in composer.hints_text()
    composer.editor.setPlainText("Your refund is 12 EUR.")
    assert composer.can_send()


def test_composer_counter_includes_the_handle_and_blocks_over_the_limit(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    composer = make_composer(qtbot, make_desk(db, factory, clock), factory.add(handle="ana"))
    composer.editor.setPlainText("Thanks!")
    assert composer.counter_text() == "12 / 500"  # "@ana Thanks!"
    composer.editor.setPlainText("x" * 496)
    assert not composer.can_send()
    assert "Too long for Mastodon" in composer.hints_text()
    composer.editor.setPlainText("https://example.com/" + "a" * 600)
    assert composer.counter_text() == "28 / 500"  # "@ana " + a URL that counts 23
    assert composer.can_send()


def test_composer_underlines_stiff_phrases_with_a_suggestion(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    composer = make_composer(qtbot, make_desk(db, factory, clock), factory.add())
    composer.editor.setPlainText("Hello. Please be advised that it shipped.")
    marks = composer.editor.marked_ranges()
    assert [kind for _s, _e, kind in marks] == ["phrase"]
    start, end, _ = marks[0]
    assert composer.text()[start:end].lower().startswith("please be advised")
    assert "Just so you know" in composer.editor.phrase_tooltip_at(start + 2)
    assert composer.can_send()  # it warns, it does not block
    assert "stiff phrase" in composer.hints_text()


def test_composer_ctrl_enter_queues_the_reply_and_shows_its_state(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    desk = make_desk(db, factory, clock)
    head = factory.add()
    composer = make_composer(qtbot, desk, head)
    composer.editor.setPlainText("Thanks Ana, I'm on it.")
    with qtbot.waitSignal(composer.reply_queued):
        qtbot.keyClick(composer.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert composer.text() == ""
    assert desk.outbox.waiting_count() == 1
    assert composer.reply_state_texts()[0].startswith("Reply · Queued")


def test_composer_public_reply_with_an_email_asks_and_can_move_to_dm(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    desk = make_desk(db, factory, clock)
    head = factory.add()
    composer = make_composer(qtbot, desk, head)
    composer.editor.setPlainText("I've sent the label to ana@example.com.")
    assert composer.send() is None
    assert "email address" in composer.privacy_prompt()
    assert desk.outbox.waiting_count() == 0
    button = next(b for b in composer.findChildren(QPushButton) if b.text() == "Send as direct message")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    (reply,) = desk.outbox.replies(head)
    assert reply.visibility == "direct"


def test_composer_direct_message_replies_stay_direct(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    desk = make_desk(db, factory, clock)
    head = factory.add(kind=MentionKind.DIRECT)
    composer = make_composer(qtbot, desk, head)
    assert composer.visibility() == "direct"
    composer.editor.setPlainText("Your order number is AB-12345.")
    assert composer.send() is not None  # no privacy prompt in a DM
    assert desk.outbox.replies(head)[0].visibility == "direct"


def test_composer_draft_survives_switching_items_and_a_restart(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    desk = make_desk(db, factory, clock)
    first, second = factory.add(handle="ana"), factory.add(handle="bo")
    composer = make_composer(qtbot, desk, first)
    qtbot.keyClicks(composer.editor, "Half a thought")
    composer.set_mention(second)  # saves the pending draft
    assert composer.text() == ""
    composer.set_mention(first)
    assert composer.text() == "Half a thought"
    restarted = make_composer(qtbot, make_desk(db, factory, clock), first)
    assert restarted.text() == "Half a thought"


def test_main_window_status_bar_counts_waiting_replies(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: object
) -> None:
    desk = make_desk(db, factory, clock)
    head = factory.add()
    window = MainWindow(
        factory.service(), clock, settings=QSettings(f"{tmp_path}/w.ini", QSettings.Format.IniFormat), replies=desk
    )
    qtbot.addWidget(window)
    window.show()
    composer = window.composer
    assert composer is not None and composer.mention_id == head
    assert window.outbox_status_text() == ""
    composer.editor.setPlainText("On it!")
    composer.send()
    assert window.outbox_status_text() == "1 reply waiting to send"


def test_template_manager_creates_a_template_with_a_variant_that_the_composer_finds(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    desk = make_desk(db, factory, clock)
    composer = make_composer(qtbot, desk, factory.add(name="Ana Lima"))
    manager = composer.open_manager()
    assert any(name.startswith("Greeting") for name in manager.names())
    new_button = next(b for b in manager.findChildren(QPushButton) if b.text() == "New template")
    qtbot.mouseClick(new_button, Qt.MouseButton.LeftButton)
    manager.edit(name="Warranty", tags="warranty, repair", body="Hi {first_name}, your [product] is covered.",
                 variants={"mastodon": "Hi {first_name}! Your [product] is covered 🎉"})  # fmt: skip
    template_id = manager.save()
    assert template_id is not None and manager.error_text() == ""
    assert any(name.startswith("Warranty") for name in manager.names())
    composer.open_picker()
    assert composer.template_results()  # the search lists it
    composer.insert_template(template_id)
    assert composer.text() == "Hi Ana! Your [product] is covered 🎉"  # the Mastodon wording
    qtbot.mouseClick(new_button, Qt.MouseButton.LeftButton)
    manager.edit(name="Greeting", tags="", body="dup")
    assert manager.save() is None and "already" in manager.error_text()
    manager.close()


def test_composer_holding_template_queues_a_holding_reply_with_its_promise(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    desk = make_desk(db, factory, clock)
    head = factory.add()
    composer = make_composer(qtbot, desk, head)
    holding = next(t for t in desk.templates.all() if t.name == "Holding: need a little longer")
    composer.insert_template(holding.id)
    composer.editor.setPlainText(composer.text().replace("[what is taking longer]", "The courier check"))
    reply_id = composer.send()
    assert reply_id is not None
    (reply,) = desk.outbox.replies(head)
    assert reply.purpose == "holding"
    assert reply.holding_until == factory.mentions.rows_by_id([head])[head].due_at
    assert reply.template_id == holding.id
