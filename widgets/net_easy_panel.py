"""The Net Easy report: score with n, interval and response rate, a tested trend, a chart and per-group tables."""

from __future__ import annotations

import math
from datetime import datetime
from enum import IntEnum
from typing import Protocol

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Slot
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from typing_extensions import override

from console.ports import Clock
from console.surveys.net_easy import NetEasy, Trend, TrendPoint
from console.surveys.service import Grouping, NetEasyReport
from widgets.theme import load_stylesheet

DAY = 86400
#: Period choices: label and length in days.
PERIODS: tuple[tuple[str, int], ...] = (
    ("Last 7 days", 7),
    ("Last 30 days", 30),
    ("Last 90 days", 90),
    ("Last 365 days", 365),
)
LOW_SAMPLE_TEXT = "too few answers"
GREY = "#8A93A0"
_GROUP_TITLES: dict[Grouping, str] = {
    Grouping.CHANNEL: "Per channel",
    Grouping.AGENT: "Per agent",
    Grouping.SHIFT: "Per shift",
    Grouping.TEMPLATE: "Per template",
}


class Col(IntEnum):
    GROUP = 0
    SCORE = 1
    N = 2
    INTERVAL = 3
    RESPONSE = 4


class SurveySettings(Protocol):
    """The survey settings that Settings' Surveys page and the Net Easy panel read and set (SurveyService)."""

    @property
    def question(self) -> str: ...

    def set_question(self, text: str) -> None: ...

    def reset_question(self) -> None: ...

    @property
    def customer_days(self) -> int: ...

    def set_customer_days(self, days: int) -> None: ...

    @property
    def prompt_after_resolve(self) -> bool: ...

    def set_prompt_after_resolve(self, enabled: bool) -> None: ...


class ReportSource(SurveySettings, Protocol):
    """What the panel reads and sets (console.surveys.service.SurveyService)."""

    def report(self, *, since: int, until: int, points: int = 8) -> NetEasyReport: ...


def score_text(figure: NetEasy) -> str:
    """``"+45"``, ``"−10"``, ``"–"`` without answers."""
    if figure.score is None:
        return "–"
    value = round(figure.score)
    return f"+{value}" if value > 0 else ("0" if value == 0 else f"−{-value}")


def interval_text(figure: NetEasy) -> str:
    """``"+8 to +70"`` (95% adjusted-Wald), ``"–"`` without answers."""
    if figure.interval is None:
        return "–"

    def signed(value: float) -> str:
        rounded = round(value)
        return f"+{rounded}" if rounded > 0 else ("0" if rounded == 0 else f"−{-rounded}")

    return f"{signed(figure.interval.low)} to {signed(figure.interval.high)}"


def response_text(figure: NetEasy) -> str:
    """``"50% (10 of 20)"``."""
    if figure.response_rate is None:
        return "nothing sent"
    return f"{round(100 * figure.response_rate)}% ({figure.n} of {figure.sent})"


def trend_text(report: NetEasyReport) -> str:
    """The arrow only when the two-sample test says the change is real."""
    days = max(1, round((report.until - report.since) / DAY))
    before = f"the {days} days before"
    if report.trend is Trend.UP:
        return f"▲ Up from {score_text(report.previous)} in {before} (significant)"
    if report.trend is Trend.DOWN:
        return f"▼ Down from {score_text(report.previous)} in {before} (significant)"
    if report.previous.n == 0:
        return f"No answers in {before} to compare with"
    return f"No significant change from {score_text(report.previous)} in {before}"


def _day(ts: int) -> str:
    """``"3 Nov"`` in local time (widgets convert to local time, STYLE B4)."""
    moment = datetime.fromtimestamp(ts).astimezone()
    return f"{moment.day} {moment:%b}"


class TrendChart(QWidget):
    """Net Easy per slice of the period with its 95% interval; slices with too few answers are grey."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("netEasyChart")
        self._points: tuple[TrendPoint, ...] = ()
        self._now = 0.0
        self.setMinimumHeight(170)

    def set_points(self, points: tuple[TrendPoint, ...], now: float) -> None:
        self._points = points
        self._now = now
        self.update()

    def points(self) -> tuple[TrendPoint, ...]:
        return self._points

    @override
    def sizeHint(self) -> QSize:
        return QSize(560, 190)

    @override
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = QRectF(self.rect()).adjusted(44, 10, -12, -26)
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() - 1.5))
        painter.setFont(small)

        def y_of(value: float) -> float:
            return area.top() + (100 - value) / 200 * area.height()

        grid = QPen(QColor("#E1E4E8"))
        for value in (100, 50, 0, -50, -100):
            y = y_of(value)
            painter.setPen(grid if value else QPen(QColor("#B8BEC7")))
            painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
            painter.setPen(QColor(GREY))
            painter.drawText(
                QRectF(0, y - 8, area.left() - 6, 16),
                int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                f"{value:+d}" if value else "0",
            )
        points = self._points
        if not points:
            painter.setPen(QColor(GREY))
            painter.drawText(area, int(Qt.AlignmentFlag.AlignCenter), "No surveys in this period")
            return
        step = area.width() / len(points)
        line = QPainterPath()
        started = False
        for index, point in enumerate(points):
            x = area.left() + step * (index + 0.5)
            figure = point.figure
            painter.setPen(QColor(GREY))
            painter.drawText(
                QRectF(x - step / 2, area.bottom() + 4, step, 18),
                int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop),
                _day(point.start) if step > 40 else "",
            )
            if figure.score is None or figure.interval is None:
                continue
            colour = QColor(GREY if figure.low_sample else "#2F6FEB")
            band = QColor(colour)
            band.setAlpha(40)
            top, bottom = y_of(figure.interval.high), y_of(figure.interval.low)
            painter.fillRect(QRectF(x - min(10.0, step / 4), top, 2 * min(10.0, step / 4), bottom - top), band)
            y = y_of(figure.score)
            if started:
                line.lineTo(x, y)
            else:
                line.moveTo(x, y)
                started = True
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            radius = 2.5 + min(3.0, math.sqrt(figure.n) / 3)
            painter.drawEllipse(QPointF(x, y), radius, radius)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor("#2F6FEB"), 1.5))
        painter.drawPath(line)


class NetEasyPanel(QDialog):
    """A non-modal window: period choice, the score (greyed with "too few answers" below the minimum n),
    the tested trend, the chart and the per-channel/agent/shift/template tables."""

    def __init__(self, source: ReportSource, clock: Clock, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("netEasyPanel")
        self.setWindowTitle("Net Easy")
        if parent is None:
            self.setStyleSheet(load_stylesheet())  # a child of the main window inherits it
        self._source = source
        self._clock = clock
        self._report: NetEasyReport | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(10)
        top = QHBoxLayout()
        title = QLabel("Net Easy")
        title.setObjectName("panelTitle")
        top.addWidget(title)
        top.addStretch(1)
        self._period = QComboBox()
        self._period.setObjectName("netEasyPeriod")
        for label, days in PERIODS:
            self._period.addItem(label, days)
        self._period.setCurrentIndex(1)
        self._period.currentIndexChanged.connect(self._on_period_current_index_changed)
        top.addWidget(self._period)
        layout.addLayout(top)

        score_row = QHBoxLayout()
        score_row.setSpacing(16)
        self._score = QLabel()
        self._score.setObjectName("netEasyScore")
        score_row.addWidget(self._score, 0, Qt.AlignmentFlag.AlignVCenter)
        details = QVBoxLayout()
        details.setSpacing(2)
        self._details = QLabel()
        self._details.setObjectName("netEasyDetails")
        self._details.setTextFormat(Qt.TextFormat.PlainText)
        self._trend = QLabel()
        self._trend.setObjectName("netEasyTrend")
        self._trend.setTextFormat(Qt.TextFormat.PlainText)
        details.addWidget(self._details)
        details.addWidget(self._trend)
        score_row.addLayout(details, 1)
        layout.addLayout(score_row)
        note = QLabel(
            "Net Easy = % answering 1–2 (easy) − % answering 5–7 (difficult), on −100…+100, "
            "with the 95% adjusted-Wald interval."
        )
        note.setObjectName("panelHint")
        note.setWordWrap(True)
        layout.addWidget(note)

        self._chart = TrendChart()
        layout.addWidget(self._chart, 1)
        legend = QLabel("Dots: Net Easy per slice · bars: 95% interval · grey: too few answers in that slice")
        legend.setObjectName("panelHint")
        layout.addWidget(legend)

        self._tabs = QTabWidget()
        self._tabs.setObjectName("netEasyGroups")
        self._tables: dict[Grouping, QTableWidget] = {}
        for grouping, label in _GROUP_TITLES.items():
            table = QTableWidget(0, len(Col))
            table.setObjectName(f"netEasy_{grouping.value}")
            table.setHorizontalHeaderLabels(["", "Net Easy", "n", "95% interval", "Response rate"])
            table.verticalHeader().hide()
            table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
            table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
            table.setAlternatingRowColors(True)
            header = table.horizontalHeader()
            header.setSectionResizeMode(Col.GROUP, QHeaderView.ResizeMode.Stretch)
            for col in (Col.SCORE, Col.N, Col.INTERVAL, Col.RESPONSE):
                header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
            self._tables[grouping] = table
            self._tabs.addTab(table, label)
        self._tabs.addTab(self._build_settings(), "Survey settings")
        layout.addWidget(self._tabs, 1)
        self.resize(720, 660)
        self.reload()

    def _build_settings(self) -> QWidget:
        page = QWidget()
        page.setObjectName("surveySettings")
        form = QFormLayout(page)
        form.setContentsMargins(12, 12, 12, 12)
        self._question = QPlainTextEdit()
        self._question.setObjectName("surveyQuestion")
        self._question.setTabChangesFocus(True)
        self._question.setMaximumHeight(72)
        form.addRow("Question", self._question)
        self._days = QSpinBox()
        self._days.setObjectName("surveyCustomerDays")
        self._days.setRange(0, 180)
        self._days.setSuffix(" days")
        form.addRow("Same customer at most every", self._days)
        self._ask = QCheckBox("Offer to send the survey after resolving an item")
        self._ask.setObjectName("surveyAskAfterResolve")
        form.addRow("", self._ask)
        buttons = QHBoxLayout()
        self._save = QPushButton("Save")
        self._save.setObjectName("surveySettingsSave")
        self._save.clicked.connect(self._on_save_clicked)
        reset = QPushButton("Default question")
        reset.clicked.connect(self._on_reset_clicked)
        buttons.addWidget(self._save)
        buttons.addWidget(reset)
        buttons.addStretch(1)
        form.addRow("", buttons)
        self._settings_message = QLabel()
        self._settings_message.setObjectName("surveySettingsMessage")
        self._settings_message.setTextFormat(Qt.TextFormat.PlainText)
        self._settings_message.setWordWrap(True)
        form.addRow("", self._settings_message)
        hint = QLabel("Never two surveys to one customer within 24 hours, whatever this setting says.")
        hint.setObjectName("panelHint")
        hint.setWordWrap(True)
        form.addRow("", hint)
        self._load_settings()
        return page

    def _load_settings(self) -> None:
        self._question.setPlainText(self._source.question)
        self._days.setValue(self._source.customer_days)
        self._ask.setChecked(self._source.prompt_after_resolve)

    # ------------------------------------------------------------------ public API
    def question_edit(self) -> QPlainTextEdit:
        return self._question

    def days_spin(self) -> QSpinBox:
        return self._days

    def ask_check(self) -> QCheckBox:
        return self._ask

    def save_button(self) -> QPushButton:
        return self._save

    def settings_message(self) -> str:
        return self._settings_message.text()

    @property
    def report(self) -> NetEasyReport | None:
        return self._report

    def period_combo(self) -> QComboBox:
        return self._period

    def score_text(self) -> str:
        return self._score.text()

    def details_text(self) -> str:
        return self._details.text()

    def trend_label(self) -> str:
        return self._trend.text()

    def table(self, grouping: Grouping) -> QTableWidget:
        return self._tables[grouping]

    def chart(self) -> TrendChart:
        return self._chart

    @Slot()
    def reload(self) -> None:
        """Re-read the report for the chosen period, ending now."""
        now = self._clock.now()
        days = int(self._period.currentData() or 30)
        until = int(now) + 1
        report = self._source.report(since=until - days * DAY, until=until)
        self._report = report
        overall = report.overall
        low = overall.low_sample
        self._score.setText(score_text(overall))
        if self._score.property("lowSample") != low:
            self._score.setProperty("lowSample", low)  # greyed by the style sheet
            self._score.style().unpolish(self._score)
            self._score.style().polish(self._score)
        parts = [f"n = {overall.n}"]
        if overall.interval is not None:
            parts.append(f"95% interval {interval_text(overall)}")
        parts.append(f"response rate {response_text(overall)}")
        if low:
            parts.append(f"{LOW_SAMPLE_TEXT} (fewer than {overall.min_n})")
        self._details.setText(" · ".join(parts))
        self._trend.setText(trend_text(report))
        self._chart.set_points(report.points, now)
        for grouping, table in self._tables.items():
            rows = report.groups.get(grouping, ())
            table.setRowCount(len(rows))
            for row, group in enumerate(rows):
                figure = group.figure
                cells = {
                    Col.GROUP: group.label,
                    Col.SCORE: score_text(figure) + (f"  ({LOW_SAMPLE_TEXT})" if figure.low_sample else ""),
                    Col.N: str(figure.n),
                    Col.INTERVAL: interval_text(figure),
                    Col.RESPONSE: response_text(figure),
                }
                for col, text in cells.items():
                    item = QTableWidgetItem(text)
                    if col is not Col.GROUP:
                        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    if figure.low_sample:
                        item.setForeground(QColor(GREY))
                    table.setItem(row, col, item)

    @Slot(int)
    def _on_period_current_index_changed(self, _index: int) -> None:
        self.reload()

    @Slot()
    def _on_save_clicked(self) -> None:
        """Save all three settings; a question without both anchors is refused with the reason, nothing lost."""
        try:
            self._source.set_question(self._question.toPlainText())
            self._source.set_customer_days(self._days.value())
        except ValueError as exc:
            self._settings_message.setText(str(exc))
            return
        self._source.set_prompt_after_resolve(self._ask.isChecked())
        self._settings_message.setText("Saved. New surveys use this question.")

    @Slot()
    def _on_reset_clicked(self) -> None:
        self._source.reset_question()
        self._question.setPlainText(self._source.question)
        self._settings_message.setText("The default question is back.")
