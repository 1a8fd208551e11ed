"""End to end over loopback: the embedded sandbox -> Mastodon connector -> poller -> SQLite -> queue view."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from console.ports import MemorySecretStore
from console.runtime import Runtime, SandboxOptions, open_runtime
from tests.fakes.clock import FakeClock
from widgets.main_window import MainWindow
from widgets.queue_model import Col, Role
from widgets.signals import SyncBridge


@pytest.fixture
def runtime(tmp_path: Path, clock: FakeClock, arun: Callable[..., Any]) -> Iterator[Runtime]:
    rt = open_runtime(
        tmp_path / "data", clock=clock, secrets=MemorySecretStore(),
        sandbox=SandboxOptions(rate_per_minute=0.0, backlog=0), force_sandbox=True, poll_seconds=30.0,
    )  # fmt: skip
    try:
        yield rt
    finally:
        arun(rt.aclose())


@pytest.fixture
def window(runtime: Runtime, clock: FakeClock, qtbot: QtBot, tmp_path: Path) -> MainWindow:
    settings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    win = MainWindow(runtime.queue, clock, title_suffix=" — Sandbox", settings=settings)
    qtbot.addWidget(win)
    bridge = SyncBridge(win)
    runtime.poller.subscribe(bridge.report.emit)
    bridge.report.connect(win.on_sync_report)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_sandbox_mentions_arrive_in_the_queue_view_without_restart(
    runtime: Runtime, window: MainWindow, qtbot: QtBot, arun: Callable[..., Any], clock: FakeClock
) -> None:
    assert runtime.sandbox is not None
    runtime.sandbox.generate(5)
    arun(runtime.poller.sync_once())
    model = window.queue_model
    qtbot.waitUntil(lambda: model.rowCount() == 5)

    selected = model.index(2, 0).data(Role.MENTION_ID)
    window.queue_view.selectRow(2)
    runtime.sandbox.generate(3)
    clock.advance(60)
    arun(runtime.poller.sync_once())
    qtbot.waitUntil(lambda: model.rowCount() == 8)
    rows = window.queue_view.selectionModel().selectedRows()
    assert [r.data(Role.MENTION_ID) for r in rows] == [selected]
    assert "8" in window.queue_size_text()


def test_follow_up_joins_its_thread_and_countdown_turns_red(
    runtime: Runtime, window: MainWindow, qtbot: QtBot, arun: Callable[..., Any], clock: FakeClock
) -> None:
    assert runtime.sandbox is not None
    runtime.sandbox.post_mention(author="maria@fosstodon.example", text="@care my parcel is late")
    arun(runtime.poller.sync_once())
    model = window.queue_model
    qtbot.waitUntil(lambda: model.rowCount() == 1)
    head_id = model.index(0, 0).data(Role.MENTION_ID)
    (head,) = runtime.queue.rows_by_id([head_id]).values()

    runtime.sandbox.post_mention(
        author="maria@fosstodon.example", text="@care any news?", in_reply_to_id=head.external_id
    )
    clock.advance(120)
    arun(runtime.poller.sync_once())
    qtbot.waitUntil(lambda: len(runtime.queue.thread(head_id)) == 2)
    assert model.rowCount() == 1
    assert [m.text for m in runtime.queue.thread(head_id)][1].endswith("any news?")

    sla = model.index(0, Col.SLA)
    assert not str(sla.data()).startswith("+")
    clock.advance(30 * 60)
    model.tick(clock.now(), range(1))
    assert str(sla.data()).startswith("+")
