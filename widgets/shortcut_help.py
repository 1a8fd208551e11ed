"""The keyboard cheat sheet (``?``): every action of the window with its shortcuts, grouped."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QFocusEvent, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QKeySequenceEdit,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from typing_extensions import override


def shortcut_text(action: QAction) -> str:
    """``"E"``, ``"Ctrl+Z or U"``: the action's shortcuts as the platform writes them."""
    keys = [s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts() if not s.isEmpty()]
    return " or ".join(keys)


def action_label(action: QAction) -> str:
    return action.text().replace("&", "").removesuffix("…")


#: ``rebind(action, keys)`` applies and saves new keys ("" clears them); returns why not, or None.
Rebind = Callable[[QAction, str], str | None]

#: Keys that are never a shortcut: Escape cancels (a capture, the tour, correction mode, a dialog).
RESERVED_KEYS = frozenset({QKeySequence(Qt.Key.Key_Escape).toString()})


def reserved_key_refusal(keys: str) -> str | None:
    """Why ``keys`` can't be a shortcut (Escape is kept for cancelling), or None."""
    if QKeySequence(keys).toString() in RESERVED_KEYS:
        return "Escape cancels; it can't be a shortcut"
    return None


class CaptureEdit(QKeySequenceEdit):
    """A key capture field where Escape cancels the capture: the keys shown before it come back, nothing is
    saved, and the field lets go of the keyboard (issue 19 §2: Escape used to be saved as a shortcut)."""

    def __init__(self, keys: QKeySequence, parent: QWidget | None = None) -> None:
        super().__init__(keys, parent)
        self._before = QKeySequence(keys)

    def cancel(self) -> None:
        """Stop capturing and show the keys the field had when it got the focus."""
        self.setKeySequence(self._before)
        self.clearFocus()

    @override
    def focusInEvent(self, event: QFocusEvent) -> None:
        self._before = QKeySequence(self.keySequence())
        super().focusInEvent(event)

    @override
    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and not (event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier):
            event.accept()
            self.cancel()
            return
        super().keyPressEvent(event)


class ShortcutEditor(QWidget):
    """The shortcuts table; ``groups`` are ``(title, actions)``. With ``rebind``, the keys of named actions are
    editable in place (click the keys, press the new combination); other actions without a shortcut are left out."""

    def __init__(
        self,
        groups: Sequence[tuple[str, Sequence[QAction]]],
        parent: QWidget | None = None,
        *,
        rebind: Rebind | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutEditor")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._rebind = rebind
        #: Successful changes, oldest first: (action, the keys it had before), for ``revert``.
        self._changes: list[tuple[QAction, str]] = []
        editable = (lambda a: bool(a.objectName())) if rebind is not None else (lambda _a: False)
        rows = [
            (title, action)
            for title, actions in groups
            for action in actions
            if shortcut_text(action) or editable(action)
        ]
        self._edits: dict[int, CaptureEdit] = {}
        self.table = QTableWidget(len(rows), 3)
        self.table.setObjectName("shortcutTable")
        self.table.setAccessibleName("Keyboard shortcuts")
        self.table.setHorizontalHeaderLabels(["Area", "Action", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setShowGrid(False)
        for row, (title, action) in enumerate(rows):
            for col, text in enumerate((title, action_label(action), shortcut_text(action))):
                self.table.setItem(row, col, QTableWidgetItem(text))
            if editable(action):
                edit = CaptureEdit(action.shortcut())
                edit.setMaximumSequenceLength(1)
                edit.setClearButtonEnabled(True)
                edit.setAccessibleName(f"Shortcut for {action_label(action)}")
                edit.setToolTip(shortcut_text(action))
                edit.editingFinished.connect(self._editor(row, action, edit))
                self.table.setCellWidget(row, 2, edit)
                self._edits[row] = edit
        self._actions = [action for _title, action in rows]
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(2, 150)
        layout.addWidget(self.table)
        self.message = QLabel("Click a shortcut and press the new keys to change it." if rebind is not None else "")
        self.message.setObjectName("shortcutMessage")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        layout.addWidget(self.message)

    def row_of(self, action_name: str) -> int:
        """The row of the action named ``action_name`` (its objectName), or -1."""
        for row, action in enumerate(self._actions):
            if action.objectName() == action_name:
                return row
        return -1

    def changed(self) -> bool:
        return bool(self._changes)

    def commit(self) -> None:
        """Keep the changes made so far (``revert`` no longer undoes them)."""
        self._changes.clear()

    def revert(self) -> None:
        """Undo every change made here, newest first (Cancel in the Settings dialog)."""
        for action, keys in reversed(self._changes):
            if self._rebind is not None:
                self._rebind(action, keys)
        self._changes.clear()
        for row, edit in self._edits.items():
            edit.setKeySequence(self._actions[row].shortcut())
            item = self.table.item(row, 2)
            if item is not None:
                item.setText(shortcut_text(self._actions[row]))

    def set_keys(self, row: int, keys: str) -> str | None:
        """Change the keys of ``row`` as if typed in its editor; returns the refusal, if any."""
        edit = self._edits[row]
        edit.setKeySequence(QKeySequence(keys))
        return self._apply(row, self._actions[row], edit)

    def _editor(self, row: int, action: QAction, edit: QKeySequenceEdit) -> Callable[[], None]:
        def finished() -> None:
            self._apply(row, action, edit)

        return finished

    def _apply(self, row: int, action: QAction, edit: QKeySequenceEdit) -> str | None:
        assert self._rebind is not None
        keys = edit.keySequence().toString()
        if keys == action.shortcut().toString():
            return None
        previous = action.shortcut().toString()
        refusal = reserved_key_refusal(keys) or self._rebind(action, keys)
        if refusal is not None:
            edit.setKeySequence(action.shortcut())
            self.message.setText(refusal)
            self.message.setProperty("state", "error")
            return refusal
        self._changes.append((action, previous))
        item = self.table.item(row, 2)
        if item is not None:
            item.setText(shortcut_text(action))
        self.message.setText(f"“{action_label(action)}” is now {shortcut_text(action) or 'without a shortcut'}.")
        self.message.setProperty("state", "ok")
        return None

    def rows(self) -> list[tuple[str, str, str]]:
        out = []
        for row in range(self.table.rowCount()):
            items = [self.table.item(row, col) for col in range(3)]
            out.append(tuple(item.text() if item is not None else "" for item in items))
        return out  # type: ignore[return-value]


class ShortcutHelp(QDialog):
    """The non-modal cheat sheet: the shortcut table (editable with ``rebind``) and a Close button."""

    def __init__(
        self, groups: Sequence[tuple[str, Sequence[QAction]]], parent: QWidget, *, rebind: Rebind | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutHelp")
        self.setWindowTitle("Keyboard shortcuts")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        layout = QVBoxLayout(self)
        self.editor = ShortcutEditor(groups, rebind=rebind)
        self.table = self.editor.table
        self.message = self.editor.message
        layout.addWidget(self.editor)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(520, 560)

    def set_keys(self, row: int, keys: str) -> str | None:
        """Change the keys of ``row`` as if typed in its editor; returns the refusal, if any."""
        return self.editor.set_keys(row, keys)

    def rows(self) -> list[tuple[str, str, str]]:
        return self.editor.rows()
