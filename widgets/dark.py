"""The dark theme: derived from the light style sheet colour by colour, applied when the system prefers dark."""

from __future__ import annotations

import re

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from widgets.theme import load_stylesheet

_HEX = re.compile(r"#[0-9A-Fa-f]{6}\b")
_DECLARATION = re.compile(r"([\w-]+)(\s*:\s*)([^;{}]*)(;)")
_TEXT_PROPERTIES = frozenset({"color", "selection-color"})
_RULE = re.compile(r"([^{}]*)(\{[^{}]*\})")
#: Lightness of disabled text in the dark theme: readable, clearly dimmer than enabled text (0.85 or more).
DISABLED_TEXT_LIGHTNESS = 0.45


def _hsl(colour: str) -> tuple[float, float, float]:
    parsed = QColor(colour)
    return max(parsed.hslHueF(), 0.0), parsed.hslSaturationF(), parsed.lightnessF()


def _with_lightness(colour: str, lightness: float) -> str:
    hue, saturation, _old = _hsl(colour)
    return QColor.fromHslF(hue, saturation, min(max(lightness, 0.0), 1.0)).name().upper()


def dark_surface(colour: str) -> str:
    """A background or border colour for the dark theme: light surfaces turn dark (keeping their tint),
    saturated accents (buttons, red pills) stay as they are, so their white text stays readable."""
    _hue, saturation, lightness = _hsl(colour)
    if saturation > 0.5 and 0.3 < lightness < 0.7:
        return colour.upper()
    if lightness > 0.5:
        return _with_lightness(colour, 0.1 + (1.0 - lightness) * 0.7)
    return _with_lightness(colour, 0.2 + lightness * 0.3)


def dark_text(colour: str) -> str:
    """A text colour for the dark theme: dark text turns light (keeping its hue); light text stays light."""
    _hue, _saturation, lightness = _hsl(colour)
    if lightness > 0.6:
        return colour.upper()
    return _with_lightness(colour, 0.95 - 0.75 * lightness)


def dark_disabled_text(colour: str) -> str:
    """Text of a disabled control in the dark theme: dim grey, whatever it was (light greys stayed light and
    read as enabled, issue 19 §9)."""
    hue, saturation, _lightness = _hsl(colour)
    return QColor.fromHslF(hue, saturation * 0.25, DISABLED_TEXT_LIGHTNESS).name().upper()


def dark_disabled_surface(colour: str) -> str:
    """Background or border of a disabled control in the dark theme: flat, near the window's colour; an
    accent (a pale blue "Send") loses its colour instead of turning into a bright button."""
    hue, saturation, _lightness = _hsl(colour)
    return QColor.fromHslF(hue, saturation * 0.3, 0.19).name().upper()


def dark_stylesheet(light: str) -> str:
    """The light style sheet with every colour mapped by the property it is used for; rules for disabled
    controls get dim colours so that a disabled button or menu item never looks enabled."""

    def rule(found: re.Match[str]) -> str:
        selector, body = found.groups()
        disabled = ":disabled" in selector

        def declaration(decl: re.Match[str]) -> str:
            prop, colon, value, end = decl.groups()
            text = prop.lower() in _TEXT_PROPERTIES
            if disabled:
                mapper = dark_disabled_text if text else dark_disabled_surface
            else:
                mapper = dark_text if text else dark_surface
            return prop + colon + _HEX.sub(lambda c: mapper(c.group(0)), value) + end

        return selector + _DECLARATION.sub(declaration, body)

    return _RULE.sub(rule, light)


def dark_palette() -> QPalette:
    """For what the style sheet does not colour (documents, dialogs, plain tables)."""
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#1E2126",
        QPalette.ColorRole.WindowText: "#E6E8EB",
        QPalette.ColorRole.Base: "#17191D",
        QPalette.ColorRole.AlternateBase: "#1D2025",
        QPalette.ColorRole.Text: "#E6E8EB",
        QPalette.ColorRole.Button: "#262A30",
        QPalette.ColorRole.ButtonText: "#E6E8EB",
        QPalette.ColorRole.Highlight: "#2F4F8F",
        QPalette.ColorRole.HighlightedText: "#FFFFFF",
        QPalette.ColorRole.ToolTipBase: "#2A2E35",
        QPalette.ColorRole.ToolTipText: "#E6E8EB",
        QPalette.ColorRole.PlaceholderText: "#8A939E",
        QPalette.ColorRole.Link: "#7FA7FF",
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    # Disabled menu items, buttons and fields read their colours from the Disabled group: without these they
    # took the enabled colours above and looked enabled (issue 19 §9).
    dim = QColor.fromHslF(0.58, 0.08, DISABLED_TEXT_LIGHTNESS)
    disabled = QPalette.ColorGroup.Disabled
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.HighlightedText,
        QPalette.ColorRole.PlaceholderText,
    ):
        palette.setColor(disabled, role, dim)
    palette.setColor(disabled, QPalette.ColorRole.Button, QColor("#1E2126"))
    palette.setColor(disabled, QPalette.ColorRole.Highlight, QColor("#2A2E35"))
    return palette


def system_prefers_dark() -> bool:
    hints = QGuiApplication.styleHints()
    return hints is not None and hints.colorScheme() is Qt.ColorScheme.Dark


def is_dark() -> bool:
    """Whether the dark theme is on (the application palette's window colour is dark)."""
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def surface(colour: str) -> QColor:
    """A colour painted in code (e.g. message cards) as the current theme wants it."""
    return QColor(dark_surface(colour) if is_dark() else colour)


def text(colour: str) -> QColor:
    return QColor(dark_text(colour) if is_dark() else colour)


class ThemeFollower(QObject):
    """Keeps a window in the system's light or dark scheme, now and whenever the system switches."""

    #: The scheme changed (True: dark); widgets that paint colours in code redraw.
    changed = Signal(bool)

    def __init__(self, window: QWidget, *, dark: bool | None = None) -> None:
        super().__init__(window)
        self._window = window
        self._forced = dark
        # The palette to go back to: the current one unless it is already dark, else the style's own.
        style = QApplication.style()
        self._light_palette = (
            QPalette(QGuiApplication.palette()) if not is_dark() or style is None else style.standardPalette()
        )
        hints = QGuiApplication.styleHints()
        if hints is not None:
            hints.colorSchemeChanged.connect(self._on_color_scheme_changed)
        self.apply()

    @property
    def dark(self) -> bool:
        return self._forced if self._forced is not None else system_prefers_dark()

    @property
    def forced(self) -> bool | None:
        """True/False: always dark/light (the agent's choice in Settings); None: follow the system."""
        return self._forced

    def set_forced(self, dark: bool | None) -> None:
        """Always dark (True), always light (False), or follow the system (None), from now on."""
        was = self.dark
        self._forced = dark
        self.apply()
        if self.dark != was:
            self.changed.emit(self.dark)

    def apply(self) -> None:
        light = load_stylesheet()
        app = QApplication.instance()
        if self.dark:
            if isinstance(app, QApplication):
                app.setPalette(dark_palette())
            self._window.setStyleSheet(dark_stylesheet(light))
        else:
            if isinstance(app, QApplication) and is_dark():
                app.setPalette(self._light_palette)
            if self._window.styleSheet() != light:
                self._window.setStyleSheet(light)

    @Slot(Qt.ColorScheme)
    def _on_color_scheme_changed(self, _scheme: Qt.ColorScheme) -> None:
        if self._forced is not None:
            return  # the agent chose light or dark in Settings
        self.apply()
        self.changed.emit(self.dark)
