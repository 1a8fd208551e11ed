"""File → Settings…: every page changes its setting, stores it and takes effect; bad input is refused, nothing lost."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlite_utils
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QComboBox, QDialogButtonBox, QMenu, QSpinBox
from pytestqt.qtbot import QtBot

from console.keymap import KeyMap
from console.preferences import DEFAULT_SURVEY_QUESTION, THEME, Preferences, Theme
from console.queue import QueueService
from console.sla.alerts import DO_NOT_DISTURB, AlertMonitor
from console.sla.engine import SlaEngine
from console.sla.policy import shipped_policy
from storage.deadlines import DeadlineRepo
from storage.events import EventRepo
from storage.settings import AGENT_NAME, SURVEY_CUSTOMER_DAYS, SURVEY_PROMPT_AFTER_RESOLVE, SettingsRepo
from storage.shifts import CURRENCY, HOURLY_RATE
from tests.fakes.clock import FakeClock
from tests.fakes.surveys import World
from widgets.dark import is_dark
from widgets.main_window import MainWindow
from widgets.settings_dialog import Page, SettingsDialog, open_settings_dialog

QUESTION = "How easy was it today? Answer 1 (extremely easy) to 7 (extremely difficult)."


@dataclass
class App:
    window: MainWindow
    prefs: Preferences
    settings: SettingsRepo
    sla: SlaEngine
    world: World
    alerts: AlertMonitor


@pytest.fixture
def app(qtbot: QtBot, db: sqlite_utils.Database, clock: FakeClock, tmp_path: Path) -> Iterator[App]:
    world = World(db, clock)
    settings = world.settings
    queue = QueueService(world.mentions, EventRepo(db), clock)
    alerts = AlertMonitor(queue, clock, settings=settings)
    window = MainWindow(queue, clock, alerts=alerts, keymap=KeyMap(settings), surveys=world.service)
    qtbot.addWidget(window)
    sla = SlaEngine(DeadlineRepo(db, world.mentions), settings, clock)
    yield App(window, Preferences(settings, data_dir=tmp_path), settings, sla, world, alerts)
    window.theme.set_forced(False)  # the application palette is global: leave it light for the next test


class FileManager(QObject):
    """Stands in for the platform's file manager: Qt hands it every ``file:`` URL the app asks to open."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[Path] = []

    @Slot(QUrl)
    def show(self, url: QUrl) -> None:
        self.opened.append(Path(url.toLocalFile()))


@pytest.fixture
def file_manager() -> Iterator[FileManager]:
    manager = FileManager()
    QDesktopServices.setUrlHandler("file", manager, "show")
    yield manager
    QDesktopServices.unsetUrlHandler("file")


def open_dialog(qtbot: QtBot, app: App) -> SettingsDialog:
    dialog = open_settings_dialog(app.window, app.prefs, sla=app.sla, surveys=app.world.service)
    qtbot.waitExposed(dialog)
    return dialog


def click(dialog: SettingsDialog, which: QDialogButtonBox.StandardButton) -> None:
    button = dialog.buttons.button(which)
    assert button is not None
    button.click()


def test_settings_opens_from_the_file_menu_non_modal_and_only_once(qtbot: QtBot, app: App) -> None:
    app.window.settings_action.triggered.connect(
        lambda: open_settings_dialog(app.window, app.prefs, sla=app.sla, surveys=app.world.service)
    )
    assert app.window.settings_action.shortcut().toString() == "Ctrl+,"
    file_menu = app.window.menuBar().actions()[0].menu()
    assert isinstance(file_menu, QMenu) and app.window.settings_action in file_menu.actions()
    app.window.settings_action.trigger()
    dialogs = app.window.findChildren(SettingsDialog)
    assert len(dialogs) == 1
    assert not dialogs[0].isModal() and dialogs[0].windowModality() is Qt.WindowModality.NonModal
    app.window.settings_action.trigger()
    assert len(app.window.findChildren(SettingsDialog)) == 1
    assert [dialogs[0].nav.item(i).text() for i in range(dialogs[0].nav.count())] == [
        "General", "Appearance", "SLA", "Surveys", "Reports", "Notifications", "Shortcuts",
    ]  # fmt: skip


def test_every_setting_is_stored_and_takes_effect(qtbot: QtBot, app: App, file_manager: FileManager) -> None:
    opened = file_manager.opened
    dialog = open_dialog(qtbot, app)
    # General
    dialog.agent_name.setText("  Sam Rivera ")
    assert dialog.data_folder.text() == str(app.prefs.data_dir)
    dialog.open_folder_button.click()
    assert opened == [app.prefs.data_dir]
    # Appearance
    dialog.theme_buttons[Theme.DARK].setChecked(True)
    # SLA: the embedded editor of widgets/sla_settings.py
    assert dialog.sla_editor is not None
    first = dialog.sla_editor.table.cellWidget(0, 2)
    assert isinstance(first, QSpinBox)
    first.setValue(15)
    # Surveys
    dialog.survey_question.setPlainText(QUESTION)
    dialog.survey_days.setValue(45)
    dialog.survey_ask.setChecked(False)
    # Reports
    dialog.hourly_rate.setValue(42.5)
    dialog.currency.setCurrentText("usd")
    # Notifications
    dialog.do_not_disturb.setChecked(True)
    # Shortcuts (take effect at once, like the cheat sheet)
    editor = dialog.shortcut_editor
    row = editor.row_of("nav_next")
    assert editor.set_keys(row, "N") is None
    next_action = app.window.workbench.nav_actions["next"]
    assert next_action.shortcut().toString() == "N"

    assert app.settings.get(AGENT_NAME) == ""  # nothing stored before Apply
    with qtbot.waitSignal(dialog.applied):
        click(dialog, QDialogButtonBox.StandardButton.Apply)
    assert dialog.error_text() == ""
    assert dialog.isVisible()  # Apply keeps the dialog open
    s = app.settings
    assert s.get(AGENT_NAME) == "Sam Rivera" and app.prefs.agent_name == "Sam Rivera"
    assert s.get(THEME) == "dark" and app.window.theme.dark and is_dark()
    assert app.sla.policies.rules[0].first_response == 15 * 60
    assert app.world.service.question == QUESTION
    assert s.get(SURVEY_CUSTOMER_DAYS) == 45 and s.get(SURVEY_PROMPT_AFTER_RESOLVE) is False
    assert (s.get(HOURLY_RATE), s.get(CURRENCY)) == (42.5, "USD")
    assert dialog.currency.currentText() == "USD"
    assert s.get(DO_NOT_DISTURB) is True and app.alerts.do_not_disturb
    tray = app.window.workbench.tray
    assert tray is not None and tray.dnd_action.isChecked()
    assert KeyMap(s).overrides() == {"nav_next": ["N"]}

    # A fresh dialog shows what was stored; back to light and OK closes.
    click(dialog, QDialogButtonBox.StandardButton.Ok)
    assert not dialog.isVisible()
    again = open_dialog(qtbot, app)
    assert again.agent_name.text() == "Sam Rivera"
    assert again.theme_buttons[Theme.DARK].isChecked()
    assert again.currency.currentText() == "USD" and again.hourly_rate.value() == 42.5
    assert again.survey_days.value() == 45 and again.do_not_disturb.isChecked()
    again.theme_buttons[Theme.LIGHT].setChecked(True)
    click(again, QDialogButtonBox.StandardButton.Ok)
    assert app.prefs.theme is Theme.LIGHT
    assert (app.window.theme.dark, is_dark()) == (False, False)


@pytest.mark.parametrize(
    ("page", "edit", "message"),
    [
        (Page.GENERAL, lambda d, app: _clear_name(d, app), "Enter your name"),
        (Page.GENERAL, lambda d, _: d.agent_name.setText("x" * 61), "at most 60 characters"),
        (Page.REPORTS, lambda d, _: d.currency.setCurrentText("Euro"), "“Euro” is not a currency code"),
        (Page.SURVEYS, lambda d, _: d.survey_question.setPlainText("Was it easy?"), "both ends of the scale"),
        (Page.SLA, lambda d, _: _bad_holiday(d), "is not a date like 2026-12-25"),
        (Page.SLA, lambda d, _: _bad_time_zone(d), "Unknown time zone 'Europe/Lodnon'"),
    ],
    ids=["empty-name", "long-name", "currency", "question", "holiday", "time-zone-of-an-unused-calendar"],
)
def test_invalid_input_is_refused_with_a_message_and_nothing_is_lost(
    qtbot: QtBot, app: App, page: Page, edit: object, message: str
) -> None:
    dialog = open_dialog(qtbot, app)
    dialog.hourly_rate.setValue(55.0)  # a valid change on another page: not stored while anything is refused
    dialog.do_not_disturb.setChecked(True)
    dialog.show_page(Page.NOTIFICATIONS)
    edit(dialog, app)  # type: ignore[operator]
    typed = (dialog.agent_name.text(), dialog.currency.currentText(), dialog.survey_question.toPlainText())
    click(dialog, QDialogButtonBox.StandardButton.Ok)
    assert dialog.isVisible()  # OK did not close
    assert message in dialog.error_text()
    assert dialog.current_page() is page  # the page to fix is shown
    assert (dialog.agent_name.text(), dialog.currency.currentText(), dialog.survey_question.toPlainText()) == typed
    assert dialog.hourly_rate.value() == 55.0 and dialog.do_not_disturb.isChecked()
    assert app.settings.get(HOURLY_RATE) == 30.0 and not app.alerts.do_not_disturb
    assert app.world.service.question == DEFAULT_SURVEY_QUESTION
    assert app.sla.policies == shipped_policy()


def _clear_name(dialog: SettingsDialog, app: App) -> None:
    app.prefs.set_agent_name("Sam")  # a stored name cannot be cleared (the dialog's own Preferences)
    dialog.agent_name.setText("   ")


def _bad_holiday(dialog: SettingsDialog) -> None:
    assert dialog.sla_editor is not None
    calendar = dialog.sla_editor.table.cellWidget(0, 6)
    assert isinstance(calendar, QComboBox)
    calendar.setCurrentText("business")
    dialog.sla_editor.holidays.setPlainText("25/12/2026")


def _bad_time_zone(dialog: SettingsDialog) -> None:
    """Issue 19 #14: refused even while every rule runs on the 24/7 calendar."""
    assert dialog.sla_editor is not None
    dialog.sla_editor.time_zone.setText("Europe/Lodnon")


def test_fixing_the_input_then_applying_stores_it(qtbot: QtBot, app: App) -> None:
    dialog = open_dialog(qtbot, app)
    dialog.currency.setCurrentText("E")
    dialog.hourly_rate.setValue(20.0)
    click(dialog, QDialogButtonBox.StandardButton.Apply)
    assert "not a currency code" in dialog.error_text()
    dialog.currency.setCurrentText("gbp")
    click(dialog, QDialogButtonBox.StandardButton.Apply)
    assert dialog.error_text() == ""
    assert (app.prefs.hourly_rate, app.prefs.currency) == (20.0, "GBP")
    assert dialog.status.text() == "Settings saved."


def test_cancel_stores_nothing_and_undoes_shortcut_changes(qtbot: QtBot, app: App) -> None:
    dialog = open_dialog(qtbot, app)
    dialog.agent_name.setText("Alex")
    dialog.theme_buttons[Theme.DARK].setChecked(True)
    row = dialog.shortcut_editor.row_of("nav_next")
    assert dialog.shortcut_editor.set_keys(row, "K") is not None  # "Previous item": refused with the reason
    assert "already the shortcut" in dialog.shortcut_editor.message.text()
    assert dialog.shortcut_editor.set_keys(row, "N") is None
    click(dialog, QDialogButtonBox.StandardButton.Cancel)
    assert not dialog.isVisible()
    assert app.settings.get(AGENT_NAME) == "" and app.prefs.theme is Theme.SYSTEM
    assert not app.window.theme.dark
    assert app.window.workbench.nav_actions["next"].shortcut().toString() == "J"
    assert KeyMap(app.settings).keys("nav_next", ["J"]) == ["J"]


def test_apply_keeps_shortcuts_that_cancel_then_does_not_undo(qtbot: QtBot, app: App) -> None:
    dialog = open_dialog(qtbot, app)
    row = dialog.shortcut_editor.row_of("nav_next")
    assert dialog.shortcut_editor.set_keys(row, "N") is None
    click(dialog, QDialogButtonBox.StandardButton.Apply)
    click(dialog, QDialogButtonBox.StandardButton.Cancel)
    assert app.window.workbench.nav_actions["next"].shortcut().toString() == "N"
    assert KeyMap(app.settings).overrides() == {"nav_next": ["N"]}


def test_main_wires_settings_and_applies_the_saved_theme_at_start(qtbot: QtBot, app: App, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from widgets.app import connect_settings

    app.settings.set(THEME, Theme.DARK.value)
    runtime = SimpleNamespace(settings=app.settings, data_dir=tmp_path, sla=app.sla, surveys=app.world.service)
    connect_settings(app.window, runtime)  # type: ignore[arg-type]
    assert app.window.theme.dark and is_dark()
    app.window.settings_action.trigger()
    dialogs = app.window.findChildren(SettingsDialog)
    assert len(dialogs) == 1 and dialogs[0].theme_buttons[Theme.DARK].isChecked()
    assert dialogs[0].data_folder.text() == str(tmp_path)


def test_settings_fits_a_small_screen_with_its_buttons_on_it(qtbot: QtBot, app: App) -> None:
    """Found walking the shift under Xvfb at 800x600: the dialog opened at 980x660, OK, Cancel and Apply below the
    screen's edge. It now opens no bigger than the screen's free area (less the title bar)."""
    free = QGuiApplication.primaryScreen().availableGeometry()
    assert free.width() < 980  # the offscreen platform's screen is smaller than the dialog's preferred size
    dialog = SettingsDialog(app.prefs, parent=app.window)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.width() <= free.width() and dialog.height() <= free.height() - 40
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert ok is not None and ok.isVisible()
    assert dialog.rect().contains(ok.mapTo(dialog, ok.rect().bottomRight()))
