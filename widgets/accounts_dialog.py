"""The Accounts dialog: add an account per channel (verified before saving), health, enable/disable, remove."""

from __future__ import annotations

import asyncio
import webbrowser
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.accounts.discourse_auth import redirect_uri as discourse_redirect_uri
from console.accounts.service import DISCOURSE_REDIRECT_PORT, X_REDIRECT_PORT, AccountError, AccountService, AccountView
from console.channels import CHANNELS, ChannelInfo, ChannelKind, SecretKind
from console.channels.x import ACCESS_NOTE as X_ACCESS_NOTE
from console.model import Health
from console.wording import count
from widgets.account_notes import verified_message

__all__ = ["COLUMNS", "AccountsDialog", "open_accounts_dialog"]

COLUMNS = ("Channel", "Account", "Server", "Health", "Sync", "Items")
_HEALTH_TEXT = {
    Health.OK: "Connected",
    Health.RATE_LIMITED: "Rate limited",
    Health.FAILING: "Failing",
    Health.AUTH_EXPIRED: "Sign-in expired",
}


def health_text(view: AccountView) -> str:
    """The Health column: a word, and the reason when something is wrong."""
    text = _HEALTH_TEXT.get(view.health, str(view.health.value).replace("_", " ").capitalize())
    if view.health is not Health.OK and view.health_reason:
        text += f": {view.health_reason}"
    return text


class AccountsDialog(QDialog):
    """Lists accounts and adds new ones. Every network step runs as a task on the qasync loop (STYLE B2)."""

    accounts_changed = Signal()
    #: A sign-in page no browser would open (emitted from the sign-in's worker thread; shown on the GUI thread).
    _unopened = Signal(str)

    def __init__(
        self,
        service: AccountService,
        *,
        open_browser: Callable[[str], object] = webbrowser.open,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("accountsDialog")
        self.setWindowTitle("Accounts")
        self.resize(860, 620)
        self._service = service
        self._open_browser = open_browser
        self._unopened.connect(self._show_unopened)
        self._tasks: set[asyncio.Task[None]] = set()
        self._views: list[AccountView] = []

        layout = QVBoxLayout(self)
        self.keyring_banner = QLabel(service.keyring_warning or "")
        self.keyring_banner.setObjectName("keyringBanner")
        self.keyring_banner.setWordWrap(True)
        self.keyring_banner.setVisible(bool(service.keyring_warning))
        self.keyring_banner.setStyleSheet(
            "background:#FDF1D6;border:1px solid #F0D29A;color:#7A4B00;padding:6px;border-radius:4px;"
        )
        layout.addWidget(self.keyring_banner)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table, 1)

        actions = QHBoxLayout()
        self.verify_button = QPushButton("Verify")
        self.toggle_button = QPushButton("Disable")
        self.reauth_button = QPushButton("Re-authenticate")
        self.remove_button = QPushButton("Remove…")
        for button in (self.verify_button, self.toggle_button, self.reauth_button, self.remove_button):
            actions.addWidget(button)
        actions.addStretch(1)
        layout.addLayout(actions)

        self.add_box = QGroupBox("Add an account")
        form = QFormLayout(self.add_box)
        self.kind = QComboBox()
        for info in CHANNELS.values():
            self.kind.addItem(info.label, info.kind.value)
        self.base_url = QLineEdit()
        self.handle = QLineEdit()
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.client_secret = QLineEdit()
        self.client_secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.client_secret.setPlaceholderText("Google desktop clients have one; it is not confidential")
        self.note = QLabel()
        self.note.setObjectName("channelNote")
        self.note.setWordWrap(True)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.add_button = QPushButton("Verify and add")
        self.add_button.setDefault(True)
        # Discourse: a User API key approved in the browser, next to pasting a key.
        self.browser_button = QPushButton("Sign in with the browser")
        self.browser_button.setObjectName("discourseBrowserSignIn")
        form.addRow("Channel", self.kind)
        form.addRow("Server", self.base_url)
        form.addRow("Account", self.handle)
        form.addRow("Secret", self.secret)
        form.addRow("Client secret", self.client_secret)
        form.addRow(self.note)
        add_row = QHBoxLayout()
        add_row.addStretch(1)
        add_row.addWidget(self.browser_button)
        add_row.addWidget(self.add_button)
        form.addRow(add_row)
        self._form = form
        layout.addWidget(self.add_box)

        self.status = QLabel()
        self.status.setObjectName("accountsStatus")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.close)
        layout.addWidget(self.buttons)

        self.kind.currentIndexChanged.connect(self._on_kind_changed)
        self.add_button.clicked.connect(self._on_add_clicked)
        self.browser_button.clicked.connect(self._on_browser_clicked)
        self.verify_button.clicked.connect(self._on_verify_clicked)
        self.toggle_button.clicked.connect(self._on_toggle_clicked)
        self.reauth_button.clicked.connect(self._on_reauth_clicked)
        self.remove_button.clicked.connect(self._on_remove_clicked)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self._on_kind_changed()
        self.refresh()

    # -- state --------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the accounts list, keeping the selection."""
        selected = self.selected()
        self._views = self._service.list()
        self.table.setRowCount(len(self._views))
        for row, view in enumerate(self._views):
            values = (
                view.label,
                f"@{view.handle}" if view.kind != ChannelKind.MANUAL else "—",
                view.base_url,
                health_text(view),
                "Enabled" if view.enabled else "Disabled",
                str(view.items),
            )
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                if column == 3 and view.health is not Health.OK:
                    item.setForeground(QColor("#B92E2E"))
                elif column == 4 and not view.enabled:
                    item.setForeground(QColor("#6A737D"))
                self.table.setItem(row, column, item)
            if selected is not None and view.id == selected.id:
                self.table.selectRow(row)
        self.table.resizeColumnsToContents()
        self._update_buttons()

    def selected(self) -> AccountView | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or rows[0].row() >= len(self._views):
            return None
        return self._views[rows[0].row()]

    def channel(self) -> ChannelInfo:
        return CHANNELS[ChannelKind(self.kind.currentData())]

    @Slot()
    def _update_buttons(self) -> None:
        view = self.selected()
        has = view is not None
        pollable = has and view is not None and view.kind != ChannelKind.MANUAL
        self.verify_button.setEnabled(pollable)
        self.reauth_button.setEnabled(pollable)
        self.toggle_button.setEnabled(pollable)
        self.remove_button.setEnabled(has)
        self.toggle_button.setText("Enable" if view is not None and not view.enabled else "Disable")

    @Slot()
    def _on_kind_changed(self) -> None:
        info = self.channel()
        oauth = info.secret is SecretKind.OAUTH
        manual = info.secret is SecretKind.NONE
        self.base_url.setText(info.default_base_url)
        self._set_row_visible(self.base_url, not manual and not oauth, info.base_url_label)
        self._set_row_visible(self.handle, bool(info.handle_label) and not oauth, info.handle_label)
        self._set_row_visible(self.secret, not manual, info.secret_label)
        # An OAuth client id is not a secret; tokens, passwords and keys are never shown.
        self.secret.setEchoMode(QLineEdit.EchoMode.Normal if oauth else QLineEdit.EchoMode.Password)
        self._set_row_visible(self.client_secret, info.kind is ChannelKind.YOUTUBE, "Client secret")
        self.handle.clear()
        self.secret.clear()
        self.client_secret.clear()
        note = X_ACCESS_NOTE if info.kind is ChannelKind.X else info.note
        if oauth:
            port = (
                f" Register http://127.0.0.1:{X_REDIRECT_PORT}/callback as the callback."
                if info.kind is ChannelKind.X
                else ""
            )
            note += f" Signing in opens your browser; Care Console listens on 127.0.0.1 for the answer.{port}"
        discourse = info.kind is ChannelKind.DISCOURSE
        if discourse:
            note += (
                " Or sign in with the browser as the brand user (a moderator is enough, no admin key): the"
                f" forum's admin first adds {discourse_redirect_uri(DISCOURSE_REDIRECT_PORT)} to the site"
                " setting allowed_user_api_auth_redirects."
            )
        self.note.setText(note)
        self.browser_button.setVisible(discourse)
        self.add_button.setText(
            "Sign in with the browser" if oauth else ("Add manual intake" if manual else "Verify and add")
        )

    def _set_row_visible(self, field: QWidget, visible: bool, label: str) -> None:
        title = self._form.labelForField(field)
        if isinstance(title, QLabel):
            title.setText(label)
            title.setVisible(visible)
        field.setVisible(visible)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color:#B92E2E;" if error else "color:#17663A;")

    def _run(self, busy: str, work: Coroutine[Any, Any, str], *, on_success: Callable[[], None] | None = None) -> None:
        """Run a network step on the loop; its sentence (or error) lands in the status line. What the agent
        typed stays until the step succeeds (``on_success`` clears it), so a typo is fixed, not retyped."""
        self._say(busy)
        self.add_box.setEnabled(False)

        async def runner() -> None:
            try:
                message = await work
            except AccountError as exc:
                self._say(str(exc), error=True)
            else:
                if on_success is not None:
                    on_success()
                self._say(message)
                self.accounts_changed.emit()
            finally:
                self.add_box.setEnabled(True)
                self.refresh()

        task = asyncio.get_running_loop().create_task(runner(), name="accounts-dialog")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _open_or_show(self, url: str) -> bool:
        """Open a sign-in page; where no browser opens, put its address on the clipboard and keep waiting.

        Runs on the sign-in's worker thread. The sign-in keeps listening for the browser to come back, so
        the agent can paste the address into any browser on this computer and finish there.
        """
        try:
            opened = self._open_browser(url)
        except Exception:  # no browser registered, or it failed to start: the same for the agent
            opened = False
        if opened is False:
            self._unopened.emit(url)
        return True

    @Slot(str)
    def _show_unopened(self, url: str) -> None:
        QGuiApplication.clipboard().setText(url)
        self._say(
            "No browser could be opened. The sign-in address is on the clipboard: paste it into a browser on "
            "this computer and sign in there; this window waits for it."
        )

    # -- actions ------------------------------------------------------------------------------------

    @Slot()
    def _on_add_clicked(self) -> None:
        info = self.channel()
        service = self._service
        secret = self.secret.text()
        if info.kind is ChannelKind.X:

            async def add_x() -> str:
                view = await service.connect_x(secret, open_browser=self._open_or_show)
                return verified_message(view.kind, view.handle, view.handle, view.display_name, added=True)

            self._run("Waiting for the X sign-in in your browser…", add_x(), on_success=self._clear_secrets)
        elif info.kind is ChannelKind.YOUTUBE:
            client_secret = self.client_secret.text()

            async def add_youtube() -> str:
                view = await service.connect_youtube(secret, client_secret, open_browser=self._open_or_show)
                return verified_message(view.kind, view.handle, view.handle, view.display_name, added=True)

            self._run("Waiting for the Google sign-in in your browser…", add_youtube(), on_success=self._clear_secrets)
        else:
            base_url, handle = self.base_url.text(), self.handle.text()

            async def add() -> str:
                view = await service.add(info.kind, handle=handle, base_url=base_url, secret=secret)
                return verified_message(view.kind, view.handle, view.handle, view.display_name, added=True)

            self._run(f"Checking the {info.label} credential…", add(), on_success=self._clear_secrets)

    def _clear_secrets(self) -> None:
        self.secret.clear()
        self.client_secret.clear()

    @Slot()
    def _on_browser_clicked(self) -> None:
        """Discourse: ask the forum for a User API key in the browser (no key to paste, no username to type)."""
        service, base_url = self._service, self.base_url.text()

        async def sign_in() -> str:
            view = await service.connect_discourse_browser(base_url, open_browser=self._open_or_show)
            return verified_message(view.kind, view.handle, view.handle, view.display_name, added=True)

        self._run("Waiting for the forum sign-in in your browser…", sign_in())
        self.secret.clear()

    @Slot()
    def _on_verify_clicked(self) -> None:
        view = self.selected()
        if view is None:
            return
        service = self._service

        async def verify() -> str:
            identity = await service.verify(view.id)
            return verified_message(view.kind, view.handle, identity.handle, identity.display_name, added=False)

        self._run(f"Checking @{view.handle}…", verify())

    @Slot()
    def _on_toggle_clicked(self) -> None:
        view = self.selected()
        if view is None:
            return
        self._service.set_enabled(view.id, not view.enabled)
        self._say(f"@{view.handle} {'paused' if view.enabled else 'syncing again'}.")
        self.accounts_changed.emit()
        self.refresh()

    def start_reauth(self, account_id: int) -> bool:
        """Select this account and pre-fill the form to sign it in again ("Sign in again" in the health strip).

        Returns:
            False when the account is not listed (removed meanwhile).
        """
        for row, view in enumerate(self._views):
            if view.id == account_id:
                self.table.selectRow(row)
                self._on_reauth_clicked()
                return True
        self._say("This account is no longer configured.", error=True)
        return False

    @Slot()
    def _on_reauth_clicked(self) -> None:
        """Pre-fill the add form for this account: adding it again verifies and replaces its credential."""
        view = self.selected()
        if view is None:
            return
        index = self.kind.findData(view.kind)
        if index >= 0:
            self.kind.setCurrentIndex(index)
        if self.channel().secret is not SecretKind.OAUTH:
            self.base_url.setText(view.base_url)
            self.handle.setText(view.handle)
        self.secret.setFocus()
        again = " (or sign in with the browser)" if view.kind == ChannelKind.DISCOURSE else ""
        self._say(f"Enter the new {self.channel().secret_label.lower()} for @{view.handle}, then add it again{again}.")

    @Slot()
    def _on_remove_clicked(self) -> None:
        view = self.selected()
        if view is None:
            return
        box = QMessageBox(self)
        box.setObjectName("removeAccountBox")
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Remove account")
        box.setText(f"Remove {view.label} @{view.handle}?")
        box.setInformativeText(
            f"It has {view.items} stored messages. Keep them in the archive and reports, or delete them too? "
            "Its credential is removed from the keyring either way."
        )
        keep = box.addButton("Keep its items", QMessageBox.ButtonRole.AcceptRole)
        delete = box.addButton("Delete its items", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.remove_box = box

        def done(_result: int) -> None:
            clicked = box.clickedButton()
            if clicked not in (keep, delete):
                return
            self.remove(view, delete_items=clicked is delete)

        box.finished.connect(done)
        box.open()  # never exec() (STYLE B2)

    def remove(self, view: AccountView, *, delete_items: bool) -> None:
        """Remove an account (the confirmation box calls this)."""
        try:
            deleted = self._service.remove(view.id, delete_items=delete_items)
        except AccountError as exc:
            self._say(str(exc), error=True)
            return
        detail = f"{count(deleted, 'message')} deleted" if delete_items else "its messages are kept"
        self._say(f"Removed @{view.handle}; {detail}.")
        self.accounts_changed.emit()
        self.refresh()


def open_accounts_dialog(
    parent: QWidget,
    service: AccountService,
    on_changed: Callable[[], None] | None = None,
    *,
    reauth_account: int | None = None,
) -> AccountsDialog:
    """Open the dialog non-modally (STYLE B2); with ``reauth_account``, on that account, ready to sign in again."""
    dialog = AccountsDialog(service, parent=parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    if on_changed is not None:
        dialog.accounts_changed.connect(on_changed)
    dialog.open()
    if reauth_account is not None:
        dialog.start_reauth(reauth_account)
    return dialog
