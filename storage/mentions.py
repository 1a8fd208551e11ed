"""Mentions repository: batched inbound upserts (dedupe, threads, customers, deadlines, events) and reads."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlite_utils

from storage.driver import chunked, converted, fetch_all, named, qmarks, repository, says, scalar
from storage.events import EventValues, event_json, write_events, write_received_events
from storage.rows import (
    DeadlineKind,
    DeadlineRow,
    MentionKind,
    MentionRow,
    MentionStatus,
    NewMention,
    OffsetPlan,
    UpsertResult,
)

#: (kind, posted_at) -> (due_at, warn_at), or None for "no deadline of this kind". Supplied by console/sla.
DeadlinePlan = Callable[[DeadlineKind, int], tuple[int, int] | None]

_REOPENING = (MentionStatus.RESOLVED, MentionStatus.WAITING, MentionStatus.COMMUNITY)

#: The longest text stored for one message (the longest Discourse post is 32,000): a longer one is cut, with a
#: marker and the link to the whole post (issue 20, sync 4: a 50 MB post must not fill the database and exports).
MAX_TEXT_CHARS = 40_000
#: Raw JSON longer than this is stored slimmed: its long strings are cut, so the text is not stored twice.
MAX_RAW_CHARS = 100_000
#: In slimmed raw JSON, strings are kept up to this length.
MAX_RAW_STRING = 2_000


def capped_text(text: str, url: str) -> str:
    """``text``, or its first :data:`MAX_TEXT_CHARS` characters with a marker that says so and links the post.

    Args:
        text: The message's plain text.
        url: The message's link on the channel ("" when it has none).

    Returns:
        The text to store.
    """
    if len(text) <= MAX_TEXT_CHARS:
        return text
    where = f"; the whole post: {url}" if url else ""
    return f"{text[:MAX_TEXT_CHARS].rstrip()}\n\n[… cut by Care Console: {len(text):,} characters in all{where}]"


def slim_raw(raw_json: str) -> str:
    """``raw_json``, or when longer than :data:`MAX_RAW_CHARS` the same JSON with every long string cut.

    The message's text is stored once, in its own column; the raw JSON keeps the fields, not a second copy.

    Args:
        raw_json: The channel's JSON of the message.

    Returns:
        JSON text.
    """
    if len(raw_json) <= MAX_RAW_CHARS:
        return raw_json

    def slim(value: Any) -> Any:
        if isinstance(value, str) and len(value) > MAX_RAW_STRING:
            return f"{value[:MAX_RAW_STRING]}[… cut: {len(value):,} characters]"
        if isinstance(value, list):
            return [slim(v) for v in value]
        if isinstance(value, dict):
            return {k: slim(v) for k, v in value.items()}
        return value

    try:
        slimmed = json.dumps(slim(json.loads(raw_json)), separators=(",", ":"), ensure_ascii=False)
    except (ValueError, RecursionError):
        return json.dumps({"cut": f"raw JSON of {len(raw_json):,} characters not kept"})
    if len(slimmed) > MAX_RAW_CHARS:  # thousands of short fields: keep none rather than megabytes
        return json.dumps({"cut": f"raw JSON of {len(raw_json):,} characters not kept"})
    return slimmed


_MENTION_COLUMNS = (
    "m.id, m.account_id, m.external_id, m.thread_key, m.head_id, m.parent_external_id, m.customer_id, "
    "m.author_handle, m.author_name, m.text, m.url, m.posted_at, m.fetched_at, m.kind, m.visibility, "
    "m.status, m.priority, m.tags, m.is_first_contact, m.due_at, m.warn_at, m.last_message_at, m.message_count, "
    "a.kind AS channel, m.upstream_deleted_at"
)


class QueueView(StrEnum):
    """The queue's views; storage/queue_queries.py answers all of them, ``queue_ids`` below OPEN and ALL."""

    OPEN = "open"
    BREACHED = "breached"
    WAITING = "waiting"
    FOLLOW_UPS = "follow_ups"
    RESOLVED_TODAY = "resolved_today"
    ALL = "all"


def _mention(row: sqlite3.Row) -> MentionRow:
    return MentionRow(
        id=int(row["id"]),
        account_id=int(row["account_id"]),
        external_id=str(row["external_id"]),
        thread_key=str(row["thread_key"]),
        head_id=None if row["head_id"] is None else int(row["head_id"]),
        parent_external_id=None if row["parent_external_id"] is None else str(row["parent_external_id"]),
        customer_id=None if row["customer_id"] is None else int(row["customer_id"]),
        author_handle=str(row["author_handle"]),
        author_name=str(row["author_name"]),
        text=str(row["text"]),
        url=str(row["url"]),
        posted_at=int(row["posted_at"]),
        fetched_at=int(row["fetched_at"]),
        kind=MentionKind(row["kind"]),
        visibility=str(row["visibility"]),
        status=MentionStatus(row["status"]),
        priority=int(row["priority"]),
        tags=str(row["tags"]),
        is_first_contact=bool(row["is_first_contact"]),
        due_at=None if row["due_at"] is None else int(row["due_at"]),
        warn_at=None if row["warn_at"] is None else int(row["warn_at"]),
        last_message_at=int(row["last_message_at"]),
        message_count=int(row["message_count"]),
        channel=str(row["channel"]),
        upstream_deleted_at=None if row["upstream_deleted_at"] is None else int(row["upstream_deleted_at"]),
    )


def deadline_row(row: sqlite3.Row) -> DeadlineRow:
    """A ``deadlines`` row (all its columns, by name) as its record; every repository reading deadlines uses it."""

    def opt(v: Any) -> int | None:
        return None if v is None else int(v)

    return DeadlineRow(
        id=int(row["id"]),
        mention_id=int(row["mention_id"]),
        kind=DeadlineKind(row["kind"]),
        started_at=int(row["started_at"]),
        due_at=int(row["due_at"]),
        warn_at=int(row["warn_at"]),
        met_at=opt(row["met_at"]),
        paused_at=opt(row["paused_at"]),
        breached_at=opt(row["breached_at"]),
        cancelled_at=opt(row["cancelled_at"]),
    )


@dataclass(slots=True)
class _Head:
    id: int
    thread_key: str
    status: MentionStatus


@repository
class MentionRepo:
    """Everything about stored mentions. Never lets a raw sqlite3 error cross the boundary."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    @property
    def db(self) -> sqlite_utils.Database:
        """The database, for repositories that read the same tables (storage/queue_queries.py)."""
        return self._db

    # ------------------------------------------------------------------ writes
    def store_batch(
        self,
        items: Sequence[NewMention],
        *,
        channel: str,
        fetched_at: int,
        plan: DeadlinePlan,
        actor: str = "sync",
    ) -> UpsertResult:
        """Store one fetched batch in a single transaction.

        Duplicates (same account and external id) are skipped. A message that answers a stored message or
        one of our sent replies joins that thread: the head's counters move, a closed head reopens and a
        next-response deadline starts. Any other message becomes a new queue item (a head) with the
        deadlines ``plan`` gives for first response and resolution. Customers are created on first contact.

        Args:
            items: oldest first, all of one account.
            channel: the account's channel kind, for customer identity.
            fetched_at: when the batch was fetched (epoch seconds).
            plan: deadline planner from console/sla.
            actor: recorded on every event.

        Returns:
            What changed; ``inserted_ids`` is empty when everything was a duplicate.

        Raises:
            StorageError: the batch could not be stored; nothing of it was written.
        """
        if not items:
            return UpsertResult((), (), (), 0)
        account_ids = {item.account_id for item in items}
        if len(account_ids) != 1:
            raise ValueError("store_batch takes the items of one account")
        account_id = account_ids.pop()
        conn = self._conn
        with converted(f"Could not store {len(items)} synced mentions", conn):
            if conn.in_transaction:  # inside a caller's transaction: a savepoint
                with self._db.atomic():
                    return self._store(items, account_id, channel, fetched_at, plan, actor)
            # IMMEDIATE: the write lock is taken (waiting up to the busy timeout) before the first read, so the
            # ids read below cannot go stale if the window's connection writes meanwhile.
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = self._store(items, account_id, channel, fetched_at, plan, actor)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            return result

    def _store(
        self,
        items: Sequence[NewMention],
        account_id: int,
        channel: str,
        fetched_at: int,
        plan: DeadlinePlan,
        actor: str,
    ) -> UpsertResult:
        # The hot path of sync (issue #11, ``make bench``: ingest): rows are built in one pass with local
        # names, and whatever SQL can derive from the stored rows (search index, "received" events) is
        # inserted with one INSERT ... SELECT per batch instead of a Python tuple per mention.
        conn = self._conn
        existing: set[str] = set()
        ext_ids = [item.external_id for item in items]
        for chunk in chunked(ext_ids):
            existing.update(
                external_id
                for (external_id,) in conn.execute(
                    f"SELECT external_id FROM mentions WHERE account_id = ? AND external_id IN ({qmarks(len(chunk))})",
                    (account_id, *chunk),
                )
            )
        fresh: list[NewMention] = []
        for item in items:
            if item.external_id not in existing:
                existing.add(item.external_id)
                fresh.append(item)
        duplicates = len(items) - len(fresh)
        if not fresh:
            return UpsertResult((), (), (), duplicates)

        parents = [i.parent_external_id for i in fresh if i.parent_external_id]
        heads = self._known_heads(account_id, parents) if parents else {}
        customers, new_customers = self._customers(channel, fresh)

        first_id = int(scalar(conn, "SELECT coalesce(max(id), 0) FROM mentions")) + 1
        mention_id = first_id - 1
        mention_rows: list[tuple[object, ...]] = []
        deadline_rows: list[tuple[object, ...]] = []
        event_rows: list[EventValues] = []
        head_updates: dict[int, tuple[int, int]] = {}  # head id -> (messages added, last message at)
        reopened: list[_Head] = []
        new_heads: list[int] = []
        first_contacts = set(new_customers)  # customers whose first stored message is still to come
        status_new = MentionStatus.NEW.value
        first_response, resolution = DeadlineKind.FIRST_RESPONSE, DeadlineKind.RESOLUTION
        # An offset plan's new-item clocks are written below in bulk; here only the nearest one is needed.
        bulk = (
            [(k, due, warn) for k, due, warn in plan.offsets if k in (first_response, resolution)]
            if isinstance(plan, OffsetPlan)
            else None
        )
        nearest = min((due, warn) for _k, due, warn in bulk) if bulk else None
        for item in fresh:
            mention_id += 1
            customer_id = customers[item.author_external_id]
            first_contact = customer_id in first_contacts
            if first_contact:
                first_contacts.discard(customer_id)
            parent = item.parent_external_id
            head = heads.get(parent) if parent else None
            posted_at = item.posted_at
            if head is None:
                if bulk is not None:  # its deadlines are written in bulk below
                    due, warn = (posted_at + nearest[0], posted_at + nearest[1]) if nearest else (None, None)
                else:
                    due = warn = None
                    for kind in (first_response, resolution):
                        planned = plan(kind, posted_at)
                        if planned is not None:
                            deadline_rows.append((mention_id, kind.value, posted_at, *planned))
                            if due is None or planned < (due, warn):
                                due, warn = planned
                thread_key = item.external_id
                heads[thread_key] = _Head(mention_id, thread_key, MentionStatus.NEW)
                new_heads.append(mention_id)
                head_id = None
            else:
                due = warn = None
                thread_key = head.thread_key
                head_id = head.id
                heads[item.external_id] = head
                added, last = head_updates.get(head_id, (0, 0))
                head_updates[head_id] = (added + 1, max(last, posted_at))
                if head.status in _REOPENING:
                    reopened.append(head)
                    head.status = MentionStatus.OPEN
                    event_rows.append((posted_at, actor, head_id, "reopened", f'{{"by_message": {mention_id}}}'))
                event_rows.append((posted_at, actor, head_id, "follow_up", f'{{"message": {mention_id}}}'))
            text, raw = item.text, item.raw_json
            if len(text) > MAX_TEXT_CHARS:
                text = capped_text(text, item.url)
            if len(raw) > MAX_RAW_CHARS:
                raw = slim_raw(raw)
            mention_rows.append(
                (mention_id, account_id, item.external_id, thread_key, head_id, parent, customer_id,
                 item.author_handle, item.author_name, text, item.url, posted_at, fetched_at, item.kind,
                 item.visibility, status_new, first_contact, due, warn, posted_at, raw)
            )  # fmt: skip

        conn.executemany(
            "INSERT INTO mentions (id, account_id, external_id, thread_key, head_id, parent_external_id, "
            "customer_id, author_handle, author_name, text, url, posted_at, fetched_at, kind, visibility, "
            "status, is_first_contact, due_at, warn_at, last_message_at, raw) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            mention_rows,
        )
        # Every insert into mentions comes through here, so this is the search index's insert trigger,
        # one statement per batch (m001: four times faster than a per-row trigger).
        conn.execute(
            "INSERT INTO mentions_fts (rowid, text, author_handle, author_name, tags) "
            "SELECT id, text, author_handle, author_name, tags FROM mentions WHERE id BETWEEN ? AND ?",
            (first_id, mention_id),
        )
        write_received_events(conn, actor=actor, first_id=first_id, last_id=mention_id)
        for kind, due_offset, warn_offset in bulk or ():
            conn.execute(
                "INSERT INTO deadlines (mention_id, kind, started_at, due_at, warn_at) "
                "SELECT id, ?, posted_at, posted_at + ?, posted_at + ? FROM mentions "
                "WHERE id BETWEEN ? AND ? AND head_id IS NULL",
                (kind.value, due_offset, warn_offset, first_id, mention_id),
            )
        if head_updates:
            self._follow_ups(head_updates, reopened, plan, deadline_rows)
        conn.executemany(
            "INSERT INTO deadlines (mention_id, kind, started_at, due_at, warn_at) VALUES (?,?,?,?,?)",
            deadline_rows,
        )
        if event_rows:
            write_events(conn, event_rows)
        if head_updates:
            self._refresh_due(list(head_updates))
        new_set = set(new_heads)
        follow_up_heads = tuple(h for h in head_updates if h not in new_set)
        return UpsertResult(tuple(range(first_id, mention_id + 1)), tuple(new_heads), follow_up_heads, duplicates)

    def _known_heads(self, account_id: int, parent_ids: list[str]) -> dict[str, _Head]:
        """Map parent external ids to the thread head they belong to (stored messages or our replies)."""
        heads: dict[str, _Head] = {}
        wanted = list(dict.fromkeys(parent_ids))
        for chunk in chunked(wanted):
            marks = qmarks(len(chunk))
            for ext, head_id, thread_key, status in self._conn.execute(
                "SELECT m.external_id, coalesce(m.head_id, m.id), h.thread_key, h.status FROM mentions m "
                "JOIN mentions h ON h.id = coalesce(m.head_id, m.id) "
                f"WHERE m.account_id = ? AND m.external_id IN ({marks})",
                (account_id, *chunk),
            ):
                heads[ext] = _Head(int(head_id), str(thread_key), MentionStatus(status))
            # CROSS JOIN keeps replies the outer table: with a long IN list the planner otherwise walks every
            # mention of the account for each batch, and a 100,000-item backfill slows as it goes (issue 20).
            for ext, head_id, thread_key, status in self._conn.execute(
                "SELECT r.external_id, coalesce(m.head_id, m.id), h.thread_key, h.status FROM replies r CROSS "
                "JOIN mentions m ON m.id = r.mention_id JOIN mentions h ON h.id = coalesce(m.head_id, m.id) "
                f"WHERE m.account_id = ? AND r.external_id IN ({marks})",
                (account_id, *chunk),
            ):
                heads.setdefault(str(ext), _Head(int(head_id), str(thread_key), MentionStatus(status)))
        return heads

    def _customers(self, channel: str, items: Sequence[NewMention]) -> tuple[dict[str, int], set[int]]:
        """Find or create the customer of every item and count its new conversations.

        Must run inside the write transaction (ids of new customers are assigned here).

        Returns:
            Customer ids by author external id, and the ids created now.
        """
        conn = self._conn
        authors: dict[str, NewMention] = {}
        threads: dict[str, int] = {}  # author -> conversations this batch starts
        for item in items:
            author = item.author_external_id
            if author not in authors:
                authors[author] = item
                threads[author] = 0
            if item.parent_external_id is None:
                threads[author] += 1
        ids: dict[str, int] = {}
        keys = list(authors)
        for chunk in chunked(keys):
            for ext, cid in conn.execute(
                f"SELECT external_id, id FROM customers WHERE channel = ? AND external_id IN ({qmarks(len(chunk))})",
                (channel, *chunk),
            ):
                ids[str(ext)] = int(cid)
        conn.executemany(
            "UPDATE customers SET contact_count = contact_count + ? WHERE id = ?",
            [(threads[ext], cid) for ext, cid in ids.items() if threads[ext]],
        )
        next_id = int(scalar(conn, "SELECT coalesce(max(id), 0) FROM customers"))
        created: set[int] = set()
        new_rows: list[tuple[object, ...]] = []
        for ext in keys:
            if ext not in ids:
                next_id += 1
                ids[ext] = next_id
                created.add(next_id)
                item = authors[ext]
                new_rows.append(
                    (next_id, channel, ext, item.author_handle, item.author_name, item.posted_at, threads[ext])
                )
        conn.executemany(
            "INSERT INTO customers (id, channel, external_id, handle, display_name, first_seen_at, contact_count) "
            "VALUES (?,?,?,?,?,?,?)",
            new_rows,
        )
        return ids, created

    def _follow_ups(
        self,
        head_updates: dict[int, tuple[int, int]],
        reopened: list[_Head],
        plan: DeadlinePlan,
        deadline_rows: list[tuple[object, ...]],
    ) -> None:
        conn = self._conn
        conn.executemany(
            "UPDATE mentions SET message_count = message_count + ?, last_message_at = max(last_message_at, ?) "
            "WHERE id = ?",
            [(added, last, head_id) for head_id, (added, last) in head_updates.items()],
        )
        conn.executemany(
            "UPDATE mentions SET status = ? WHERE id = ?",
            [(MentionStatus.OPEN.value, head.id) for head in reopened],
        )
        # A customer message starts a next-response clock unless a response deadline is already running.
        ids = list(head_updates)
        running: set[int] = set()
        for chunk in chunked(ids):
            running.update(
                int(mention_id)
                for (mention_id,) in conn.execute(
                    f"SELECT mention_id FROM deadlines WHERE mention_id IN ({qmarks(len(chunk))}) "
                    "AND kind IN ('first_response', 'next_response') AND met_at IS NULL AND cancelled_at IS NULL",
                    tuple(chunk),
                )
            )
        for head_id, (_added, last) in head_updates.items():
            if head_id in running:
                continue
            planned = plan(DeadlineKind.NEXT_RESPONSE, last)
            if planned is not None:
                deadline_rows.append((head_id, DeadlineKind.NEXT_RESPONSE.value, last, *planned))

    def _refresh_due(self, mention_ids: Sequence[int]) -> None:
        """Recompute the denormalised ``due_at``/``warn_at`` (nearest running deadline) that the queue sorts on."""
        running = (
            "FROM deadlines d WHERE d.mention_id = mentions.id AND d.met_at IS NULL AND d.cancelled_at IS NULL "
            "AND d.paused_at IS NULL ORDER BY d.due_at LIMIT 1"
        )
        for chunk in chunked(list(mention_ids)):
            self._conn.execute(
                f"UPDATE mentions SET due_at = (SELECT d.due_at {running}), warn_at = (SELECT d.warn_at {running}) "
                f"WHERE id IN ({qmarks(len(chunk))})",
                tuple(chunk),
            )

    def refresh_due(self, mention_ids: Sequence[int]) -> None:
        """Public form of the due-time refresh, for services that change deadlines."""
        with self._db.atomic():
            self._refresh_due(mention_ids)

    # ------------------------------------------------------------------ reads
    @says("Could not read the queue")
    def queue_ids(self, view: QueueView = QueueView.OPEN) -> list[int]:
        """Ids of queue items (thread heads) in queue order: nearest deadline first, then oldest."""
        if view is QueueView.OPEN:
            sql = (
                "SELECT id FROM mentions INDEXED BY mentions_open_due "
                "WHERE head_id IS NULL AND status IN ('new', 'open') ORDER BY due_at, id"
            )
        else:
            sql = "SELECT id FROM mentions INDEXED BY mentions_due WHERE head_id IS NULL ORDER BY due_at, id"
        return [mention_id for (mention_id,) in self._conn.execute(sql)]

    @says("Could not read mentions")
    def rows_by_id(self, ids: Iterable[int]) -> dict[int, MentionRow]:
        """Batch read for the visible rows of a view."""
        wanted = list(ids)
        out: dict[int, MentionRow] = {}
        for chunk in chunked(wanted):
            for row in named(self._conn).execute(
                f"SELECT {_MENTION_COLUMNS} FROM mentions m JOIN accounts a ON a.id = m.account_id "
                f"WHERE m.id IN ({qmarks(len(chunk))})",
                tuple(chunk),
            ):
                mention = _mention(row)
                out[mention.id] = mention
        return out

    def thread(self, head_id: int) -> list[MentionRow]:
        """The head and every stored message of its thread, oldest first."""
        rows = fetch_all(
            self._conn,
            f"SELECT {_MENTION_COLUMNS} FROM mentions m JOIN accounts a ON a.id = m.account_id "
            "WHERE m.id = ? OR m.head_id = ? ORDER BY m.posted_at, m.id",
            (head_id, head_id),
        )
        return [_mention(r) for r in rows]

    def deadlines(self, mention_id: int) -> list[DeadlineRow]:
        rows = fetch_all(
            self._conn,
            "SELECT id, mention_id, kind, started_at, due_at, warn_at, met_at, paused_at, breached_at, cancelled_at "
            "FROM deadlines WHERE mention_id = ? ORDER BY due_at",
            (mention_id,),
        )
        return [deadline_row(r) for r in rows]

    def count(self, view: QueueView = QueueView.OPEN) -> int:
        if view is QueueView.OPEN:
            sql = "SELECT count(*) FROM mentions WHERE head_id IS NULL AND status IN ('new', 'open')"
        else:
            sql = "SELECT count(*) FROM mentions WHERE head_id IS NULL"
        return int(scalar(self._conn, sql))

    def total_messages(self) -> int:
        return int(scalar(self._conn, "SELECT count(*) FROM mentions"))

    @says("Could not record SLA breaches")
    def mark_breaches(self, now: int, *, actor: str = "sla") -> list[int]:
        """Record every running deadline that passed its due time as breached, once, with an event.

        Returns:
            The mention ids that gained a breach.
        """
        with self._db.atomic():
            due = fetch_all(
                self._conn,
                "SELECT id, mention_id, kind, due_at FROM deadlines WHERE due_at < ? AND met_at IS NULL "
                "AND cancelled_at IS NULL AND breached_at IS NULL AND paused_at IS NULL",
                (now,),
            )
            self._conn.executemany(
                "UPDATE deadlines SET breached_at = ? WHERE id = ?", [(int(r["due_at"]), int(r["id"])) for r in due]
            )
            write_events(
                self._conn,
                [
                    (
                        int(r["due_at"]),
                        actor,
                        int(r["mention_id"]),
                        "breached",
                        event_json({"deadline": r["kind"], "due_at": r["due_at"]}),
                    )
                    for r in due
                ],
            )
        return sorted({int(r["mention_id"]) for r in due})
