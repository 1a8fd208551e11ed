"""The tray icon with the number of items near breach, desktop notifications, and do-not-disturb."""

from __future__ import annotations

from PySide6.QtCore import QObject, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget

from console.sla.alerts import Alert, AlertKind, AlertMonitor

#: Check for band changes this often (in SLA ticks, i.e. seconds).
CHECK_EVERY_TICKS = 5
#: More alerts than this at once become one summary notification.
MAX_SEPARATE = 3


def tray_icon(count: int) -> QIcon:
    """A rounded square: blue when calm, amber with the number when items are near breach."""
    pixmap = QPixmap(64, 64)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("#E08A00" if count else "#2F6FEB"))
    painter.drawRoundedRect(QRectF(4, 4, 56, 56), 14, 14)
    painter.setPen(QColor("#FFFFFF"))
    font = QFont()
    font.setPixelSize(30 if count < 100 else 22)
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(QRectF(4, 4, 56, 56), Qt.AlignmentFlag.AlignCenter, str(count) if count else "C")
    painter.end()
    return QIcon(pixmap)


def notification_text(alerts: list[Alert]) -> tuple[str, str]:
    """Title and body of one notification for these alerts."""
    breached = [a for a in alerts if a.kind is AlertKind.BREACHED]
    warning = [a for a in alerts if a.kind is AlertKind.WARNING]
    if len(alerts) == 1:
        alert = alerts[0]
        if alert.kind is AlertKind.BREACHED:
            return "SLA breached", f"@{alert.author_handle}'s item is overdue"
        return "SLA deadline near", f"@{alert.author_handle}'s item is in the warning band"
    parts = []
    if breached:
        parts.append(f"{len(breached)} breached")
    if warning:
        parts.append(f"{len(warning)} near their deadline")
    title = "SLA breached" if breached else "SLA deadlines near"
    return title, "Items " + " and ".join(parts)


class TrayAlerts(QObject):
    """Owns the tray icon (when the desktop has a tray); driven by the queue view's tick."""

    #: Shown (or, without a tray, would have been shown): title, body, the alerts.
    notified = Signal(str, str, list)
    #: The near-breach count changed.
    count_changed = Signal(int)
    #: The agent clicked the tray icon or its "Show" item.
    show_requested = Signal()

    def __init__(self, monitor: AlertMonitor, parent: QWidget) -> None:
        super().__init__(parent)
        self._monitor = monitor
        self._ticks = 0
        self._count = -1
        self.dnd_action = QAction("Do not disturb", self)
        self.dnd_action.setCheckable(True)
        self.dnd_action.setChecked(monitor.do_not_disturb)
        self.dnd_action.setToolTip("Silence desktop notifications (the tray count stays)")
        self.dnd_action.toggled.connect(self._on_dnd_action_toggled)
        self._tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self._tray = QSystemTrayIcon(tray_icon(0), self)
            menu = QMenu(parent)
            show = menu.addAction("Show Care Console")
            show.triggered.connect(self.show_requested)
            menu.addAction(self.dnd_action)
            self._tray.setContextMenu(menu)
            self._tray.activated.connect(self._on_tray_activated)
            self._tray.show()
        self.refresh()

    @property
    def count(self) -> int:
        return max(self._count, 0)

    def tray(self) -> QSystemTrayIcon | None:
        return self._tray

    @Slot(float)
    def on_tick(self, _now: float) -> None:
        self._ticks += 1
        if self._ticks % CHECK_EVERY_TICKS == 0:
            self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Check for new alerts now and update the count."""
        alerts = self._monitor.check()
        count = self._monitor.near_breach_count()
        if count != self._count:
            self._count = count
            if self._tray is not None:
                self._tray.setIcon(tray_icon(count))
                self._tray.setToolTip(f"Care Console · {count} item{'s' if count != 1 else ''} near breach")
            self.count_changed.emit(count)
        if not alerts:
            return
        groups = [[a] for a in alerts] if len(alerts) <= MAX_SEPARATE else [alerts]
        for group in groups:
            title, body = notification_text(group)
            if self._tray is not None:
                icon = (
                    QSystemTrayIcon.MessageIcon.Critical
                    if any(a.kind is AlertKind.BREACHED for a in group)
                    else QSystemTrayIcon.MessageIcon.Warning
                )
                self._tray.showMessage(title, body, icon, 8_000)
            self.notified.emit(title, body, group)

    @Slot(bool)
    def _on_dnd_action_toggled(self, on: bool) -> None:
        self._monitor.set_do_not_disturb(on)

    @Slot(QSystemTrayIcon.ActivationReason)
    def _on_tray_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason is QSystemTrayIcon.ActivationReason.Trigger:
            self.show_requested.emit()
