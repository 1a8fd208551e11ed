"""Upstream checks: re-read open Mastodon threads to catch customers' edits and deletions (no notification exists)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from console.channels.base import Connector
from console.channels.errors import ChannelError
from console.channels.mastodon import StatusCheck
from console.model import SyncReport
from console.ports import Clock
from console.sync.store_worker import storable
from storage.errors import StorageError
from storage.upstream import UpstreamEdit, UpstreamRepo

__all__ = ["StatusChecking", "UpstreamChecker", "UpstreamReport"]

log = logging.getLogger(__name__)


@runtime_checkable
class StatusChecking(Protocol):
    """Connectors that can re-read stored statuses (Mastodon: ``MastodonConnector.check_statuses``)."""

    async def check_statuses(self, known: Mapping[str, str | None]) -> StatusCheck: ...


@dataclass(frozen=True, slots=True)
class UpstreamReport:
    account_id: int
    checked: int
    edited: int
    deleted: int
    heads: tuple[int, ...]


class UpstreamChecker:
    """Checks an account's open messages at most every ``interval`` seconds, after a successful sync."""

    def __init__(
        self,
        repo: UpstreamRepo,
        connectors: Mapping[int, Connector],
        clock: Clock,
        *,
        interval: float = 600.0,
        batch: int = 40,
        on_changed: Callable[[UpstreamReport], None] | None = None,
        fetched_since: Mapping[int, int] | None = None,
        tasks: set[asyncio.Task[None]] | None = None,
    ) -> None:
        self._repo = repo
        # Per account: check only messages fetched since then (the sandbox's posts do not outlive a restart).
        self._fetched_since = dict(fetched_since or {})
        self._connectors = connectors
        self._clock = clock
        self._interval = interval
        self._batch = batch
        self._on_changed = on_changed
        self._last: dict[int, float] = {}
        #: The checks under way; pass the app's task set so they are cancelled with its other tasks.
        self.tasks: set[asyncio.Task[None]] = tasks if tasks is not None else set()

    async def check(self, account_id: int) -> UpstreamReport | None:
        """Re-read up to ``batch`` open messages of one account and store what changed.

        Returns:
            What was found, or None when the account's connector cannot check statuses.

        Raises:
            ChannelError: The channel could not be asked (nothing is concluded).
            StorageError: The changes could not be stored.
        """
        connector: object = self._connectors.get(account_id)
        if not isinstance(connector, StatusChecking):
            return None
        known = self._repo.open_messages(
            account_id, limit=self._batch, fetched_since=self._fetched_since.get(account_id)
        )
        self._last[account_id] = self._clock.now()
        if not known:
            return UpstreamReport(account_id, 0, 0, 0, ())
        result = await connector.check_statuses(known)
        edited_items = result.edited
        deleted = list(result.deleted)
        edits = [
            UpstreamEdit(
                external_id=item.external_id,
                text=storable(item.text),
                edited_at=str(item.raw.get("edited_at") or ""),
                raw_json=storable(json.dumps(item.raw, separators=(",", ":"), ensure_ascii=False)),
            )
            for item in edited_items
        ]
        heads = self._repo.apply(account_id, edited=edits, deleted=deleted, at=math.floor(self._clock.now()))
        report = UpstreamReport(account_id, len(known), len(edits), len(deleted), tuple(heads))
        if heads and self._on_changed is not None:
            self._on_changed(report)
        return report

    def on_synced(self, report: SyncReport) -> None:
        """Poller listener: after a successful sync, schedule a check when the account is due one."""
        connector: object = self._connectors.get(report.account_id)
        if not report.ok or not isinstance(connector, StatusChecking):
            return
        last = self._last.get(report.account_id)
        if last is not None and self._clock.now() - last < self._interval:
            return
        self._last[report.account_id] = self._clock.now()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._safe_check(report.account_id), name=f"upstream-{report.account_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _safe_check(self, account_id: int) -> None:
        try:
            await self.check(account_id)
        except (ChannelError, StorageError) as exc:
            log.info("Checking account %s for edits and deletions failed: %s", account_id, exc)
