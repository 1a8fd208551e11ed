"""Save a shift summary: format, redaction, file; the export runs in a worker thread with a progress bar."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from console.reports.export.atomic import ExportError
from console.reports.export.service import ExportService, Format

FORMAT_LABELS: dict[Format, str] = {
    Format.PDF: "PDF report (charts, tables)",
    Format.HTML: "HTML report (one file)",
    Format.XLSX: "Excel workbook (one row per item)",
    Format.CSV: "CSV (one row per item)",
    Format.JSON: "JSON summary (for the supervisor's review)",
}


class ExportDialog(QDialog):
    """Non-modal (``open()``); the export never blocks the window."""

    #: The file was written.
    exported = Signal(str)

    def __init__(
        self,
        exports: ExportService,
        shift_id: int,
        *,
        default_dir: Path,
        default_name: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("exportDialog")
        self.setWindowTitle("Save the shift summary")
        self._exports = exports
        self._shift_id = shift_id
        self._default_dir = default_dir
        self._default_name = default_name
        self._task: asyncio.Task[Path] | None = None

        self.format_box = QComboBox()
        for fmt, label in FORMAT_LABELS.items():
            self.format_box.addItem(label, fmt.value)
        self.redact_box = QCheckBox("Redact customers (no handles, names or links)")
        self.path_edit = QLineEdit(str(default_dir / f"{default_name}.pdf"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Format", self.format_box)
        form.addRow("", self.redact_box)
        form.addRow("File", path_row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox()
        self.save_button = self.buttons.addButton("Save", QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.save_button.clicked.connect(self._on_save_clicked)
        self.close_button.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.format_box.currentIndexChanged.connect(self._on_format_changed)
        self.resize(560, 220)

    @property
    def task(self) -> asyncio.Task[Path] | None:
        return self._task

    def selected_format(self) -> Format:
        return Format(self.format_box.currentData())

    @Slot(int)
    def _on_format_changed(self, _index: int) -> None:
        path = Path(self.path_edit.text() or str(self._default_dir / self._default_name))
        self.path_edit.setText(str(path.with_suffix("." + self.selected_format().value)))

    @Slot()
    def _on_browse_clicked(self) -> None:
        fmt = self.selected_format()
        name, _filter = QFileDialog.getSaveFileName(
            self, "Save the shift summary", self.path_edit.text(), f"{fmt.value.upper()} (*.{fmt.value})"
        )
        if name:
            self.path_edit.setText(name)

    @Slot()
    def _on_save_clicked(self) -> None:
        text = self.path_edit.text().strip()
        if not text:
            self._show("Choose a file to save to.", error=True)
            return
        self.save_button.setEnabled(False)
        self.progress.setValue(0)
        self._show("Exporting…")
        coro = self._exports.export_async(
            self._shift_id,
            self.selected_format(),
            Path(text).expanduser(),
            redact=self.redact_box.isChecked(),
            progress=self._on_progress,
        )
        self._task = asyncio.get_event_loop().create_task(coro)
        self._task.add_done_callback(self._on_done)

    def _on_progress(self, fraction: float, message: str) -> None:
        if not isValid(self.progress):  # the dialog was closed while the export went on: it still finishes
            return
        self.progress.setValue(round(100 * fraction))
        self.status.setText(message)

    def _on_done(self, task: asyncio.Task[Path]) -> None:
        if not isValid(self.save_button):  # closed before the export ended: the file is written, nothing to show
            return
        self.save_button.setEnabled(True)
        if task.cancelled():
            self._show("The export was cancelled.", error=True)
            return
        error = task.exception()
        if isinstance(error, ExportError | OSError):
            self._show(str(error), error=True)
            return
        if error is not None:
            self._show(f"The export failed: {error}", error=True)
            return
        self.progress.setValue(100)
        self._show(f"Saved to {task.result()}")
        self.exported.emit(str(task.result()))

    def _show(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #B3261E;" if error else "color: #17663A;")
