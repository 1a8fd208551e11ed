"""Item delegates for the queue: SLA pills, customer with newcomer badge, channel with DM marker (paint only)."""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QHelpEvent, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolTip,
    QWidget,
)
from typing_extensions import override

from console.sla.bands import Band
from widgets.dark import surface as theme_surface
from widgets.dark import text as theme_text
from widgets.queue_model import Role
from widgets.theme import BAND_PILLS, DIRECT_PILL, NEWCOMER_PILL, SECONDARY_TEXT, PillColours, channel_colour

#: Tooltips longer than this are cut (a whole thread belongs in the conversation pane).
TOOLTIP_CHARS = 1_000
_PAD = 8  # horizontal padding inside a cell
_PILL_PAD = 8  # horizontal padding inside a pill
_GAP = 6


def plain_tooltip(text: str) -> str:
    """Tooltip markup that shows ``text`` literally: Qt would otherwise guess that "<b>…" is rich text."""
    if len(text) > TOOLTIP_CHARS:
        text = text[: TOOLTIP_CHARS - 1] + "…"
    return f"<p style='white-space:pre-wrap'>{html.escape(text)}</p>"


class PlainTextDelegate(QStyledItemDelegate):
    """Qt's default painting; tooltips always plain text, since customer text must never render as HTML."""

    @override
    def helpEvent(
        self,
        event: QHelpEvent,
        view: QAbstractItemView,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> bool:
        if event.type() is not QEvent.Type.ToolTip:
            return super().helpEvent(event, view, option, index)
        text = index.data(Qt.ItemDataRole.ToolTipRole)
        if isinstance(text, str) and text:
            QToolTip.showText(event.globalPos(), plain_tooltip(text), view)
        else:
            QToolTip.hideText()
            event.ignore()
        return True

    def _background(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QStyleOptionViewItem:
        """Paint the cell background (selection, alternate rows, focus) and return the prepared option."""
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        widget: QWidget | None = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        return opt


def _text_colour(opt: QStyleOptionViewItem) -> QColor:
    selected = bool(opt.state & QStyle.StateFlag.State_Selected)
    role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
    return opt.palette.color(role)


def _pill_font(base: QFont, *, scale: float = 1.0) -> QFont:
    font = QFont(base)
    font.setWeight(QFont.Weight.DemiBold)
    if scale != 1.0 and font.pointSizeF() > 0:
        font.setPointSizeF(font.pointSizeF() * scale)
    return font


def _draw_pill(painter: QPainter, rect: QRectF, text: str, colours: PillColours, font: QFont) -> None:
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    # The theme's colours, like the conversation's pills: pale pastels kept their light backgrounds in the
    # dark queue (found walking the shift, issue 19 §9); a saturated red pill with white text stays as it is.
    painter.setBrush(theme_surface(colours.background))
    radius = rect.height() / 2
    painter.drawRoundedRect(rect, radius, radius)
    painter.setPen(theme_text(colours.text))
    painter.setFont(font)
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
    painter.restore()


def _small_pill_rect(cell: QRect, left: float, text: str, font: QFont) -> QRectF:
    metrics = QFontMetrics(font)
    height = min(cell.height() - 10, metrics.height() + 2)
    width = metrics.horizontalAdvance(text) + 2 * 6
    return QRectF(left, cell.center().y() - height / 2 + 1, width, height)


class SlaDelegate(PlainTextDelegate):
    """The SLA countdown as a rounded pill coloured by band: green, amber, red (counting up with "+"), grey."""

    #: Every pill is at least this wide, so that the column reads as one aligned stack.
    _WIDEST = "+00:00:00"

    @override
    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        opt = self._background(painter, option, index)
        text = index.data(Qt.ItemDataRole.DisplayRole)
        if not isinstance(text, str):
            return
        value = index.data(Role.BAND)
        colours = BAND_PILLS[Band(value) if isinstance(value, str) else Band.NONE]
        font = _pill_font(opt.font)
        metrics = QFontMetrics(font)
        cell: QRect = opt.rect
        height = min(cell.height() - 8, metrics.height() + 6)
        width = min(
            cell.width() - 2 * _GAP,
            max(metrics.horizontalAdvance(text), metrics.horizontalAdvance(self._WIDEST)) + 2 * _PILL_PAD,
        )
        rect = QRectF(cell.center().x() - width / 2 + 1, cell.center().y() - height / 2 + 1, width, height)
        _draw_pill(painter, rect, text, colours, font)

    @override
    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        metrics = QFontMetrics(_pill_font(option.font))
        return QSize(metrics.horizontalAdvance(self._WIDEST) + 2 * (_PILL_PAD + _GAP), metrics.height() + 12)


class CustomerDelegate(PlainTextDelegate):
    """Name, then the @handle in grey, and a small "NEW" pill for a customer's first contact."""

    @override
    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        opt = self._background(painter, option, index)
        name = index.data(Role.CUSTOMER_NAME)
        handle = index.data(Role.CUSTOMER_HANDLE)
        if not isinstance(name, str) or not isinstance(handle, str):
            return
        cell: QRect = opt.rect
        base: QFont = opt.font
        right = cell.right() - _PAD
        painter.save()
        if index.data(Role.IS_NEWCOMER):
            badge_font = _pill_font(base, scale=0.8)
            pill = _small_pill_rect(cell, 0, "NEW", badge_font)
            pill.moveLeft(right - pill.width())
            _draw_pill(painter, pill, "NEW", NEWCOMER_PILL, badge_font)
            right = int(pill.left()) - _GAP
        name_font = QFont(base)
        name_font.setWeight(QFont.Weight.DemiBold)
        name_metrics = QFontMetrics(name_font)
        left = cell.left() + _PAD
        available = max(0, right - left)
        show_handle = name != handle.removeprefix("@")
        name_text = name_metrics.elidedText(name, Qt.TextElideMode.ElideRight, available)
        painter.setFont(name_font)
        painter.setPen(_text_colour(opt))
        text_rect = QRect(left, cell.top(), available, cell.height())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name_text)
        used = name_metrics.horizontalAdvance(name_text) + _GAP
        if show_handle and used < available:
            painter.setFont(base)
            handle_metrics = QFontMetrics(base)
            selected = bool(opt.state & QStyle.StateFlag.State_Selected)
            painter.setPen(_text_colour(opt) if selected else QColor(SECONDARY_TEXT))
            handle_text = handle_metrics.elidedText(handle, Qt.TextElideMode.ElideRight, available - used)
            handle_rect = QRect(left + used, cell.top(), available - used, cell.height())
            painter.drawText(handle_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, handle_text)
        painter.restore()


class ChannelDelegate(PlainTextDelegate):
    """A coloured channel dot and name, and a "DM" pill for direct messages."""

    @override
    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        opt = self._background(painter, option, index)
        label = index.data(Role.CHANNEL_LABEL)
        kind = index.data(Role.CHANNEL_KIND)
        if not isinstance(label, str) or not isinstance(kind, str):
            return
        cell: QRect = opt.rect
        base: QFont = opt.font
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        dot = 8
        left = cell.left() + _PAD
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(channel_colour(kind))
        painter.drawEllipse(QRectF(left, cell.center().y() - dot / 2 + 1, dot, dot))
        left += dot + _GAP
        metrics = QFontMetrics(base)
        badge_font = _pill_font(base, scale=0.8)
        direct = bool(index.data(Role.IS_DIRECT))
        badge_width = (QFontMetrics(badge_font).horizontalAdvance("DM") + 12 + _GAP) if direct else 0
        available = max(0, cell.right() - _PAD - left - badge_width)
        # A narrow column shows the channel's dot only (its name is in the tooltip), never a stub like "M…".
        text = label if metrics.horizontalAdvance(label) <= available else ""
        painter.setFont(base)
        painter.setPen(_text_colour(opt))
        painter.drawText(
            QRect(left, cell.top(), available, cell.height()),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            text,
        )
        if direct:
            pill = _small_pill_rect(cell, left + metrics.horizontalAdvance(text) + _GAP, "DM", badge_font)
            _draw_pill(painter, pill, "DM", DIRECT_PILL, badge_font)
        painter.restore()
