"""The conversation pane's extras: the whole thread fetched off the GUI loop, offline note, upstream marks,
Messenger window and YouTube quota; "deleted upstream" in the queue; "Sign in again" opens the Accounts dialog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import qasync
import sqlite_utils
from PySide6.QtCore import QModelIndex, Qt
from pytestqt.qtbot import QtBot

from console.accounts.service import AccountService
from console.channels.base import AccountRef
from console.channels.mastodon import MastodonConnector
from console.channels.youtube import QuotaUsage
from console.model import Health
from console.ports import MemorySecretStore
from console.queue import QueueService
from console.sync.health import AccountHealth, HealthSnapshot
from console.sync.threads import ThreadService
from storage.account_admin import AccountAdmin
from storage.accounts import AccountRepo
from storage.thread_context import ThreadContextRepo
from storage.upstream import UpstreamEdit, UpstreamRepo
from tests.fakes.clock import FakeClock
from tests.fakes.http_server import FakeHttpServer
from tests.widgets.factory import Factory
from widgets.accounts_dialog import AccountsDialog
from widgets.app import reauthenticate
from widgets.conversation import ConversationPane
from widgets.health import HealthStrip
from widgets.queue_model import Col, QueueModel


def status(sid: str, text: str, *, author: str, parent: str | None = None) -> dict[str, Any]:
    return {
        "id": sid,
        "created_at": "2025-12-31T23:50:00.000Z",
        "edited_at": None,
        "in_reply_to_id": parent,
        "visibility": "public",
        "url": f"https://other.example/@{author}/{sid}",
        "content": f"<p>{text}</p>",
        "account": {"id": author, "username": author, "acct": author, "display_name": author.title()},
    }


@pytest.fixture
def client(qloop: qasync.QEventLoop) -> Iterator[httpx.AsyncClient]:
    http = httpx.AsyncClient(trust_env=False, timeout=2.0)
    yield http
    qloop.run_until_complete(http.aclose())


def make_pane(qtbot: QtBot, service: QueueService, clock: FakeClock, threads: ThreadService | None) -> ConversationPane:
    pane = ConversationPane(service, clock, extras=threads)
    qtbot.addWidget(pane)
    pane.resize(560, 700)
    pane.show()
    qtbot.waitExposed(pane)
    return pane


def threads_for(factory: Factory, base_url: str, client: httpx.AsyncClient, clock: FakeClock) -> ThreadService:
    secrets = MemorySecretStore()
    secrets.set(f"mastodon:{factory.account.id}", "tok")
    ref = AccountRef(factory.account.id, "mastodon", "care", base_url)
    connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock)
    return ThreadService(ThreadContextRepo(factory.db), {factory.account.id: connector}, clock)


def test_the_whole_thread_is_fetched_without_blocking_and_cached(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    head = factory.add(text="@care same problem here", handle="carol", parent="10", external_id="20")
    with FakeHttpServer() as server:
        server.reply(json=status("20", "@care same problem here", author="carol", parent="10"), delay=0.2)
        server.reply(json={"ancestors": [status("10", "My parcel is lost", author="bob")], "descendants": []})
        threads = threads_for(factory, server.base_url, client, clock)
        pane = make_pane(qtbot, service, clock, threads)
        pane.show_mention(head)
        # The pane answers at once with what is stored and says that more is coming.
        assert "same problem here" in pane.thread_text()
        assert pane.note_text() == "Fetching the whole conversation from Mastodon…"
        qtbot.waitUntil(lambda: "My parcel is lost" in pane.thread_text(), timeout=3000)
    assert pane.note_text() == ""
    text = pane.thread_text()
    assert text.index("My parcel is lost") < text.index("same problem here")  # in thread order
    assert "from the channel" in text
    # Cached: another pane (a restart) shows it without a network.
    again = make_pane(qtbot, service, clock, ThreadService(ThreadContextRepo(factory.db), {}, clock))
    again.show_mention(head)
    assert "My parcel is lost" in again.thread_text() and again.note_text() == ""


def test_offline_shows_a_clear_note_and_the_stored_messages(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    head = factory.add(text="@care same problem here", handle="carol", parent="10", external_id="20")
    server = FakeHttpServer().start()
    base_url = server.base_url
    server.stop()
    pane = make_pane(qtbot, service, clock, threads_for(factory, base_url, client, clock))
    pane.show_mention(head)
    qtbot.waitUntil(lambda: pane.note_text().startswith("Offline:"), timeout=3000)
    assert "showing what is stored here" in pane.note_text()
    assert "same problem here" in pane.thread_text()
    pane.refresh()  # a sync report re-reads the item: no new attempt, the note stays
    assert pane.note_text().startswith("Offline:")


def test_deleted_and_edited_upstream_are_shown(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock
) -> None:
    head = factory.add(text="@care my parcel is lost (order 42)", external_id="10")
    follow_up = factory.new(text="@care hello??", parent="10", external_id="11", posted_at=clock.now() + 5)
    factory.store([follow_up])
    clock.advance(60)
    edit = UpstreamEdit("10", "@care my parcel is lost (order 42)", "2026-01-01T00:01:00Z", "{}")
    db = factory.db
    db.conn.execute("UPDATE mentions SET text = '@care my parcel is lost' WHERE external_id = '10'")
    UpstreamRepo(db).apply(factory.account.id, edited=[edit], deleted=["11"], at=int(clock.now()))
    pane = make_pane(qtbot, service, clock, ThreadService(ThreadContextRepo(db), {}, clock))
    pane.show_mention(head)
    text = pane.thread_text()
    assert "Edited upstream" in text and "Before the edit seen" in text and "my parcel is lost\n" in text + "\n"
    assert "Deleted upstream" in text and "hello??" in text  # the text is kept
    history = pane.history_texts()
    assert any("Edited by the customer on the channel" in line for line in history)


def test_queue_preview_says_deleted_upstream(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock, qtmodeltester: Any
) -> None:
    head = factory.add(text="@care never mind", external_id="10")
    UpstreamRepo(factory.db).apply(factory.account.id, edited=[], deleted=["10"], at=int(clock.now()))
    model = QueueModel(service, clock)
    model.reload()
    qtmodeltester.check(model)
    row = model.row_of(head)
    assert row is not None
    index = model.index(row, Col.PREVIEW, QModelIndex())
    assert index.data(Qt.ItemDataRole.DisplayRole) == "Deleted upstream · never mind"
    assert "deleted this on the channel" in index.data(Qt.ItemDataRole.ToolTipRole)


def test_messenger_window_counts_down_and_youtube_quota_shows(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock
) -> None:
    head = factory.add(text="Hi, is the shop open on Sunday?")
    closes = int(clock.now()) + 3600
    factory.db.conn.execute(
        "UPDATE mentions SET raw = ? WHERE id = ?", (json.dumps({"window_closes_at": closes}), head)
    )
    quota_holder = SimpleNamespace(quota=QuotaUsage("2026-01-01", 550))
    threads = ThreadService(ThreadContextRepo(factory.db), {factory.account.id: quota_holder}, clock)  # type: ignore[dict-item]
    pane = make_pane(qtbot, service, clock, threads)
    pane.show_mention(head)
    assert pane.note_text().startswith("Messenger reply window: 1:00:00 left")
    assert "Mastodon quota today: 9,450 of 10,000 units left" in pane.note_text()
    clock.advance(61)
    pane.on_tick(clock.now())
    assert pane.note_text().startswith("Messenger reply window: 58:59 left")
    clock.advance(3600)
    pane.on_tick(clock.now())
    assert pane.note_text().startswith("Messenger reply window closed at")


def test_sign_in_again_opens_the_accounts_dialog_on_a_real_account(
    qtbot: QtBot, qloop: qasync.QEventLoop, db: sqlite_utils.Database, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    accounts = AccountRepo(db)
    accounts.add(kind="mastodon", handle="other", base_url="https://a.example", now=0)
    row = accounts.add(kind="mastodon", handle="care", base_url="https://social.example", now=0)
    accounts.set_health(row.id, Health.AUTH_EXPIRED, "The token was revoked")
    service = AccountService(accounts, AccountAdmin(db), MemorySecretStore(), clock, client)
    strip = HealthStrip()
    qtbot.addWidget(strip)
    snapshot = HealthSnapshot(
        accounts=(
            AccountHealth(row.id, "mastodon", "care", "Care", False, Health.AUTH_EXPIRED, "revoked", None, None, 1, 0),
        ),
        offline_since=None,
        replies_waiting=0,
    )
    strip.set_snapshot(snapshot, clock.now())
    opened: list[AccountsDialog] = []
    window = SimpleNamespace(health_strip=strip)
    runtime = SimpleNamespace(accounts=accounts)

    def open_dialog(account_id: int) -> None:
        dialog = AccountsDialog(service, open_browser=lambda url: True)
        qtbot.addWidget(dialog)
        dialog.start_reauth(account_id)
        opened.append(dialog)

    strip.reauthenticate_requested.connect(
        lambda account_id: reauthenticate(runtime, window, account_id, open_dialog=open_dialog)  # type: ignore[arg-type]
    )
    strip.reauth_button(row.id).click()
    (dialog,) = opened
    selected = dialog.selected()
    assert selected is not None and selected.id == row.id
    assert dialog.handle.text() == "care" and dialog.base_url.text() == "https://social.example"
    assert "for @care, then add it again" in dialog.status.text()
    assert strip.message_text() == "Sign in to @care again in the Accounts dialog."
    assert strip.reauth_button(row.id).accessibleName() == "Sign in again to @care"
    assert not dialog.start_reauth(999) and "no longer configured" in dialog.status.text()


def test_main_conversation_controls_have_accessible_names(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock
) -> None:
    from PySide6.QtWidgets import QFrame, QLabel, QListWidget, QTextBrowser

    pane = make_pane(qtbot, service, clock, None)
    pane.show_mention(factory.add())
    names = {
        pane.findChild(QTextBrowser, "threadView").accessibleName(),  # type: ignore[union-attr]
        pane.findChild(QListWidget, "historyList").accessibleName(),  # type: ignore[union-attr]
        pane.findChild(QFrame, "deadlineBox").accessibleName(),  # type: ignore[union-attr]
        pane.findChild(QLabel, "threadNote").accessibleName(),  # type: ignore[union-attr]
    }
    assert names == {"Conversation thread", "Item history", "Deadlines", "Conversation note"}
    assert pane.open_button().accessibleDescription().startswith("Opens this item on its channel")


@pytest.mark.parametrize(
    ("kind", "added", "expected"),
    [
        ("bluesky", True, "Added Bluesky account @brand.test (Brand). The app password works; replies are limited"),
        ("x", False, "X account @brand is connected as @brand (Brand). X bills every post read"),
        ("youtube", True, "Added YouTube comments account Brand. Comments on the channel's videos are read"),
        ("facebook", False, "Facebook Page account @brand is connected as @brand (Brand). The Page token works"),
        ("manual", True, "Manual intake is ready"),
        ("carrier-pigeon", False, "@brand is connected as @brand."),
    ],
)
def test_verification_messages_say_what_the_channel_allows(kind: str, added: bool, expected: str) -> None:
    from widgets.account_notes import verified_message

    handle = "brand.test" if kind == "bluesky" else "brand"
    assert verified_message(kind, handle, handle, "Brand", added=added).startswith(expected)


SHORTENED_HTML = (
    '<p>Tracking: <a href="https://track.example/parcel/123456789/details?lang=en" rel="nofollow noopener" '
    'target="_blank"><span class="invisible">https://</span><span class="ellipsis">track.example/parcel/1234'
    '</span><span class="invisible">56789/details?lang=en</span></a> '
    '<span class="h-card"><a href="https://social.example/@care" class="u-url mention">@<span>care</span></a></span>'
    ' <a href="javascript:alert(1)">click</a></p>'
)


def test_link_targets_read_the_real_target_of_shortened_links() -> None:
    from console.channels.link_targets import link_targets

    assert link_targets(SHORTENED_HTML) == [
        ("track.example/parcel/1234…", "https://track.example/parcel/123456789/details?lang=en")
    ]
    assert link_targets("<p><a href='https://x'>unclosed <span class='invisible'>") == []
    assert link_targets("<![if junk <a href=") == []


def test_hover_on_a_shortened_link_shows_the_real_target(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock
) -> None:
    from PySide6.QtCore import QEvent, QPoint, QPointF
    from PySide6.QtGui import QMouseEvent, QTextCursor
    from PySide6.QtWidgets import QApplication, QTextBrowser

    from console.channels.mastodon import html_to_text

    text = html_to_text(SHORTENED_HTML)
    assert "track.example/parcel/1234…" in text
    head = factory.add(text=text)
    factory.db.conn.execute("UPDATE mentions SET raw = ? WHERE id = ?", (json.dumps({"content": SHORTENED_HTML}), head))
    pane = make_pane(qtbot, service, clock, ThreadService(ThreadContextRepo(factory.db), {}, clock))
    pane.show_mention(head)
    browser = pane.findChild(QTextBrowser, "threadView")
    assert isinstance(browser, QTextBrowser)
    found = browser.document().find("track.example/parcel/1234")
    assert not found.isNull()
    cursor = QTextCursor(found)
    cursor.setPosition(found.selectionStart() + 3)
    point = browser.cursorRect(cursor).center()
    target = "https://track.example/parcel/123456789/details?lang=en"
    assert browser.anchorAt(point) == target
    viewport = browser.viewport()
    move = QMouseEvent(
        QEvent.Type.MouseMove,
        QPointF(point),
        QPointF(viewport.mapToGlobal(point)),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(viewport, move)
    qtbot.waitUntil(lambda: pane.hovered_link() == target, timeout=2000)
    assert browser.anchorAt(point + QPoint(0, 200)) == ""  # the rest of the text is not a link
    # "@care" (a mention) and the javascript: anchor are not links.
    found = browser.document().find("care")
    cursor = QTextCursor(found)
    cursor.setPosition(found.selectionStart() + 1)
    assert browser.anchorAt(browser.cursorRect(cursor).center()) == ""


def test_an_item_shown_before_the_loop_runs_is_fetched_once_it_does(
    qtbot: QtBot,
    qloop: qasync.QEventLoop,
    factory: Factory,
    service: QueueService,
    clock: FakeClock,
    client: httpx.AsyncClient,
) -> None:
    import asyncio

    head = factory.add(text="@care same problem here", handle="carol", parent="10", external_id="20")
    with FakeHttpServer() as server:
        server.reply(json=status("20", "@care same problem here", author="carol", parent="10"))
        server.reply(json={"ancestors": [status("10", "My parcel is lost", author="bob")], "descendants": []})
        pane = make_pane(qtbot, service, clock, threads_for(factory, server.base_url, client, clock))
        asyncio.events._set_running_loop(None)  # as in main.py: the window is built before qasync runs
        try:
            pane.show_mention(head)
        finally:
            asyncio.events._set_running_loop(qloop)
        qtbot.waitUntil(lambda: "My parcel is lost" in pane.thread_text(), timeout=3000)
    assert pane.note_text() == ""


def test_without_any_loop_the_pane_shows_what_is_stored(
    qtbot: QtBot, factory: Factory, service: QueueService, clock: FakeClock
) -> None:
    head = factory.add(text="@care same problem here", handle="carol", parent="10", external_id="20")
    never_called = object()
    threads = ThreadService(ThreadContextRepo(factory.db), {factory.account.id: never_called}, clock)  # type: ignore[dict-item]
    pane = make_pane(qtbot, service, clock, threads)
    pane.show_mention(head)
    qtbot.waitUntil(lambda: pane.note_text() == "", timeout=2000)
    qtbot.wait(50)  # no retry storm: the note stays empty
    assert pane.note_text() == "" and "same problem here" in pane.thread_text()
