"""The reply composer: templates by keyboard, blanks and Tab, phrase hints, counter, privacy prompt, drafts, outbox."""

from __future__ import annotations

import sqlite_utils
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLineEdit, QPushButton
from pytestqt.qtbot import QtBot

from console.model import MentionKind
from console.replies.desk import ReplyDesk, build_reply_desk, promise_time
from console.replies.templates import format_due_time
from storage.accounts import AccountRepo
from storage.replies import ReplyRepo
from storage.settings import AGENT_NAME, SettingsRepo
from storage.templates import TemplateRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.composer import DRAFT_SAVE_MS, Composer
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


def test_composer_saves_the_draft_when_hidden_so_no_timer_outlives_the_window(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    desk = make_desk(db, factory, clock)
    first = factory.add(handle="ana")
    composer = make_composer(qtbot, desk, first)
    composer.show()
    qtbot.keyClicks(composer.editor, "Typed just before quitting")
    composer.hide()  # the window hides before the runtime closes the database at quit
    assert desk.outbox.draft(first) == "Typed just before quitting"  # saved at once, not by a later timer
    db.close()
    qtbot.wait(DRAFT_SAVE_MS + 100)  # no draft timer is left to fire on the closed database


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


def test_composer_promises_a_time_still_ahead_on_a_breached_item(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    """Issue 19 #7: a holding reply on an item breached six minutes ago never promises a time already gone."""
    head = factory.add(posted_at=clock.now() - 36 * 60)  # first response due 30 minutes after the post
    desk = make_desk(db, factory, clock)
    composer = make_composer(qtbot, desk, head)
    due_at = factory.mentions.rows_by_id([head])[head].due_at
    assert due_at is not None and due_at < clock.now()
    holding = next(t for t in desk.templates.all() if t.name == "Holding: need a little longer")
    composer.insert_template(holding.id)
    promised = promise_time(due_at, clock.now())
    assert promised >= clock.now() + 10 * 60
    assert format_due_time(promised) in composer.text()
    assert format_due_time(due_at) not in composer.text()
    composer.editor.setPlainText(composer.text().replace("[what is taking longer]", "The courier check"))
    assert composer.send() is not None
    (reply,) = desk.outbox.replies(head)
    assert reply.holding_until == promised


def test_composer_blocks_a_promise_that_passed_while_the_reply_waited(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    desk = make_desk(db, factory, clock)
    head = factory.add()
    composer = make_composer(qtbot, desk, head)
    holding = next(t for t in desk.templates.all() if t.name == "Holding: need a little longer")
    composer.insert_template(holding.id)
    composer.editor.setPlainText(composer.text().replace("[what is taking longer]", "The courier check"))
    assert composer.can_send()
    clock.advance(2 * 3600)
    composer.editor.setPlainText(composer.text() + " ")
    assert not composer.can_send()
    assert "has passed" in composer.hints_text()


def test_composer_template_uses_the_name_given_after_the_item_was_opened(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    """Issue 19 #11: the welcome's name fills {agent_name} at once, not after a restart."""
    settings = SettingsRepo(db)
    desk = build_reply_desk(
        replies=ReplyRepo(db), templates=TemplateRepo(db), mentions=factory.mentions, accounts=AccountRepo(db),
        connectors={}, settings=settings, clock=clock,
    )  # fmt: skip
    composer = make_composer(qtbot, desk, factory.add(name="Ana Lima"))
    settings.set(AGENT_NAME, "Robin")  # the welcome dialog closes while the item is open
    apology = next(t for t in desk.templates.all() if t.name.startswith("Apology: our mistake"))
    composer.insert_template(apology.id)
    assert "Robin" in composer.text()
    assert "[agent name]" not in composer.text()


def test_composer_unknown_placeholder_is_a_blank_never_sent_literally(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    """Issue 19 #15: a template saved with {nope} asks for that blank instead of sending "{nope}"."""
    desk = make_desk(db, factory, clock)
    template_id = desk.templates.save(name="Typo", body="Hi {first_name}, see {nope}.")
    composer = make_composer(qtbot, desk, factory.add(name="Ana Lima"))
    composer.insert_template(template_id)
    assert composer.text() == "Hi Ana, see [nope]."
    assert not composer.can_send()
    assert "[nope]" in composer.hints_text()


def test_template_manager_warns_when_saving_an_unknown_placeholder(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    desk = make_desk(db, factory, clock)
    composer = make_composer(qtbot, desk, factory.add())
    manager = composer.open_manager()
    manager.edit(name="Typo", tags="", body="Hi {frist_name}, thanks!")
    assert manager.save() is not None
    assert "{frist_name}" in manager.error_text()
    assert "not a placeholder" in manager.error_text()
    manager.edit(name="Typo", tags="", body="Hi {first_name}, thanks!")
    assert manager.save() is not None
    assert manager.error_text() == ""
    manager.close()
