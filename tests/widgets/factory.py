"""Test data for widget tests: one account and mentions stored through the real storage repositories."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import sqlite_utils

from console.queue import QueueQuery, QueueService
from console.sla.bands import SlaPolicy
from storage.accounts import AccountRepo
from storage.events import EventRepo
from storage.mentions import MentionRepo
from storage.rows import AccountRow, MentionKind, MentionRow, NewMention, ReplyState, UpsertResult
from tests.fakes.clock import FakeClock


class Factory:
    """Creates mentions for one Mastodon account; times default to the fake clock's now."""

    def __init__(self, db: sqlite_utils.Database, clock: FakeClock) -> None:
        self.db = db
        self.clock = clock
        self.policy = SlaPolicy()
        self.mentions = MentionRepo(db)
        self.events = EventRepo(db)
        self.account: AccountRow = AccountRepo(db).add(
            kind="mastodon", handle="care", base_url="https://social.example", now=int(clock.now())
        )
        self._serial = itertools.count(1)

    def service(self) -> QueueService:
        return QueueService(self.mentions, self.events, self.clock)

    def new(
        self,
        *,
        text: str = "Hello, my order has not arrived yet",
        handle: str = "ana",
        name: str = "Ana Lima",
        posted_at: float | None = None,
        kind: MentionKind = MentionKind.PUBLIC,
        parent: str | None = None,
        external_id: str | None = None,
        url: str | None = None,
    ) -> NewMention:
        serial = next(self._serial)
        ext = external_id or f"status-{serial}"
        return NewMention(
            account_id=self.account.id,
            external_id=ext,
            author_external_id=f"acct-{handle}",
            author_handle=handle,
            author_name=name,
            text=text,
            url=url if url is not None else f"https://social.example/@{handle}/{ext}",
            posted_at=int(self.clock.now() if posted_at is None else posted_at),
            kind=kind,
            visibility="direct" if kind is MentionKind.DIRECT else "public",
            parent_external_id=parent,
            raw_json="{}",
        )

    def store(self, items: Sequence[NewMention]) -> UpsertResult:
        return self.mentions.store_batch(
            items, channel=self.account.kind, fetched_at=int(self.clock.now()), plan=self.policy.plan
        )

    def add(self, **fields: object) -> int:
        """Store one new queue item and return its id."""
        result = self.store([self.new(**fields)])  # type: ignore[arg-type]
        (head,) = result.new_heads
        return head

    def many(self, count: int, *, step: int = 1, authors: int = 500) -> list[int]:
        """``count`` queue items posted ``step`` seconds apart (oldest first), in one store_batch call."""
        start = self.clock.now() - count * step
        items = [
            self.new(text=f"Question number {i}", handle=f"customer{i % authors}", name=f"Customer {i % authors}",
                     posted_at=start + i * step)
            for i in range(count)
        ]  # fmt: skip
        return list(self.store(items).new_heads)


class CountingQueue:
    """A fake QueueSource around a real QueueService that records every ``rows_by_id`` batch size."""

    def __init__(self, inner: QueueService) -> None:
        self.inner = inner
        self.batches: list[int] = []

    def queue_ids(self, query: QueueQuery, *, limit: int | None = None, offset: int = 0) -> list[int]:
        return self.inner.queue_ids(query, limit=limit, offset=offset)

    def rows_by_id(self, ids: Iterable[int]) -> Mapping[int, MentionRow]:
        wanted = list(ids)
        self.batches.append(len(wanted))
        return self.inner.rows_by_id(wanted)

    def reply_states(self, ids: Sequence[int]) -> Mapping[int, ReplyState]:
        return self.inner.reply_states(ids)

    def answered(self, ids: Sequence[int]) -> set[int]:
        return self.inner.answered(ids)
