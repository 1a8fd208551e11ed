"""The screen a widget is on, found without ``QWidget.screen()``: that call lets the cyclic GC delete the screen.

PySide 6.11 (shiboken's return-value heuristic) makes the QScreen wrapper that ``widget.screen()`` (or
``QWindow.screen()``) returns a Python *child* of the widget's wrapper, although the screen belongs to the
application. When that widget is freed by the cyclic garbage collector (a window caught in a reference cycle, as
every MainWindow is through its slots), the collector may clear the QScreen wrapper first: clearing it unlinks it
from its "parent", which hands the C++ QScreen to Python, and the wrapper's deallocation then deletes the
application's screen. The next widget created segfaults in ``QScreen::virtualSiblings`` (issue 19 §10 brought the
first such call, ``MainWindow.fit_to_screen``). The static ``QGuiApplication`` lookups below add no such link.
"""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication, QScreen
from PySide6.QtWidgets import QWidget


def screen_of(widget: QWidget) -> QScreen | None:
    """The screen ``widget``'s window is on (or opens on), as ``widget.screen()`` answers, without its ownership trap.

    Never call ``screen()`` on a widget or window from Python in this app: use this.
    """
    window = widget.window()
    return QGuiApplication.screenAt(window.frameGeometry().center()) or QGuiApplication.primaryScreen()
