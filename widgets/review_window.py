"""The supervisor's Review window: open shift summaries, see them merged, export the merged report."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QVBoxLayout, QWidget
from typing_extensions import override

from console.export.atomic import ExportError
from console.export.report import Report
from console.review import Review, review_report, write_review
from widgets.report_view import ReportView


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

        self.messages.setText(f"Loading {len(paths)} file(s)…")
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
            self.messages.setText(f"Loading failed: {error}")
            return
        review, report = future.result()
        self.review = review
        self.view.show_report(report)
        lines = [f"{len(review.summaries)} summaries loaded."]
        lines += [f"Not loaded: {p.message}" for p in review.problems]
        lines += [f"Skipped: {d}" for d in review.duplicates]
        self.messages.setText("\n".join(lines))
        self.messages.setStyleSheet("color: #B3261E;" if review.problems else "")
        self.export_action.setEnabled(bool(review.summaries))
        self.loaded.emit(len(review.summaries), len(review.problems))

    def export_to(self, path: Path) -> asyncio.Future[Path]:
        loop = asyncio.get_event_loop()
        review = self.review
        future = loop.run_in_executor(None, write_review, review, path)
        self._tasks.add(future)
        future.add_done_callback(self._on_exported)
        self.messages.setText(f"Writing {path}…")
        return future

    def _on_exported(self, future: asyncio.Future[Path]) -> None:
        self._tasks.discard(future)
        if future.cancelled():
            return
        error = future.exception()
        if isinstance(error, ExportError):
            self.messages.setText(str(error))
        elif error is not None:
            self.messages.setText(f"The export failed: {error}")
        else:
            self.messages.setText(f"Saved the merged report to {future.result()}")
            self.exported.emit(str(future.result()))

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
