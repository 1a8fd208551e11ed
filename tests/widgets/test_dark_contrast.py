"""The dark theme: disabled controls look disabled, search matches stay readable (issue 19 §9)."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QApplication, QStyleOptionViewItem
from pytestqt.qtbot import QtBot

from console.queue import QueueService
from console.sla.bands import Band
from tests.fakes.clock import FakeClock
from widgets.dark import dark_palette, dark_stylesheet
from widgets.delegates import SlaDelegate
from widgets.main_window import MainWindow
from widgets.queue_delegates import HIGHLIGHT, HighlightDelegate, match_spans
from widgets.queue_model import Role
from widgets.theme import load_stylesheet


def _colour(sheet: str, selector: str, prop: str) -> QColor:
    """The colour ``prop`` has in the rule for exactly ``selector``."""
    for found in re.finditer(r"([^{}]*)\{([^{}]*)\}", sheet):
        selectors = [s.strip() for s in found.group(1).split(",")]
        if selector in selectors:
            value = re.search(rf"(?:^|[;\s]){re.escape(prop)}\s*:\s*(#[0-9A-Fa-f]{{6}})", found.group(2))
            if value:
                return QColor(value.group(1))
    raise AssertionError(f"no {prop} for {selector}")


@pytest.fixture(scope="module")
def dark_sheet() -> str:
    return dark_stylesheet(load_stylesheet())


@pytest.mark.parametrize(
    ("enabled", "disabled"),
    [
        ("QPushButton", "QPushButton:disabled"),
        ("QPushButton#sendButton", "QPushButton#sendButton:disabled"),
    ],
)
def test_dark_disabled_button_text_is_dimmer_than_enabled(dark_sheet: str, enabled: str, disabled: str) -> None:
    on = _colour(dark_sheet, enabled, "color")
    off = _colour(dark_sheet, disabled, "color")
    assert on.lightnessF() - off.lightnessF() >= 0.3


def test_dark_disabled_send_button_loses_its_colour(dark_sheet: str) -> None:
    on = _colour(dark_sheet, "QPushButton#sendButton", "background")
    off = _colour(dark_sheet, "QPushButton#sendButton:disabled", "background")
    assert off.hslSaturationF() < 0.3 < on.hslSaturationF()


def test_dark_disabled_menu_items_are_dim(dark_sheet: str) -> None:
    off = _colour(dark_sheet, "QMenu::item:disabled", "color")
    assert off.lightnessF() < 0.55


@pytest.mark.parametrize(
    "role", [QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText]
)
def test_dark_palette_disabled_text_is_dimmer(role: QPalette.ColorRole) -> None:
    palette = dark_palette()
    active = palette.color(QPalette.ColorGroup.Active, role)
    disabled = palette.color(QPalette.ColorGroup.Disabled, role)
    assert active.lightnessF() - disabled.lightnessF() >= 0.3


def test_dark_search_match_is_dark_on_yellow(qapp: QApplication) -> None:
    """The matched word was drawn white (the dark theme's text) on the yellow highlight."""
    model = QStandardItemModel(1, 1)
    item = QStandardItem("where is my parcel please")
    item.setData(("parcel",), Role.HIGHLIGHT)
    model.setItem(0, 0, item)
    index = model.index(0, 0)
    image = QImage(400, 32, QImage.Format.Format_ARGB32)
    image.fill(QColor("#17191D"))
    option = QStyleOptionViewItem()
    option.rect = image.rect()
    option.font = QFont(QApplication.font())
    option.font.setPointSize(14)
    option.palette = dark_palette()
    painter = QPainter(image)
    HighlightDelegate().paint(painter, option, index)
    painter.end()
    ((start, end),) = match_spans("where is my parcel please", ("parcel",))
    assert (start, end) == (12, 18)
    yellow = QColor(HIGHLIGHT)
    # Inside the highlight's box, the glyphs' ink: the darkest pixel there must be dark (it was white).
    box = _yellow_box(image, yellow)
    darkest = min(QColor(image.pixel(x, y)).lightnessF() for x in range(box.left(), box.right() + 1)
                  for y in range(box.top(), box.bottom() + 1))  # fmt: skip
    assert darkest < 0.35


def _yellow_box(image: QImage, yellow: QColor) -> QRect:
    """The bounding box of the highlight's pixels (it must be painted at all)."""
    points = [
        (x, y) for x in range(image.width()) for y in range(image.height()) if QColor(image.pixel(x, y)) == yellow
    ]
    assert points
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return QRect(min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)


def test_light_theme_keeps_its_colours() -> None:
    light = load_stylesheet()
    assert _colour(light, "QPushButton:disabled", "color") == QColor("#A0A7B1")


def test_dark_health_strip_follows_the_theme(qtbot: QtBot, service: QueueService, clock: FakeClock) -> None:
    """The strip under the menu kept its light colours in the dark theme (it is coloured in code)."""
    window = MainWindow(service, clock)
    qtbot.addWidget(window)
    strip = window.health_strip

    def background() -> QColor:
        found = re.search(r"background:(#[0-9A-Fa-f]{6})", strip.styleSheet())
        assert found is not None
        return QColor(found.group(1))

    assert background().lightnessF() > 0.8
    window.theme.set_forced(True)
    try:
        assert background().lightnessF() < 0.3
    finally:
        window.theme.set_forced(False)
    assert background().lightnessF() > 0.8


# The queue's SLA pills (found walking the shift: light pastels in the dark queue, dark pills in the conversation).


def _luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _paint_pill(band: Band, palette: QPalette) -> tuple[QColor, QColor]:
    """Paint a queue SLA cell; returns the pill's background and its text's ink (the pixel in the pill that
    differs most from that background)."""
    model = QStandardItemModel(1, 1)
    item = QStandardItem("+12:34")
    item.setData(band.value, Role.BAND)
    model.setItem(0, 0, item)
    base = palette.color(QPalette.ColorRole.Base)
    image = QImage(160, 40, QImage.Format.Format_ARGB32)
    image.fill(base)
    option = QStyleOptionViewItem()
    option.rect = image.rect()
    option.font = QFont(QApplication.font())
    option.font.setPointSize(14)
    option.palette = palette
    painter = QPainter(image)
    SlaDelegate().paint(painter, option, model.index(0, 0))
    painter.end()
    middle = image.height() // 2
    # The pill's background: just inside its rounded left end, on the middle line (before any glyph).
    xs = [x for x in range(image.width()) if QColor(image.pixel(x, middle)) != base]
    assert xs, "no pill painted"
    background = QColor(image.pixel(xs[0] + 6, middle))
    inside = [QColor(image.pixel(x, y)) for x in range(xs[0] + 6, xs[-1] - 6) for y in range(middle - 6, middle + 6)]
    ink = max(inside, key=lambda c: contrast(c, background))
    return background, ink


@pytest.mark.parametrize("band", [Band.OK, Band.WARNING, Band.NONE])
def test_queue_sla_pills_are_dark_in_the_dark_theme_and_readable(qapp: QApplication, band: Band) -> None:
    """The queue's pills kept their light pastels in the dark theme while the conversation's were dark."""
    light_background, light_ink = _paint_pill(band, QApplication.palette())
    assert light_background.lightnessF() > 0.7 and contrast(light_background, light_ink) >= 4.5
    previous = QPalette(QApplication.palette())
    QApplication.setPalette(dark_palette())
    try:
        background, ink = _paint_pill(band, dark_palette())
    finally:
        QApplication.setPalette(previous)
    assert background.lightnessF() < 0.35
    assert ink.lightnessF() > background.lightnessF()
    assert contrast(background, ink) >= 4.5


def test_queue_breached_pill_stays_red_and_readable_in_the_dark_theme(qapp: QApplication) -> None:
    previous = QPalette(QApplication.palette())
    QApplication.setPalette(dark_palette())
    try:
        background, ink = _paint_pill(Band.BREACHED, dark_palette())
    finally:
        QApplication.setPalette(previous)
    assert background.hslSaturationF() > 0.5 and background.red() > 150
    assert contrast(background, ink) >= 4.5
