"""Fonts shipped in resources/fonts: registered with Qt at start, the emoji font as the font for emoji."""

from __future__ import annotations

import logging
from importlib import resources

from PySide6.QtGui import QFontDatabase

log = logging.getLogger(__name__)

#: The bundled emoji font (Noto Color Emoji, OFL 1.1: resources/fonts/LICENSES.md).
EMOJI_FONT_FILE = "NotoColorEmoji.ttf"


def register_bundled_fonts() -> list[str]:
    """Register every font in resources/fonts with Qt; the emoji font becomes the application's emoji font.

    Needs a QGuiApplication. Where the system has no colour emoji font, emoji in customer text showed as empty
    boxes (issue 19 §16); with this, every machine shows them the same way.

    Returns:
        The families registered (empty when a file is missing or unreadable: the app starts anyway).
    """
    families: list[str] = []
    folder = resources.files("resources") / "fonts"
    if not folder.is_dir():
        return families
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith((".ttf", ".otf")):
            continue
        with resources.as_file(entry) as path:
            font_id = QFontDatabase.addApplicationFont(str(path))
        if font_id < 0:
            log.warning("could not load the bundled font %s", entry.name)
            continue
        added = QFontDatabase.applicationFontFamilies(font_id)
        families.extend(added)
        if entry.name == EMOJI_FONT_FILE:
            for family in added:
                QFontDatabase.addApplicationEmojiFontFamily(family)
    return families
