"""Closing the main window stops the work it started (thread fetches), before the database closes (issue 19)."""

from __future__ import annotations

import asyncio

import qasync
from pytestqt.qtbot import QtBot

from console.queue import QueueService
from console.sync.threads import FetchOutcome, FetchResult
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.main_window import MainWindow


class SlowChannel:
    """A thread source whose channel never answers: the fetch runs until it is cancelled."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.cancelled: list[int] = []
        self.finished: list[int] = []

    def context(self, head_id: int) -> list[object]:
        return []

    def marks(self, head_id: int) -> dict[int, object]:
        return {}

    def links(self, head_id: int) -> dict[int, list[tuple[str, str]]]:
        return {}

    def window_closes_at(self, head_id: int) -> int | None:
        return None

    def quota(self, head_id: int) -> None:
        return None

    def needs_fetch(self, head_id: int) -> bool:
        return head_id not in self.started

    def is_fetching(self, head_id: int) -> bool:
        return head_id in self.started and head_id not in self.cancelled + self.finished

    async def fetch(self, head_id: int) -> FetchResult:
        self.started.append(head_id)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(head_id)
            raise
        self.finished.append(head_id)
        return FetchResult(FetchOutcome.FETCHED, "")


def test_main_window_close_cancels_the_thread_fetch_under_way(
    qtbot: QtBot, qloop: qasync.QEventLoop, factory: Factory, service: QueueService, clock: FakeClock
) -> None:
    first = factory.add(text="@care where is my parcel?")
    channel = SlowChannel()
    window = MainWindow(service, clock, threads=channel)  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.show()
    assert window.queue_view.select_mention(first)
    qtbot.waitUntil(lambda: channel.started == [first])

    window.close()
    qtbot.waitUntil(lambda: channel.cancelled == [first])
    assert channel.finished == []
