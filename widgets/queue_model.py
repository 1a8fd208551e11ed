"""The queue table model: ordered ids from SQL, rows fetched lazily in batches, a cheap SLA tick (STYLE B5)."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from enum import IntEnum, auto
from typing import Any, Protocol

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor
from typing_extensions import override

from console.model import OPEN_STATUSES, MentionKind, MentionRow, ReplyState, split_tags
from console.ports import Clock
from console.queue import QueueQuery, search_terms
from console.sla.bands import Band, band, format_age, format_countdown, next_change
from console.triage import PRIORITY_LABELS, Priority
from widgets.claims import ClaimLike, ClaimPort, claim_age, marker_text
from widgets.theme import BAND_TEXT, SECONDARY_TEXT, channel_label, local_time

#: Rows fetched per cache miss: the visible neighbourhood of the missing row.
BATCH_SIZE = 200
#: Rows kept in memory, least recently used evicted first. Must be larger than BATCH_SIZE.
CACHE_SIZE = 2_000
#: More insert/remove runs than this in one ``set_ids`` and a reset is cheaper than a diff.
MAX_DIFF_RUNS = 64
#: Preview text longer than this is cut; the full text is in the tooltip and the conversation pane.
PREVIEW_CHARS = 240
#: Ids read per page: the model holds the first page of a view and fetches more as the view scrolls
#: (Spyder's chunks, STYLE B5), so that switching views stays cheap at a million mentions.
PAGE_SIZE = 2_000

_ROOT = QModelIndex()
_DISPLAY = Qt.ItemDataRole.DisplayRole
_ALIGN_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_ALIGN_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_ALIGN_CENTER = Qt.AlignmentFlag.AlignCenter


class Col(IntEnum):
    CHANNEL = 0
    CUSTOMER = 1
    PREVIEW = 2
    TAGS = 3
    RECEIVED = 4
    SLA = 5
    REPLY = 6


class Role(IntEnum):
    MENTION_ID = Qt.ItemDataRole.UserRole + 1
    DUE_AT = auto()
    WARN_AT = auto()
    BAND = auto()  # a console.sla.bands.Band value ("ok", "warning", ...)
    IS_DIRECT = auto()
    IS_NEWCOMER = auto()
    CUSTOMER_NAME = auto()
    CUSTOMER_HANDLE = auto()  # with its leading "@"
    CHANNEL_KIND = auto()  # "mastodon", ...
    CHANNEL_LABEL = auto()  # "Mastodon", without the DM marker
    MESSAGE_COUNT = auto()
    TAGS = auto()  # tuple of tags
    REPLY_STATE = auto()  # a ReplyState value ("draft", "queued", "sending", "failed") or None
    HIGHLIGHT = auto()  # tuple of lower-case search words to highlight in the preview
    STATUS = auto()  # a MentionStatus value
    PRIORITY = auto()  # 1 urgent, 2 normal, 3 low
    PRIORITY_LABEL = auto()  # "Urgent", "Low", or "" for normal (only what differs from normal is shown)
    CLAIM_LABEL = auto()  # team mode: "Sam · 40 s" (a colleague is replying), "You · 12 s", or "" (issue 22)
    CLAIM_OURS = auto()  # the claim is ours (True), a colleague's (False), or None without a claim


_HEADERS: dict[Col, str] = {
    Col.CHANNEL: "Channel",
    Col.CUSTOMER: "Customer",
    Col.PREVIEW: "Message",
    Col.TAGS: "Tags",
    Col.RECEIVED: "Received",
    Col.SLA: "SLA",
    Col.REPLY: "Reply",
}

_REPLY_LABELS: dict[ReplyState, str] = {
    ReplyState.DRAFT: "Draft",
    ReplyState.QUEUED: "Queued",
    ReplyState.SENDING: "Sending",
    ReplyState.FAILED: "Failed",
    ReplyState.SENT: "",
}

#: The preview's prefix for an item the customer deleted on the channel.
DELETED_UPSTREAM = "Deleted upstream"

#: What a tick can change: the countdown text, its colour and its band (B5 rule 3).
TICK_ROLES: list[int] = [_DISPLAY, Qt.ItemDataRole.ForegroundRole, Role.BAND]
#: What a claim changes in the message column: its marker and the tooltip that names the holder.
CLAIM_ROLES: list[int] = [Role.CLAIM_LABEL, Role.CLAIM_OURS, Qt.ItemDataRole.ToolTipRole]


class QueueSource(Protocol):
    """What the model reads: the queue order (sorted and filtered in SQL) and rows by id (QueueService)."""

    def queue_ids(self, query: QueueQuery, *, limit: int | None = None, offset: int = 0) -> list[int]: ...

    def rows_by_id(self, ids: Iterable[int]) -> Mapping[int, MentionRow]: ...

    def reply_states(self, ids: Sequence[int]) -> Mapping[int, ReplyState]: ...

    def answered(self, ids: Sequence[int]) -> set[int]: ...


def priority_badge(priority: int) -> str:
    """The queue's priority badge: "Urgent" or "Low"; normal priority, the usual case, shows nothing."""
    try:
        level = Priority(priority)
    except ValueError:
        return ""
    return "" if level is Priority.NORMAL else PRIORITY_LABELS[level]


def preview_line(text: str) -> str:
    """The first non-blank line, without the leading @mentions (every message starts with one), whitespace
    collapsed, cut to ``PREVIEW_CHARS``."""
    line = next((part for part in text.splitlines() if part.strip()), "")
    words = line.split()
    start = 0
    while start < len(words) and words[start].startswith("@") and len(words[start]) > 1:
        start += 1
    line = " ".join(words[start:] if start < len(words) else words)
    if len(line) > PREVIEW_CHARS:
        line = line[: PREVIEW_CHARS - 1].rstrip() + "…"
    return line


def _claim_key(claim: ClaimLike | None) -> tuple[str, float, bool] | None:
    """What makes two reads of a claim differ on screen (a renewal only moves ``expires_at``: no repaint)."""
    return None if claim is None else (claim.holder, claim.since, claim.ours)


def _runs(positions: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Consecutive runs ``(first, last)`` of sorted positions."""
    for _key, group in itertools.groupby(enumerate(positions), key=lambda pair: pair[1] - pair[0]):
        run = [pos for _i, pos in group]
        yield run[0], run[-1]


class QueueModel(QAbstractTableModel):
    """Holds the ordered mention ids plus a bounded LRU cache of rows; never loads the whole queue."""

    #: The view, filters or search changed (the view redraws its empty-view sentence even when no row did).
    query_changed = Signal()

    def __init__(
        self,
        source: QueueSource,
        clock: Clock,
        parent: QObject | None = None,
        *,
        batch_size: int = BATCH_SIZE,
        cache_size: int = CACHE_SIZE,
        page_size: int = PAGE_SIZE,
    ) -> None:
        super().__init__(parent)
        if cache_size <= batch_size:
            raise ValueError("cache_size must be larger than batch_size")
        self._source = source
        self._clock = clock
        self._batch_size = batch_size
        self._cache_size = cache_size
        self._ids: list[int] = []
        self._positions: dict[int, int] | None = None  # id -> row, built on demand, dropped on every change
        self._cache: OrderedDict[int, MentionRow | None] = OrderedDict()  # None: the id no longer exists
        self._replies: dict[int, ReplyState] = {}  # of the cached rows only
        self._answered: set[int] = set()  # of the cached rows only: a sent reply reached the customer
        self._claim_source: ClaimPort | None = None  # team mode: who is replying (the claims mirror, no I/O)
        self._claims: dict[int, ClaimLike] = {}  # of the cached rows only
        self._now = clock.now()
        self._query = QueueQuery()
        self._highlight: tuple[str, ...] = ()
        self._page_size = page_size
        self._more = False  # the last read filled its limit: there may be more ids to fetch

    # ------------------------------------------------------------------ Qt model API
    @override
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._ids)

    @override
    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(Col)

    @override
    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> bool:
        return not parent.isValid() and self._more

    @override
    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> None:
        if parent.isValid() or not self._more:
            return
        page = self._source.queue_ids(self._query, limit=self._page_size, offset=len(self._ids))
        self._more = len(page) == self._page_size
        known = set(self._ids)
        self._insert(len(self._ids), [i for i in page if i not in known])

    @override
    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    @override
    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if orientation is not Qt.Orientation.Horizontal or not 0 <= section < len(Col):
            return None
        col = Col(section)
        if role == _DISPLAY:
            return _HEADERS[col]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _ALIGN_CENTER if col is Col.SLA else _ALIGN_RIGHT if col is Col.RECEIVED else _ALIGN_LEFT
        return None

    @override
    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        if not index.isValid() or index.row() >= len(self._ids):
            return None
        mention = self._row(index.row())
        if mention is None:
            return None
        col = Col(index.column())
        if role == _DISPLAY:
            return self._display(mention, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(mention, col)
        if role == Qt.ItemDataRole.ForegroundRole:
            if col is Col.SLA:
                return QColor(BAND_TEXT[self._band(mention)])
            if col is Col.RECEIVED:
                return QColor(SECONDARY_TEXT)
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if col is Col.SLA:
                return _ALIGN_CENTER
            return _ALIGN_RIGHT if col is Col.RECEIVED else _ALIGN_LEFT
        return self._custom(mention, role)

    # ------------------------------------------------------------------ public API
    def set_ids(self, ids: Sequence[int]) -> None:
        """Show ``ids`` in this order: a row diff (inserts, removes, a re-sort) when possible, else a reset.

        Persistent indexes (the view's selection and current item) follow their mention across a diff.
        """
        new = list(ids)
        old = self._ids
        if new == old:
            return
        if not old:
            self._insert(0, new)
        elif new[: len(old)] == old:
            self._insert(len(old), new[len(old) :])
        else:
            self._diff(old, new)

    def reload(self) -> None:
        """Re-read the queue order from the source: as many ids as are loaded now, at least one page."""
        limit = max(self._page_size, len(self._ids))
        ids = self._source.queue_ids(self._query, limit=limit)
        self._more = len(ids) == limit
        self.set_ids(ids)

    @property
    def query(self) -> QueueQuery:
        """The view, filters and search the rows come from."""
        return self._query

    def set_query(self, query: QueueQuery) -> None:
        """Show another view or filter: the first page of its ids (a reset when little is shared)."""
        if query == self._query:
            return
        self._query = query
        self._highlight = tuple(search_terms(query.search))
        ids = self._source.queue_ids(query, limit=self._page_size)
        self._more = len(ids) == self._page_size
        if ids == self._ids:
            self.refresh_cached()  # the highlight may have changed
        else:
            self.set_ids(ids)
        self.query_changed.emit()

    def refresh_rows(self, ids: Iterable[int]) -> None:
        """These mentions changed in storage: forget their cached rows and repaint only their rows."""
        wanted = list(ids)
        for mention_id in wanted:
            self._cache.pop(mention_id, None)
            self._replies.pop(mention_id, None)
            self._answered.discard(mention_id)
            self._claims.pop(mention_id, None)
        positions = sorted({pos for mention_id in wanted if (pos := self.row_of(mention_id)) is not None})
        for first, last in _runs(positions):
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(Col) - 1))

    def refresh_cached(self) -> None:
        """Forget every cached row (a full refresh); repaints only the rows that were cached."""
        self.refresh_rows(list(self._cache))

    def tick(self, now: float, rows: range) -> None:
        """Advance the SLA clock: one dataChanged over the SLA cells of ``rows`` only (B5 rule 3)."""
        self._now = now
        top = max(rows.start, 0)
        bottom = min(rows.stop, len(self._ids)) - 1
        if bottom < top:
            return
        self.dataChanged.emit(self.index(top, Col.SLA), self.index(bottom, Col.SLA), TICK_ROLES)
        if self._claims:  # team mode: the claim markers' seconds count on, on the visible claimed rows only
            rows_now = (self.row_of(mention_id) for mention_id in self._claims)
            claimed = sorted(pos for pos in rows_now if pos is not None and top <= pos <= bottom)
            for first, last in _runs(claimed):
                self.dataChanged.emit(self.index(first, Col.PREVIEW), self.index(last, Col.PREVIEW), CLAIM_ROLES)

    def set_claims(self, claims: ClaimPort | None) -> None:
        """Team mode: show who is replying to each row (None when solo); repaints the rows whose claim changed."""
        self._claim_source = claims
        self.refresh_claims()

    def refresh_claims(self) -> None:
        """The team's claims changed: re-read them for the cached rows (the mirror, no I/O) and repaint only the
        rows whose claim appeared, went or changed hands (issue 22: the list shows it within a second)."""
        cached = [mention_id for mention_id, row in self._cache.items() if row is not None]
        fresh = dict(self._claim_source.claims_for(cached)) if self._claim_source is not None and cached else {}
        changed = [
            mention_id
            for mention_id in set(fresh) | set(self._claims)
            if _claim_key(fresh.get(mention_id)) != _claim_key(self._claims.get(mention_id))
        ]
        self._claims = fresh
        positions = sorted(pos for mention_id in changed if (pos := self.row_of(mention_id)) is not None)
        for first, last in _runs(positions):
            self.dataChanged.emit(self.index(first, Col.PREVIEW), self.index(last, Col.PREVIEW), CLAIM_ROLES)

    def claim_of(self, mention_id: int) -> ClaimLike | None:
        """The claim the list shows for this item (team mode), if any."""
        return self._claims.get(mention_id)

    @property
    def now(self) -> float:
        """The time the countdowns are computed at, sampled once per tick so that every row agrees."""
        return self._now

    def mention_id_at(self, row: int) -> int | None:
        return self._ids[row] if 0 <= row < len(self._ids) else None

    def mention_at(self, row: int) -> MentionRow | None:
        return self._row(row) if 0 <= row < len(self._ids) else None

    def row_of(self, mention_id: int) -> int | None:
        if self._positions is None:
            self._positions = {mention_id: pos for pos, mention_id in enumerate(self._ids)}
        return self._positions.get(mention_id)

    def next_band_change(self, since: float, rows: range) -> int | None:
        """The earliest time after ``since`` when the band of one of ``rows`` changes, if any."""
        changes = (next_change(m.due_at, m.warn_at, since) for m in self._rows_in(rows) if m is not None)
        return min((at for at in changes if at is not None), default=None)

    def band_changes(self, since: float, until: float, rows: range) -> list[int]:
        """Ids among ``rows`` whose band at ``until`` differs from their band at ``since``."""
        return [
            m.id
            for m in self._rows_in(rows)
            if m is not None and band(m.due_at, m.warn_at, since) is not band(m.due_at, m.warn_at, until)
        ]

    # ------------------------------------------------------------------ rows and cache
    def _row(self, row: int) -> MentionRow | None:
        mention_id = self._ids[row]
        try:
            mention = self._cache[mention_id]
        except KeyError:
            self._fill(row)
            return self._cache.get(mention_id)
        self._cache.move_to_end(mention_id)
        return mention

    def _rows_in(self, rows: range) -> Iterator[MentionRow | None]:
        for row in range(max(rows.start, 0), min(rows.stop, len(self._ids))):
            yield self._row(row)

    def _fill(self, row: int) -> None:
        """Fetch the neighbourhood of ``row`` in one ``rows_by_id`` call (Anki's browser table)."""
        start = max(0, row - self._batch_size // 4)
        window = self._ids[start : start + self._batch_size]
        wanted = [mention_id for mention_id in window if mention_id not in self._cache]
        found = self._source.rows_by_id(wanted)
        replies = self._source.reply_states(wanted)
        answered = self._source.answered(wanted)
        claims = self._claim_source.claims_for(wanted) if self._claim_source is not None and wanted else {}
        for mention_id in wanted:
            self._cache[mention_id] = found.get(mention_id)
            state = replies.get(mention_id)
            if state is not None:
                self._replies[mention_id] = state
            if mention_id in answered:
                self._answered.add(mention_id)
            claim = claims.get(mention_id)
            if claim is not None:
                self._claims[mention_id] = claim
        while len(self._cache) > self._cache_size:
            evicted, _row = self._cache.popitem(last=False)
            self._replies.pop(evicted, None)
            self._answered.discard(evicted)
            self._claims.pop(evicted, None)

    # ------------------------------------------------------------------ set_ids diffs
    def _insert(self, at: int, ids: list[int]) -> None:
        if not ids:
            return
        self.beginInsertRows(_ROOT, at, at + len(ids) - 1)
        self._ids[at:at] = ids
        self._positions = None
        self.endInsertRows()

    def _remove(self, first: int, last: int) -> None:
        self.beginRemoveRows(_ROOT, first, last)
        for mention_id in self._ids[first : last + 1]:
            self._cache.pop(mention_id, None)
            self._replies.pop(mention_id, None)
            self._answered.discard(mention_id)
            self._claims.pop(mention_id, None)
        del self._ids[first : last + 1]
        self._positions = None
        self.endRemoveRows()

    def _diff(self, old: list[int], new: list[int]) -> None:
        old_set, new_set = set(old), set(new)
        removed = list(_runs(pos for pos, mention_id in enumerate(old) if mention_id not in new_set))
        inserted = list(_runs(pos for pos, mention_id in enumerate(new) if mention_id not in old_set))
        if len(removed) + len(inserted) > MAX_DIFF_RUNS:
            self.beginResetModel()
            self._ids = new
            self._positions = None
            self._cache = OrderedDict((k, v) for k, v in self._cache.items() if k in new_set)
            self._replies = {k: v for k, v in self._replies.items() if k in new_set}
            self._answered &= new_set
            self._claims = {k: v for k, v in self._claims.items() if k in new_set}
            self.endResetModel()
            return
        for first, last in reversed(removed):
            self._remove(first, last)
        kept_new = [mention_id for mention_id in new if mention_id in old_set]
        if self._ids != kept_new:
            self._reorder(kept_new)
        for first, last in inserted:
            self._insert(first, new[first : last + 1])

    def _reorder(self, ids: list[int]) -> None:
        """Same ids, new order (deadlines moved): a layout change that keeps persistent indexes on their id."""
        self.layoutAboutToBeChanged.emit()
        position = {mention_id: pos for pos, mention_id in enumerate(ids)}
        before = self.persistentIndexList()
        after = [self.index(position[self._ids[index.row()]], index.column()) for index in before]
        self._ids = ids
        self._positions = None
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    # ------------------------------------------------------------------ cell values
    def _band(self, mention: MentionRow) -> Band:
        return band(mention.due_at, mention.warn_at, self._now)

    def _display(self, mention: MentionRow, col: Col) -> str:
        if col is Col.CHANNEL:
            label = channel_label(mention.channel)
            return f"{label} · DM" if mention.kind is MentionKind.DIRECT else label
        if col is Col.CUSTOMER:
            handle = f"@{mention.author_handle}"
            name = mention.author_name.strip()
            return f"{name} {handle}" if name and name != mention.author_handle else handle
        if col is Col.PREVIEW:
            line = preview_line(mention.text)
            if mention.upstream_deleted_at is not None:
                line = f"{DELETED_UPSTREAM} · {line}"  # issue 6: the customer deleted it on the channel
            return f"({mention.message_count}) {line}" if mention.message_count > 1 else line
        if col is Col.RECEIVED:
            return format_age(mention.last_message_at, self._now)
        if col is Col.TAGS:
            return ", ".join(split_tags(mention.tags))
        if col is Col.REPLY:
            state = self._replies.get(mention.id)
            return "" if state is None else _REPLY_LABELS[state]
        return "—" if mention.due_at is None else format_countdown(mention.due_at, self._now)

    def _tooltip(self, mention: MentionRow, col: Col) -> str:
        """Plain text; the view escapes it before Qt sees it (tooltips would otherwise guess rich text)."""
        if col is Col.CHANNEL:
            kind = "Direct message" if mention.kind is MentionKind.DIRECT else "Public mention"
            return f"{channel_label(mention.channel)} · {kind}"
        if col is Col.CUSTOMER:
            text = self._display(mention, col)
            return f"{text}\nFirst contact with us" if mention.is_first_contact else text
        if col is Col.PREVIEW:
            badge = priority_badge(mention.priority)
            text = f"Priority: {badge}\n\n{mention.text}" if badge else mention.text
            claim = self._claims.get(mention.id)
            if claim is not None:
                who = "You are" if claim.ours else f"{claim.holder} is"
                text = f"{who} replying ({claim_age(claim.since, self._now)})\n\n{text}"
            if mention.upstream_deleted_at is not None:
                deleted = local_time(mention.upstream_deleted_at, now=self._now)
                return f"The customer deleted this on the channel ({deleted}); the text is kept here.\n\n{text}"
            return text
        if col is Col.TAGS:
            return ", ".join(split_tags(mention.tags))
        if col is Col.REPLY:
            state = self._replies.get(mention.id)
            return "" if state is None else f"Latest reply: {_REPLY_LABELS[state].lower()}"
        if col is Col.RECEIVED:
            text = f"Posted {local_time(mention.posted_at, now=self._now)}"
            if mention.last_message_at != mention.posted_at:
                text += f"\nLast message {local_time(mention.last_message_at, now=self._now)}"
            return text
        if mention.due_at is None:
            return "No running deadline"
        due = local_time(mention.due_at, now=self._now)
        return f"Overdue since {due}" if self._band(mention) is Band.BREACHED else f"Due at {due}"

    def _custom(self, mention: MentionRow, role: int) -> Any:
        try:
            custom = Role(role)
        except ValueError:
            return None
        match custom:
            case Role.MENTION_ID:
                return mention.id
            case Role.DUE_AT:
                return mention.due_at
            case Role.WARN_AT:
                return mention.warn_at
            case Role.BAND:
                return self._band(mention).value
            case Role.IS_DIRECT:
                return mention.kind is MentionKind.DIRECT
            case Role.IS_NEWCOMER:
                # A first contact is "NEW" while open and unanswered: a resolved or waiting item, or one a sent
                # reply (synced or marked sent by hand) has reached, drops the badge (issue 19).
                return mention.is_first_contact and mention.status in OPEN_STATUSES and mention.id not in self._answered
            case Role.CUSTOMER_NAME:
                return mention.author_name.strip() or mention.author_handle
            case Role.CUSTOMER_HANDLE:
                return f"@{mention.author_handle}"
            case Role.CHANNEL_KIND:
                return mention.channel
            case Role.CHANNEL_LABEL:
                return channel_label(mention.channel)
            case Role.MESSAGE_COUNT:
                return mention.message_count
            case Role.TAGS:
                return split_tags(mention.tags)
            case Role.REPLY_STATE:
                state = self._replies.get(mention.id)
                return None if state is None else state.value
            case Role.HIGHLIGHT:
                return self._highlight
            case Role.STATUS:
                return mention.status.value
            case Role.PRIORITY:
                return mention.priority
            case Role.PRIORITY_LABEL:
                return priority_badge(mention.priority)
            case Role.CLAIM_LABEL:
                claim = self._claims.get(mention.id)
                return "" if claim is None else marker_text(claim, self._now)
            case Role.CLAIM_OURS:
                claim = self._claims.get(mention.id)
                return None if claim is None else claim.ours
