"""Garbage collection on the GUI thread only: a Qt object is never destroyed from a worker thread.

Python's cyclic collector runs on whichever thread happens to allocate when a generation's threshold is
crossed: the store worker, an export's thread, ``asyncio.to_thread``. When the garbage it finds holds Qt
objects (a closed dialog or window kept alive only by a cycle of slots and closures), their C++ destructors
then run on that thread, where Qt cannot stop their timers or touch their screens, and the app crashes later
at an unrelated place. So automatic collection is switched off while the app runs, and a timer on the GUI
thread collects with the same generation thresholds instead.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer, Slot

#: How often the GUI thread looks at the collector's counts (cycles wait at most this long to be freed).
CHECK_MS = 500


class GuiThreadCollector(QObject):
    """Collects cyclic garbage on the thread that owns it, by the interpreter's own thresholds."""

    def __init__(self, parent: QObject | None = None, *, interval_ms: int = CHECK_MS) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect_due)
        self._was_enabled = gc.isenabled()

    def start(self) -> None:
        """Switch automatic collection off and start collecting from this thread's event loop."""
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        """Collect what is left, here, and give collection back to the interpreter as it was."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()

    @Slot()
    def collect_due(self) -> int:
        """Collect the generations whose counts passed their thresholds, youngest first, as the interpreter would.

        Returns:
            The oldest generation collected, or -1 when none was due.
        """
        counts = gc.get_count()
        collected = -1
        for generation, (count, threshold) in enumerate(zip(counts, self._thresholds, strict=True)):
            if threshold <= 0 or count <= threshold:
                break
            gc.collect(generation)
            collected = generation
        return collected
