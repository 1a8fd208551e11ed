"""The main window never lets the GC delete the application's screen (widgets/screens.py).

``QWidget.screen()`` made the QScreen's Python wrapper a child of the window's; a window freed by the cyclic GC
(as a MainWindow built and dropped in a test is) then took the QScreen with it, and the next widget created
segfaulted in ``QScreen::virtualSiblings``.
"""

from __future__ import annotations

import gc
import re
from pathlib import Path

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot
from shiboken6 import Shiboken

from console.queue import QueueService
from tests.fakes.clock import FakeClock
from widgets.main_window import MainWindow

_ROOT = Path(__file__).parents[2]


def _parent_of(obj: object) -> str:
    """The Python parent shiboken records for ``obj``'s wrapper ("" when none)."""
    found = re.search(r"^parent\.+ <(.*)>$", Shiboken.dump(obj), re.MULTILINE)
    return found.group(1) if found else ""


def test_fitting_the_window_to_the_screen_does_not_make_the_screen_its_child(
    qtbot: QtBot, service: QueueService, clock: FakeClock
) -> None:
    screen = QGuiApplication.primaryScreen()  # an old wrapper: the GC clears it before a newer window's
    assert screen is not None
    gc.collect()
    window = MainWindow(service, clock)  # fit_to_screen runs in __init__
    window.fit_to_screen(1400, 860)
    assert f"at {id(window):#x}" not in _parent_of(screen)
    vars(window)["cycle"] = window  # only the cyclic GC frees it, as it does the windows tests build and drop
    del window, screen
    gc.collect()
    assert QGuiApplication.screens(), "the application's screen was deleted with the window"
    qtbot.addWidget(QLabel("still alive"))  # a new widget looks its screen up: QScreen::virtualSiblings segfaulted


def test_app_code_never_asks_a_widget_for_its_screen() -> None:
    calls = [
        f"{path.relative_to(_ROOT)}:{number}"
        for path in [*sorted((_ROOT / "widgets").glob("*.py")), _ROOT / "main.py"]
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\.screen\(\)", line.split("#", 1)[0]) and path.name != "screens.py"
    ]
    assert calls == [], "use widgets.screens.screen_of(widget): QWidget.screen() lets the GC delete the QScreen"
