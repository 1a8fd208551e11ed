"""Qt signal bridges for plain-Python listeners: ``poller.subscribe(bridge.report.emit)``."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class SyncBridge(QObject):
    """Hands SyncReports to the GUI thread. Emitting from another thread queues the delivery automatically."""

    #: A console.sync.inbox.SyncReport.
    report = Signal(object)
