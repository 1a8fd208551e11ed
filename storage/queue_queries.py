"""Queue reads: every view and filter as one SQL query on indexed columns, full-text search, tags, alerts."""

from __future__ import annotations

import functools
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

import sqlite_utils

from storage.driver import chunked, fetch_one, named, qmarks, repository, says, scalar
from storage.mentions import QueueView
from storage.replies import WITHDRAWN_ERROR
from storage.rows import MentionKind, ReplyState

#: Reply states the queue shows (a sent reply is the normal case and shows nothing).
_SHOWN_REPLY_STATES = (ReplyState.DRAFT, ReplyState.QUEUED, ReplyState.SENDING, ReplyState.FAILED)

#: Word characters as the index's unicode61 tokenizer counts them (letters and digits; "_" separates).
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

#: Below this many items a view is searched row by row; above it, through the full-text index.
SMALL_VIEW = 5_000
#: A search in All reads at least this many of the newest index hits (see ``QueueQueryRepo._select``).
HIT_WINDOW = 4_000
_COUNT_HITS = "SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH ?"
_MATCH_FUNCTION = "care_terms_match"


def _fold(text: str) -> str:
    """Lower case without diacritics, as the index's ``unicode61 remove_diacritics 2`` tokenizer sees text."""
    lowered = text.lower()
    if lowered.isascii():
        return lowered
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@functools.lru_cache(maxsize=20_000)
def _tokens(text: str) -> frozenset[str]:
    """The folded words of a message; cached, since typing a search re-reads the same open items."""
    return frozenset(_TOKEN.findall(_fold(text)))


def _scan_pattern(text: str) -> str:
    """The search words for the row-by-row match, folded; a trailing ``*`` marks the last word as a prefix."""
    words = [_fold(t) for t in search_terms(text)]
    return " ".join(words) + ("*" if text.rstrip() == text else "")


def _terms_match(text: str | None, pattern: str) -> bool:
    """Every word of ``pattern`` is a word of ``text`` (the last one a prefix when the pattern ends in ``*``)."""
    if not text:
        return False
    prefix = pattern.endswith("*")
    words = pattern.rstrip("*").split()
    if not words:
        return False
    tokens = _tokens(text)
    *whole, last = words
    if any(word not in tokens for word in whole):
        return False
    return any(t.startswith(last) for t in tokens) if prefix else last in tokens


class SortColumn(StrEnum):
    """A column the agent sorts the queue by (a header click); None in a query keeps the view's own order."""

    CHANNEL = "channel"
    CUSTOMER = "customer"
    MESSAGE = "message"
    TAGS = "tags"
    RECEIVED = "received"
    SLA = "sla"
    PRIORITY = "priority"


#: ``ORDER BY`` terms per sort column, ascending as the agent reads it: (expression, follows the direction).
#: Terms that do not follow keep empty values last either way; Received ascends by age (newest first).
_SORT_TERMS: dict[SortColumn, tuple[tuple[str, bool], ...]] = {
    SortColumn.CHANNEL: (("(SELECT a.kind FROM accounts a WHERE a.id = m.account_id)", True), ("m.kind", True)),
    SortColumn.CUSTOMER: (("lower(coalesce(nullif(trim(m.author_name), ''), m.author_handle))", True),),
    SortColumn.MESSAGE: (("lower(ltrim(m.text))", True),),
    SortColumn.TAGS: (("m.tags = ''", False), ("lower(m.tags)", True)),
    SortColumn.RECEIVED: (("-m.last_message_at", True),),
    SortColumn.SLA: (("m.due_at IS NULL", False), ("m.due_at", True)),
    SortColumn.PRIORITY: (("m.priority", True),),
}


def _sort_order(sort: SortColumn, *, descending: bool) -> str:
    terms = [f"{expr} DESC" if follows and descending else expr for expr, follows in _SORT_TERMS[sort]]
    return ", ".join([*terms, "m.id DESC" if descending else "m.id"])


@dataclass(frozen=True, slots=True)
class QueueQuery:
    """One view plus its filters. Empty sets mean "any"; values within one filter are alternatives (OR),
    different filters all apply (AND)."""

    view: QueueView = QueueView.OPEN
    channels: frozenset[str] = field(default_factory=frozenset)
    account_ids: frozenset[int] = field(default_factory=frozenset)
    priorities: frozenset[int] = field(default_factory=frozenset)
    tags: frozenset[str] = field(default_factory=frozenset)
    kinds: frozenset[MentionKind] = field(default_factory=frozenset)
    newcomer: bool | None = None
    search: str = ""
    #: A column header the agent clicked (sorted in SQL, STYLE B5); None: the view's own order.
    sort: SortColumn | None = None
    descending: bool = False


@dataclass(frozen=True, slots=True)
class AlertItem:
    """An open item whose SLA band changed in a time window (alerts)."""

    mention_id: int
    author_handle: str
    due_at: int


def search_terms(text: str) -> list[str]:
    """The words of a search box text, as the full-text index tokenises them (lower case)."""
    return [t.lower() for t in _TOKEN.findall(text)]


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression for the search box: every word must occur, the last one as a prefix.

    Each word is quoted, so user input can never be FTS syntax (``NOT``, ``:``, ``*``, quotes). Returns None
    when there is nothing to search for.
    """
    terms = search_terms(text)
    if not terms:
        return None
    quoted = [f'"{t}"' for t in terms]
    if text.rstrip() == text:  # still typing the last word: match it as a prefix
        quoted[-1] += "*"
    return " ".join(quoted)


def _tag_match(tags: Iterable[str]) -> str | None:
    phrases = []
    for tag in sorted(tags):
        words = search_terms(tag)
        if words:
            phrases.append('"' + " ".join(words) + '"')
    return None if not phrases else "tags : (" + " OR ".join(phrases) + ")"


@repository
class QueueQueryRepo:
    """Reads for the queue views. Sorting and filtering happen here, in SQL (STYLE B5), never in a proxy."""

    def __init__(self, db: sqlite_utils.Database, *, small_view: int = SMALL_VIEW) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn
        self._small_view = small_view
        self._conn.create_function(_MATCH_FUNCTION, 2, _terms_match, deterministic=True)

    # ------------------------------------------------------------------ the queue
    def _select(self, query: QueueQuery, *, now: int, day_start: int, scan: bool = False) -> tuple[str, list[object]]:
        """The SQL (without LIMIT) that yields the ids of ``query`` in view order, and its parameters.

        Search and tags normally go through the full-text index. With ``scan`` (a small view) the view's own rows
        and their follow-ups are matched one by one instead: the same words and prefixes, but the cost follows the
        view's size, not the number of messages that mention a common word across the whole history.
        """
        where = ["m.head_id IS NULL"]
        params: list[object] = []
        join_params: list[object] = []  # they come before the WHERE parameters in the statement
        joins = ""
        order = "m.due_at, m.id"
        match query.view:
            case QueueView.OPEN:
                where.append("m.status IN ('new', 'open')")
            case QueueView.BREACHED:
                where.append("m.status IN ('new', 'open') AND m.due_at <= ?")
                params.append(now)
            case QueueView.WAITING:
                where.append("m.status = 'waiting'")
                order = "m.last_message_at, m.id"
            case QueueView.FOLLOW_UPS:
                joins = (
                    " JOIN (SELECT mention_id, min(due_at) AS follow_up_due "
                    "FROM deadlines INDEXED BY deadlines_follow_up "
                    "WHERE kind = 'follow_up' AND met_at IS NULL AND cancelled_at IS NULL GROUP BY mention_id) f "
                    "ON f.mention_id = m.id"
                )
                where.append("m.status NOT IN ('spam')")
                order = "f.follow_up_due, m.id"
            case QueueView.RESOLVED_TODAY:
                joins = (
                    # The planner would rather walk events by mention; today's status changes are few.
                    " JOIN (SELECT mention_id, max(at) AS changed_at FROM events INDEXED BY events_kind_at "
                    "WHERE kind = 'status_changed' AND at >= ? AND mention_id IS NOT NULL GROUP BY mention_id) r "
                    "ON r.mention_id = m.id"
                )
                join_params.append(day_start)
                where.append("m.status IN ('resolved', 'community')")
                order = "r.changed_at DESC, m.id DESC"
            case QueueView.ALL:
                order = "m.id DESC"
        if query.channels:
            where.append(f"m.account_id IN (SELECT id FROM accounts WHERE kind IN ({qmarks(len(query.channels))}))")
            params.extend(sorted(query.channels))
        if query.account_ids:
            where.append(f"m.account_id IN ({qmarks(len(query.account_ids))})")
            params.extend(sorted(query.account_ids))
        if query.priorities:
            where.append(f"m.priority IN ({qmarks(len(query.priorities))})")
            params.extend(sorted(query.priorities))
        if query.kinds:
            where.append(f"m.kind IN ({qmarks(len(query.kinds))})")
            params.extend(sorted(k.value for k in query.kinds))
        if query.newcomer is not None:
            where.append("m.is_first_contact = ?")
            params.append(int(query.newcomer))
        tag_match = _tag_match(query.tags)
        if tag_match is not None:
            # In a large view the index narrows the candidates; the exact comparison rules out "late" matching
            # "very-late" (and is all a small view needs).
            exact = " OR ".join("instr(',' || m.tags || ',', ?) > 0" for _ in query.tags)
            if scan or query.view is QueueView.ALL:  # All: the index drives the query below
                where.append(f"({exact})")
            else:
                where.append(f"m.id IN (SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH ?) AND ({exact})")
                params.append(tag_match)
            params.extend(f",{t}," for t in sorted(query.tags))
        match = fts_query(query.search)
        if match is not None and scan:
            pattern = _scan_pattern(query.search)
            where.append(
                f"({_MATCH_FUNCTION}(m.text || ' ' || m.author_handle || ' ' || m.author_name || ' ' || "
                f"replace(m.tags, ',', ' '), ?) OR EXISTS (SELECT 1 FROM mentions x WHERE x.head_id = m.id AND "
                f"{_MATCH_FUNCTION}(x.text || ' ' || x.author_handle || ' ' || x.author_name, ?)))"
            )
            params.extend((pattern, pattern))
        elif (match is not None or tag_match is not None) and query.view is QueueView.ALL and query.sort is None:
            # All, newest first: only the newest ``hits`` matching messages (FTS5 reads rowids in descending
            # order and stops), instead of every message with a common word; queue_ids widens ``hits`` until the
            # page is full or the index has no more. An item sorts by its newest matching message.
            sql = (
                "SELECT m.id FROM (SELECT rowid AS hit FROM mentions_fts WHERE mentions_fts MATCH ? "
                "ORDER BY rowid DESC LIMIT :hits) f JOIN mentions x ON x.id = f.hit "
                f"JOIN mentions m ON m.id = coalesce(x.head_id, x.id) WHERE {' AND '.join(where)} GROUP BY m.id "
                "ORDER BY max(f.hit) DESC, m.id DESC"
            )
            return sql, [match if match is not None else tag_match, *params]
        elif match is not None:
            # A match anywhere in the thread (a follow-up, the customer's name) finds the queue item.
            where.append(
                "m.id IN (SELECT coalesce(x.head_id, x.id) FROM mentions x "
                "WHERE x.id IN (SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH ?))"
            )
            params.append(match)
        if query.sort is not None:
            order = _sort_order(query.sort, descending=query.descending)
        sql = f"SELECT m.id FROM mentions m{joins} WHERE {' AND '.join(where)} ORDER BY {order}"
        return sql, [*join_params, *params]

    @says("Could not read the queue")
    def queue_ids(
        self, query: QueueQuery, *, now: int, day_start: int, limit: int | None = None, offset: int = 0
    ) -> list[int]:
        """Ids of the queue items (thread heads) of ``query``, in the view's order.

        Orders: Open and Breached by nearest deadline, Waiting by longest wait, Follow-ups by the promised
        time, Resolved today by latest change, All newest first.

        Args:
            query: the view and its filters.
            now: the current time (Breached).
            day_start: local midnight as epoch seconds (Resolved today).
            limit: at most this many ids (a page of a large view).
            offset: skip this many first.

        Raises:
            StorageError: the query failed.
        """
        sql, params = self._select(query, now=now, day_start=day_start, scan=self._is_small(query, now, day_start))
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params.extend((limit, offset))
        if ":hits" not in sql:
            return [int(mention_id) for (mention_id,) in self._conn.execute(sql, params)]
        return self._newest_hits(sql, params, limit=limit, offset=offset)

    def _newest_hits(self, sql: str, params: list[object], *, limit: int | None, offset: int) -> list[int]:
        """Run a newest-matches-first search, widening the window of index hits until the page is full."""
        if limit is None:
            return [int(mention_id) for (mention_id,) in self._conn.execute(sql.replace(":hits", "-1"), params)]
        window = max(HIT_WINDOW, 2 * (offset + limit))
        while True:
            ids = [int(mention_id) for (mention_id,) in self._conn.execute(sql.replace(":hits", str(window)), params)]
            if len(ids) >= limit:
                return ids
            found = scalar(self._conn, f"SELECT count(*) FROM ({_COUNT_HITS} LIMIT ?)", [params[0], window])
            if int(found) < window:
                return ids  # the window held every match
            window *= 4

    @says("Could not count the queue")
    def count(self, query: QueueQuery, *, now: int, day_start: int, cap: int | None = None) -> int:
        """How many items ``query`` shows; with ``cap``, counting stops there (cost bounded at 1M rows)."""
        sql, params = self._select(query, now=now, day_start=day_start, scan=self._is_small(query, now, day_start))
        sql = sql.replace(":hits", "-1")
        if cap is not None:
            sql += " LIMIT ?"
            params.append(cap)
        return int(scalar(self._conn, f"SELECT count(*) FROM ({sql})", params))

    def _is_small(self, query: QueueQuery, now: int, day_start: int) -> bool:
        """Search and tags in a view of fewer than ``small_view`` items match row by row (see ``_select``)."""
        if not (query.search.strip() or query.tags) or query.view is QueueView.ALL:
            return False
        sql, params = self._select(replace(query, search="", tags=frozenset()), now=now, day_start=day_start)
        capped = f"SELECT count(*) FROM ({sql} LIMIT ?)"
        return int(scalar(self._conn, capped, [*params, self._small_view])) < self._small_view

    # ------------------------------------------------------------------ extra columns
    def reply_states(self, ids: Sequence[int]) -> dict[int, ReplyState]:
        """The state of each item's latest unsent reply (draft, queued, sending, failed); absent when none."""
        out: dict[int, ReplyState] = {}
        shown = tuple(s.value for s in _SHOWN_REPLY_STATES)
        for chunk in chunked(ids):
            # A withdrawn reply is no failure (issue 19 #6): the agent took it back; it shows no state.
            rows = self._conn.execute(
                f"SELECT mention_id, state FROM replies WHERE mention_id IN ({qmarks(len(chunk))}) "
                f"AND state IN ({qmarks(len(shown))}) AND NOT (state = ? AND error = ?) ORDER BY id",
                (*chunk, *shown, ReplyState.FAILED.value, WITHDRAWN_ERROR),
            )
            for mention_id, state in rows:
                out[int(mention_id)] = ReplyState(state)
        return out

    def answered(self, ids: Sequence[int]) -> set[int]:
        """The items among ``ids`` that a response (a reply or a holding reply) has reached: sent, or marked
        sent by hand. The queue's NEW badge stays only on first contacts nobody has answered yet."""
        out: set[int] = set()
        for chunk in chunked(ids):
            rows = self._conn.execute(
                f"SELECT DISTINCT mention_id FROM replies WHERE mention_id IN ({qmarks(len(chunk))}) "
                "AND state = ? AND purpose IN ('reply', 'holding')",
                (*chunk, ReplyState.SENT.value),
            )
            out.update(int(mention_id) for (mention_id,) in rows)
        return out

    # ------------------------------------------------------------------ filter choices
    def known_tags(self, prefix: str = "", *, limit: int = 50) -> list[str]:
        """Tags in use, most used first, for completion."""
        escaped = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._conn.execute(
            "SELECT name FROM tags WHERE use_count > 0 AND name LIKE ? ESCAPE '\\' ORDER BY use_count DESC, name "
            "LIMIT ?",
            (escaped + "%", limit),
        )
        return [str(name) for (name,) in rows]

    def accounts(self) -> list[tuple[int, str, str]]:
        """``(id, channel kind, handle)`` of every account, for the account and channel filters."""
        rows = self._conn.execute("SELECT id, kind, handle FROM accounts")
        return [(int(account_id), str(kind), str(handle)) for account_id, kind, handle in rows]

    def other_conversations(self, mention_id: int, *, limit: int = 20) -> list[tuple[int, int, str, str]]:
        """The same customer's other queue items, newest first: ``(id, posted_at, status, text)``."""
        rows = self._conn.execute(
            "SELECT o.id, o.posted_at, o.status, o.text FROM mentions m JOIN mentions o "
            "ON o.customer_id = m.customer_id AND o.head_id IS NULL AND o.id != m.id "
            "WHERE m.id = ? AND m.customer_id IS NOT NULL ORDER BY o.posted_at DESC, o.id DESC LIMIT ?",
            (mention_id, limit),
        )
        return [(int(item_id), int(posted_at), str(status), str(text)) for item_id, posted_at, status, text in rows]

    def last_survey_answer(self, mention_id: int) -> tuple[int, int | None, str] | None:
        """The customer's latest answered Net Easy survey: ``(parsed_at, score, answer text)``, or None."""
        row = fetch_one(
            self._conn,
            "SELECT s.parsed_at, s.score, coalesce(s.answer_text, '') AS answer_text FROM mentions m "
            "JOIN surveys s ON s.customer_id = m.customer_id "
            "WHERE m.id = ? AND s.parsed_at IS NOT NULL ORDER BY s.parsed_at DESC, s.id DESC LIMIT 1",
            (mention_id,),
        )
        if row is None:
            return None
        return int(row["parsed_at"]), None if row["score"] is None else int(row["score"]), str(row["answer_text"])

    # ------------------------------------------------------------------ alerts
    def near_breach_count(self, now: int) -> int:
        """Open items in the warning band now (warned, not yet due)."""
        count = scalar(
            self._conn,
            "SELECT count(*) FROM mentions INDEXED BY mentions_open_warn WHERE head_id IS NULL "
            "AND status IN ('new', 'open') AND warn_at <= ? AND due_at > ?",
            (now, now),
        )
        return int(count)

    def entered_warning(self, since: int, until: int) -> list[AlertItem]:
        """Open items whose warning time falls in ``(since, until]`` and that are not yet due."""
        rows = named(self._conn).execute(
            "SELECT id, author_handle, due_at FROM mentions INDEXED BY mentions_open_warn WHERE head_id IS NULL "
            "AND status IN ('new', 'open') AND warn_at > ? AND warn_at <= ? AND due_at > ? ORDER BY warn_at, id",
            (since, until, until),
        )
        return [_alert(r) for r in rows]

    def entered_breach(self, since: int, until: int) -> list[AlertItem]:
        """Open items whose nearest deadline falls in ``(since, until]``."""
        rows = named(self._conn).execute(
            "SELECT id, author_handle, due_at FROM mentions INDEXED BY mentions_open_due WHERE head_id IS NULL "
            "AND status IN ('new', 'open') AND due_at > ? AND due_at <= ? ORDER BY due_at, id",
            (since, until),
        )
        return [_alert(r) for r in rows]

    @says("Could not read the deadlines")
    def deadline_overview(self, now: int) -> tuple[int, AlertItem | None]:
        """The whole open queue, whatever view or search is showing: ``(items past due, the next deadline)``.

        Raises:
            StorageError: the query failed.
        """
        breached = scalar(
            self._conn,
            "SELECT count(*) FROM mentions INDEXED BY mentions_open_due WHERE head_id IS NULL "
            "AND status IN ('new', 'open') AND due_at <= ?",
            (now,),
        )
        upcoming = fetch_one(
            self._conn,
            "SELECT id, author_handle, due_at FROM mentions INDEXED BY mentions_open_due WHERE head_id IS NULL "
            "AND status IN ('new', 'open') AND due_at > ? ORDER BY due_at, id LIMIT 1",
            (now,),
        )
        return int(breached), None if upcoming is None else _alert(upcoming)


def _alert(row: sqlite3.Row) -> AlertItem:
    return AlertItem(int(row["id"]), str(row["author_handle"]), int(row["due_at"]))
