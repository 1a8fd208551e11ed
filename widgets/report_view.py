"""Shows a report (tiles, tables, charts) in widgets: the end-of-shift preview and the review window."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGridLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from console.reports.export.report import Report, Section, Table, Tile

TONE_BACKGROUND = {"bad": "#FEF2F2", "warn": "#FFFBEB", "good": "#F0FDF4"}
TONE_TEXT = {"bad": "#B91C1C", "warn": "#B45309", "good": "#15803D", "": "#0F172A"}


def tile_widget(tile: Tile) -> QFrame:
    frame = QFrame()
    frame.setObjectName("reportTile")
    background = TONE_BACKGROUND.get(tile.tone, "#F8FAFC")
    frame.setStyleSheet(
        f"QFrame#reportTile {{ border: 1px solid #E2E8F0; border-radius: 6px; background: {background}; }}"
    )
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(10, 8, 10, 8)
    layout.setSpacing(1)
    label = QLabel(tile.label.upper())
    label.setStyleSheet("color: #64748B; font-size: 10px; border: none; background: transparent;")
    value = QLabel(tile.value)
    value.setStyleSheet(
        f"color: {TONE_TEXT.get(tile.tone, '#0F172A')}; font-size: 18px; font-weight: 600; border: none;"
        " background: transparent;"
    )
    layout.addWidget(label)
    layout.addWidget(value)
    if tile.note:
        note = QLabel(tile.note)
        note.setStyleSheet("color: #64748B; font-size: 10px; border: none; background: transparent;")
        note.setWordWrap(True)
        layout.addWidget(note)
    return frame


def tiles_widget(tiles: list[Tile], *, per_row: int = 4) -> QWidget:
    box = QWidget()
    grid = QGridLayout(box)
    grid.setContentsMargins(0, 0, 0, 0)
    grid.setSpacing(8)
    for i, tile in enumerate(tiles):
        grid.addWidget(tile_widget(tile), i // per_row, i % per_row)
    return box


def table_widget(table: Table) -> QTableWidget:
    widget = QTableWidget(len(table.rows), len(table.headers))
    widget.setHorizontalHeaderLabels(table.headers)
    widget.verticalHeader().setVisible(False)
    widget.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    widget.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    widget.setWordWrap(True)
    for r, row in enumerate(table.rows):
        tone = table.tones[r] if r < len(table.tones) else ""
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            if table.align[c : c + 1] == "r":
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if tone:
                item.setBackground(QColor(TONE_BACKGROUND[tone]))
            widget.setItem(r, c, item)
    header = widget.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    if len(table.rows) <= 200:
        widget.resizeColumnsToContents()
        widget.resizeRowsToContents()
    return widget


def section_widget(section: Section) -> QScrollArea:
    body = QWidget()
    layout = QVBoxLayout(body)
    layout.setContentsMargins(12, 12, 12, 12)
    layout.setSpacing(10)
    if section.intro:
        intro = QLabel(section.intro)
        intro.setWordWrap(True)
        layout.addWidget(intro)
    if section.tiles:
        layout.addWidget(tiles_widget(section.tiles, per_row=3))

    def add_charts() -> None:
        for chart in section.charts:
            title = QLabel(f"<b>{chart.title}</b>" + (f" · {chart.caption}" if chart.caption else ""))
            title.setTextFormat(Qt.TextFormat.RichText)
            layout.addWidget(title)
            image = QLabel()
            pixmap = QPixmap()
            pixmap.loadFromData(chart.png, "PNG")
            image.setPixmap(pixmap.scaledToWidth(880, Qt.TransformationMode.SmoothTransformation))
            layout.addWidget(image)

    if section.charts_first:
        add_charts()
    for table in section.tables:
        if table.title:
            layout.addWidget(QLabel(f"<b>{table.title}</b>"))
        view = table_widget(table)
        view.setMinimumHeight(min(420, 40 + 30 * max(1, len(table.rows))))
        layout.addWidget(view)
        if table.note:
            note = QLabel(table.note)
            note.setWordWrap(True)
            note.setStyleSheet("color: #64748B;")
            layout.addWidget(note)
    if not section.charts_first:
        add_charts()
    for para in section.paragraphs:
        label = QLabel(para)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(label)
    layout.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(body)
    return scroll


class ReportView(QWidget):
    """A report: title, tiles, and one tab per section."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(12, 12, 12, 12)
        self._title = QLabel()
        self._title.setStyleSheet("font-size: 18px; font-weight: 600;")
        self._subtitle = QLabel()
        self._subtitle.setStyleSheet("color: #64748B;")
        self._tiles: QWidget = QWidget()
        self.tabs = QTabWidget()
        self._layout.addWidget(self._title)
        self._layout.addWidget(self._subtitle)
        self._layout.addWidget(self._tiles)
        self._layout.addWidget(self.tabs, 1)

    def show_report(self, report: Report) -> None:
        self._title.setText(report.title)
        self._subtitle.setText(report.subtitle)
        tiles = tiles_widget(report.tiles)
        self._layout.replaceWidget(self._tiles, tiles)
        self._tiles.deleteLater()
        self._tiles = tiles
        self.tabs.clear()
        for section in report.sections:
            self.tabs.addTab(section_widget(section), section.title)
