"""Queue delegates for issue 7: search matches highlighted in the preview, tag pills, reply state pills."""

from __future__ import annotations

import re
from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter
from PySide6.QtWidgets import QStyleOptionViewItem
from typing_extensions import override

from console.model import ReplyState
from widgets.delegates import PlainTextDelegate, _draw_pill, _pill_font, _small_pill_rect, _text_colour
from widgets.queue_model import Role
from widgets.theme import PillColours

_PAD = 8
_GAP = 4

#: Behind search matches in the preview, and the ink of the matched words on it (dark in both themes).
HIGHLIGHT = "#FFE28A"
HIGHLIGHT_TEXT = "#1F2328"
TAG_PILL = PillColours("#ECEEF2", "#3D4754")
PRIORITY_PILLS: dict[str, PillColours] = {
    "Urgent": PillColours("#FBE3E1", "#B3261E"),
    "Low": PillColours("#ECEEF2", "#5F6B7A"),
}
#: The team's claim marker (issue 22): amber while a colleague replies, blue for our own claim.
CLAIM_PILLS: dict[bool, PillColours] = {
    False: PillColours("#FDEBC8", "#7A4B00"),
    True: PillColours("#E2ECFE", "#1F4FB8"),
}
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
    """The preview text, elided, after the claim marker ("Sam · 40 s", team mode) and the priority badge (urgent
    or low), with the search words marked (Role.HIGHLIGHT); plain text, never HTML."""

    @override
    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        terms = index.data(Role.HIGHLIGHT)
        badge = index.data(Role.PRIORITY_LABEL)
        claim = index.data(Role.CLAIM_LABEL)
        if not terms and not badge and not claim:
            super().paint(painter, option, index)
            return
        opt = self._background(painter, option, index)
        text = index.data(Qt.ItemDataRole.DisplayRole)
        if not isinstance(text, str):
            return
        cell: QRect = opt.rect
        left = cell.left() + _PAD
        painter.save()
        if isinstance(claim, str) and claim:  # who is replying comes first: it decides whether to open the item
            font = _pill_font(opt.font, scale=0.8)
            marker = f"✎ {claim}"
            pill = _small_pill_rect(cell, left, marker, font)
            _draw_pill(painter, pill, marker, CLAIM_PILLS[bool(index.data(Role.CLAIM_OURS))], font)
            left = int(pill.right()) + _GAP + 2
        if isinstance(badge, str) and badge:
            font = _pill_font(opt.font, scale=0.8)
            pill = _small_pill_rect(cell, left, badge, font)
            _draw_pill(painter, pill, badge, PRIORITY_PILLS.get(badge, TAG_PILL), font)
            left = int(pill.right()) + _GAP + 2
        metrics = QFontMetrics(opt.font)
        available = max(0, cell.right() - _PAD - left)
        shown = metrics.elidedText(text, Qt.TextElideMode.ElideRight, available)
        painter.setFont(opt.font)
        top = cell.center().y() - metrics.height() / 2
        spans = match_spans(shown, terms or ())
        for start, end in spans:
            x = left + metrics.horizontalAdvance(shown[:start])
            width = metrics.horizontalAdvance(shown[start:end])
            painter.fillRect(QRectF(x - 1, top, width + 2, metrics.height()), QColor(HIGHLIGHT))
        # The text goes in runs: the marked words in dark ink on their yellow, the rest in the row's colour
        # (light in the dark theme, where one pen wrote white on yellow: issue 19 §9).
        ink = _text_colour(opt)
        baseline = top + metrics.ascent()
        for start, end, marked in _runs_of(len(shown), spans):
            x = left + metrics.horizontalAdvance(shown[:start])
            painter.setPen(QColor(HIGHLIGHT_TEXT) if marked else ink)
            painter.drawText(QPointF(x, baseline), shown[start:end])
        painter.restore()


def _runs_of(length: int, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """``(start, end, marked)`` runs covering ``[0, length)``: the spans marked, the gaps between them not."""
    runs: list[tuple[int, int, bool]] = []
    at = 0
    for start, end in spans:
        if start > at:
            runs.append((at, start, False))
        runs.append((start, min(end, length), True))
        at = end
    if at < length:
        runs.append((at, length, False))
    return runs


#: An elided tag keeps at least this many characters before its "…" (else only the "+n" count shows).
MIN_TAG_CHARS = 3
#: Space a pill adds around its text (``_small_pill_rect``).
_PILL_TEXT_PAD = 12


def fit_tags(tags: Sequence[str], available: int, metrics: QFontMetrics) -> list[str]:
    """The pill labels that fit in ``available`` pixels: whole tags, then "+n" for the rest.

    When not even the first tag fits whole, it is elided ("late-deliv…") rather than dropped, so that the
    column names at least one tag instead of showing only "+2" (issue 19 §16).
    """

    def width(label: str) -> int:
        return metrics.horizontalAdvance(label) + _PILL_TEXT_PAD

    labels: list[str] = []
    used = 0
    for position, tag in enumerate(tags):
        rest = len(tags) - position
        start = used + (_GAP if labels else 0)
        after = 0 if rest == 1 else _GAP + width(f"+{rest - 1}")
        if start + width(tag) + after <= available:
            labels.append(tag)
            used = start + width(tag)
            continue
        if not labels:
            room = available - after - _PILL_TEXT_PAD
            elided = metrics.elidedText(tag, Qt.TextElideMode.ElideRight, max(room, 0))
            if len(elided.rstrip("…")) >= min(MIN_TAG_CHARS, len(tag)) and elided:
                labels.append(elided)
                if rest > 1:
                    labels.append(f"+{rest - 1}")
                return labels
        if start + width(f"+{rest}") <= available:
            labels.append(f"+{rest}")
        return labels
    return labels


class TagsDelegate(PlainTextDelegate):
    """Each tag as a small grey pill; when they do not all fit, the first (elided if need be) and "+n"."""

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
        left = float(cell.left() + _PAD)
        painter.save()
        for label in fit_tags(tags, cell.width() - 2 * _PAD, QFontMetrics(font)):
            pill = _small_pill_rect(cell, left, label, font)
            _draw_pill(painter, pill, label, TAG_PILL, font)
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
