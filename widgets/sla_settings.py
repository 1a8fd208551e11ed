"""The SLA policy dialog: targets per channel and priority, warning threshold, business hours and holidays."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TypeVar

from PySide6.QtCore import Qt, QTime, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from console.sla.calendar import WEEKDAYS, Calendar, CalendarError, Hours
from console.sla.engine import SlaEngine
from console.sla.policy import ALWAYS_NAME, PRIORITY_LABELS, PolicyError, PolicyRule, PolicySet, shipped_policy

W = TypeVar("W", bound=QWidget)

BUSINESS = "business"
ANY = "Any"
COLUMNS = (
    "Channel", "Priority", "First response\n(min)", "Next response\n(min)", "Resolution\n(h)", "Warn when\nleft",
    "Calendar",
)  # fmt: skip
CHANNELS = ("mastodon", "bluesky", "discourse", "x", "youtube", "facebook", "manual")


class SlaPolicyEditor(QWidget):
    """The policy editor itself (rules table, business hours, holidays); the dialog and Settings embed it."""

    def __init__(self, policies: PolicySet, *, defaults: PolicySet, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("slaPolicyEditor")
        self._defaults = defaults
        self._extra_calendars = {
            name: cal for name, cal in policies.calendars.items() if name not in (ALWAYS_NAME, BUSINESS)
        }
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        intro = QLabel(
            "Targets per channel and priority; the first matching rule applies and the last one is the default. "
            "Saving recomputes running deadlines; past breaches stay on record."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        # A handful of rules: size to the headers as styled (bold, padded), which resizeColumnsToContents misses.
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table)
        buttons_row = QHBoxLayout()
        self.add_button = QPushButton("Add rule")
        self.remove_button = QPushButton("Remove rule")
        self.defaults_button = QPushButton("Restore defaults")
        for button in (self.add_button, self.remove_button, self.defaults_button):
            buttons_row.addWidget(button)
        buttons_row.addStretch(1)
        layout.addLayout(buttons_row)

        hours_box = QGroupBox("Business hours (for rules on the “business” calendar)")
        grid = QGridLayout(hours_box)
        grid.addWidget(QLabel("Time zone"), 0, 0)
        self.time_zone = QLineEdit()
        self.time_zone.setPlaceholderText("Europe/London")
        grid.addWidget(self.time_zone, 0, 1, 1, 3)
        self.day_open: list[QCheckBox] = []
        self.day_start: list[QTimeEdit] = []
        self.day_end: list[QTimeEdit] = []
        for i, name in enumerate(WEEKDAYS):
            check = QCheckBox(name.capitalize())
            start, end = QTimeEdit(), QTimeEdit()
            start.setDisplayFormat("HH:mm")
            end.setDisplayFormat("HH:mm")
            grid.addWidget(check, i + 1, 0)
            grid.addWidget(start, i + 1, 1)
            grid.addWidget(QLabel("to"), i + 1, 2)
            grid.addWidget(end, i + 1, 3)
            self.day_open.append(check)
            self.day_start.append(start)
            self.day_end.append(end)
        grid.addWidget(QLabel("Holidays (one date a line, 2026-12-25)"), 0, 4)
        self.holidays = QPlainTextEdit()
        grid.addWidget(self.holidays, 1, 4, 7, 1)
        layout.addWidget(hours_box)

        self.error = QLabel()
        self.error.setObjectName("formError")
        self.error.setWordWrap(True)
        self.error.hide()
        layout.addWidget(self.error)

        self.time_zone.editingFinished.connect(self._on_time_zone_editing_finished)
        self.add_button.clicked.connect(self._on_add_button_clicked)
        self.remove_button.clicked.connect(self._on_remove_button_clicked)
        self.defaults_button.clicked.connect(self._on_defaults_button_clicked)
        self.load(policies)

    # ------------------------------------------------------------------ model <-> widgets
    def load(self, policies: PolicySet) -> None:
        self.table.setRowCount(0)
        for rule in policies.rules:
            self._add_row(rule)
        cal = policies.calendars.get(BUSINESS) or self._defaults.calendars.get(BUSINESS) or Calendar()
        self.time_zone.setText(cal.time_zone)
        for i in range(7):
            hours = cal.hours[i] if cal.hours is not None else ((0, 1440),)
            self.day_open[i].setChecked(bool(hours))
            start, end = hours[0] if hours else (9 * 60, 17 * 60)
            self.day_start[i].setTime(QTime(start // 60 % 24, start % 60))
            self.day_end[i].setTime(QTime(end // 60 % 24, end % 60))
        self.holidays.setPlainText("\n".join(sorted(d.isoformat() for d in cal.holidays)))
        self.error.hide()

    def _calendar_names(self) -> list[str]:
        return [ALWAYS_NAME, BUSINESS, *self._extra_calendars]

    def _add_row(self, rule: PolicyRule) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        channel = QComboBox()
        channel.setEditable(True)
        channel.addItems([ANY, *CHANNELS])
        channel.setCurrentText(rule.channel or ANY)
        priority = QComboBox()
        priority.addItem(ANY, None)
        for value, label in PRIORITY_LABELS.items():
            priority.addItem(f"{value} · {label}", value)
        priority.setCurrentIndex(max(0, priority.findData(rule.priority)))
        first = _spin(1, 90 * 24 * 60, rule.first_response // 60)
        nxt = _spin(1, 90 * 24 * 60, rule.next_response // 60)
        resolution = QDoubleSpinBox()
        resolution.setRange(0.25, 90 * 24)
        resolution.setDecimals(2)
        resolution.setValue(rule.resolution / 3600)
        warn = _spin(0, 99, round(rule.warn_fraction * 100))
        warn.setSuffix(" %")
        calendar = QComboBox()
        calendar.addItems(self._calendar_names())
        calendar.setCurrentText(rule.calendar)
        for col, widget in enumerate((channel, priority, first, nxt, resolution, warn, calendar)):
            self.table.setCellWidget(row, col, widget)
        self.table.resizeColumnsToContents()

    def _rule(self, row: int) -> PolicyRule:
        channel = self._cell(row, 0, QComboBox).currentText().strip()
        priority = self._cell(row, 1, QComboBox).currentData()
        return PolicyRule(
            channel=None if channel in ("", ANY) else channel,
            priority=None if priority is None else int(priority),
            first_response=self._cell(row, 2, QSpinBox).value() * 60,
            next_response=self._cell(row, 3, QSpinBox).value() * 60,
            resolution=round(self._cell(row, 4, QDoubleSpinBox).value() * 3600),
            warn_fraction=self._cell(row, 5, QSpinBox).value() / 100,
            calendar=self._cell(row, 6, QComboBox).currentText(),
        )

    def _cell(self, row: int, col: int, kind: type[W]) -> W:
        widget = self.table.cellWidget(row, col)
        assert isinstance(widget, kind)
        return widget

    def _business_calendar(self) -> Calendar:
        hours: list[Hours] = []
        for i in range(7):
            if not self.day_open[i].isChecked():
                hours.append(())
                continue
            start, end = self.day_start[i].time(), self.day_end[i].time()
            hours.append(((start.hour() * 60 + start.minute(), end.hour() * 60 + end.minute()),))
        return Calendar(self._checked_time_zone(), tuple(hours), frozenset(self._checked_holidays()))

    def _checked_time_zone(self) -> str:
        """The typed time zone ("UTC" when empty). Raises PolicyError naming what to fix, the field marked."""
        zone = self.time_zone.text().strip() or "UTC"
        try:
            Calendar(zone)
        except CalendarError as exc:
            self._mark_invalid(self.time_zone)
            raise PolicyError(f"{exc}: type a zone such as Europe/London or America/New_York.") from exc
        self._mark_valid(self.time_zone)
        return zone

    def _checked_holidays(self) -> set[date]:
        holidays: set[date] = set()
        for line in self.holidays.toPlainText().splitlines():
            if line.strip():
                try:
                    holidays.add(date.fromisoformat(line.strip()))
                except ValueError as exc:
                    self._mark_invalid(self.holidays)
                    raise PolicyError(f"Holiday {line.strip()!r} is not a date like 2026-12-25.") from exc
        self._mark_valid(self.holidays)
        return holidays

    def _mark_invalid(self, widget: QWidget) -> None:
        widget.setProperty("invalid", True)
        widget.setStyleSheet("border: 1px solid #B92E2E;")
        widget.setFocus(Qt.FocusReason.OtherFocusReason)

    @staticmethod
    def _mark_valid(widget: QWidget) -> None:
        if widget.property("invalid"):
            widget.setProperty("invalid", False)
            widget.setStyleSheet("")

    def policy_set(self) -> PolicySet:
        """The edited policy set.

        Raises:
            PolicyError: what the agent must fix (shown in the dialog).
        """
        rules = [self._rule(row) for row in range(self.table.rowCount())]
        calendars: dict[str, Calendar] = {ALWAYS_NAME: Calendar(), **self._extra_calendars}
        # A bad time zone or holiday is refused even while no rule uses the business calendar: dropping the
        # agent's edits without a word is worse than asking for a fix (issue 19 #14).
        self._checked_time_zone()
        self._checked_holidays()
        try:
            calendars[BUSINESS] = self._business_calendar()
        except CalendarError as exc:
            if any(rule.calendar == BUSINESS for rule in rules):
                raise PolicyError(str(exc)) from exc
        return PolicySet(rules=tuple(rules), calendars=calendars)

    # ------------------------------------------------------------------ slots
    @Slot()
    def _on_add_button_clicked(self) -> None:
        # New rules go before the default (the last row) so that they can match first.
        default = self._rule(self.table.rowCount() - 1) if self.table.rowCount() else PolicyRule()
        self._add_row(PolicyRule(channel=CHANNELS[0], priority=1, first_response=default.first_response))
        last = self.table.rowCount() - 1
        if last > 0:
            rules = [self._rule(r) for r in range(self.table.rowCount())]
            rules.insert(last - 1, rules.pop(last))
            self.table.setRowCount(0)
            for rule in rules:
                self._add_row(rule)

    @Slot()
    def _on_remove_button_clicked(self) -> None:
        row = self.table.currentRow()
        if 0 <= row < self.table.rowCount() - 1:
            self.table.removeRow(row)
        else:
            self._show_error("The last rule is the default for every channel and priority; edit it instead.")

    @Slot()
    def _on_time_zone_editing_finished(self) -> None:
        """Say at once when the typed zone is unknown (not only on Save)."""
        try:
            self._checked_time_zone()
        except PolicyError as exc:
            self.show_error(str(exc))
        else:
            if self.error.text().startswith("Unknown time zone"):
                self.error.hide()

    @Slot()
    def _on_defaults_button_clicked(self) -> None:
        self.load(self._defaults)

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()

    def _show_error(self, message: str) -> None:
        self.show_error(message)


class SlaSettingsDialog(QDialog):
    """Edits a PolicySet; emits ``policies_applied`` with the validated set on OK (never modal-exec'd here)."""

    policies_applied = Signal(object)

    def __init__(self, policies: PolicySet, *, defaults: PolicySet, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("slaSettings")
        self.setWindowTitle("SLA policy")
        layout = QVBoxLayout(self)
        self.editor = SlaPolicyEditor(policies, defaults=defaults)
        layout.addWidget(self.editor)
        editor = self.editor
        self.table, self.time_zone, self.holidays, self.error = (
            editor.table,
            editor.time_zone,
            editor.holidays,
            editor.error,
        )
        self.add_button, self.remove_button, self.defaults_button = (
            editor.add_button, editor.remove_button, editor.defaults_button
        )  # fmt: skip
        self.day_open, self.day_start, self.day_end = editor.day_open, editor.day_start, editor.day_end
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        layout.addWidget(self.buttons)
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        self.resize(920, 620)

    def load(self, policies: PolicySet) -> None:
        self.editor.load(policies)

    def policy_set(self) -> PolicySet:
        """The edited policy set (raises PolicyError, see ``SlaPolicyEditor.policy_set``)."""
        return self.editor.policy_set()

    @Slot()
    def _on_buttons_accepted(self) -> None:
        try:
            policies = self.policy_set()
        except PolicyError as exc:
            self.editor.show_error(str(exc))
            return
        self.policies_applied.emit(policies)
        self.accept()


def _spin(low: int, high: int, value: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    return spin


def open_sla_settings(parent: QWidget, engine: SlaEngine, on_saved: Callable[[], None]) -> SlaSettingsDialog:
    """Open the dialog non-modally (STYLE B2); on Save the engine stores the set and recomputes open deadlines."""
    dialog = SlaSettingsDialog(engine.policies, defaults=shipped_policy(), parent=parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def apply(policies: object) -> None:
        assert isinstance(policies, PolicySet)
        engine.set_policies(policies)
        on_saved()

    dialog.policies_applied.connect(apply)
    dialog.open()
    return dialog
