"""Queue delegates for issue 7: search matches highlighted in the preview, tag pills, reply state pills."""

from __future__ import annotations

import re
from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter
from PySide6.QtWidgets import QStyleOptionViewItem
from typing_extensions import override

from console.model import ReplyState
from widgets.delegates import PlainTextDelegate, _draw_pill, _pill_font, _small_pill_rect, _text_colour
from widgets.queue_model import Role
from widgets.theme import PillColours

_PAD = 8
_GAP = 4

#: Behind search matches in the preview.
HIGHLIGHT = "#FFE28A"
TAG_PILL = PillColours("#ECEEF2", "#3D4754")
REPLY_PILLS: dict[ReplyState, PillColours] = {
    ReplyState.DRAFT: PillColours("#ECEEF2", "#4A5563"),
    ReplyState.QUEUED: PillColours("#E2ECFE", "#1F4FB8"),
    ReplyState.SENDING: PillColours("#E2ECFE", "#1F4FB8"),
    ReplyState.FAILED: PillColours("#FBE3E1", "#B3261E"),
    ReplyState.SENT: PillColours("#DCF2E3", "#17663A"),
}


def match_spans(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """``(start, end)`` of every word in ``text`` that starts with one of ``terms`` (case-insensitive), merged."""
    if not terms:
        return []
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)) + r")\w*",
                         re.IGNORECASE | re.UNICODE)  # fmt: skip
    spans: list[tuple[int, int]] = []
    for found in pattern.finditer(text):
        start, end = found.span()
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans


class HighlightDelegate(PlainTextDelegate):
    """The preview text, elided, with the search words marked (Role.HIGHLIGHT); plain text, never HTML."""

    @override
    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        terms = index.data(Role.HIGHLIGHT)
        if not terms:
            super().paint(painter, option, index)
            return
        opt = self._background(painter, option, index)
        text = index.data(Qt.ItemDataRole.DisplayRole)
        if not isinstance(text, str):
            return
        cell: QRect = opt.rect
        metrics = QFontMetrics(opt.font)
        available = max(0, cell.width() - 2 * _PAD)
        shown = metrics.elidedText(text, Qt.TextElideMode.ElideRight, available)
        painter.save()
        painter.setFont(opt.font)
        top = cell.center().y() - metrics.height() / 2
        for start, end in match_spans(shown, terms):
            left = cell.left() + _PAD + metrics.horizontalAdvance(shown[:start])
            width = metrics.horizontalAdvance(shown[start:end])
            painter.fillRect(QRectF(left - 1, top, width + 2, metrics.height()), QColor(HIGHLIGHT))
        painter.setPen(_text_colour(opt))
        painter.drawText(
            QRect(cell.left() + _PAD, cell.top(), available, cell.height()),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            shown,
        )
        painter.restore()


class TagsDelegate(PlainTextDelegate):
    """Each tag as a small grey pill; the ones that do not fit are summarised as "+n"."""

    @override
    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        opt = self._background(painter, option, index)
        tags = index.data(Role.TAGS)
        if not tags:
            return
        cell: QRect = opt.rect
        font = _pill_font(opt.font, scale=0.85)
        right = cell.right() - _PAD
        left = float(cell.left() + _PAD)
        painter.save()
        for position, tag in enumerate(tags):
            rest = len(tags) - position
            pill = _small_pill_rect(cell, left, tag, font)
            more = _small_pill_rect(cell, pill.right() + _GAP, f"+{rest - 1}", font)
            fits = pill.right() <= right and (rest == 1 or more.right() <= right)
            if not fits:
                summary = _small_pill_rect(cell, left, f"+{rest}", font)
                if summary.right() <= right:
                    _draw_pill(painter, summary, f"+{rest}", TAG_PILL, font)
                break
            _draw_pill(painter, pill, tag, TAG_PILL, font)
            left = pill.right() + _GAP
        painter.restore()


class ReplyStateDelegate(PlainTextDelegate):
    """The latest unsent reply's state as a pill: draft grey, queued and sending blue, failed red."""

    @override
    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        opt = self._background(painter, option, index)
        value = index.data(Role.REPLY_STATE)
        text = index.data(Qt.ItemDataRole.DisplayRole)
        if not isinstance(value, str) or not isinstance(text, str) or not text:
            return
        font = _pill_font(opt.font, scale=0.85)
        cell: QRect = opt.rect
        pill = _small_pill_rect(cell, cell.left() + _PAD, text, font)
        _draw_pill(painter, pill, text, REPLY_PILLS[ReplyState(value)], font)
