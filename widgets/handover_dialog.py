"""The hand-over at the end of a team shift, and what a new shift finds (issue 23 item 1), across machines.

``HandoverDialog`` (End shift… in team mode) lists what this agent holds on the team server — claims, items
handed or reassigned to them, unkept follow-up promises, the items' notes — with a "Hand to" picker (colleagues from
the member list, or back to the pool) and a note; one button hands them all over (``HandoverService.hand_over``:
one transaction on the server) and the shift ends. Offline, nothing is handed over and the dialog says so; the
agent may retry or end the shift with the file-based notes as before.

``ShiftStartDialog`` (after Start shift… in team mode) shows "Handed over to you by Alex · note" with the items,
and what breached since the agent's last shift. Everything the server is asked runs as a task on the loop.

Solo, neither is used: the shift dialogs of widgets/shift_dialog.py stay as they are.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid
from typing_extensions import override

from console.ports import Clock
from console.wording import count
from widgets.dark import text as theme_text
from widgets.supervisor_window import POOL, Labels, SupervisorPort, item_label
from widgets.theme import ERROR_TEXT, SECONDARY_TEXT, local_time

if TYPE_CHECKING:  # the team package imports psycopg: only in team mode
    from console.team.handover import HandoverResult, Pending, ReceivedItem, ShiftStart

log = logging.getLogger(__name__)


class HandoverPort(Protocol):
    """What the dialogs ask of the team (``console.team.handover.HandoverService``)."""

    @property
    def member(self) -> str: ...
    async def pending_for(self, member: str | None = None) -> Pending: ...
    async def hand_over(
        self,
        *,
        to: str | None,
        note: str = "",
        shift_uid: str | None = None,
        pending: Pending | None = None,
        end_shift: bool = True,
    ) -> HandoverResult: ...
    async def start_shift(self, shift_uid: str | None = None) -> ShiftStart: ...


@dataclass(frozen=True, slots=True)
class Colleague:
    """A member the agent may hand over to: ``Sam`` with ``on shift · online``."""

    name: str
    presence: str = ""
    #: On shift and online: the dialog picks the first such colleague (else the pool) to begin with.
    available: bool = False


Colleagues = Callable[[], Awaitable[Sequence[Colleague]]]
"""The team's members (the supervisor view's member list), read when the dialog opens."""


@dataclass(frozen=True, slots=True)
class Handed:
    """What the dialog handed over: the server's answer, and the note (the local shift's notes too)."""

    result: HandoverResult
    note: str


# ---------------------------------------------------------------------------------------------------- words
def _labels(labels: Labels | None, ids: Mapping[str, int]) -> dict[str, str]:
    """Item key -> the local label where this copy holds the item (else ``item_label`` of the key)."""
    if labels is None or not ids:
        return {}
    by_id = labels(list(ids.values()))
    return {key: by_id[mid] for key, mid in ids.items() if mid in by_id}


def pending_lines(pending: Pending, names: Mapping[str, str], now: float) -> list[str]:
    """One line per item and per follow-up promise, as the hand-over dialog lists them."""
    lines: list[str] = []
    for item in pending.items:
        how = "you are replying" if item.claimed else "assigned to you"
        due = f" · due {local_time(item.due_at, now=now)}" if item.due_at is not None and not item.answered else ""
        line = f"{names.get(item.item_key, item_label(item.item_key))} · {how}{due}"
        if item.notes:
            author, text = item.notes[-1]
            line += f" · note by {author}: {text}"
        lines.append(line)
    for promise in pending.follow_ups:
        due_at = promise.data.get("due_at")
        when = f" by {local_time(int(due_at), now=now)}" if isinstance(due_at, int | float) else ""
        text = str(promise.data.get("text") or "").strip()
        lines.append(
            f"{names.get(promise.item_key, item_label(promise.item_key))} · follow-up promised{when}"
            + (f": {text}" if text else "")
        )
    return lines


def received_heading(item: ReceivedItem, member: str) -> str:
    """``Handed over to you by Alex · call her back at 3``; to the pool: ``Handed back to the pool by Alex``."""
    where = "Handed over to you" if item.to == member else "Handed back to the pool"
    return f"{where} by {item.by}" + (f" · {item.note}" if item.note.strip() else "")


# ---------------------------------------------------------------------------------------------------- end
class HandoverDialog(QDialog):
    """End of a team shift: what I hold, to whom it goes, a note; one action hands it all over."""

    #: Handed over (and the shift ended on the server): a ``Handed``.
    handed_over = Signal(object)
    #: The agent chose to end the shift without handing over (the team server could not be reached).
    end_without_handover = Signal()
    #: Open this local item in the main window.
    open_requested = Signal(int)

    def __init__(
        self,
        handover: HandoverPort,
        clock: Clock,
        *,
        colleagues: Colleagues | None = None,
        labels: Labels | None = None,
        notes: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("handoverDialog")
        self.setWindowTitle("End shift: hand over")
        self._handover = handover
        self._clock = clock
        self._colleagues = colleagues
        self._labels = labels
        self._pending: Pending | None = None
        self._ids: list[int | None] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._busy = False
        self._handing = False

        self.intro = QLabel("Reading what you hold on the team…")
        self.intro.setWordWrap(True)
        self.intro.setTextFormat(Qt.TextFormat.PlainText)
        self.items_list = QListWidget()
        self.items_list.setObjectName("handoverItems")
        self.items_list.setAccessibleName("What you hand over")
        self.items_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.items_list.setWordWrap(True)
        self.items_list.setSpacing(2)
        self.items_list.setAlternatingRowColors(True)
        self.items_list.itemActivated.connect(self._on_item_activated)
        self.to_combo = QComboBox()
        self.to_combo.setAccessibleName("Hand to")
        self.to_combo.addItem(POOL, None)
        self.note_edit = QPlainTextEdit(notes)
        self.note_edit.setPlaceholderText("A note for whoever takes them: promises made, what to watch…")
        self.note_edit.setAccessibleName("Note")
        self.note_edit.setTabChangesFocus(True)
        self.note_edit.setMaximumHeight(90)
        form = QFormLayout()
        form.addRow("Hand &to", self.to_combo)
        note_label = QLabel("&Note")
        note_label.setBuddy(self.note_edit)
        form.addRow(note_label, self.note_edit)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumHeight(4)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.hide()
        self.message = QLabel("")
        self.message.setObjectName("handoverMessage")
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        buttons = QDialogButtonBox()
        self.hand_button = buttons.addButton("&Hand over and end shift", QDialogButtonBox.ButtonRole.AcceptRole)
        self.hand_button.setDefault(True)
        self.hand_button.setEnabled(False)
        self.hand_button.clicked.connect(self._on_hand_clicked)
        self.without_button = QPushButton("End shift &without handing over")
        self.without_button.setToolTip("The team server cannot be reached: end the shift here, with your notes")
        self.without_button.hide()
        self.without_button.clicked.connect(self._on_without_clicked)
        buttons.addButton(self.without_button, QDialogButtonBox.ButtonRole.DestructiveRole)
        self.retry_button = QPushButton("&Try again")
        self.retry_button.hide()
        self.retry_button.clicked.connect(self.load)
        buttons.addButton(self.retry_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.rejected.connect(self.reject)
        self.without_button.hide()  # adding a button to the box shows it: these two are for when the team is away
        self.retry_button.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(self.items_list, 1)
        layout.addLayout(form)
        layout.addWidget(self.busy_bar)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.resize(620, 480)
        self.load()

    # -- reading -----------------------------------------------------------------------------------------------
    @Slot()
    def load(self) -> None:
        """Read what this agent holds and who the colleagues are (a task on the loop)."""
        self._spawn(self._load())

    async def _load(self) -> None:
        self._set_busy(True, "")
        try:
            pending = await self._handover.pending_for()
            colleagues = list(await self._colleagues()) if self._colleagues is not None else []
        except Exception as exc:  # TeamUnavailable and friends say why in plain words
            log.info("hand-over: reading failed: %s", exc)
            if not isValid(self):
                return
            self._set_busy(False, f"{exc}\nNothing was handed over.", error=True)
            self.intro.setText("Could not read what you hold on the team.")
            self.retry_button.show()
            self.without_button.show()
            return
        if not isValid(self):  # closed while the server answered
            return
        self.retry_button.hide()
        self._show(pending, colleagues)
        self._set_busy(False, "")

    def _show(self, pending: Pending, colleagues: Sequence[Colleague]) -> None:
        self._pending = pending
        now = self._clock.now()
        names = _labels(self._labels, pending.mention_ids)
        self.items_list.clear()
        lines = pending_lines(pending, names, now)
        keys = [i.item_key for i in pending.items] + [f.item_key for f in pending.follow_ups]
        self._ids = [pending.mention_ids.get(k) for k in keys]
        for line in lines:
            self.items_list.addItem(QListWidgetItem(line))
        if pending.empty:
            self.intro.setText(
                "You hold nothing on the team: no claims, no items assigned to you, no follow-up promises. "
                "Ending the shift hands nothing over; a note still reaches whoever you pick."
            )
            self.items_list.hide()
        else:
            what = [count(len(pending.items), "item")] if pending.items else []
            if pending.follow_ups:
                what.append(count(len(pending.follow_ups), "follow-up promise"))
            self.intro.setText(
                f"You hold {' and '.join(what)}. Hand them to a colleague or back to the pool: they are released "
                "from you, marked with your note, and your shift ends."
            )
            self.items_list.show()
        current = self.to_combo.currentData()
        self.to_combo.clear()
        me = self._handover.member
        for colleague in colleagues:
            if colleague.name == me:
                continue
            shown = f"{colleague.name} · {colleague.presence}" if colleague.presence else colleague.name
            self.to_combo.addItem(shown, colleague.name)
        self.to_combo.addItem(POOL, None)
        first = next((c.name for c in colleagues if c.available and c.name != me), None)
        chosen = current if current is not None else first
        again = self.to_combo.findData(chosen) if chosen is not None else -1
        self.to_combo.setCurrentIndex(again if again >= 0 else self.to_combo.count() - 1)

    # -- handing over ------------------------------------------------------------------------------------------
    def target(self) -> str | None:
        data = self.to_combo.currentData()
        return str(data) if data is not None else None

    def lines(self) -> list[str]:
        """The listed items as shown (tests, the robot)."""
        return [self.items_list.item(i).text() for i in range(self.items_list.count())]

    def message_text(self) -> str:
        return self.message.text()

    def is_busy(self) -> bool:
        return self._busy

    @Slot()
    def _on_hand_clicked(self) -> None:
        if self._busy or self._pending is None:
            return
        self._spawn(self._hand(self._pending, self.target(), self.note_edit.toPlainText().strip()))

    async def _hand(self, pending: Pending, to: str | None, note: str) -> None:
        where = to if to is not None else "the pool"
        self._set_busy(True, f"Handing over to {where}…")
        self._handing = True
        try:
            result = await self._handover.hand_over(to=to, note=note, pending=pending)
        except Exception as exc:  # ValueError (to oneself), TeamRefused, TeamUnavailable: plain words
            log.info("hand-over failed: %s", exc)
            self._handing = False
            if not isValid(self):
                return
            self._set_busy(False, f"{exc}\nNothing was handed over; your note is kept.", error=True)
            self.without_button.show()
            return
        if not isValid(self):
            return
        self._handing = False
        self._set_busy(False, f"Handed {count(len(result.items), 'item')} to {where}.")
        self.handed_over.emit(Handed(result, note))
        self.accept()

    @override
    def reject(self) -> None:
        """Cancel and Esc close the dialog, except while the hand-over is being written (its answer ends the
        shift here, so the dialog waits for it)."""
        if self._handing:
            return
        super().reject()

    @Slot()
    def _on_without_clicked(self) -> None:
        self.end_without_handover.emit()
        self.reject()

    def _on_item_activated(self, item: QListWidgetItem) -> None:
        row = self.items_list.row(item)
        mention_id = self._ids[row] if 0 <= row < len(self._ids) else None
        if mention_id is not None:
            self.open_requested.emit(mention_id)

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _set_busy(self, busy: bool, message: str, *, error: bool = False) -> None:
        self._busy = busy
        self.busy_bar.setVisible(busy)
        self.hand_button.setEnabled(not busy and self._pending is not None)
        self.message.setText(message)
        colour = theme_text(ERROR_TEXT if error else SECONDARY_TEXT).name()
        self.message.setStyleSheet(f"color: {colour};" + ("font-weight: 600;" if error else ""))

    def _spawn(self, coro: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test without one): nothing can be asked of the server
            coro.close()
            return
        task = loop.create_task(coro, name="hand-over")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


# ---------------------------------------------------------------------------------------------------- start
class ShiftStartDialog(QDialog):
    """What a team shift finds: what was handed over (to me, or to the pool) and what breached meanwhile."""

    #: Open this local item in the main window.
    open_requested = Signal(int)

    def __init__(
        self,
        start: ShiftStart,
        member: str,
        clock: Clock,
        *,
        labels: Labels | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("shiftStartDialog")
        self.setWindowTitle("Your shift: handed over and breached")
        now = clock.now()
        ids = {r.item_key: r.mention_id for r in start.handed_over if r.mention_id is not None}
        ids |= dict(start.breached_ids)
        names = _labels(labels, ids)
        self._ids: list[int | None] = []

        since = local_time(start.since, now=now)
        self.intro = QLabel(
            f"Since {since}: "
            + (
                "nothing was handed over and nothing breached."
                if not start.handed_over and not start.breached
                else f"{count(len(start.handed_over), 'item')} handed over, "
                f"{count(len(start.breached), 'breach', 'breaches')} meanwhile."
            )
        )
        self.intro.setWordWrap(True)
        self.intro.setTextFormat(Qt.TextFormat.PlainText)
        self.handed_list = QListWidget()
        self.handed_list.setObjectName("handedOverList")
        self.handed_list.setAccessibleName("Handed over")
        self.handed_list.setWordWrap(True)
        groups: dict[tuple[str, str, int, str | None], list[ReceivedItem]] = {}
        for item in start.handed_over:
            groups.setdefault((item.by, item.note, item.at, item.to), []).append(item)
        for received in groups.values():
            heading = QListWidgetItem(received_heading(received[0], member))
            font = heading.font()
            font.setBold(True)
            heading.setFont(font)
            heading.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.handed_list.addItem(heading)
            self._ids.append(None)
            for item in received:
                state = "" if item.still_open else f" · now {item.status}"
                if item.answered:
                    state += " · answered"
                entry = QListWidgetItem(f"    {names.get(item.item_key, item_label(item.item_key))}{state}")
                self.handed_list.addItem(entry)
                self._ids.append(item.mention_id)
        if not start.handed_over:
            self.handed_list.addItem(QListWidgetItem("Nothing was handed over to you."))
            self._ids.append(None)
        self.handed_list.itemActivated.connect(self._on_activated)
        self.breached_list = QListWidget()
        self.breached_list.setObjectName("breachedList")
        self.breached_list.setAccessibleName("Breached meanwhile")
        self._breach_ids: list[int | None] = []
        for b in sorted(start.breached, key=lambda b: b.due_at):
            reply = (
                f"answered {local_time(b.answered_at, now=now)}" if b.answered_at is not None else "still unanswered"
            )
            who = f" · {b.assigned_to}" if b.assigned_to else ""
            self.breached_list.addItem(
                f"{names.get(b.item_key, item_label(b.item_key))} · was due {local_time(b.due_at, now=now)} · "
                f"{reply}{who}"
            )
            self._breach_ids.append(start.breached_ids.get(b.item_key))
        if not start.breached:
            self.breached_list.addItem("No breach since your last shift.")
            self._breach_ids.append(None)
        self.breached_list.itemActivated.connect(self._on_breach_activated)
        handed_title = QLabel("Handed over")
        handed_title.setObjectName("sectionTitle")
        breached_title = QLabel("Breached meanwhile")
        breached_title.setObjectName("sectionTitle")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        close = buttons.button(QDialogButtonBox.StandardButton.Close)
        if close is not None:
            close.setDefault(True)
        QShortcut(QKeySequence("Ctrl+W"), self, self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(handed_title)
        layout.addWidget(self.handed_list, 3)
        layout.addWidget(breached_title)
        layout.addWidget(self.breached_list, 2)
        layout.addWidget(buttons)
        self.resize(600, 460)

    def handed_texts(self) -> list[str]:
        return [self.handed_list.item(i).text() for i in range(self.handed_list.count())]

    def breached_texts(self) -> list[str]:
        return [self.breached_list.item(i).text() for i in range(self.breached_list.count())]

    def _on_activated(self, item: QListWidgetItem) -> None:
        row = self.handed_list.row(item)
        mention_id = self._ids[row] if 0 <= row < len(self._ids) else None
        if mention_id is not None:
            self.open_requested.emit(mention_id)

    def _on_breach_activated(self, item: QListWidgetItem) -> None:
        row = self.breached_list.row(item)
        mention_id = self._breach_ids[row] if 0 <= row < len(self._breach_ids) else None
        if mention_id is not None:
            self.open_requested.emit(mention_id)


async def team_colleagues(snapshot: Callable[[], Awaitable[Any]]) -> list[Colleague]:
    """The member list with presence, from a supervisor snapshot (members are readable by every role)."""
    snap = await snapshot()
    agents = sorted(snap.agents, key=lambda a: (not a.on_shift, not a.online, a.name.lower()))
    return [
        Colleague(
            a.name,
            " · ".join(["on shift" if a.on_shift else "off shift", "online" if a.online else "offline"]),
            a.on_shift and a.online,
        )
        for a in agents
    ]


@runtime_checkable
class HandoverTeam(Protocol):
    """The running team as the shift actions need it (``TeamService``): hand-over, and the member list."""

    @property
    def member(self) -> str: ...
    def handover(self) -> HandoverPort: ...
    def supervisor(self) -> SupervisorPort: ...
