"""The dark theme: colours mapped by use, the palette and style sheet applied and restored."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from console.queue import QueueService
from tests.fakes.clock import FakeClock
from widgets.dark import ThemeFollower, dark_stylesheet, dark_surface, dark_text, is_dark
from widgets.main_window import MainWindow
from widgets.theme import load_stylesheet


@pytest.mark.parametrize("colour", ["#FFFFFF", "#F4F5F7", "#DCE7FD", "#E1E4E8"])
def test_dark_surface_turns_light_backgrounds_dark(colour: str) -> None:
    assert QColor(dark_surface(colour)).lightnessF() < 0.25


@pytest.mark.parametrize("colour", ["#2F6FEB", "#D93A3A"])
def test_dark_surface_keeps_accents(colour: str) -> None:
    assert dark_surface(colour) == colour


@pytest.mark.parametrize(("colour", "light"), [("#1F2328", True), ("#66707D", True), ("#FFFFFF", True)])
def test_dark_text_is_light(colour: str, light: bool) -> None:
    assert (QColor(dark_text(colour)).lightnessF() > 0.55) is light


def test_dark_stylesheet_maps_by_property() -> None:
    out = dark_stylesheet("QLabel { background: #FFFFFF; color: #1F2328; border: 1px solid #E1E4E8; }")
    assert "background: #FFFFFF" not in out
    assert "color: #1F2328" not in out
    assert out.count("#") == 3


def test_theme_follower_applies_and_restores(qtbot: QtBot, service: QueueService, clock: FakeClock) -> None:
    window = MainWindow(service, clock)
    qtbot.addWidget(window)
    try:
        ThemeFollower(window, dark=True)
        assert is_dark()
        assert window.styleSheet() == dark_stylesheet(load_stylesheet())
    finally:
        ThemeFollower(window, dark=False)
    assert not is_dark()
    assert window.styleSheet() == load_stylesheet()
