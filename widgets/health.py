"""The channel-health strip: one chip per account (ok / retrying / rate limited / failing / sign-in expired)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from console.model import Health
from console.sync.health import AccountHealth, HealthSnapshot
from console.wording import count
from widgets.claims import TeamStatusLike, team_line, team_state
from widgets.dark import surface as theme_surface
from widgets.dark import text as theme_text
from widgets.theme import channel_label, local_time

#: The style sheet selects chip colours on this property.
_STATES: dict[Health, str] = {
    Health.OK: "ok",
    Health.DEGRADED: "warning",
    Health.RATE_LIMITED: "warning",
    Health.FAILING: "error",
    Health.AUTH_EXPIRED: "error",
}

#: (background, border, text) per chip state.
_CHIP_COLOURS = {
    "ok": ("#E6F4EA", "#B7DFC3", "#17663A"),
    "warning": ("#FDF1D6", "#F0D29A", "#7A4B00"),
    "error": ("#D93A3A", "#B92E2E", "#FFFFFF"),
}


def _surface(colour: str) -> str:
    return theme_surface(colour).name()


def _ink(colour: str) -> str:
    return theme_text(colour).name()


def chip_text(account: AccountHealth, *, now: float) -> str:
    """What one account's chip says, e.g. ``@care · rate limited until 14:10``."""
    name = f"@{account.handle}"
    health = account.health
    if health is Health.OK:
        text = f"{name} · connected"
    elif health is Health.DEGRADED:
        text = f"{name} · retrying"
        if account.next_attempt_at is not None:
            text += f" at {local_time(account.next_attempt_at, now=now)}"
    elif health is Health.RATE_LIMITED:
        text = f"{name} · rate limited"
        if account.next_attempt_at is not None:
            text += f" until {local_time(account.next_attempt_at, now=now)}"
    elif health is Health.AUTH_EXPIRED:
        text = f"{name} · sign-in expired: replies wait"
    else:
        text = f"{name} · failing"
        if account.next_attempt_at is not None:
            text += f" (next try {local_time(account.next_attempt_at, now=now)})"
    if account.quarantined:
        text += f" · {account.quarantined} unreadable"
    return text


def offline_text(snapshot: HealthSnapshot, *, now: float) -> str | None:
    """``Offline since 14:02 · 3 replies waiting`` while no channel is reachable, else None."""
    if snapshot.offline_since is None:
        return None
    waiting = snapshot.replies_waiting
    replies = f"{waiting} repl{'y' if waiting == 1 else 'ies'} waiting"
    return f"Offline since {local_time(snapshot.offline_since, now=now)} · {replies}"


class _Chip(QWidget):
    def __init__(self, account_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("healthChip")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.account_id = account_id
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 2, 4, 2)
        layout.setSpacing(6)
        self.label = QLabel()
        self.label.setObjectName("healthChipText")
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.button = QPushButton("Sign in again")
        self.button.setObjectName("reauthButton")
        self.button.setCursor(Qt.CursorShape.PointingHandCursor)
        layout.addWidget(self.label)
        layout.addWidget(self.button)
        self.state = ""

    def restyle(self) -> None:
        """Colour the chip for its state in the current theme (light or dark)."""
        background, border, ink = _CHIP_COLOURS.get(self.state, _CHIP_COLOURS["ok"])
        weight = 600 if self.state == "error" else 400
        self.setStyleSheet(
            f"#healthChip{{background:{_surface(background)};border:1px solid {_surface(border)};"
            f"border-radius:11px;}}"
            f"QLabel#healthChipText{{color:{_ink(ink)};background:transparent;border:none;font-weight:{weight};}}"
        )
        self.button.setStyleSheet(
            f"QPushButton{{background:{_surface('#FFFFFF')};color:{_ink('#B3261E')};border:none;border-radius:8px;"
            f"padding:2px 10px;font-weight:600;}}QPushButton:hover{{background:{_surface('#FBE9E7')};}}"
        )

    def show_account(self, account: AccountHealth, *, now: float) -> None:
        self.state = _STATES[account.health]
        self.setProperty("state", self.state)
        self.restyle()
        self.label.setText(chip_text(account, now=now))
        details = [f"{channel_label(account.kind)} account @{account.handle}"]
        if account.reason:
            details.append(account.reason)
        if account.last_success_at is not None:
            details.append(f"Last successful sync: {local_time(account.last_success_at, now=now)}")
        if account.quarantined:
            details.append(f"{count(account.quarantined, 'item')} could not be read and were kept aside.")
        self.setToolTip("\n".join(details))
        self.button.setVisible(account.needs_sign_in)
        self.button.setAccessibleName(f"Sign in again to @{account.handle}")
        self.setAccessibleName(self.label.text())


class HealthStrip(QWidget):
    """A thin bar under the menu: the offline banner and one chip per account; hidden while all is well."""

    #: The agent clicked "Sign in again" on an account (account id); main.py runs the re-authentication.
    reauthenticate_requested = Signal(int)
    #: The agent asked to see the items that could not be read; main.py opens the quarantine list.
    quarantine_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("healthStrip")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 6, 14, 6)
        layout.setSpacing(8)
        self._banner = QLabel()
        self._banner.setObjectName("offlineBanner")
        self._banner.setTextFormat(Qt.TextFormat.PlainText)
        self._banner.hide()
        layout.addWidget(self._banner)
        # Team mode (issue 22): "Team · live", "Team · polling (reason)", "Team · offline since 14:02, 3 changes
        # to send". Shown whenever a team is joined: where the shared queue stands matters before every send.
        self._team = QLabel()
        self._team.setObjectName("teamStatus")
        self._team.setTextFormat(Qt.TextFormat.PlainText)
        self._team.hide()
        self._team_state = ""
        layout.addWidget(self._team)
        self._chips_layout = QHBoxLayout()
        self._chips_layout.setSpacing(8)
        layout.addLayout(self._chips_layout)
        layout.addStretch(1)
        self._message = QLabel()
        self._message.setObjectName("healthMessage")
        self._message.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self._message)
        self._quarantine_button = QPushButton("Unreadable items…")
        self._quarantine_button.setObjectName("quarantineButton")
        self._quarantine_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self._quarantine_button.setToolTip("What arrived but could not be read, why, and when")
        self._quarantine_button.clicked.connect(self.quarantine_requested)
        self._quarantine_button.hide()
        layout.addWidget(self._quarantine_button)
        self._chips: dict[int, _Chip] = {}
        self._snapshot: HealthSnapshot | None = None
        self.restyle()
        self.hide()

    def restyle(self) -> None:
        """Colour the strip for the current theme; MainWindow calls it again when the theme changes (the
        strip kept its light colours in the dark theme, issue 19 §9)."""
        self.setStyleSheet(
            f"#healthStrip{{background:{_surface('#F6F7F9')};border-bottom:1px solid {_surface('#E3E6EA')};}}"
        )
        self._banner.setStyleSheet(f"color:{_ink('#3C4043')};font-weight:600;")
        self._message.setStyleSheet(f"color:{_ink('#5F6B7A')};")
        self._quarantine_button.setStyleSheet(
            f"QPushButton{{background:transparent;color:{_ink('#1A5FB4')};border:none;padding:2px 6px;"
            f"text-decoration:underline;}}QPushButton:hover{{color:{_ink('#0B3D91')};}}"
        )
        for chip in self._chips.values():
            chip.restyle()
        background, border, ink = _CHIP_COLOURS.get(self._team_state, _CHIP_COLOURS["ok"])
        self._team.setStyleSheet(
            f"QLabel#teamStatus{{background:{_surface(background)};border:1px solid {_surface(border)};"
            f"border-radius:11px;padding:2px 10px;color:{_ink(ink)};}}"
        )

    # ------------------------------------------------------------------ accessors (tests)
    def chip_text(self, account_id: int) -> str:
        return self._chips[account_id].label.text()

    def chip_state(self, account_id: int) -> str:
        return self._chips[account_id].state

    def reauth_button(self, account_id: int) -> QPushButton:
        return self._chips[account_id].button

    def quarantine_button(self) -> QPushButton:
        return self._quarantine_button

    def banner_text(self) -> str:
        return self._banner.text() if not self._banner.isHidden() else ""

    def message_text(self) -> str:
        return self._message.text()

    def team_text(self) -> str:
        """The team line, or "" when solo."""
        return self._team.text() if not self._team.isHidden() else ""

    def team_state(self) -> str:
        return self._team_state

    @property
    def snapshot(self) -> HealthSnapshot | None:
        return self._snapshot

    # ------------------------------------------------------------------ slots
    @Slot(object, float)
    def set_snapshot(self, snapshot: HealthSnapshot, now: float) -> None:
        """Show these accounts; the strip stays hidden while every account is fine and the app is online."""
        self._snapshot = snapshot
        seen = set()
        for account in snapshot.accounts:
            chip = self._chips.get(account.account_id)
            if chip is None:
                chip = _Chip(account.account_id)
                chip.button.clicked.connect(
                    lambda _checked=False, account_id=account.account_id: self._on_reauth_clicked(account_id)
                )
                self._chips[account.account_id] = chip
                self._chips_layout.addWidget(chip)
                chip.show()  # a child added to a visible parent stays hidden unless shown
            chip.show_account(account, now=now)
            seen.add(account.account_id)
        for account_id in list(self._chips):
            if account_id not in seen:
                self._chips.pop(account_id).deleteLater()
        banner = offline_text(snapshot, now=now)
        self._banner.setText(banner or "")
        self._banner.setVisible(banner is not None)
        unreadable = sum(a.quarantined for a in snapshot.accounts)
        self._quarantine_button.setText(f"{unreadable} unreadable item{'' if unreadable == 1 else 's'}…")
        self._quarantine_button.setVisible(unreadable > 0)
        self._update_visibility()

    def set_team(self, status: TeamStatusLike | None, now: float) -> None:
        """Show the team line (None: solo, no line)."""
        if status is None:
            self._team.hide()
            self._update_visibility()
            return
        text = team_line(status, now=now)
        if text != self._team.text():
            self._team.setText(text)
        details = [f"Team server {status.server}", f"You are {status.member} ({status.role})"]
        if status.reason and status.mode != "live":
            details.append(status.reason)
        if status.mode == "offline":
            details.append("You keep working on your copy; your changes go up when the server is back.")
        self._team.setToolTip("\n".join(details))
        self._team.setAccessibleName(text)
        state = team_state(status)
        if state != self._team_state:
            self._team_state = state
            self.restyle()
        self._team.show()
        self._update_visibility()

    def _update_visibility(self) -> None:
        snapshot = self._snapshot
        trouble = not self._banner.isHidden() or not self._team.isHidden()
        if snapshot is not None:
            trouble = trouble or any(a.health is not Health.OK or a.quarantined for a in snapshot.accounts)
        self.setVisible(trouble)

    @Slot(str)
    def show_message(self, text: str) -> None:
        """A short note next to the chips (e.g. the outcome of signing in again)."""
        self._message.setText(text)
        if text:
            self.show()

    def _on_reauth_clicked(self, account_id: int) -> None:
        self._message.setText("Signing in…")
        self.reauthenticate_requested.emit(account_id)
