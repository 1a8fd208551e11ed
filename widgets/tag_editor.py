"""The tag editor: free text, comma separated, completing each tag from the tags already in use."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QStringListModel, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)


def split_input(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class TagLineEdit(QLineEdit):
    """A line edit whose completer completes only the tag after the last comma."""

    def __init__(self, known_tags: Callable[[str], list[str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._known_tags = known_tags
        self._model = QStringListModel(self)
        self._completer = QCompleter(self._model, self)
        self._completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self._completer.setWidget(self)
        self._completer.activated.connect(self._on_completer_activated)
        self.textEdited.connect(self._on_text_edited)

    def completer_model(self) -> QStringListModel:
        return self._model

    def current_word(self) -> str:
        return self.text().rsplit(",", 1)[-1].strip()

    @Slot(str)
    def _on_text_edited(self, _text: str) -> None:
        word = self.current_word()
        taken = set(split_input(self.text().rsplit(",", 1)[0])) if "," in self.text() else set()
        self._model.setStringList([t for t in self._known_tags(word.lower()) if t not in taken])
        self._completer.setCompletionPrefix(word)
        if word and self._model.rowCount() > 0:
            self._completer.complete()
        else:
            popup = self._completer.popup()
            if popup is not None:
                popup.hide()

    @Slot(str)
    def _on_completer_activated(self, tag: str) -> None:
        self.complete_with(tag)

    def complete_with(self, tag: str) -> None:
        """Replace the word being typed by ``tag`` and start the next one."""
        head = self.text().rsplit(",", 1)[0] + ", " if "," in self.text() else ""
        self.setText(f"{head}{tag}, ")


class TagEditor(QDialog):
    """Non-modal (``open()``, never ``exec()``); emits ``tags_chosen`` with the tags when accepted."""

    tags_chosen = Signal(int, list)

    def __init__(
        self, mention_id: int, tags: tuple[str, ...], known_tags: Callable[[str], list[str]], parent: QWidget
    ) -> None:
        super().__init__(parent)
        self.setObjectName("tagEditor")
        self.setWindowTitle("Edit tags")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._mention_id = mention_id
        layout = QVBoxLayout(self)
        hint = QLabel("Tags, separated by commas. Existing tags complete as you type.")
        hint.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(hint)
        self.line_edit = TagLineEdit(known_tags)
        self.line_edit.setObjectName("tagInput")
        self.line_edit.setAccessibleName("Tags")
        self.line_edit.setText(", ".join(tags) + (", " if tags else ""))
        self.line_edit.setMinimumWidth(360)
        layout.addWidget(self.line_edit)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.accepted.connect(self._on_accepted)

    def tags(self) -> list[str]:
        return split_input(self.line_edit.text())

    @Slot()
    def _on_accepted(self) -> None:
        self.tags_chosen.emit(self._mention_id, self.tags())
