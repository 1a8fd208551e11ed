"""First run: the welcome dialog both ways, the tour, and main.py's first-run wiring."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction
from pytestqt.qtbot import QtBot

from console.ports import MemorySecretStore
from console.queue import QueueService
from console.runtime import Runtime, SandboxOptions, open_runtime
from storage.settings import AGENT_NAME, WELCOME_DONE
from tests.fakes.clock import FakeClock
from widgets.app import welcome_if_first_run
from widgets.main_window import MainWindow
from widgets.welcome import Start, Tour, TourStep, WelcomeDialog


def test_welcome_dialog_needs_a_name_then_starts_on_the_sandbox(qtbot: QtBot) -> None:
    dialog = WelcomeDialog()
    qtbot.addWidget(dialog)
    dialog.open()
    assert not dialog.next_button.isEnabled()
    qtbot.keyClicks(dialog.name_edit, "  Ana   Lima ")
    assert dialog.next_button.isEnabled()
    qtbot.keyClick(dialog.name_edit, Qt.Key.Key_Return)
    assert dialog.sandbox_button.isVisible()
    with qtbot.waitSignal(dialog.accepted):
        qtbot.mouseClick(dialog.sandbox_button, Qt.MouseButton.LeftButton)
    assert dialog.start is Start.SANDBOX
    assert dialog.agent_name == "Ana Lima"


def test_welcome_dialog_connect_an_account_path(qtbot: QtBot) -> None:
    dialog = WelcomeDialog(agent_name="Sam")
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.mouseClick(dialog.next_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(dialog.accepted):
        qtbot.mouseClick(dialog.account_button, Qt.MouseButton.LeftButton)
    assert dialog.start is Start.ACCOUNT


def test_tour_walks_present_widgets_and_skips_absent_ones(
    qtbot: QtBot, service: QueueService, clock: FakeClock
) -> None:
    window = MainWindow(service, clock)
    qtbot.addWidget(window)
    window.show()
    steps = (
        TourStep("queueView", "Queue", "q"),
        TourStep("noSuchWidget", "Gone", "x"),
        TourStep("syncButton", "Sync", "s"),
    )
    tour = Tour(window, steps)
    assert tour.step_titles == ["Queue", "Sync"]
    tour.start()
    assert tour.bubble.isVisible()
    assert tour.next_button.text() == "Next"
    qtbot.mouseClick(tour.next_button, Qt.MouseButton.LeftButton)
    assert tour.next_button.text() == "Done"
    with qtbot.waitSignal(tour.finished):
        qtbot.mouseClick(tour.next_button, Qt.MouseButton.LeftButton)
    assert not tour.bubble.isVisible()


def test_tour_can_be_skipped(qtbot: QtBot, service: QueueService, clock: FakeClock) -> None:
    window = MainWindow(service, clock)
    qtbot.addWidget(window)
    window.show()
    tour = Tour(window)
    tour.start()
    with qtbot.waitSignal(tour.finished):
        qtbot.mouseClick(tour.skip_button, Qt.MouseButton.LeftButton)
    assert not tour.bubble.isVisible()


@pytest.fixture
def runtime(tmp_path: Path, clock: FakeClock, arun: Callable[..., Any]) -> Iterator[Runtime]:
    rt = open_runtime(
        tmp_path / "data", clock=clock, secrets=MemorySecretStore(),
        sandbox=SandboxOptions(rate_per_minute=0.0, backlog=0), force_sandbox=True,
    )  # fmt: skip
    try:
        yield rt
    finally:
        arun(rt.aclose())


@pytest.mark.parametrize("start", [Start.SANDBOX, Start.ACCOUNT])
def test_first_run_saves_the_name_and_continues_both_ways(
    qtbot: QtBot, runtime: Runtime, clock: FakeClock, tmp_path: Path, start: Start
) -> None:
    window = MainWindow(runtime.queue, clock, settings=QSettings(str(tmp_path / "w.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    opened: list[bool] = []
    # Stand in for the accounts dialog: "connect an account" triggers the window's accounts action.
    action = QAction("Accounts", window)
    action.triggered.connect(lambda: opened.append(True))
    window.accounts_action = action  # type: ignore[attr-defined]
    welcome_if_first_run(window, runtime)
    dialog: WelcomeDialog = window.welcome  # type: ignore[attr-defined]
    qtbot.keyClicks(dialog.name_edit, "Ana")
    qtbot.mouseClick(dialog.next_button, Qt.MouseButton.LeftButton)
    button = dialog.sandbox_button if start is Start.SANDBOX else dialog.account_button
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert runtime.settings.get(AGENT_NAME) == "Ana"
    assert runtime.settings.get(WELCOME_DONE) is True
    if start is Start.SANDBOX:
        assert window.tour.bubble.isVisible()  # type: ignore[attr-defined]
    else:
        assert opened == [True]
    # Not shown again on the next start.
    welcome_if_first_run(window, runtime)
    assert window.welcome is dialog  # type: ignore[attr-defined]
