"""The supervisor's Review window: open shift summaries, see them merged, export the merged report."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QVBoxLayout, QWidget
from typing_extensions import override

from console.reports.export.atomic import ExportError
from console.reports.export.report import Report
from console.reports.review import Review, review_report, write_review
from console.wording import count
from widgets.dark import text as theme_text
from widgets.report_view import ReportView


class MessageState(StrEnum):
    BUSY = "busy"
    OK = "ok"
    ERROR = "error"


_STATE_COLOURS: dict[MessageState, str] = {MessageState.OK: "#17663A", MessageState.ERROR: "#B3261E"}


class ReviewWindow(QMainWindow):
    """Loads summaries in a worker thread (big files take a moment), so the app stays responsive."""

    #: A load finished: (summaries loaded in total, problems so far).
    loaded = Signal(int, int)
    #: The merged report was written to this path.
    exported = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewWindow")
        self.setWindowTitle("Review shift summaries — Care Console")
        self.review = Review()
        self._tasks: set[asyncio.Future[Any]] = set()
        self.view = ReportView()
        self.messages = QLabel("Open one or more shift summaries (JSON) exported by Care Console.")
        self.messages.setWordWrap(True)
        self.messages.setObjectName("reviewMessages")
        self._state = MessageState.BUSY
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.messages)
        layout.addWidget(self.view, 1)
        self.setCentralWidget(body)
        self.open_action = QAction("&Open summaries…", self)
        self.open_action.triggered.connect(self._on_open_action_triggered)
        self.export_action = QAction("&Export report…", self)
        self.export_action.setEnabled(False)
        self.export_action.triggered.connect(self._on_export_action_triggered)
        toolbar = self.addToolBar("Review")
        toolbar.setObjectName("reviewToolbar")
        toolbar.setMovable(False)
        toolbar.addAction(self.open_action)
        toolbar.addAction(self.export_action)
        self.resize(1100, 820)

    def load_files(self, paths: Sequence[Path]) -> asyncio.Future[tuple[Review, Report]]:
        """Load more summaries and rebuild the merged report, off the GUI thread."""
        loop = asyncio.get_event_loop()
        current = self.review

        def work() -> tuple[Review, Report]:
            merged = Review(list(current.summaries), list(current.sources), list(current.problems),
                            list(current.duplicates))  # fmt: skip
            merged.add_files(paths)
            return merged, review_report(merged)

        self._say(f"Loading {count(len(paths), 'file')}…", MessageState.BUSY)
        future = loop.run_in_executor(None, work)
        self._tasks.add(future)
        future.add_done_callback(self._on_loaded)
        return future

    def _on_loaded(self, future: asyncio.Future[tuple[Review, Report]]) -> None:
        self._tasks.discard(future)
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self._say(f"Loading failed: {error}", MessageState.ERROR)
            return
        review, report = future.result()
        self.review = review
        self.view.show_report(report)
        lines = [f"{count(len(review.summaries), 'summary')} loaded."]
        lines += [f"Not loaded: {p.message}" for p in review.problems]
        lines += [f"Skipped: {d}" for d in review.duplicates]
        self._say("\n".join(lines), MessageState.ERROR if review.problems else MessageState.OK)
        self.export_action.setEnabled(bool(review.summaries))
        self.loaded.emit(len(review.summaries), len(review.problems))

    def export_to(self, path: Path) -> asyncio.Future[Path]:
        loop = asyncio.get_event_loop()
        review = self.review
        future = loop.run_in_executor(None, write_review, review, path)
        self._tasks.add(future)
        future.add_done_callback(self._on_exported)
        self._say(f"Writing {path}…", MessageState.BUSY)
        return future

    def _on_exported(self, future: asyncio.Future[Path]) -> None:
        self._tasks.discard(future)
        if future.cancelled():
            return
        error = future.exception()
        if isinstance(error, ExportError):
            self._say(str(error), MessageState.ERROR)
        elif error is not None:
            self._say(f"The export failed: {error}", MessageState.ERROR)
        else:
            self._say(f"Saved the merged report to {future.result()}", MessageState.OK)
            self.exported.emit(str(future.result()))

    def message_state(self) -> MessageState:
        """How the message line reads: an error (red), a success (green), or work under way (plain)."""
        return self._state

    def _say(self, text: str, state: MessageState) -> None:
        # Set every time: a success after an error must not keep the error's red (issue 19 §16).
        self._state = state
        self.messages.setText(text)
        self.messages.setProperty("state", state.value)
        colour = _STATE_COLOURS.get(state)
        self.messages.setStyleSheet(f"color: {theme_text(colour).name()};" if colour else "")

    @Slot()
    def _on_open_action_triggered(self) -> None:
        names, _filter = QFileDialog.getOpenFileNames(self, "Open shift summaries", "", "Shift summaries (*.json)")
        if names:
            self.load_files([Path(n) for n in names])

    @Slot()
    def _on_export_action_triggered(self) -> None:
        name, _filter = QFileDialog.getSaveFileName(
            self, "Export the merged report", "review.pdf", "PDF (*.pdf);;HTML (*.html);;Excel (*.xlsx)"
        )
        if name:
            self.export_to(Path(name))

    @override
    def closeEvent(self, event: QCloseEvent) -> None:
        for task in self._tasks:
            task.cancel()
        super().closeEvent(event)
