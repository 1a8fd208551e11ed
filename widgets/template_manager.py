"""The template manager: create, edit, tag and delete templates, with per-channel variants and use counts."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from console.replies.templates import PLACEHOLDERS, TemplateService, unknown_placeholders

#: Channels that can have their own wording of a template ("" is the default body for every channel).
VARIANT_CHANNELS: tuple[tuple[str, str], ...] = (
    ("", "All channels"),
    ("mastodon", "Mastodon"),
    ("bluesky", "Bluesky"),
    ("x", "X"),
    ("messenger", "Messenger"),
)


class TemplateManager(QDialog):
    """Non-modal (``open()``): edits go straight to the library; the composer's search sees them at once."""

    #: A template was saved or deleted.
    templates_changed = Signal()

    def __init__(self, templates: TemplateService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("templateManager")
        self.setWindowTitle("Reply templates")
        self.resize(860, 520)
        self._templates = templates
        self._current: int | None = None

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self._filter = QLineEdit()
        self._filter.setPlaceholderText("Filter templates")
        self._filter.setClearButtonEnabled(True)
        self._filter.textChanged.connect(self._on_filter_text_changed)
        left_layout.addWidget(self._filter)
        self._list = QListWidget()
        self._list.setObjectName("templateList")
        self._list.currentItemChanged.connect(self._on_list_current_item_changed)
        left_layout.addWidget(self._list, 1)
        new_button = QPushButton("New template")
        new_button.clicked.connect(self._on_new_clicked)
        left_layout.addWidget(new_button)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        self._name = QLineEdit()
        self._name.setObjectName("templateName")
        self._tags = QLineEdit()
        self._tags.setObjectName("templateTags")
        self._tags.setPlaceholderText("Comma-separated, e.g. apology, delivery")
        self._uses = QLabel()
        form.addRow("Name", self._name)
        form.addRow("Tags", self._tags)
        form.addRow("Used", self._uses)
        right_layout.addLayout(form)
        self._bodies = QTabWidget()
        self._editors: dict[str, QPlainTextEdit] = {}
        for channel, label in VARIANT_CHANNELS:
            editor = QPlainTextEdit()
            editor.setObjectName(f"templateBody_{channel or 'all'}")
            if channel:
                editor.setPlaceholderText(f"Leave empty to use the text for all channels on {label}.")
            self._editors[channel] = editor
            self._bodies.addTab(editor, label)
        right_layout.addWidget(self._bodies, 1)
        help_text = QLabel(
            "Placeholders: " + ", ".join("{" + name + "}" for name in PLACEHOLDERS) + ". "
            "Write [a blank] for what the agent must fill in before sending."
        )
        help_text.setWordWrap(True)
        help_text.setObjectName("templateHelp")
        right_layout.addWidget(help_text)
        self._error = QLabel()
        self._error.setObjectName("templateError")
        self._error.setTextFormat(Qt.TextFormat.PlainText)
        self._error.setWordWrap(True)
        right_layout.addWidget(self._error)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self._delete_button = QPushButton("Delete")
        self._delete_button.clicked.connect(self._on_delete_clicked)
        self._save_button = QPushButton("Save")
        self._save_button.setDefault(True)
        self._save_button.clicked.connect(self._on_save_clicked)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        for button in (self._delete_button, self._save_button, close):
            buttons.addWidget(button)
        right_layout.addLayout(buttons)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([280, 580])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self.reload()

    # ------------------------------------------------------------------ public API
    def names(self) -> list[str]:
        return [self._list.item(i).text() for i in range(self._list.count())]

    def reload(self, select: int | None = None) -> None:
        """Re-read the library; keep (or move to) the selected template."""
        wanted = select if select is not None else self._current
        self._list.blockSignals(True)
        self._list.clear()
        query = self._filter.text()
        for template in self._templates.search(query) if query else self._templates.all():
            item = QListWidgetItem(f"{template.name}  · used {template.use_count}×")
            item.setData(Qt.ItemDataRole.UserRole, template.id)
            self._list.addItem(item)
            if template.id == wanted:
                self._list.setCurrentItem(item)
        self._list.blockSignals(False)
        row = self._list.currentRow()
        if row < 0 and self._list.count() and wanted is None:
            self._list.setCurrentRow(0)
        elif row >= 0:
            self._show(int(self._list.item(row).data(Qt.ItemDataRole.UserRole)))

    def edit(self, *, name: str, tags: str, body: str, variants: dict[str, str] | None = None) -> None:
        """Fill the form (for tests and for "save as template" from the composer)."""
        self._name.setText(name)
        self._tags.setText(tags)
        self._editors[""].setPlainText(body)
        for index, (channel, label) in enumerate(VARIANT_CHANNELS):
            if channel:
                wording = (variants or {}).get(channel, "")
                self._editors[channel].setPlainText(wording)
                self._bodies.setTabText(index, f"{label} •" if wording.strip() else label)

    def save(self) -> int | None:
        """Save the form as the current template (or a new one). Returns its id, or None with the reason shown."""
        variants = {ch: ed.toPlainText() for ch, ed in self._editors.items() if ch and ed.toPlainText().strip()}
        try:
            template_id = self._templates.save(
                name=self._name.text(),
                body=self._editors[""].toPlainText(),
                tags=self._tags.text().split(","),
                variants=variants,
                template_id=self._current,
            )
        except ValueError as exc:
            self._error.setText(str(exc))
            return None
        self._current = template_id
        self.reload(select=template_id)
        self._error.setText(self._unknown_placeholder_warning([self._editors[""].toPlainText(), *variants.values()]))
        self.templates_changed.emit()
        return template_id

    @staticmethod
    def _unknown_placeholder_warning(bodies: list[str]) -> str:
        """Saved, but a {word} is no placeholder (a typo?): it becomes a [blank] to fill in (issue 19 #15)."""
        unknown: list[str] = []
        for body in bodies:
            unknown += [name for name in unknown_placeholders(body) if name not in unknown]
        if not unknown:
            return ""
        names = ", ".join("{" + name + "}" for name in unknown)
        verb = "is not a placeholder" if len(unknown) == 1 else "are not placeholders"
        return (
            f"Saved. {names} {verb}: in a reply it becomes a [blank] to fill in by hand. "
            "Placeholders are " + ", ".join("{" + name + "}" for name in PLACEHOLDERS) + "."
        )

    def error_text(self) -> str:
        return self._error.text()

    # ------------------------------------------------------------------ internals
    def _show(self, template_id: int) -> None:
        template = self._templates.get(template_id)
        if template is None:
            return
        self._current = template.id
        self._delete_button.setText("Delete")
        self.edit(name=template.name, tags=", ".join(template.tags), body=template.body, variants=template.variants)
        self._uses.setText(f"{template.use_count} time{'s' if template.use_count != 1 else ''}")
        self._delete_button.setEnabled(True)
        self._error.setText("")

    # ------------------------------------------------------------------ slots
    @Slot(str)
    def _on_filter_text_changed(self, _text: str) -> None:
        self.reload()

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_list_current_item_changed(self, current: QListWidgetItem | None, _previous: object) -> None:
        if current is not None:
            self._show(int(current.data(Qt.ItemDataRole.UserRole)))

    @Slot()
    def _on_new_clicked(self) -> None:
        self._current = None
        self._list.clearSelection()
        self.edit(name="", tags="", body="Hi {first_name}, ")
        self._uses.setText("new")
        self._delete_button.setEnabled(False)
        self._name.setFocus(Qt.FocusReason.OtherFocusReason)

    @Slot()
    def _on_save_clicked(self) -> None:
        self.save()

    @Slot()
    def _on_delete_clicked(self) -> None:
        if self._current is None:
            return
        if self._delete_button.text() == "Delete":
            # A second click confirms: no modal box, and nothing is lost by a stray click.
            self._delete_button.setText("Click again to delete")
            return
        self._delete_button.setText("Delete")
        self._templates.delete(self._current)
        self._current = None
        self.reload()
        self.templates_changed.emit()
