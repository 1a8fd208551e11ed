"""The sync engine: poll each account's connector, store each batch in one transaction, then save the cursor."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from console.channels.base import Connector, InboundItem
from console.channels.errors import AuthExpired, ChannelError, Permanent, RateLimited, Transient
from console.ports import Clock
from console.sla import SlaPolicy
from storage.accounts import AccountRepo, SyncStateRepo
from storage.errors import StorageError
from storage.mentions import MentionRepo
from storage.rows import AccountRow, Health, NewMention

log = logging.getLogger(__name__)

#: Backoff cap (channels.md §0: about 15 minutes).
MAX_BACKOFF = 15 * 60


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one poll of one account did; listeners (status bar, demo log, CLI) read these."""

    account_id: int
    at: int
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    new_items: tuple[int, ...] = ()
    follow_ups: tuple[int, ...] = ()
    error: str | None = None
    health: Health = Health.OK
    next_attempt_at: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def to_new_mention(account_id: int, item: InboundItem) -> NewMention:
    return NewMention(
        account_id=account_id,
        external_id=item.external_id,
        author_external_id=item.author_id or item.author_handle,
        author_handle=item.author_handle,
        author_name=item.author_name,
        text=item.text,
        url=item.url,
        posted_at=item.posted_at,
        kind=item.kind,
        visibility=item.visibility,
        parent_external_id=item.parent_external_id,
        raw_json=json.dumps(item.raw, separators=(",", ":"), ensure_ascii=False),
    )


def backoff_seconds(failures: int, *, base: float, rng: random.Random) -> int:
    """Exponential backoff with full jitter in its upper half, capped at ``MAX_BACKOFF``."""
    ceiling = min(MAX_BACKOFF, base * (2 ** max(0, failures - 1)))
    return max(1, int(ceiling / 2 + rng.random() * ceiling / 2))


@dataclass
class Poller:
    """Polls every enabled account on its own schedule. One instance per app; tasks are owned and cancelled."""

    mentions: MentionRepo
    accounts: AccountRepo
    sync_state: SyncStateRepo
    connectors: Mapping[int, Connector]
    clock: Clock
    policy: SlaPolicy = field(default_factory=SlaPolicy)
    interval: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    _listeners: list[Callable[[SyncReport], None]] = field(default_factory=list, init=False)
    _wake: asyncio.Event | None = field(default=None, init=False)

    def subscribe(self, listener: Callable[[SyncReport], None]) -> None:
        self._listeners.append(listener)

    def _emit(self, report: SyncReport) -> None:
        for listener in list(self._listeners):
            try:
                listener(report)
            except Exception:  # a broken listener must not stop sync
                log.exception("sync listener failed")

    def wake(self) -> None:
        """Poll every account now instead of waiting for its schedule."""
        if self._wake is not None:
            self._wake.set()

    async def sync_account(self, account: AccountRow) -> SyncReport:
        """One poll of one account: fetch, store the batch in one transaction, only then save the cursor."""
        connector = self.connectors[account.id]
        state = self.sync_state.get(account.id)
        started = int(self.clock.now())
        try:
            batch = await connector.fetch_new(state.cursor)
        except ChannelError as exc:
            return self._failed(account, exc, started)
        new = [to_new_mention(account.id, item) for item in batch.items]
        try:
            result = self.mentions.store_batch(new, channel=account.kind, fetched_at=started, plan=self.policy.plan)
            next_at = int(self.clock.now() + self.interval)
            self.sync_state.record_success(account.id, cursor=batch.next_cursor, at=started, next_attempt_at=next_at)
        except StorageError as exc:
            # The cursor was not saved: the same items will be fetched again and deduplicated.
            log.error("storing a batch for account %s failed: %s", account.id, exc)
            report = SyncReport(account.id, started, fetched=len(new), error=str(exc), health=Health.FAILING)
            self._emit(report)
            return report
        if account.health is not Health.OK:
            self.accounts.set_health(account.id, Health.OK)
        report = SyncReport(
            account.id,
            started,
            fetched=len(new),
            stored=len(result.inserted_ids),
            duplicates=result.duplicates,
            new_items=result.new_heads,
            follow_ups=result.follow_up_heads,
            next_attempt_at=next_at,
        )
        self._emit(report)
        return report

    def _failed(self, account: AccountRow, exc: ChannelError, now: int) -> SyncReport:
        failures = self.sync_state.get(account.id).consecutive_failures + 1
        if isinstance(exc, RateLimited):
            health, next_at = Health.RATE_LIMITED, int(max(exc.retry_at, now + 1))
        elif isinstance(exc, AuthExpired):
            health, next_at = Health.AUTH_EXPIRED, now + MAX_BACKOFF
        else:
            health = Health.FAILING if isinstance(exc, Permanent) or failures >= 3 else account.health
            next_at = now + backoff_seconds(failures, base=max(self.interval, 5.0), rng=self.rng)
        self.sync_state.record_failure(account.id, error=str(exc), next_attempt_at=next_at)
        if health is not account.health:
            self.accounts.set_health(account.id, health, str(exc))
        level = logging.INFO if isinstance(exc, Transient | RateLimited) else logging.WARNING
        log.log(level, "sync of account %s failed (%s): %s", account.id, type(exc).__name__, exc)
        report = SyncReport(account.id, now, error=str(exc), health=health, next_attempt_at=next_at)
        self._emit(report)
        return report

    async def sync_once(self) -> list[SyncReport]:
        """One pass over every enabled account that has a connector (``care-console sync --once``)."""
        reports = []
        for account in self.accounts.list(enabled_only=True):
            if account.id in self.connectors:
                reports.append(await self.sync_account(account))
        return reports

    async def run(self) -> None:
        """Poll forever, each account when its persisted ``next_attempt_at`` comes (so restarts don't hammer)."""
        self._wake = asyncio.Event()
        while True:
            now = self.clock.now()
            soonest = now + self.interval
            for account in self.accounts.list(enabled_only=True):
                if account.id not in self.connectors:
                    continue
                due = self.sync_state.get(account.id).next_attempt_at
                if due is None or due <= now:
                    report = await self.sync_account(account)
                    due = report.next_attempt_at
                if due is not None:
                    soonest = min(soonest, due)
            delay = max(0.5, soonest - self.clock.now())
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                continue
            # A wake-up means "now": poll every account regardless of its schedule.
            await self._poll_all_now()

    async def _poll_all_now(self) -> None:
        for account in self.accounts.list(enabled_only=True):
            if account.id in self.connectors:
                await self.sync_account(account)
