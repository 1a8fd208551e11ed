"""The Accounts dialog against a fake Bluesky PDS and forum on loopback; the manual intake dialog."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import qasync
import sqlite_utils
from PySide6.QtCore import QUrl
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from console.accounts.service import AccountError, AccountService, AccountView
from console.model import Health
from console.ports import MemorySecretStore
from console.sla.bands import SlaPolicy
from console.sync.manual import ManualIntake
from storage.account_admin import AccountAdmin
from storage.accounts import AccountRepo
from storage.mentions import MentionRepo, QueueView
from tests.fakes.bluesky_server import FakeBlueskyServer
from tests.fakes.clock import FakeClock
from widgets.accounts_dialog import AccountsDialog
from widgets.manual_intake import ManualIntakeDialog, hand_off_reply


@pytest.fixture
def bluesky() -> Iterator[FakeBlueskyServer]:
    with FakeBlueskyServer() as server:
        yield server


class FakeBrowser:
    """The dialog's ``open_browser``: records the pages it was asked to open; ``available=False`` opens none."""

    def __init__(self) -> None:
        self.available = True
        self.opened: list[str] = []

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        return self.available


@pytest.fixture
def browser() -> FakeBrowser:
    return FakeBrowser()


@pytest.fixture
def accounts(
    qloop: qasync.QEventLoop, db: sqlite_utils.Database, clock: FakeClock, secrets: MemorySecretStore
) -> Iterator[AccountService]:
    client = httpx.AsyncClient(trust_env=False, timeout=2.0)
    yield AccountService(
        AccountRepo(db),
        AccountAdmin(db),
        secrets,
        clock,
        client,
        keyring_warning="No OS keyring: kept for this session only.",
    )
    qloop.run_until_complete(client.aclose())


@pytest.fixture
def dialog(qtbot: QtBot, accounts: AccountService, browser: FakeBrowser) -> AccountsDialog:
    widget = AccountsDialog(accounts, open_browser=browser)
    qtbot.addWidget(widget)
    return widget


def test_add_bluesky_verifies_before_saving(
    dialog: AccountsDialog, bluesky: FakeBlueskyServer, qtbot: QtBot, secrets: MemorySecretStore
) -> None:
    assert dialog.keyring_banner.isVisibleTo(dialog) and "session only" in dialog.keyring_banner.text()
    dialog.kind.setCurrentIndex(dialog.kind.findData("bluesky"))
    assert dialog.base_url.text() == "https://bsky.social"
    dialog.base_url.setText(bluesky.base_url)
    dialog.handle.setText("brand.test")
    dialog.secret.setText("wrong-password")
    dialog.add_button.click()
    qtbot.waitUntil(lambda: "not accepted" in dialog.status.text())
    assert dialog.table.rowCount() == 0 and dialog.secret.text() == "wrong-password"  # kept, to be corrected
    dialog.secret.setText("app-pass-1234")
    with qtbot.waitSignal(dialog.accounts_changed):
        dialog.add_button.click()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1)
    assert dialog.secret.text() == ""  # saved in the secret store: the field forgets it
    assert dialog.table.item(0, 1).text() == "@brand.test"
    assert dialog.table.item(0, 3).text() == "Connected"
    assert secrets.get("bluesky:1") == "app-pass-1234"

    dialog.table.selectRow(0)
    dialog.toggle_button.click()
    assert dialog.table.item(0, 4).text() == "Disabled" and dialog.toggle_button.text() == "Enable"
    dialog.verify_button.click()
    qtbot.waitUntil(lambda: "connected as @brand.test" in dialog.status.text())

    dialog.remove_button.click()
    box = dialog.remove_box
    assert isinstance(box, QMessageBox) and "0 stored messages" in box.informativeText()
    keep = next(b for b in box.buttons() if b.text() == "Keep its items")
    keep.click()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 0)
    assert secrets.get("bluesky:1") is None


def test_x_explains_the_paid_tier_and_reply_rule(dialog: AccountsDialog) -> None:
    dialog.kind.setCurrentIndex(dialog.kind.findData("x"))
    note = dialog.note.text()
    assert "paid" in note and "mention your account" in note and "127.0.0.1:8765/callback" in note
    assert dialog.add_button.text() == "Sign in with the browser"
    assert not dialog.handle.isVisibleTo(dialog)


def test_discourse_offers_browser_sign_in_next_to_the_key(
    dialog: AccountsDialog, accounts: AccountService, browser: FakeBrowser, qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    assert not dialog.browser_button.isVisibleTo(dialog)  # only for Discourse
    dialog.kind.setCurrentIndex(dialog.kind.findData("discourse"))
    assert dialog.browser_button.isVisibleTo(dialog) and dialog.secret.isVisibleTo(dialog)
    assert dialog.add_button.text() == "Verify and add"  # pasting a key stays
    assert "127.0.0.1:8765/discourse/callback" in dialog.note.text()
    assert "allowed_user_api_auth_redirects" in dialog.note.text()
    calls: list[tuple[str, Callable[[str], object]]] = []

    async def connect(base_url: str, *, open_browser: Callable[[str], object]) -> AccountView:
        calls.append((base_url, open_browser))
        return AccountView(
            1, "discourse", "Discourse forum", "brand", base_url, "Brand Support", Health.OK, "", True, 0
        )

    monkeypatch.setattr(accounts, "connect_discourse_browser", connect)
    dialog.base_url.setText("https://forum.example")
    with qtbot.waitSignal(dialog.accounts_changed):
        dialog.browser_button.click()
    ((base_url, open_browser),) = calls
    assert base_url == "https://forum.example"
    assert open_browser("https://forum.example/user-api-key/new") is True  # the sign-in page opens in the browser
    assert browser.opened == ["https://forum.example/user-api-key/new"]
    qtbot.waitUntil(lambda: "@brand" in dialog.status.text())
    assert dialog.add_box.isEnabled()

    async def refuse(base_url: str, *, open_browser: object) -> AccountView:
        raise AccountError("ask its admin to add it to allowed_user_api_auth_redirects")

    monkeypatch.setattr(accounts, "connect_discourse_browser", refuse)
    dialog.browser_button.click()
    qtbot.waitUntil(lambda: "allowed_user_api_auth_redirects" in dialog.status.text())
    dialog.kind.setCurrentIndex(dialog.kind.findData("bluesky"))
    assert not dialog.browser_button.isVisibleTo(dialog)


def test_sign_in_without_a_browser_puts_the_address_on_the_clipboard_and_keeps_waiting(
    dialog: AccountsDialog, accounts: AccountService, browser: FakeBrowser, qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    page = "https://forum.example/user-api-key/new?nonce=n1"
    browser.available = False  # no browser registered on this machine
    came_back = asyncio.Event()
    opened: list[object] = []

    async def connect(base_url: str, *, open_browser: Callable[[str], object]) -> AccountView:
        opened.append(await asyncio.to_thread(open_browser, page))  # as the sign-in listener does
        await came_back.wait()  # the agent pastes the address into a browser and approves
        return AccountView(1, "discourse", "Discourse forum", "brand", base_url, "Brand", Health.OK, "", True, 0)

    monkeypatch.setattr(accounts, "connect_discourse_browser", connect)
    dialog.kind.setCurrentIndex(dialog.kind.findData("discourse"))
    dialog.base_url.setText("https://forum.example")
    dialog.browser_button.click()
    qtbot.waitUntil(lambda: "on the clipboard" in dialog.status.text())
    assert QGuiApplication.clipboard().text() == page
    qtbot.waitUntil(lambda: opened == [True])  # the sign-in goes on waiting instead of failing (its worker
    # thread returns after it queued the clipboard message, so the two may land in either order)
    assert not dialog.add_box.isEnabled()
    came_back.set()
    qtbot.waitUntil(lambda: "@brand" in dialog.status.text())


def test_manual_intake_dialog(qtbot: QtBot, db: sqlite_utils.Database, clock: FakeClock) -> None:
    intake = ManualIntake(MentionRepo(db), AccountRepo(db), clock, SlaPolicy().plan)
    dialog = ManualIntakeDialog(intake)
    qtbot.addWidget(dialog)
    dialog.link.setText("not a link")
    dialog.text.setPlainText("where is my parcel?")
    dialog.add_button.click()
    assert "https://" in dialog.status.text() and dialog.text.toPlainText() == "where is my parcel?"
    dialog.link.setText("https://x.com/cust/status/1")
    with qtbot.waitSignal(dialog.item_added) as added:
        dialog.add_button.click()
    assert MentionRepo(db).queue_ids(QueueView.OPEN) == [added.args[0]]
    assert dialog.link.text() == ""


def test_hand_off_copies_and_opens(qtbot: QtBot) -> None:
    opened: list[Any] = []
    hand_off_reply("https://x.com/cust/status/1", "Thanks for waiting!", open_url=opened.append)
    assert QGuiApplication.clipboard().text() == "Thanks for waiting!"
    assert opened == [QUrl("https://x.com/cust/status/1")]


def test_add_with_an_unreachable_address_says_so_and_keeps_what_was_typed(dialog: AccountsDialog, qtbot: QtBot) -> None:
    """Issue 19 #13: a mistyped server address is not a refused credential, and shows no exception text."""
    with socket.socket() as probe:  # a loopback port nobody listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dialog.kind.setCurrentIndex(dialog.kind.findData("bluesky"))
    dialog.base_url.setText(f"http://127.0.0.1:{port}")
    dialog.handle.setText("brand.test")
    dialog.secret.setText("app-pass-1234")
    dialog.add_button.click()
    qtbot.waitUntil(lambda: "could not be reached" in dialog.status.text())
    status = dialog.status.text()
    assert "check the address" in status
    assert "not accepted" not in status and "Error" not in status and "Errno" not in status
    assert dialog.secret.text() == "app-pass-1234"
    assert dialog.base_url.text() == f"http://127.0.0.1:{port}" and dialog.handle.text() == "brand.test"
    assert dialog.table.rowCount() == 0
