"""Cyclic garbage holding Qt objects is freed on the GUI thread, never on a worker thread that allocates."""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

from widgets.collector import GuiThreadCollector


class _Witness:
    """Part of a reference cycle with a QObject; says on which thread the cycle was freed."""

    def __init__(self, freed_on: list[str]) -> None:
        self.freed_on = freed_on
        self.qobject = QObject()
        self.me = self  # the cycle: only the collector frees it

    def __del__(self) -> None:
        self.freed_on.append(threading.current_thread().name)


def _allocate(keep: list[list[int]]) -> None:
    """Allocate (and keep) enough container objects to cross generation 0's threshold many times over."""
    keep.extend([i] for i in range(20_000))


def test_collector_frees_qt_cycles_on_the_gui_thread_while_a_worker_allocates(qtbot: QtBot) -> None:
    enabled = gc.isenabled()
    collector = GuiThreadCollector(interval_ms=20)
    collector.start()
    try:
        assert not gc.isenabled()
        freed_on: list[str] = []
        _Witness(freed_on)
        kept: list[list[int]] = []
        worker = threading.Thread(target=_allocate, args=(kept,), name="store-worker")
        worker.start()
        worker.join()
        assert freed_on == []  # the worker's allocations did not run the collector there
        qtbot.waitUntil(lambda: freed_on != [], timeout=5000)
        assert freed_on == [threading.main_thread().name]
        kept.clear()
    finally:
        collector.stop()
    assert gc.isenabled() == enabled  # handed back as it was


def test_collector_collects_only_generations_past_their_threshold(qtbot: QtBot) -> None:
    collector = GuiThreadCollector(interval_ms=10_000)
    collector.start()
    try:
        gc.collect()
        assert collector.collect_due() == -1  # nothing allocated since: nothing due
        threshold = gc.get_threshold()[0]
        garbage = [[] for _ in range(threshold + 10)]
        assert collector.collect_due() >= 0
        assert gc.get_count()[0] < threshold
        del garbage
    finally:
        collector.stop()
