"""One-keystroke triage: status, priority, tags and undo as actions with shortcuts, applied through Triage."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from console.model import MentionStatus
from console.triage import PRIORITY_LABELS, STATUS_LABELS, Change, Priority, Triage, TriageError


class TriageCommand(StrEnum):
    SET_OPEN = "set_open"
    SET_WAITING = "set_waiting"
    RESOLVE = "resolve"
    COMMUNITY = "community"
    SPAM = "spam"
    PRIORITY_URGENT = "priority_urgent"
    PRIORITY_NORMAL = "priority_normal"
    PRIORITY_LOW = "priority_low"
    TAG = "tag"
    UNDO = "undo"


#: Default keys; single keys work while the queue has the focus (never while typing elsewhere).
DEFAULT_SHORTCUTS: dict[TriageCommand, tuple[str, ...]] = {
    TriageCommand.SET_OPEN: ("O",),
    TriageCommand.SET_WAITING: ("W",),
    TriageCommand.RESOLVE: ("E",),
    TriageCommand.COMMUNITY: ("C",),
    TriageCommand.SPAM: ("!",),
    TriageCommand.PRIORITY_URGENT: ("1",),
    TriageCommand.PRIORITY_NORMAL: ("2",),
    TriageCommand.PRIORITY_LOW: ("3",),
    TriageCommand.TAG: ("T",),
    TriageCommand.UNDO: ("Ctrl+Z", "U"),
}

_STATUS: dict[TriageCommand, MentionStatus] = {
    TriageCommand.SET_OPEN: MentionStatus.OPEN,
    TriageCommand.SET_WAITING: MentionStatus.WAITING,
    TriageCommand.RESOLVE: MentionStatus.RESOLVED,
    TriageCommand.COMMUNITY: MentionStatus.COMMUNITY,
    TriageCommand.SPAM: MentionStatus.SPAM,
}

_PRIORITY: dict[TriageCommand, Priority] = {
    TriageCommand.PRIORITY_URGENT: Priority.URGENT,
    TriageCommand.PRIORITY_NORMAL: Priority.NORMAL,
    TriageCommand.PRIORITY_LOW: Priority.LOW,
}

_LABELS: dict[TriageCommand, str] = {
    **{command: f"Mark as {STATUS_LABELS[status].lower()}" for command, status in _STATUS.items()},
    TriageCommand.RESOLVE: "Resolve",
    TriageCommand.SPAM: "Mark as spam",
    **{command: f"Priority: {PRIORITY_LABELS[level]}" for command, level in _PRIORITY.items()},
    TriageCommand.TAG: "Edit tags…",
    TriageCommand.UNDO: "Undo",
}


#: Closing commands that ask first when the item has no reply yet (spam never does: it owes none).
_CLOSING = frozenset({TriageCommand.RESOLVE, TriageCommand.COMMUNITY})
#: How long the second press that confirms a close is awaited.
CONFIRM_MS = 8_000


class TriageActions(QObject):
    """Builds the triage actions; ``current`` says which item they apply to (the queue's selection)."""

    #: A change was made (console.triage.Change).
    changed = Signal(object)
    #: A change was undone (the Change that was reverted).
    undone = Signal(object)
    #: A change was refused or failed: a message for the agent.
    failed = Signal(str)
    #: "Edit tags" for this mention id (the window opens the tag editor).
    tag_requested = Signal(int)
    #: Closing this item needs a second press: the question for the agent (issue 19 #4).
    confirmation_requested = Signal(str)

    def __init__(
        self,
        triage: Triage,
        current: Callable[[], int | None],
        parent: QWidget,
        *,
        shortcuts: dict[TriageCommand, tuple[str, ...]] | None = None,
        close_question: Callable[[int], str] | None = None,
    ) -> None:
        super().__init__(parent)
        self._triage = triage
        self._current = current
        #: Why closing an item deserves a second thought ("" when it does not): no reply was sent yet.
        self._close_question = close_question
        #: The close that waits for its second press, as (mention id, command).
        self._pending: tuple[int, TriageCommand] | None = None
        self._pending_timer = QTimer(self)
        self._pending_timer.setSingleShot(True)
        self._pending_timer.setInterval(CONFIRM_MS)
        self._pending_timer.timeout.connect(self._on_pending_timer_timeout)
        keys = {**DEFAULT_SHORTCUTS, **(shortcuts or {})}
        self.actions: dict[TriageCommand, QAction] = {}
        for command in TriageCommand:
            action = QAction(_LABELS[command], parent)
            action.setObjectName(f"triage_{command.value}")
            action.setShortcuts([QKeySequence(k) for k in keys[command]])
            # Single keys only where the queue has the focus: typing in the search box or a reply is safe.
            context = (
                Qt.ShortcutContext.WindowShortcut
                if command is TriageCommand.UNDO
                else Qt.ShortcutContext.WidgetShortcut
            )
            action.setShortcutContext(context)
            action.triggered.connect(self._handler(command))
            self.actions[command] = action
        self._update_undo()

    def run(self, command: TriageCommand) -> Change | None:
        """Apply ``command`` to the current item (also what each action's shortcut does)."""
        if command is TriageCommand.UNDO:
            return self._undo()
        mention_id = self._current()
        if mention_id is None:
            return None
        if command is TriageCommand.TAG:
            self.tag_requested.emit(mention_id)
            return None
        if not self._confirmed(mention_id, command):
            return None
        try:
            if command in _STATUS:
                change = self._triage.set_status(mention_id, _STATUS[command])
            else:
                change = self._triage.set_priority(mention_id, _PRIORITY[command])
        except TriageError as exc:  # the agent sees why; nothing was changed
            self.failed.emit(str(exc))
            return None
        self._after(change)
        return change

    def set_tags(self, mention_id: int, tags: list[str]) -> Change | None:
        try:
            change = self._triage.set_tags(mention_id, tags)
        except TriageError as exc:
            self.failed.emit(str(exc))
            return None
        self._after(change)
        return change

    def _confirmed(self, mention_id: int, command: TriageCommand) -> bool:
        """A close of an unanswered item waits for the same key again on the same item (no modal box)."""
        pending, self._pending = self._pending, None
        self._pending_timer.stop()
        if command not in _CLOSING or self._close_question is None or pending == (mention_id, command):
            return True
        question = self._close_question(mention_id)
        if not question:
            return True
        self._pending = (mention_id, command)
        self._pending_timer.start()
        keys = self.actions[command].shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        verb = _LABELS[command].lower()
        self.confirmation_requested.emit(f"{question} Press {keys} again to {verb} it anyway.")
        return False

    @property
    def pending_mention_id(self) -> int | None:
        """The item whose close waits for a second press, if any."""
        return None if self._pending is None else self._pending[0]

    def cancel_confirmation(self) -> None:
        """Forget a close waiting for its second press (the agent moved to another item)."""
        self._pending = None
        self._pending_timer.stop()

    @Slot()
    def _on_pending_timer_timeout(self) -> None:
        self._pending = None

    def _after(self, change: Change | None) -> None:
        self._update_undo()
        if change is not None:
            self.changed.emit(change)

    def _undo(self) -> Change | None:
        try:
            change = self._triage.undo()
        except TriageError as exc:
            self.failed.emit(str(exc))
            self._update_undo()
            return None
        self._update_undo()
        if change is not None:
            self.undone.emit(change)
        return change

    def _update_undo(self) -> None:
        last = self._triage.last_change
        action = self.actions[TriageCommand.UNDO]
        action.setEnabled(last is not None)
        action.setText("Undo" if last is None else f"Undo {last.describe()}")

    def _handler(self, command: TriageCommand) -> Callable[[], None]:
        return lambda: self._on_action_triggered(command)

    @Slot()
    def _on_action_triggered(self, command: TriageCommand) -> None:
        self.run(command)
