"""The shortcut editor: Escape cancels a key capture and is never saved as a shortcut (issue 19 §2)."""

from __future__ import annotations

import pytest
import sqlite_utils
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QKeySequenceEdit
from pytestqt.qtbot import QtBot

from console.keymap import KEY_OVERRIDES, KeyMap
from console.queue import QueueService
from console.triage import Triage
from storage.settings import SettingsRepo
from storage.triage import TriageRepo
from tests.fakes.clock import FakeClock
from widgets.main_window import MainWindow
from widgets.shortcut_help import ShortcutEditor
from widgets.triage_actions import TriageCommand


class Rebinds:
    """A fake ``rebind``: applies the keys and records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, action: QAction, keys: str) -> str | None:
        self.calls.append((action.objectName(), keys))
        action.setShortcut(QKeySequence(keys))
        return None


@pytest.fixture
def waiting() -> QAction:
    action = QAction("Mark as waiting on customer")
    action.setObjectName("triage_set_waiting")
    action.setShortcut(QKeySequence("W"))
    return action


def _capture_field(editor: ShortcutEditor) -> QKeySequenceEdit:
    edit = editor.findChild(QKeySequenceEdit)
    assert isinstance(edit, QKeySequenceEdit)
    return edit


def _show(qtbot: QtBot, editor: ShortcutEditor) -> QKeySequenceEdit:
    qtbot.addWidget(editor)
    editor.show()
    qtbot.waitExposed(editor)
    edit = _capture_field(editor)
    editor.activateWindow()
    edit.setFocus()
    qtbot.waitUntil(edit.hasFocus)
    return edit


def test_shortcut_editor_escape_cancels_capture(qtbot: QtBot, waiting: QAction) -> None:
    rebinds = Rebinds()
    editor = ShortcutEditor([("Triage", [waiting])], rebind=rebinds)
    edit = _show(qtbot, editor)
    qtbot.keyClick(edit, Qt.Key.Key_Escape)
    assert rebinds.calls == []
    assert waiting.shortcut().toString() == "W"
    assert edit.keySequence().toString() == "W"
    assert not edit.hasFocus()
    assert not editor.changed()


def test_shortcut_editor_still_captures_other_keys(qtbot: QtBot, waiting: QAction) -> None:
    rebinds = Rebinds()
    editor = ShortcutEditor([("Triage", [waiting])], rebind=rebinds)
    edit = _show(qtbot, editor)
    with qtbot.waitSignal(edit.editingFinished):
        qtbot.keyClick(edit, Qt.Key.Key_N)
    assert rebinds.calls == [("triage_set_waiting", "N")]
    assert waiting.shortcut().toString() == "N"


def test_shortcut_editor_refuses_escape_typed_as_keys(qtbot: QtBot, waiting: QAction) -> None:
    rebinds = Rebinds()
    editor = ShortcutEditor([("Triage", [waiting])], rebind=rebinds)
    qtbot.addWidget(editor)
    refusal = editor.set_keys(editor.row_of("triage_set_waiting"), "Esc")
    assert refusal is not None
    assert "Escape" in refusal
    assert rebinds.calls == []
    assert waiting.shortcut().toString() == "W"


@pytest.fixture
def triage(db: sqlite_utils.Database, clock: FakeClock) -> Triage:
    return Triage(TriageRepo(db), clock, actor=lambda: "Sam")


def test_workbench_rebind_refuses_escape(
    qtbot: QtBot, service: QueueService, clock: FakeClock, triage: Triage, db: sqlite_utils.Database
) -> None:
    win = MainWindow(service, clock, triage=triage, keymap=KeyMap(SettingsRepo(db)))
    qtbot.addWidget(win)
    actions = win.workbench.triage_actions
    assert actions is not None
    waiting = actions.actions[TriageCommand.SET_WAITING]
    assert win.workbench.rebind(waiting, "Esc") is not None
    assert waiting.shortcut().toString() == "W"
    assert KeyMap(SettingsRepo(db)).overrides() == {}


def test_workbench_ignores_escape_saved_by_an_older_version(
    qtbot: QtBot, service: QueueService, clock: FakeClock, triage: Triage, db: sqlite_utils.Database
) -> None:
    SettingsRepo(db).set(KEY_OVERRIDES, '{"triage_set_waiting": ["Esc"]}')
    win = MainWindow(service, clock, triage=triage, keymap=KeyMap(SettingsRepo(db)))
    qtbot.addWidget(win)
    actions = win.workbench.triage_actions
    assert actions is not None
    assert actions.actions[TriageCommand.SET_WAITING].shortcut().toString() == "W"
