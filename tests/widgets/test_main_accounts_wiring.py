"""The window start (widgets/app.py) wires File → Accounts… without opening the OS keyring; its first use does, once."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import qasync
import sqlite_utils
from pytestqt.qtbot import QtBot

from console.accounts.service import AccountService
from console.ports import LazySecretStore, MemorySecretStore
from console.queue import QueueService
from storage.account_admin import AccountAdmin
from storage.accounts import AccountRepo
from tests.fakes.clock import FakeClock
from widgets.accounts_dialog import AccountsDialog
from widgets.app import connect_accounts
from widgets.main_window import MainWindow


def test_accounts_dialog_opens_the_keyring_when_first_needed_and_warns_without_one(
    qtbot: QtBot, qloop: qasync.QEventLoop, db: sqlite_utils.Database, clock: FakeClock, service: QueueService
) -> None:
    window = MainWindow(service, clock)
    qtbot.addWidget(window)
    opened: list[MemorySecretStore] = []  # no OS keyring here: the session-only store

    def open_store() -> MemorySecretStore:
        opened.append(MemorySecretStore())
        return opened[-1]

    clients: list[httpx.AsyncClient] = []

    def account_service(*, keyring_warning: str | None = None) -> AccountService:
        clients.append(httpx.AsyncClient(trust_env=False, timeout=2.0))
        admin = AccountAdmin(db)
        return AccountService(AccountRepo(db), admin, opened[-1], clock, clients[-1], keyring_warning=keyring_warning)

    runtime = SimpleNamespace(
        secrets=LazySecretStore(open_store), manual_intake=lambda: None, account_service=account_service
    )
    connect_accounts(window, runtime)  # type: ignore[arg-type]
    assert opened == [] and clients == []

    window.accounts_action.trigger()
    window.accounts_action.trigger()
    dialogs = window.findChildren(AccountsDialog)
    assert len(dialogs) == 2
    assert len(opened) == 1 and len(clients) == 1  # one keyring look-up, one service for every opening
    assert all("session only" in dialog.keyring_banner.text() for dialog in dialogs)
    for client in clients:
        qloop.run_until_complete(client.aclose())
