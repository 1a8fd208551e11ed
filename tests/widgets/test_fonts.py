"""The bundled emoji font: shipped with its licence, registered with Qt as the emoji font (issue 19 §16)."""

from __future__ import annotations

from importlib import resources

from PySide6.QtGui import QFontDatabase, QGuiApplication

from widgets.fonts import EMOJI_FONT_FILE, register_bundled_fonts


def test_fonts_emoji_font_is_registered_as_the_emoji_font(qapp: QGuiApplication) -> None:
    families = register_bundled_fonts()
    assert "Noto Color Emoji" in families
    assert "Noto Color Emoji" in QFontDatabase.applicationEmojiFontFamilies()
    assert "Noto Color Emoji" in QFontDatabase.families()


def test_fonts_every_bundled_font_has_a_licence_entry() -> None:
    folder = resources.files("resources") / "fonts"
    fonts = [e.name for e in folder.iterdir() if e.name.endswith((".ttf", ".otf"))]
    assert EMOJI_FONT_FILE in fonts
    licences = (folder / "LICENSES.md").read_text(encoding="utf-8")
    ofl = (folder / "OFL.txt").read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in ofl
    for name in fonts:
        assert f"`{name}`" in licences
