"""Where synced batches are stored: one conversion and one write path, behind one interface (issue 21 item 2).

:func:`store_chunk` is the only code that turns items into rows (setting aside, for the quarantine, any it
cannot convert) and writes them. The app runs it on a worker thread with its own connection
(:class:`BackgroundStore`), so a catch-up never stalls the loop; an in-memory database (tests, a throwaway CLI
run) runs it on the caller's connection (:class:`InlineStore`). The Poller talks to either as a
:class:`BatchStore` and never stores by itself.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import orjson

from console.channels.base import InboundItem
from storage.db import close_database, open_database
from storage.health import QuarantineEntry
from storage.mentions import DeadlinePlan, MentionRepo
from storage.rows import NewMention, UpsertResult

log = logging.getLogger(__name__)


#: Lone UTF-16 surrogates (a JSON "\\ud800" escape decodes to one): SQLite cannot store them as UTF-8.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD, so one bad character never blocks a whole batch."""
    # ASCII (most fields: ids, handles, URLs) has none: one C check instead of a regex pass, ten fields an item.
    return text if text.isascii() else _LONE_SURROGATE.sub("\ufffd", text)


def to_rows(
    account_id: int, items: Sequence[InboundItem], rejected: list[QuarantineEntry] | None = None
) -> list[NewMention]:
    """The rows of ``items``; an item that cannot be converted is added to ``rejected`` and left out, alone.

    One unusable item (nested beyond reason, unserialisable) must not block the rest of its page on every poll.
    """
    rows: list[NewMention] = []
    for item in items:
        try:
            rows.append(to_new_mention(account_id, item))
        except (TypeError, ValueError, RecursionError) as exc:
            if rejected is not None:
                rejected.append(QuarantineEntry(item.external_id, f"unusable item: {exc!r}"[:1000], _raw_text(item)))
    return rows


def raw_json(raw: object) -> str:
    """``raw`` as compact JSON text, non-ASCII kept as is: what ``json.dumps(raw, separators=(",", ":"),
    ensure_ascii=False)`` writes, by orjson (several times faster) where it can.

    orjson writes the same text but for floats under 1e-4 (``0.00001`` for ``1e-05``: the same number) and
    NaN or infinities (``null``). What it refuses (a lone surrogate, an integer past 64 bits, nesting past its
    limit, a key that is not a string) goes to the standard library, which writes it or raises as before.

    Raises:
        TypeError, ValueError, RecursionError: ``raw`` cannot be written as JSON.
    """
    try:
        return orjson.dumps(raw).decode()
    except orjson.JSONEncodeError:
        return json.dumps(raw, separators=(",", ":"), ensure_ascii=False)


def _raw_text(item: InboundItem) -> str:
    try:
        return storable(raw_json(item.raw))
    except (TypeError, ValueError, RecursionError):
        return storable(repr(item.raw)[:100_000])


def to_new_mention(account_id: int, item: InboundItem) -> NewMention:
    """The row to store for one inbound item (its raw JSON kept compact).

    Raises:
        ValueError, TypeError, RecursionError: The item cannot be stored (it goes to the quarantine).
    """
    return NewMention(
        account_id=account_id,
        external_id=storable(item.external_id),
        author_external_id=storable(item.author_id or item.author_handle),
        author_handle=storable(item.author_handle),
        author_name=storable(item.author_name),
        text=storable(item.text),
        url=storable(item.url),
        posted_at=item.posted_at,
        kind=item.kind,
        visibility=item.visibility,
        parent_external_id=storable(item.parent_external_id) if item.parent_external_id else None,
        raw_json=storable(raw_json(item.raw)),
    )


def store_chunk(
    repo: MentionRepo,
    account_id: int,
    items: Sequence[InboundItem],
    *,
    channel: str,
    fetched_at: int,
    plan: DeadlinePlan,
    rejected: list[QuarantineEntry],
) -> UpsertResult:
    """Convert ``items`` and store them in one transaction; items that cannot be converted go to ``rejected``.

    Raises:
        StorageError: The write failed (nothing of this call is stored).
    """
    rows = to_rows(account_id, items, rejected)
    return repo.store_batch(rows, channel=channel, fetched_at=fetched_at, plan=plan)


class BatchStore(Protocol):
    """What the Poller stores a synced chunk through: :class:`BackgroundStore` in the app, :class:`InlineStore`
    on an in-memory database."""

    async def store(
        self,
        account_id: int,
        items: Sequence[InboundItem],
        *,
        channel: str,
        fetched_at: int,
        plan: DeadlinePlan,
        rejected: list[QuarantineEntry] | None = None,
    ) -> UpsertResult:
        """Convert and store ``items`` (see :func:`store_chunk`); unconvertible ones are added to ``rejected``."""
        ...

    async def aclose(self) -> None:
        """Finish the chunk being written, if any, and let go of the connection the store owns."""
        ...


class InlineStore:
    """:func:`store_chunk` on the caller's own connection, on the loop: for a database no second connection can
    open (``:memory:``). Chunks of at most ``STORE_CHUNK`` items keep each write short (STYLE B2)."""

    def __init__(self, mentions: MentionRepo) -> None:
        self._mentions = mentions

    async def store(
        self,
        account_id: int,
        items: Sequence[InboundItem],
        *,
        channel: str,
        fetched_at: int,
        plan: DeadlinePlan,
        rejected: list[QuarantineEntry] | None = None,
    ) -> UpsertResult:
        """Convert and store ``items`` here and now (see :func:`store_chunk`).

        Raises:
            StorageError: The write failed (nothing of this call is stored).
        """
        found: list[QuarantineEntry] = []
        result = store_chunk(
            self._mentions, account_id, items, channel=channel, fetched_at=fetched_at, plan=plan, rejected=found
        )
        if rejected is not None:
            rejected.extend(found)
        return result

    async def aclose(self) -> None:
        """Nothing to close: the connection is the caller's."""


class BackgroundStore:
    """One thread, one connection: ``store_batch`` runs there, so a 10,000-item catch-up never stalls the loop.

    SQLite in WAL mode lets the GUI thread keep reading while a chunk is written; the worker's connection is
    opened lazily on the worker thread and closed there by :meth:`aclose`.
    """

    def __init__(self, db_path: Path) -> None:
        """Args:
        db_path: The database file the app's main connection uses (never ``:memory:``).
        """
        self._path = db_path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="care-store")
        self._close_db: Callable[[], None] | None = None
        self._repo: MentionRepo | None = None

    async def store(
        self,
        account_id: int,
        items: Sequence[InboundItem],
        *,
        channel: str,
        fetched_at: int,
        plan: DeadlinePlan,
        rejected: list[QuarantineEntry] | None = None,
    ) -> UpsertResult:
        """Convert and store ``items`` on the worker thread.

        Args:
            account_id: The account the items came from.
            items: The items, oldest first.
            channel: The account's channel kind.
            fetched_at: When they were fetched (epoch seconds).
            plan: The deadline planner.
            rejected: Items that cannot be stored are added here (for the quarantine) instead of failing the rest.

        Raises:
            StorageError: The write failed (nothing of this call is stored).
        """
        found: list[QuarantineEntry] = []
        call = functools.partial(self._store, account_id, list(items), channel, fetched_at, plan, found)
        result = await asyncio.get_running_loop().run_in_executor(self._executor, call)
        if rejected is not None:
            rejected.extend(found)
        return result

    def _store(
        self,
        account_id: int,
        items: list[InboundItem],
        channel: str,
        fetched_at: int,
        plan: DeadlinePlan,
        rejected: list[QuarantineEntry],
    ) -> UpsertResult:
        if self._repo is None:
            db = open_database(self._path, migrate=False)
            self._repo = MentionRepo(db)
            self._close_db = functools.partial(close_database, db)
        return store_chunk(
            self._repo, account_id, items, channel=channel, fetched_at=fetched_at, plan=plan, rejected=rejected
        )

    def _close(self) -> None:
        if self._close_db is not None:
            self._close_db()
            self._close_db = None
            self._repo = None

    async def aclose(self) -> None:
        """Close the worker's connection and stop the thread (waits for a chunk being written, if any).

        Done without a loop callback from the worker, so nothing is posted to an event loop that is closing.
        """
        self.close()

    def close(self) -> None:
        """Like :meth:`aclose`, from synchronous code."""
        self._executor.submit(self._close).result()
        self._executor.shutdown(wait=True)
