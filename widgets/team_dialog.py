"""File → Team…: where this copy stands in its team, and joining, hosting, inviting and leaving (issue 22 item 1).

Every operation talks to a server and may take seconds (hosting starts PostgreSQL): each runs as a task on the
qasync loop with a busy bar, the buttons that would start another wait, and the window never blocks. A failure is
said in plain words under the form, which keeps what was typed (the password too, until the dialog closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from typing_extensions import override

from console.ports import Clock
from console.wording import count
from widgets.claims import TeamPort, TeamStatusLike
from widgets.theme import local_time

if TYPE_CHECKING:
    from console.team.service import TeamAdmin

log = logging.getLogger(__name__)

SOLO_TEXT = (
    "You work alone on this computer. Join a team to share one queue with colleagues: each of you keeps "
    "working on your own copy, even offline."
)
MODE_WORDS = {"live": "Live", "polling": "Polling", "offline": "Offline", "connecting": "Connecting"}
ROLES = ("agent", "supervisor")


class HostedLike(Protocol):
    """A team server started on this computer (``console.team.host``)."""

    @property
    def connection_string(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...


class TeamSetup(Protocol):
    """What File → Team… asks of the team service; the composition root adapts ``TeamService`` to it.

    The coroutines raise with a message in plain words (never a password) when they cannot do it.
    """

    def status(self) -> TeamStatusLike | None: ...  # None: solo
    async def online_members(self) -> Sequence[str]: ...
    async def join(self, dsn: str, password: str | None, member: str) -> str: ...  # what happened, plain words
    async def host(self, member: str) -> HostedLike: ...
    async def leave(self) -> str: ...
    async def invite(self, name: str, role: str) -> str: ...  # the one-time connection string to give them


@dataclass(frozen=True, slots=True)
class PendingStatus:
    """A team joined (or hosted) in this session whose connection starts with the next start of the app."""

    member: str
    role: str
    server: str
    since: float
    mode: str = "connecting"
    reason: str = "restart Care Console to connect"
    to_push: int = 0
    conflicts: int = 0


class AdminSetup:
    """File → Team… over ``TeamAdmin`` (the operations ``care-console team`` shares) and the running team.

    The team connection itself (``Runtime.team``) is built when the app starts: after a join or a host the dialog
    says to restart, and after leaving the copy works solo from the next start.
    """

    def __init__(self, admin: TeamAdmin, running: Callable[[], TeamPort | None], clock: Clock) -> None:
        self._admin = admin
        self._running = running
        self._clock = clock

    def status(self) -> TeamStatusLike | None:
        team = self._running()
        config = self._admin.config
        if config is None:
            return None
        if team is not None:
            return team.status()
        return PendingStatus(config.member, config.role, config.server, self._clock.now())

    async def online_members(self) -> Sequence[str]:
        if self._admin.config is None:
            return []
        return await self._admin.online_members()

    async def join(self, dsn: str, password: str | None, member: str) -> str:
        config = await self._admin.join(dsn, password, member)
        return f"You joined the team on {config.server} as {config.member}. Restart Care Console to share the queue."

    async def host(self, member: str) -> HostedLike:
        return await self._admin.host(member)

    async def leave(self) -> str:
        left = self._admin.leave()
        if left is None:
            return "This copy was not in a team."
        return f"You left the team on {left.server}. Your copy stays here; restart Care Console to work solo."

    async def invite(self, name: str, role: str) -> str:
        return (await self._admin.invite(name, role)).connection_string


def mode_text(status: TeamStatusLike, *, now: float) -> str:
    """``Live since 14:02``, ``Offline since 14:02 · the server does not answer``."""
    text = f"{MODE_WORDS.get(status.mode, status.mode.capitalize())} since {local_time(status.since, now=now)}"
    return f"{text} · {status.reason}" if status.reason else text


def _plain(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _copy_row(field: QLineEdit, name: str) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(field, 1)
    button = QPushButton("Copy")
    button.setObjectName(name)
    button.setToolTip("Copy to the clipboard")
    button.clicked.connect(lambda: QGuiApplication.clipboard().setText(field.text()))
    row.addWidget(button)
    return row


class TeamDialog(QDialog):
    """Status, Join, Host and (for owners) Invite, as tabs; Leave with a confirmation. Non-modal."""

    #: A join, leave or host finished: the app may need to restart its team service (main.py decides).
    team_changed = Signal()

    def __init__(self, setup: TeamSetup, clock: Clock, parent: QWidget | None = None, *, agent_name: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("teamDialog")
        self.setWindowTitle("Team")
        self._setup = setup
        self._clock = clock
        self._tasks: set[asyncio.Future[None]] = set()
        self._busy = False
        self.setMinimumWidth(460)

        layout = QVBoxLayout(self)
        self._tabs = QTabWidget()
        self._tabs.setObjectName("teamTabs")
        layout.addWidget(self._tabs, 1)

        # Status
        status_page = QWidget()
        status_layout = QVBoxLayout(status_page)
        self._solo = _plain(SOLO_TEXT)
        self._solo.setObjectName("teamSolo")
        status_layout.addWidget(self._solo)
        self._form = QFormLayout()
        self._form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._fields: dict[str, QLabel] = {}
        for key, label in (
            ("member", "Member"),
            ("role", "Role"),
            ("server", "Server"),
            ("mode", "Connection"),
            ("to_push", "To send"),
            ("conflicts", "Conflicts"),
            ("online", "Online now"),
        ):
            value = _plain()
            value.setObjectName(f"team_{key}")
            self._fields[key] = value
            self._form.addRow(f"{label}:", value)
        status_layout.addLayout(self._form)
        status_layout.addStretch(1)
        leave_row = QHBoxLayout()
        leave_row.addStretch(1)
        self.leave_button = QPushButton("Leave the team…")
        self.leave_button.setObjectName("teamLeave")
        self.leave_button.setToolTip("Stop sharing; your copy stays here as a queue of your own")
        self.leave_button.clicked.connect(self._on_leave_clicked)
        leave_row.addWidget(self.leave_button)
        status_layout.addLayout(leave_row)
        self._tabs.addTab(status_page, "&Status")

        # Join
        join_page = QWidget()
        join_form = QFormLayout(join_page)
        join_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        join_form.addRow(_plain("Paste the connection string your team's owner gave you (an invitation holds your "
                                "password; otherwise type it too)."))  # fmt: skip
        self.dsn_edit = QLineEdit()
        self.dsn_edit.setObjectName("teamDsn")
        self.dsn_edit.setPlaceholderText("postgresql://sam@office-pc:5432/care?sslmode=verify-full")
        self.password_edit = QLineEdit()
        self.password_edit.setObjectName("teamPassword")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setToolTip("Kept in your system's keyring, never in the settings")
        self.password_edit.setPlaceholderText("Empty when the connection string holds it (an invitation)")
        self.name_edit = QLineEdit(agent_name)
        self.name_edit.setObjectName("teamMemberName")
        self.name_edit.setPlaceholderText("Your name, as colleagues see it (an invitation already names you)")
        join_form.addRow("&Connection string:", self.dsn_edit)
        join_form.addRow("&Password:", self.password_edit)
        join_form.addRow("Your &name:", self.name_edit)
        self.join_button = QPushButton("&Join")
        self.join_button.setObjectName("teamJoin")
        self.join_button.clicked.connect(self._on_join_clicked)
        join_row = QHBoxLayout()
        join_row.addStretch(1)
        join_row.addWidget(self.join_button)
        join_form.addRow(join_row)
        self._tabs.addTab(join_page, "&Join")

        # Host
        host_page = QWidget()
        host_layout = QVBoxLayout(host_page)
        host_layout.addWidget(
            _plain(
                "No server? This computer can be the team's server: Care Console runs PostgreSQL from its data "
                "folder, on the office network, with an encrypted connection. Keep this computer on while the "
                "team works."
            )
        )
        self.host_button = QPushButton("&Host a team on this computer")
        self.host_button.setObjectName("teamHost")
        self.host_button.clicked.connect(self._on_host_clicked)
        host_layout.addWidget(self.host_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.hosted_edit = QLineEdit()
        self.hosted_edit.setObjectName("teamHostedString")
        self.hosted_edit.setReadOnly(True)
        self.hosted_edit.setPlaceholderText("The connection string to give colleagues shows here")
        host_layout.addLayout(_copy_row(self.hosted_edit, "teamCopyHosted"))
        self._fingerprint = _plain()
        self._fingerprint.setObjectName("teamFingerprint")
        host_layout.addWidget(self._fingerprint)
        host_layout.addStretch(1)
        self._tabs.addTab(host_page, "&Host")

        # Invite (owners)
        self._invite_page = QWidget()
        invite_form = QFormLayout(self._invite_page)
        invite_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        invite_form.addRow(_plain("Add a colleague: they get a connection string with their own password."))
        self.invite_name_edit = QLineEdit()
        self.invite_name_edit.setObjectName("teamInviteName")
        self.invite_role = QComboBox()
        self.invite_role.setObjectName("teamInviteRole")
        for role in ROLES:
            self.invite_role.addItem(role.capitalize(), role)
        invite_form.addRow("&Name:", self.invite_name_edit)
        invite_form.addRow("&Role:", self.invite_role)
        self.invite_button = QPushButton("&Invite")
        self.invite_button.setObjectName("teamInvite")
        self.invite_button.clicked.connect(self._on_invite_clicked)
        invite_row = QHBoxLayout()
        invite_row.addStretch(1)
        invite_row.addWidget(self.invite_button)
        invite_form.addRow(invite_row)
        self.invited_edit = QLineEdit()
        self.invited_edit.setObjectName("teamInvitedString")
        self.invited_edit.setReadOnly(True)
        self.invited_edit.setPlaceholderText("Their one-time connection string shows here")
        invite_form.addRow(_copy_row(self.invited_edit, "teamCopyInvited"))
        self._invite_index = self._tabs.addTab(self._invite_page, "&Invite")

        # Progress, message, close
        self._progress = QProgressBar()
        self._progress.setObjectName("teamProgress")
        self._progress.setRange(0, 0)  # busy: how long a server takes is not known
        self._progress.setTextVisible(False)
        self._progress.setMaximumHeight(6)
        self._progress.hide()
        layout.addWidget(self._progress)
        self._message = _plain()
        self._message.setObjectName("teamMessage")
        self._message.hide()
        layout.addWidget(self._message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.refresh()

    # ------------------------------------------------------------------ public
    def message_text(self) -> str:
        return self._message.text() if not self._message.isHidden() else ""

    def is_busy(self) -> bool:
        return self._busy

    def field_text(self, key: str) -> str:
        """A status field as shown ("member", "role", "server", "mode", "to_push", "conflicts", "online")."""
        return self._fields[key].text()

    def refresh(self) -> None:
        """Show the team's status now (and who is online, read in the background)."""
        status = self._setup.status()
        now = self._clock.now()
        joined = status is not None
        self._solo.setVisible(not joined)
        for row in range(self._form.rowCount()):
            self._form.setRowVisible(row, joined)
        self.leave_button.setVisible(joined)
        owner = status is not None and status.role == "owner"
        self._tabs.setTabVisible(self._invite_index, owner)
        if status is None:
            return
        self._fields["member"].setText(status.member)
        self._fields["role"].setText(status.role.capitalize())
        self._fields["server"].setText(status.server)
        self._fields["mode"].setText(mode_text(status, now=now))
        self._fields["to_push"].setText(
            count(status.to_push, "change") + " waiting to go up" if status.to_push else "—"
        )
        self._fields["conflicts"].setText(count(status.conflicts, "change") if status.conflicts else "None")
        if status.mode == "offline":
            self._fields["online"].setText("Not known while the team server cannot be reached")
            return
        self._run(self._read_online(), busy=False)

    # ------------------------------------------------------------------ work
    def _run(self, work: Coroutine[Any, Any, None], *, busy: bool = True) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop runs (a test without one): nothing can be asked of the server
            work.close()
            return
        if busy:
            self._set_busy(True)
        task = loop.create_task(self._guarded(work, busy=busy))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, work: Coroutine[Any, Any, None], *, busy: bool) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the service speaks in plain words; the error is the agent's to read
            log.warning("team operation failed: %s", exc)
            with contextlib.suppress(RuntimeError):
                self._say(str(exc) or "That did not work, and the server gave no reason.", error=True)
        finally:
            if busy:
                with contextlib.suppress(RuntimeError):  # the dialog was deleted meanwhile
                    self._set_busy(False)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._progress.setVisible(busy)
        for button in (self.join_button, self.host_button, self.invite_button, self.leave_button):
            button.setEnabled(not busy)

    def _say(self, text: str, *, error: bool = False) -> None:
        self._message.setText(text)
        self._message.setProperty("state", "error" if error else "ok")
        self._message.setStyleSheet("color:#B3261E;font-weight:600;" if error else "")
        self._message.setVisible(bool(text))

    async def _read_online(self) -> None:
        members = await self._setup.online_members()
        self._fields["online"].setText(", ".join(members) if members else "Nobody else right now")

    async def _join(self, dsn: str, password: str | None, member: str) -> None:
        self._say("Connecting to the team server…")
        said = await self._setup.join(dsn, password, member)
        self.password_edit.clear()  # in the keyring now
        self._say(said)
        self.refresh()
        self.team_changed.emit()

    async def _host(self) -> None:
        self._say("Starting the team server on this computer (this takes a few seconds)…")
        hosted = await self._setup.host(self.name_edit.text().strip())
        self.hosted_edit.setText(hosted.connection_string)
        self.hosted_edit.setCursorPosition(0)
        self._fingerprint.setText(
            f"Certificate fingerprint (colleagues can check it): {hosted.fingerprint}" if hosted.fingerprint else ""
        )
        self._say(
            "The team server runs. Colleagues check the fingerprint; invite each of them (Invite): everyone gets a "
            "connection string of their own."
        )
        self.refresh()
        self.team_changed.emit()

    async def _invite(self, name: str, role: str) -> None:
        self._say(f"Inviting {name}…")
        self.invited_edit.setText(await self._setup.invite(name, role))
        self.invited_edit.setCursorPosition(0)
        self._say(f"Give {name} this connection string: it works once, then their password is theirs.")

    async def _leave(self) -> None:
        self._say("Leaving the team…")
        said = await self._setup.leave()
        self._say(said)
        self.refresh()
        self.team_changed.emit()

    # ------------------------------------------------------------------ slots
    @Slot()
    def _on_join_clicked(self) -> None:
        dsn, password, member = self.dsn_edit.text().strip(), self.password_edit.text(), self.name_edit.text().strip()
        if not dsn:
            self._say("Fill in the connection string first.", error=True)
            return
        self._run(self._join(dsn, password or None, member))

    @Slot()
    def _on_host_clicked(self) -> None:
        self._run(self._host())

    @Slot()
    def _on_invite_clicked(self) -> None:
        name = self.invite_name_edit.text().strip()
        if not name:
            self._say("Fill in your colleague's name first.", error=True)
            return
        self._run(self._invite(name, str(self.invite_role.currentData())))

    @Slot()
    def _on_leave_clicked(self) -> None:
        box = QMessageBox(self)
        box.setObjectName("teamLeaveQuestion")
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Leave the team?")
        box.setText("Leave the team and stop sharing the queue?")
        box.setInformativeText(
            "Your copy stays on this computer as a queue of your own. Changes not yet sent to the team stay here."
        )
        leave = box.addButton("Leave", QMessageBox.ButtonRole.AcceptRole)
        stay = box.addButton("Stay", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(stay)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(_result: int) -> None:
            if box.clickedButton() is leave:
                self._run(self._leave())

        box.finished.connect(answered)
        box.open()  # never exec() (STYLE B2)

    @override
    def done(self, result: int) -> None:
        """Closing drops what was typed in the password field and stops reading who is online."""
        self.password_edit.clear()
        super().done(result)


def open_team_dialog(
    parent: QWidget,
    setup: TeamSetup,
    clock: Clock,
    *,
    agent_name: str = "",
    on_changed: Callable[[], None] | None = None,
) -> TeamDialog:
    """Show File → Team… (non-modal, one at a time); ``on_changed`` runs after a join, host or leave."""
    existing = [d for d in parent.findChildren(TeamDialog) if d.isVisible()]
    if existing:
        existing[0].refresh()
        existing[0].raise_()
        existing[0].activateWindow()
        return existing[0]
    dialog = TeamDialog(setup, clock, parent, agent_name=agent_name)
    if on_changed is not None:
        dialog.team_changed.connect(on_changed)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
