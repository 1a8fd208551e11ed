"""Start shift / End shift dialogs and the File-menu actions around them (export, review, crashed shifts).

The report, export and review widgets (and the summary code under them) are imported when first opened:
main.py builds ShiftActions before the window's first paint. In a team (the window's ``team`` is a running
``TeamService``), End shift hands over first and Start shift shows what was handed over and what breached
(widgets/handover_dialog.py); solo, the file-based notes stay as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from console.ports import Clock
from console.shifts.service import ShiftError, ShiftRow, ShiftService
from widgets.elided_label import ElidedLabel
from widgets.theme import local_time

if TYPE_CHECKING:
    from console.reports.export.report import Report
    from console.reports.export.service import ExportService
    from console.reports.summary import ShiftSummary
    from console.team.handover import ShiftStart
    from widgets.export_dialog import ExportDialog
    from widgets.handover_dialog import Handed, HandoverDialog, HandoverTeam, ShiftStartDialog
    from widgets.review_window import ReviewWindow


class StartShiftDialog(QDialog):
    """Agent name (remembered from the last shift) and the notes the previous shift left."""

    started = Signal(object)  # ShiftRow

    def __init__(self, shifts: ShiftService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("startShiftDialog")
        self.setWindowTitle("Start shift")
        self._shifts = shifts
        self.name_edit = QLineEdit(shifts.remembered_agent)
        self.name_edit.setPlaceholderText("Your name, as customers and your supervisor see it")
        notes = shifts.notes_from_last_shift()
        self.notes_view = QPlainTextEdit(notes or "No notes from the previous shift.")
        self.notes_view.setReadOnly(True)
        self.notes_view.setMaximumHeight(120)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #B3261E;")
        self.error.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Agent", self.name_edit)
        form.addRow("Notes from the last shift", self.notes_view)
        buttons = QDialogButtonBox()
        self.start_button = buttons.addButton("Start shift", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.start_button.clicked.connect(self._on_start_clicked)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(520, 260)

    @Slot()
    def _on_start_clicked(self) -> None:
        try:
            shift = self._shifts.start(self.name_edit.text())
        except ShiftError as exc:
            self.error.setText(str(exc))
            return
        self.started.emit(shift)
        self.accept()


class EndShiftDialog(QDialog):
    """Notes for the next shift and a preview of the summary; ending it leads on to saving the summary."""

    ended = Signal(object)  # ShiftRow

    def __init__(self, shifts: ShiftService, exports: ExportService, parent: QWidget | None = None) -> None:
        from widgets.report_view import ReportView  # here: see the module's docstring

        super().__init__(parent)
        self.setObjectName("endShiftDialog")
        self.setWindowTitle("End shift")
        self._shifts = shifts
        self._exports = exports
        current = shifts.current()
        self.notes_edit = QPlainTextEdit(current.notes if current else "")
        self.notes_edit.setPlaceholderText("Notes for the next shift: promises made, items to watch, system issues…")
        self.notes_edit.setMaximumHeight(110)
        self.preview = ReportView()
        self.preview_status = QLabel("Preparing the summary…")
        self.error = QLabel("")
        self.error.setStyleSheet("color: #B3261E;")
        buttons = QDialogButtonBox()
        self.end_button = buttons.addButton("End shift and save the summary…", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.end_button.clicked.connect(self._on_end_clicked)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Notes for the next shift"))
        layout.addWidget(self.notes_edit)
        layout.addWidget(self.preview_status)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(1000, 780)
        self._task: asyncio.Task[tuple[ShiftSummary, Report]] | None = None
        if current is not None:
            self._task = asyncio.get_event_loop().create_task(exports.preview_async(current.id))
            self._task.add_done_callback(self._on_preview_done)

    @property
    def preview_task(self) -> asyncio.Task[tuple[ShiftSummary, Report]] | None:
        return self._task

    def _on_preview_done(self, task: asyncio.Task[tuple[ShiftSummary, Report]]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.preview_status.setText(f"The summary could not be prepared: {error}")
            return
        _summary, report = task.result()
        self.preview_status.setText("Summary so far (it is computed again when you save it):")
        self.preview.show_report(report)

    @Slot()
    def _on_end_clicked(self) -> None:
        try:
            shift = self._shifts.end(self.notes_edit.toPlainText())
        except ShiftError as exc:
            self.error.setText(str(exc))
            return
        if self._task is not None:
            self._task.cancel()
        self.ended.emit(shift)
        self.accept()


class ShiftActions(QObject):
    """Adds Start shift, End shift, Export summary and Review summaries to the window's File menu."""

    #: The running shift changed (started or ended); None when no shift runs.
    shift_changed = Signal(object)

    def __init__(
        self,
        window: QMainWindow,
        shifts: ShiftService,
        exports: ExportService,
        clock: Clock,
        *,
        export_dir: Path,
    ) -> None:
        super().__init__(window)
        self._clock = clock
        self._window = window
        self._shifts = shifts
        self._exports = exports
        self._export_dir = export_dir
        self._dialogs: set[QDialog] = set()
        self.review_window: ReviewWindow | None = None
        self.start_action = QAction("S&tart shift…", window)
        self.start_action.triggered.connect(self.start_shift)
        self.end_action = QAction("&End shift…", window)
        self.end_action.triggered.connect(self.end_shift)
        self.export_action = QAction("E&xport shift summary…", window)
        self.export_action.triggered.connect(self.export_summary)
        self.review_action = QAction("&Review summaries…", window)
        self.review_action.triggered.connect(self.open_review)
        self._install_menu()
        self._team_tasks: set[asyncio.Task[None]] = set()
        #: The start-of-shift panel a team shift opened last (tests and the robot read it).
        self.shift_start_dialog: ShiftStartDialog | None = None
        self.shift_label = ElidedLabel(min_width=40)  # cut before the breach alert beside it (an 800x600 screen)
        self.shift_label.setObjectName("shiftStatus")
        window.statusBar().addPermanentWidget(self.shift_label)
        self._update()

    def _install_menu(self) -> None:
        menus = [m for m in self._window.menuBar().findChildren(QMenu) if m.title() == "&File"]
        menu = menus[0] if menus else self._window.menuBar().addMenu("&File")
        actions = menu.actions()
        before = actions[-1] if actions else None  # Quit stays last
        for action in (self.start_action, self.end_action, self.export_action, self.review_action):
            menu.insertAction(before, action)  # type: ignore[arg-type]
        menu.insertSeparator(before)  # type: ignore[arg-type]

    def _update(self) -> None:
        current = self._shifts.current()
        self.start_action.setEnabled(current is None)
        self.end_action.setEnabled(current is not None)
        self.export_action.setEnabled(self._shifts.last() is not None)
        if current is None:
            self.shift_label.setText("No shift running")
        else:
            self.shift_label.setText(
                f"Shift: {current.agent_name} since {local_time(current.started_at, now=self._clock.now())}"
            )
        self.shift_changed.emit(current)

    def _keep(self, dialog: QDialog) -> QDialog:
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._dialogs.add(dialog)
        dialog.finished.connect(lambda _r, d=dialog: self._dialogs.discard(d))
        dialog.open()  # never exec() (STYLE B2)
        return dialog

    # ------------------------------------------------------------------ actions
    @Slot()
    def start_shift(self) -> StartShiftDialog:
        dialog = StartShiftDialog(self._shifts, self._window)
        dialog.started.connect(self._on_started)
        self._keep(dialog)
        return dialog

    @Slot()
    def end_shift(self) -> EndShiftDialog | HandoverDialog:
        """End the shift: in a team, hand over first (widgets/handover_dialog.py); solo, notes and the summary."""
        team = self._team()
        if team is not None:
            return self._hand_over(team)
        return self._end_here()

    def _end_here(self) -> EndShiftDialog:
        dialog = EndShiftDialog(self._shifts, self._exports, self._window)
        dialog.ended.connect(self._on_ended)
        self._keep(dialog)
        return dialog

    # ------------------------------------------------------------------ team shifts (issue 23)
    def _team(self) -> HandoverTeam | None:
        """The window's running team when it can hand over (``TeamService``), else None: the file-based shift."""
        from widgets.handover_dialog import HandoverTeam  # here: see the module's docstring

        team: object = getattr(self._window, "team", None)
        return team if isinstance(team, HandoverTeam) else None

    def _labels(self) -> Callable[[Sequence[int]], Mapping[int, str]] | None:
        labels = getattr(self._window, "item_labels", None)
        return labels if callable(labels) else None

    def _connect_open(self, dialog: HandoverDialog | ShiftStartDialog) -> None:
        show = getattr(self._window, "show_item", None)
        if callable(show):
            dialog.open_requested.connect(show)

    def _hand_over(self, team: HandoverTeam) -> HandoverDialog:
        from widgets.handover_dialog import HandoverDialog, team_colleagues

        current = self._shifts.current()
        view = team.supervisor()
        dialog = HandoverDialog(
            team.handover(), self._clock, colleagues=lambda: team_colleagues(view.snapshot), labels=self._labels(),
            notes=current.notes if current is not None else "", parent=self._window,
        )  # fmt: skip
        dialog.handed_over.connect(self._on_handed_over)
        dialog.end_without_handover.connect(self._end_here)
        self._connect_open(dialog)
        self._keep(dialog)
        return dialog

    def _on_handed_over(self, handed: Handed) -> None:
        """Handed over on the team: end the shift here too (its notes are the hand-over's note), then the summary."""
        try:
            shift = self._shifts.end(handed.note)
        except ShiftError as exc:
            self._window.statusBar().showMessage(f"Handed over; the shift here could not end: {exc}", 8000)
            self._update()
            return
        self._on_ended(shift)

    def _on_started(self, _shift: ShiftRow) -> None:
        self._update()
        team = self._team()
        if team is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test without one): nothing can be asked of the server
            return
        task = loop.create_task(self._start_on_team(team), name="team-shift-start")
        self._team_tasks.add(task)
        task.add_done_callback(self._team_tasks.discard)

    async def _start_on_team(self, team: HandoverTeam) -> None:
        """Start the shift on the team (the supervisor sees it) and show what was handed over and breached."""
        status = self._window.statusBar()
        try:
            start = await team.handover().start_shift()
        except Exception as exc:  # the team's errors say why in plain words
            status.showMessage(f"The team did not hear of your shift: {exc}", 8000)
            return
        if not start.handed_over and not start.breached:
            since = local_time(start.since, now=self._clock.now())
            status.showMessage(f"Nothing was handed over to you and nothing breached since {since}.", 8000)
            return
        self.show_shift_start(start, team.member)

    def show_shift_start(self, start: ShiftStart, member: str) -> ShiftStartDialog:
        """The panel "Handed over to you by Alex · note", with the items and what breached meanwhile."""
        from widgets.handover_dialog import ShiftStartDialog

        dialog = ShiftStartDialog(start, member, self._clock, labels=self._labels(), parent=self._window)
        self._connect_open(dialog)
        self.shift_start_dialog = dialog
        self._keep(dialog)
        return dialog

    def _on_ended(self, shift: ShiftRow) -> None:
        self._update()
        self.export_summary(shift.id)

    @Slot()
    def export_summary(self, shift_id: int | None = None) -> ExportDialog | None:
        from widgets.export_dialog import ExportDialog  # here: see the module's docstring

        shift = self._shifts.get(shift_id) if shift_id is not None else self._shifts.current() or self._shifts.last()
        if shift is None:
            return None
        name = f"shift-{shift.id}-{shift.agent_name.replace(' ', '-').lower()}"
        dialog = ExportDialog(self._exports, shift.id, default_dir=self._export_dir, default_name=name,
                              parent=self._window)  # fmt: skip
        self._keep(dialog)
        return dialog

    @Slot()
    def open_review(self) -> ReviewWindow:
        if self.review_window is None:
            from widgets.review_window import ReviewWindow  # here: see the module's docstring

            self.review_window = ReviewWindow()
        self.review_window.show()
        self.review_window.raise_()
        return self.review_window

    def ask_about_stale_shift(self) -> QMessageBox | None:
        """At start-up: a shift left open (a crash) is closed at its last recorded activity, after asking."""
        stale = self._shifts.stale()
        if stale is None:
            return None
        now = self._clock.now()
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "A shift was left open",
            f"The shift of {stale.shift.agent_name} that started at {local_time(stale.shift.started_at, now=now)} "
            "was not ended "
            f"(the app stopped). Close it at its last recorded activity, {local_time(stale.close_at, now=now)}?\n\n"
            "Choose No to carry on with that shift.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self._window,
        )
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(result: int) -> None:
            if result == QMessageBox.StandardButton.Yes:
                self._shifts.close_stale(stale)
            self._update()

        box.finished.connect(answered)
        box.open()
        return box
