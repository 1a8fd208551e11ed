"""Widget test fixtures: every test here is marked ``gui``; a qasync loop for async slots; queue data."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import qasync
import sqlite_utils
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from shiboken6 import Shiboken

from console.queue import QueueService
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.collector import GuiThreadCollector

T = TypeVar("T")

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.gui)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the robot walked (tests/widgets/test_robot.py), when it ran."""
    from tests.widgets.agent_app import TALLY

    if TALLY:
        terminalreporter.section("robot")
        for key in sorted(TALLY):
            terminalreporter.write_line(f"{key}: {TALLY[key]}")


@pytest.fixture(autouse=True)
def gui_thread_collector(qapp: QApplication) -> Iterator[None]:
    """As in the app (widgets/app.py): cyclic garbage is collected on the GUI thread only, never by a worker
    thread that happens to allocate (a Qt object destroyed there crashes the process later)."""
    collector = GuiThreadCollector()
    collector.start()
    yield
    collector.stop()


@pytest.fixture
def qloop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    """A qasync loop that advances whenever Qt processes events (shared reference/platform.md §3, pattern C).

    Exceptions that reach the loop's handler are collected and re-raised at teardown, as in qasync's own tests.
    """
    loop = qasync.QEventLoop(qapp)
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    asyncio.set_event_loop(loop)
    asyncio.events._set_running_loop(loop)
    try:
        yield loop
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        for _ in range(5):
            qapp.processEvents()
        asyncio.events._set_running_loop(None)
        asyncio.set_event_loop(None)
        loop.close()  # never loop.stop(): it quits the QApplication and later waits time out
        # close() only flags qasync's timer object: its pending call_later timers stay registered with Qt. Delete it
        # now, on the main thread. Left to the cyclic GC, it was freed on whichever thread collected next (a later
        # test's executor thread), where Qt cannot unregister timers ("Timers cannot be stopped from another
        # thread"): the next of them to fire delivered its QTimerEvent to freed memory and segfaulted.
        Shiboken.delete(loop._timer)
    if errors:
        context = errors[0]
        raise AssertionError(f"exception in the event loop: {context.get('message')}") from context.get("exception")


@pytest.fixture
def arun(qloop: qasync.QEventLoop, qtbot: QtBot) -> Any:
    """Run a coroutine to completion on the qasync loop while Qt processes events."""

    def run(coro: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
        task = qloop.create_task(coro)
        qtbot.waitUntil(task.done, timeout=int(timeout * 1000))
        return cast(T, task.result())

    return run


@pytest.fixture
def factory(db: sqlite_utils.Database, clock: FakeClock) -> Factory:
    return Factory(db, clock)


@pytest.fixture
def service(factory: Factory) -> QueueService:
    return factory.service()
